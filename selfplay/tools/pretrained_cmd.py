"""``selfplay pretrained``: the brains shipped in the package, and how one is made.

::

    selfplay pretrained                                      # list them, with training and strength
    selfplay pretrained make connect4 runs/c4-120 --reproduce "selfplay train connect4 ..."
    selfplay pretrained exploit arena --minutes 15 --seed 0  # add its exploitability to its card
    selfplay pretrained make-ladder arena_ladder runs/league-arena --levels 5 --reproduce "selfplay league arena ..."

``make`` exports the checkpoint (``export``, with a value output so the brain can search) into
``selfplay/pretrained/NAME`` (or ``--root``), then measures the *exported* brain, the file a
user gets: matches at ``--visits`` and with its raw policy against every opponent, and for
Connect Four the solver benchmark. With ``--exploit-minutes`` it then measures the brain's
exploitability as ``exploit`` does. It writes every figure into ``card.json``
(:mod:`selfplay.pretrained`), so nothing on a card is typed by hand. The directory is written
beside the old one and swapped in at the end: an interrupted ``make`` leaves the old brain.

``exploit`` trains a fresh exploiter against a shipped brain for a fixed, seeded budget
(:func:`selfplay.league.exploit.run_exploiter`, what ``selfplay league exploit`` runs, with the
league members' settings for the game) and writes its score against the brain, with search at
the card's visits and as raw policies, onto the card as ``exploitability``.

``make-ladder`` ships a difficulty ladder from one league: it picks the levels (as ``selfplay
league ladder`` does), exports each, plays each level against the one below at the levels' own
visits, measures each level against the opponents, and writes ONE card for all of them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
from pathlib import Path
from typing import Any

from .args import integer, number

__all__ = ["DEFAULT_SEED", "SUBCOMMANDS", "add_arguments", "default_opponents", "ladder_index", "main", "plot_ladder"]

#: The subcommands; ``selfplay`` passes the words after ``pretrained`` to :func:`add_arguments`,
#: so only ``exploit`` loads the training settings (and torch) for its flags.
SUBCOMMANDS = ("make", "exploit", "make-ladder")

#: The seed of ``make``'s matches when none is given; cards made before they recorded their
#: seed were measured with it.
DEFAULT_SEED = 0


def add_arguments(parser: argparse.ArgumentParser, argv: list[str] | tuple[str, ...] = ()) -> None:
    """The arguments of ``selfplay pretrained``, then of the subcommand ``argv`` names."""
    sub = parser.add_subparsers(dest="action")
    make = sub.add_parser("make", help="export a checkpoint into the package and measure it (maintainers)")
    make.add_argument("name", help="the brain's directory name (connect4, arena, othello6)")
    make.add_argument("source", help="run directory or checkpoint (ckpt-*.json)")
    _reproduce_and_measure(make, games_help="games per match with search (default 200)", raw_games=100)
    make.add_argument("--visits", type=integer(1), default=200, help="simulations per move with search (default 200)")
    make.add_argument("--exploit-minutes", type=number(0), default=None, metavar="M",
                      help="then train an exploiter against the brain for M minutes and write its score on the card "
                           "(as selfplay pretrained exploit NAME --minutes M does)")
    make.add_argument("--exploit-seed", type=integer(0), default=0, help="the exploiter's seed (default 0)")
    make.add_argument("--exploit-args", default="", metavar="FLAGS", help="more flags of selfplay pretrained exploit "
                      "for the exploiter, quoted: --exploit-args='--games 200 --preset small'")
    exploit = sub.add_parser("exploit", help="measure a shipped brain's exploitability and write it on its card "
                             "(maintainers)")
    _exploit_arguments(exploit, config_flags=next((a for a in argv if not a.startswith("-")), None) == "exploit")
    ladder = sub.add_parser("make-ladder", help="pick, export and measure a difficulty ladder from a league, with one "
                            "card for every level (maintainers)")
    ladder.add_argument("name", help="the ladder's directory name (arena_ladder)")
    ladder.add_argument("source", help="a league directory (the levels are picked afresh, as selfplay league ladder "
                        "picks them) or a ladder directory holding ladder.json (its levels as they are)")
    _reproduce_and_measure(ladder, games_help="games of each level against the one below, and per opponent "
                           "(default 200)", raw_games=0)
    ladder.add_argument("--levels", type=integer(2), default=5, help="levels to pick from a league (default 5)")
    ladder.add_argument("--visits", default="200", metavar="N[,N...]", help="search visits of each level: one count "
                        "for all, or one per level from the weakest (0,50,200,200,200); 0 is the raw policy")
    ladder.add_argument("--min-step-score", type=number(0, 1), default=0.6, help="what each level must score against "
                        "the one below; a step short of it is reported and marked on the card (default 0.6)")
    ladder.add_argument("--start-level", type=integer(1), default=3, help="the level selfplay play opens at (default 3)")
    ladder.add_argument("--pick-games", type=integer(2), default=40, help="picking from a league: games between "
                        "neighbouring candidates (selfplay league ladder --games)")
    ladder.add_argument("--pick-visits", type=integer(0), default=0, help="picking from a league: their visits")
    ladder.add_argument("--min-games", type=integer(0), default=30, help="picking from a league: networks with fewer "
                        "league games are not candidates")
    ladder.add_argument("--plot", metavar="FILE", help="also draw the ladder (each level's Elo and visits, each step's "
                        "score with its 95%% interval) into this PNG, e.g. docs/img/arena-ladder.png")
    parser.add_argument("--root", dest="list_root", help="list the brains under this directory instead")


def _reproduce_and_measure(parser: argparse.ArgumentParser, games_help: str, raw_games: int) -> None:
    """The flags ``make`` and ``make-ladder`` share: the card's provenance and the matches."""
    parser.add_argument("--reproduce", action="append", required=True, metavar="COMMAND",
                        help="a command that reproduces the source (repeatable, in order)")
    parser.add_argument("--machine", help="where it was trained (default: this machine)")
    parser.add_argument("--opponents", help="comma-separated agents to measure against, or 'none' (default: the "
                        "game's scripts, the held-out ones too, random, greedy, mcts:200, mcts:1000)")
    parser.add_argument("--games", type=integer(2), default=200, help=games_help)
    parser.add_argument("--raw-games", type=integer(0), default=raw_games,
                        help=f"games per match of the raw policy (0: none; default {raw_games})")
    parser.add_argument("--opening-moves", type=integer(0), default=2, help="random opening plies per pair of games")
    parser.add_argument("--search", action="append", metavar="KEY=VALUE", default=[],
                        help="a setting of the search the brain plays with (root_policy, c_init, fpu, fpu_value; "
                             "repeatable): measured with, written on the card, and used by every command that loads "
                             "the brain (default: the agents' PUCT search)")
    parser.add_argument("--root", help="where the brains live (default: the package's selfplay/pretrained)")
    parser.add_argument("--seed", type=integer(0), default=DEFAULT_SEED, help="the matches' seed")


def _exploit_arguments(parser: argparse.ArgumentParser, config_flags: bool = True) -> None:
    from ..presets import PRESETS

    parser.add_argument("name", help="the shipped brain (arena, connect4, othello6)")
    parser.add_argument("--root", help="where the brains live (default: the package's selfplay/pretrained)")
    parser.add_argument("--games", type=integer(2), default=200, help="games of the exploiter against the brain, with "
                        "search at the card's visits and as raw policies each (default 200)")
    parser.add_argument("--preset", choices=PRESETS, default=None, help="the exploiter's training preset (default: "
                        "small, with the league members' settings for the game)")
    parser.add_argument("--run-dir", default=None, metavar="DIR", help="where the exploiter trains (default: "
                        "runs/exploit-NAME-DATE-TIME)")
    if config_flags:  # --minutes (the budget), --seed, and every training setting
        from ..config import add_config_arguments

        add_config_arguments(parser)


def parse_search(items: list[str]) -> dict[str, Any]:
    """``["root_policy=gumbel", "c_init=0.8"]`` -> ``{"root_policy": "gumbel", "c_init": 0.8}``,
    each value of its ``SearchConfig`` field's type; one line for a setting a card cannot name."""
    from ..evaluation.agents import network_search_config
    from ..pretrained import CARD_SEARCH, PretrainedError

    search: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in CARD_SEARCH:
            raise PretrainedError(f"--search {item!r}: expected KEY=VALUE with KEY one of {', '.join(CARD_SEARCH)}")
        kind = type(getattr(network_search_config(1), key))
        try:
            search[key] = kind(value.strip())
        except ValueError:
            raise PretrainedError(f"--search {item!r}: {key} must be a {kind.__name__}") from None
    network_search_config(1, **search)  # checked as a whole: a bad value fails here, in one line
    return search


def default_opponents(game: Any) -> list[str]:
    """What a shipped brain is measured against: the game's scripted NPCs, those held out of
    leagues too, random, greedy, and pure MCTS at 200 and 1000 rollouts."""
    from ..evaluation.agents import game_scripts

    return [*game_scripts(game), "random", "greedy", "mcts:200", "mcts:1000"]


def _opponents(text: str | None, game: Any) -> list[str]:
    if text is None:
        return default_opponents(game)
    return [] if text.strip() == "none" else [s.strip() for s in text.split(",") if s.strip()]


def _usage(message: str) -> Exception:
    """A bad command line: the one-line error ``selfplay`` prints."""
    from ..pretrained import PretrainedError

    return PretrainedError(message)


def _machine() -> str:
    return f"{os.cpu_count()} CPU cores ({platform.machine()}, {platform.system()}), no GPU"


def _write_card(path: Path, card: dict[str, Any]) -> None:
    from export.contract import atomic_write

    with atomic_write(path) as f:
        f.write((json.dumps(card, indent=1) + "\n").encode())


def _swap_in(building: Path, final: Path) -> None:
    """Replace ``final`` by the finished ``building`` directory: the old one stays until the
    new one is complete."""
    old = final.parent / f".{final.name}.old"
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    building.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(building.parent, ignore_errors=True)


def _building(root: Path, name: str) -> tuple[Path, Path]:
    from ..pretrained import PretrainedError

    if not name.isidentifier():
        raise PretrainedError(f"brain name {name!r}: use letters, digits and underscores")
    building = root / ".building" / name  # its own name: the matches print it
    shutil.rmtree(building, ignore_errors=True)
    return building, root / name


# ------------------------------------------------------------------------------ make


def _make(args: argparse.Namespace) -> int:
    from ..evaluation.curve import measure
    from ..pretrained import CARD_FILE, HERE
    from .export_cmd import export_loaded, load_source

    root = Path(args.root).expanduser() if args.root else HERE
    exploit = None
    if args.exploit_minutes is not None:  # its flags are checked before anything is measured
        argv = [args.name, *(["--root", args.root] if args.root else []), "--minutes", f"{args.exploit_minutes:g}",
                "--seed", str(args.exploit_seed), *shlex.split(args.exploit_args)]
        exploit = _exploit_parser().parse_args(argv)
    elif args.exploit_args:
        raise _usage("--exploit-args needs --exploit-minutes")
    building, final = _building(root, args.name)
    checkpoint, game = load_source(args.source)
    exported = export_loaded(checkpoint, game, building, with_value=True)[0]
    opponents = _opponents(args.opponents, game)
    search = parse_search(args.search)
    strength = measure(building, game, opponents, args.games, args.raw_games, args.visits, args.opening_moves, args.seed,
                       search=search)  # fmt: skip
    run = checkpoint.meta.get("run") or {}
    config = checkpoint.meta.get("config") or {}
    elapsed = run.get("elapsed")
    card = {
        "name": args.name,
        "summary": f"{game.name} brain from {checkpoint.path.parent.name}/{checkpoint.path.stem}",
        "reproduce": list(args.reproduce),
        "training": {
            "minutes": round(float(elapsed) / 60, 1) if isinstance(elapsed, (int, float)) else None,
            "machine": args.machine or _machine(),
            "generations": run.get("generation"),
            "games": run.get("games"),
            "positions": run.get("positions"),
            "network": config.get("net"),
            "checkpoint": f"{checkpoint.path.parent.name}/{checkpoint.path.name}",
        },
        "search": {**search, "visits": args.visits},
        "strength": {"seed": args.seed, **strength},
        "bytes": exported.manifest.bytes,
    }
    _write_card(building / CARD_FILE, card)
    _swap_in(building, final)
    print(f"wrote {final}/ ({exported.manifest.bytes / 2**20:.2f} MiB)")
    if exploit is not None:
        _exploit(exploit)
    return 0


# ------------------------------------------------------------------------------ exploit


class _ExploitParser(argparse.ArgumentParser):
    """``selfplay pretrained exploit``'s flags, for ``make --exploit-args``: a bad flag is one line."""

    def error(self, message: str):
        raise _usage(f"--exploit-args: {message}")


def _exploit_parser() -> argparse.ArgumentParser:
    parser = _ExploitParser(prog="selfplay pretrained exploit")
    _exploit_arguments(parser)
    return parser


def _exploit_command(args: argparse.Namespace, overrides: dict[str, Any]) -> str:
    """The ``selfplay pretrained exploit`` command line that measures what ``args`` measured."""
    from ..config import ALIASES

    words = ["selfplay", "pretrained", "exploit", args.name]
    words += ["--root", args.root] if args.root else []
    words += ["--games", str(args.games)] + (["--preset", args.preset] if args.preset else [])
    for key, value in overrides.items():
        flag = ALIASES.get(key) or "--" + key.split(".")[0] + "." + key.split(".", 1)[1].replace("_", "-")
        words += [flag, f"{value:g}" if isinstance(value, float) else str(value).lower() if isinstance(value, bool) else str(value)]
    return shlex.join(words)


def _exploit(args: argparse.Namespace) -> int:
    import datetime

    import games

    from ..config import overrides_from_args, with_overrides
    from ..league.exploit import run_exploiter
    from ..presets import league_preset
    from ..pretrained import CARD_FILE, HERE, BRAIN, PretrainedError, shipped

    root = Path(args.root).expanduser() if args.root else HERE
    brain = next((p for p in shipped(root) if p.name == args.name), None)
    if brain is None or brain.kind != BRAIN:
        names = ", ".join(p.name for p in shipped(root) if p.kind == BRAIN) or "none"
        raise PretrainedError(f"no shipped brain {args.name!r} under {root}; brains: {names}")
    overrides = overrides_from_args(args)
    if not overrides.get("run.minutes") and not overrides.get("run.generations"):
        raise PretrainedError("give the exploiter a fixed budget: --minutes M (or --generations N)")
    game = games.make(brain.game, **brain.options)
    # the league members' settings: an exploiter trains as the agents it is compared with did
    config = with_overrides(league_preset(game.name, args.preset or "small", dict(game.options))[0],
                            {"run.minutes": 0.0, **overrides})
    visits = _card_visits(brain.card)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = Path(args.run_dir) if args.run_dir else Path("runs") / f"exploit-{args.name}-{stamp}"
    report = run_exploiter(str(brain.path), config, run_dir, games_=args.games, visits=visits)

    def wdl(part: dict[str, Any]) -> dict[str, Any]:
        return {k: part[k] for k in ("wins", "draws", "losses", "score")} | {"ci95": part["score_ci95"]}

    entry = {
        "minutes": config.run.minutes, "generations": report["generations"], "seed": config.run.seed,
        "preset": config.preset, "visits": report["visits"], "games": args.games, "search": wdl(report),
        "raw": wdl(report["raw"]), "machine": _machine(), "command": _exploit_command(args, overrides),
    }  # fmt: skip
    card = dict(json.loads((brain.path / CARD_FILE).read_text()))
    card["exploitability"] = entry
    _write_card(brain.path / CARD_FILE, card)
    print(f"{args.name}: an exploiter of {report['generations']} generations scores {100 * report['score']:.1f}% "
          f"against it at {report['visits']} visits, {100 * report['raw']['score']:.1f}% raw; written on its card")
    return 0


def _card_visits(card: dict[str, Any]) -> int:
    """The visits a brain's figures were measured at: its card's search, else its matches'."""
    visits = (card.get("search") or {}).get("visits")
    if visits is None:
        searched = [m["visits"] for m in card.get("strength", {}).get("matches", []) if m.get("visits")]
        visits = max(searched) if searched else 200
    return int(visits)


# ------------------------------------------------------------------------------ make-ladder


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


def _make_ladder(args: argparse.Namespace) -> int:
    import sys

    import games

    from ..evaluation.agents import load_agent
    from ..evaluation.curve import measure
    from ..evaluation.elo import score_interval
    from ..evaluation.matches import play_match
    from ..league.ladder import LADDER_FILE, read_ladder, write_ladder
    from ..pretrained import CARD_FILE, HERE, LADDER, PretrainedError
    from .export_cmd import export_ladder

    root = Path(args.root).expanduser() if args.root else HERE
    source = Path(args.source).expanduser()
    search = parse_search(args.search)
    building, final = _building(root, args.name)
    if (source / LADDER_FILE).is_file():  # a ladder, as it is
        ladder_dir, league_dir = source, source.parent
    else:  # a league: pick its levels now (the settings checked first: picking takes a while)
        _level_visits(args.visits, args.levels)
        if not 1 <= args.start_level <= args.levels:
            raise PretrainedError(f"--start-level {args.start_level}: the ladder has levels 1..{args.levels}")
        print(write_ladder(source, args.levels, args.pick_games, args.pick_visits, seed=args.seed,
                           opening_moves=args.opening_moves, min_games=args.min_games), file=sys.stderr, flush=True)
        ladder_dir, league_dir = source / "ladder", source
    ladder_dir, index = read_ladder(ladder_dir)
    count = len(index["levels"])
    visits = _level_visits(args.visits, count)
    if not 1 <= args.start_level <= count:
        raise PretrainedError(f"--start-level {args.start_level}: the ladder has levels 1..{count}")
    game = games.make(index["game"], **index.get("game_options", {}))
    opponents = _opponents(args.opponents, game)
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
        "training": {"league": league_dir.name, "machine": args.machine or _machine(),
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
    _write_card(building / LADDER_FILE, ladder_index(game, entries, args.games, args.start_level))
    _write_card(building / CARD_FILE, card)
    _swap_in(building, final)
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
    visits; right, each level's score against the one below with its 95% interval, beside the
    score every step must reach."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = card["levels"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    xs = [e["level"] for e in levels]
    left.plot(xs, [e["elo"] for e in levels], "o-", color="tab:blue")
    for e in levels:
        left.annotate(f"{e['visits']} visits", (e["level"], e["elo"]), textcoords="offset points", xytext=(0, 8),
                      ha="center", fontsize=8)
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


def main(args: argparse.Namespace) -> int:
    if args.action == "make":
        return _make(args)
    if args.action == "exploit":
        return _exploit(args)
    if args.action == "make-ladder":
        return _make_ladder(args)
    from ..pretrained import shipped

    brains = shipped(Path(args.list_root).expanduser() if args.list_root else None)
    for brain in brains:
        print(brain.describe())
    if not brains:
        print("no brains shipped")
    return 0
