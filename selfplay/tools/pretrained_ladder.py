"""``selfplay pretrained make-ladder``: ship a difficulty ladder from one league. It picks the
levels (as ``selfplay league ladder`` does), exports each, plays each level against the one below
at the levels' own visits, measures each level against the opponents, and writes ONE card for
all of them, with the ``ladder.json`` that ``selfplay play`` and the browser example read
(:func:`ladder_index`) and, on request, its picture (:func:`plot_ladder`)."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

from .brain_card import building_dir, card_opponents, parse_search, swap_in, this_machine, write_card

__all__ = ["ladder_index", "make_ladder", "plot_ladder"]


def _level_visits(text: str, levels: int) -> list[int]:
    from ..pretrained import PretrainedError

    try:
        counts = [int(v) for v in text.split(",")]
    except ValueError:
        raise PretrainedError(f"--visits {text!r}: expected a count, or one per level (0,50,200,200,200)") from None
    if len(counts) == 1:
        counts *= levels
    if len(counts) != levels or min(counts) < 0:
        raise PretrainedError(f"--visits {text!r}: give one count >= 0, or one per level ({levels} levels)")
    return counts


def make_ladder(args: argparse.Namespace) -> int:
    import sys

    import games

    from ..evaluation.agents import load_agent
    from ..evaluation.curve import measure
    from ..evaluation.elo import score_interval
    from ..evaluation.matches import play_match
    from ..league.ladder import LADDER_FILE, read_ladder, write_ladder
    from ..pretrained import CARD_FILE, HERE, LADDER, PretrainedError
    from .export_cmd import export_ladder
    from .league_cmd import split_names

    root = Path(args.root).expanduser() if args.root else HERE
    source = Path(args.source).expanduser()
    search = parse_search(args.search)
    building, final = building_dir(root, args.name)
    if (source / LADDER_FILE).is_file():  # a ladder, as it is
        ladder_dir, league_dir = source, source.parent
    else:  # a league: pick its levels now (the settings checked first: picking takes a while)
        players = split_names(args.players)
        levels = len(players) if players else args.levels
        counts = _level_visits(args.visits, levels)
        if not 1 <= args.start_level <= levels:
            raise PretrainedError(f"--start-level {args.start_level}: the ladder has levels 1..{levels}")
        # named levels are measured at their own visits; picked ones at --pick-visits
        print(write_ladder(source, levels, args.pick_games, counts if players else args.pick_visits, seed=args.seed,
                           opening_moves=args.opening_moves, min_games=args.min_games, players=players),
              file=sys.stderr, flush=True)
        ladder_dir, league_dir = source / "ladder", source
    ladder_dir, index = read_ladder(ladder_dir)
    count = len(index["levels"])
    visits = _level_visits(args.visits, count)
    if not 1 <= args.start_level <= count:
        raise PretrainedError(f"--start-level {args.start_level}: the ladder has levels 1..{count}")
    game = games.make(index["game"], **index.get("game_options", {}))
    opponents = card_opponents(args.opponents, game)
    for spec in opponents:
        load_agent(spec, game)  # a bad name fails here, in one line, before anything is exported
    export_ladder(ladder_dir, building / "export")  # level-K/: renamed level_K/ (a package name)
    for k in range(1, count + 1):
        (building / "export" / f"level-{k}").rename(building / f"level_{k}")
    shutil.rmtree(building / "export")
    agents = [load_agent(str(building / f"level_{k}"), game, visits=v, search=search) for k, v in zip(range(1, count + 1), visits)]
    for k, agent in enumerate(agents, 1):
        agent.name = f"level {k}@{visits[k - 1]}"
    entries: list[dict[str, Any]] = []
    elo = 0.0
    for k, (picked, agent) in enumerate(zip(index["levels"], agents), 1):
        level_dir = building / f"level_{k}"
        entry: dict[str, Any] = {"level": k, "brain": level_dir.name, "player": picked.get("player"), "visits": visits[k - 1]}
        if k > 1:
            result = play_match(game, agent, agents[k - 2], args.games, seed=args.seed + k, opening_moves=args.opening_moves,
                                stop_when_decided=False, progress=True)  # fmt: skip
            print(result.summary(), file=sys.stderr, flush=True)
            elo += result.elo_diff
            entry["vs_below"] = {"games": result.games, "wins": result.wins, "draws": result.draws, "losses": result.losses,
                                 "score": result.score, "ci95": list(score_interval(result.wins, result.draws, result.losses)),
                                 "elo_diff": result.elo_diff, "elo_ci95": list(result.elo_ci95),
                                 "meets": result.score >= args.min_step_score}  # fmt: skip
        entry["elo"] = round(elo, 1)
        entry["league_elo"] = picked.get("elo")
        entry["league_elo_ci95"] = picked.get("elo_interval")
        if opponents:
            entry["strength"] = measure(level_dir, game, opponents, args.games, args.raw_games if visits[k - 1] else 0,
                                        visits[k - 1], args.opening_moves, args.seed, search=search)  # fmt: skip
        entry["bytes"] = (level_dir / "brain.onnx").stat().st_size
        entries.append(entry)
    short = [e["level"] for e in entries if e.get("vs_below") and not e["vs_below"]["meets"]]
    state = _league_state(league_dir)
    card = {
        "name": args.name,
        "kind": LADDER,
        "summary": f"{game.name} difficulty ladder of {count} levels from {league_dir.name}",
        "reproduce": list(args.reproduce),
        "training": {"league": league_dir.name, "machine": args.machine or this_machine(),
                     "minutes": round(state["elapsed"] / 60, 1) if isinstance(state.get("elapsed"), (int, float)) else None},
        "search": search,
        "seed": args.seed,
        "opening_moves": args.opening_moves,
        "start_level": args.start_level,
        "min_step_score": args.min_step_score,
        "ordered": not short,
        "elo_scale": "level 1 at 0, each level the one below plus the Elo of its score against it, each at its visits",
        "levels": entries,
        "bytes": sum(e["bytes"] for e in entries),
    }
    write_card(building / LADDER_FILE, ladder_index(game, entries, args.games, args.start_level))
    write_card(building / CARD_FILE, card)
    swap_in(building, final)
    print(f"wrote {final}/: {count} levels, {card['bytes'] / 2**20:.2f} MiB")
    if args.plot:
        print(f"wrote {plot_ladder(card, args.plot)}")
    for e in entries:
        step = e.get("vs_below")
        print(f"  level {e['level']}: {e['player'] or '?':<16} {e['visits']:>5} visits  Elo {e['elo']:>7.1f}"
              + (f"  {100 * step['score']:.1f}% vs level {e['level'] - 1} (+{step['wins']} ={step['draws']} -{step['losses']})"
                 if step else ""))  # fmt: skip
    if short:
        print(f"  levels {', '.join(map(str, short))} score under {100 * args.min_step_score:g}% against the level below: "
              "the card says so (\"ordered\": false); pick other levels or change their visits")
    return 0


def plot_ladder(card: dict[str, Any], path: str | Path) -> Path:
    """A shipped ladder's card as a PNG: left, each level's Elo (level 1 at 0) labelled with its
    network and visits; right, each level's score against the one below with its 95% interval, beside the
    score every step must reach."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = card["levels"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    xs = [e["level"] for e in levels]
    left.plot(xs, [e["elo"] for e in levels], "o-", color="tab:blue")
    for e in levels:
        network = f"{e['player'].rsplit('/', 1)[-1]}, " if e.get("player") else ""  # main0/g48: g48
        left.annotate(f"{network}{e['visits']} visits", (e["level"], e["elo"]), textcoords="offset points", xytext=(0, 8),
                      ha="center", fontsize=8)
    left.margins(x=0.1, y=0.15)  # room for the labels above the first and last points
    left.set(xlabel="level", ylabel="Elo (level 1 at 0)", title=f"{card['name']}: Elo of each level", xticks=xs)
    steps = [e for e in levels if e.get("vs_below")]
    scores = [100 * e["vs_below"]["score"] for e in steps]
    low = [score - 100 * e["vs_below"]["ci95"][0] for score, e in zip(scores, steps)]
    high = [100 * e["vs_below"]["ci95"][1] - score for score, e in zip(scores, steps)]
    right.errorbar([e["level"] for e in steps], scores, yerr=[low, high], fmt="o", capsize=4, color="tab:green")
    right.axhline(100 * card["min_step_score"], color="tab:red", linestyle="--", label=f"{100 * card['min_step_score']:g}%")
    right.set(xlabel="level", ylabel="score against the level below (%)", ylim=(0, 100), xticks=[e["level"] for e in steps],
              title=f"each step, {steps[0]['vs_below']['games'] if steps else 0} games")
    right.legend(loc="lower right")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def ladder_index(game: Any, levels: list[dict[str, Any]], games_per_pair: int, start_level: int) -> dict[str, Any]:
    """The ``ladder.json`` of a shipped ladder, what ``selfplay play --agent DIR`` and the
    browser example read, from the card's ``levels`` (each with ``level``, ``brain``, ``player``,
    ``elo`` and ``visits``): each level's brain and the visits it plays at, and the level to
    open at."""
    return {"game": game.name, "game_options": dict(game.options), "games_per_pair": games_per_pair,
            "visits": max(e["visits"] for e in levels), "start_level": start_level,
            "levels": [{"level": e["level"], "player": e.get("player"), "elo": e["elo"], "visits": e["visits"],
                        "checkpoint": f"{e['brain']}/brain.onnx"} for e in levels]}  # fmt: skip


def _league_state(league_dir: Path) -> dict[str, Any]:
    """The league's ``league.json`` (its elapsed time), or ``{}`` where the ladder has none beside it."""
    from ..league.store import STATE_FILE

    try:
        state = json.loads((league_dir / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}
