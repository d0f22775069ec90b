"""The difficulty ladder of a league (``selfplay league ladder DIR``): levels spaced in Elo from the
weakest network still on disk to the strongest, each step measured and mended where it does not
hold, written as ``ladder/level-K/`` checkpoints and ``ladder/ladder.json``, ready for
``selfplay export`` and ``selfplay play``.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import numpy as np

from .population import LeagueError
from .report import rating_table
from .store import checkpoint_evaluator, league_networks, load_run_config, load_state, read_log

__all__ = ["LADDER_DIR", "LADDER_FILE", "Step", "is_ladder", "measure_levels", "pick_levels", "read_ladder", "write_ladder"]

LADDER_DIR = "ladder"
LADDER_FILE = "ladder.json"


def pick_levels(elos: dict[str, float], levels: int) -> list[str]:
    """``levels`` names from ``{name: Elo}``, spaced in Elo from the lowest to the highest: for
    each of ``levels`` evenly spaced targets, the nearest name not yet taken. Returned from the
    weakest to the strongest; all of them when there are no more than ``levels``."""
    if levels < 1:
        raise ValueError(f"levels must be >= 1, got {levels}")
    ranked = sorted(elos, key=lambda n: (elos[n], n))
    if len(ranked) <= levels:
        return ranked
    low, high = elos[ranked[0]], elos[ranked[-1]]
    chosen: list[str] = []
    for target in np.linspace(low, high, levels):
        free = [n for n in ranked if n not in chosen]
        chosen.append(min(free, key=lambda n: (abs(elos[n] - target), elos[n])))
    return sorted(chosen, key=lambda n: (elos[n], n))


class Step(NamedTuple):
    """One ladder step: the upper level's wins, draws, losses and score against the lower."""

    wins: int
    draws: int
    losses: int
    score: float

    @classmethod
    def of(cls, result) -> "Step":
        return cls(result.wins, result.draws, result.losses, result.score)

    def flipped(self) -> "Step":
        return Step(self.losses, self.draws, self.wins, 1.0 - self.score)


def measure_levels(chosen: list[str], ratings: dict[str, float], match, retries: int = 3) -> tuple[list[str], list[Step]]:
    """Measure each step of the ladder ``chosen`` (names, weakest first, spaced in ``ratings``, the
    Elo of every candidate network) with ``match(upper, lower, k)`` (a result with wins, draws,
    losses and score, from ``upper``'s side) and mend the steps that do not hold. Returns the
    levels and, for each level above the first, its :class:`Step` against the one below.

    A level that does not beat the one below is swapped for the nearest untried network in Elo
    between its neighbours that does (at most ``retries`` tries), or else the level below it for
    one between its own neighbours. Failing both, a level that the one below beats is swapped
    with it, provided it still beats the level under both: ratings from league games under the
    training search can misorder networks (a case: docs/league.md)."""
    chosen = list(chosen)
    scores: list[Step] = []
    for k in range(1, len(chosen)):
        result = Step.of(match(chosen[k], chosen[k - 1], k))
        if result.score <= 0.5:
            low = ratings[chosen[k - 1]]
            high = ratings[chosen[k + 1]] if k + 1 < len(chosen) else math.inf
            spares = sorted((n for n in ratings if n not in chosen and low <= ratings[n] <= high),
                            key=lambda n: abs(ratings[n] - ratings[chosen[k]]))
            for spare in spares[:retries]:
                tried = Step.of(match(spare, chosen[k - 1], k))
                if tried.score > 0.5:
                    chosen[k], result = spare, tried
                    break
        if result.score <= 0.5 and k >= 2:
            # the two are equally strong: try a weaker level below, one that still beats its own
            # lower neighbour and loses to this level
            low, high = ratings[chosen[k - 2]], ratings[chosen[k]]
            middle = (low + high) / 2
            spares = sorted((n for n in ratings if n not in chosen and low <= ratings[n] <= high),
                            key=lambda n: abs(ratings[n] - middle))
            for spare in spares[:retries]:
                under, over = Step.of(match(spare, chosen[k - 2], k - 1)), Step.of(match(chosen[k], spare, k))
                if under.score > 0.5 and over.score > 0.5:
                    chosen[k - 1], scores[k - 2], result = spare, under, over
                    break
        if result.score < 0.5:
            # the level below is the stronger: swap the two if this one beats the level under both
            under = Step.of(match(chosen[k], chosen[k - 2], k - 1)) if k >= 2 else None
            if under is None or under.score > 0.5:
                if under is not None:
                    scores[k - 2] = under
                chosen[k - 1], chosen[k], result = chosen[k], chosen[k - 1], result.flipped()
        scores.append(result)
    return chosen, scores


def write_ladder(run_dir: str | Path, levels: int = 5, games: int = 40, visits: int | Sequence[int] = 0, seed: int = 0,
                 opening_moves: int = 2, kinds: tuple[str, ...] = ("main",), retries: int = 3,
                 min_games: int = 30, players: list[str] | None = None) -> str:
    """Pick ``levels`` networks spaced in Elo, play each against its neighbours (``games`` each,
    ``visits`` simulations per move, 0 the raw policy; each pair of games from its own
    ``opening_moves`` random plies, since a raw policy plays one game per colour otherwise), and write ``ladder/level-K/`` (a
    checkpoint, ready for ``selfplay export``) and ``ladder/ladder.json``. Returns a summary.

    Each step is measured and mended where it does not hold (:func:`measure_levels`); a level that
    still does not beat the one below is kept and marked ``"beats_below": false``. Only networks with at least ``min_games`` league games are
    candidates: a learner's latest network, or a snapshot just frozen, has an Elo from a handful of
    games. Levels come from the seed and the networks of members of ``kinds``: by default the main
    agents' line, which grows stronger against everything. Exploiters are strong against their
    targets only (their Elo comes from few, one-sided games), which makes a poor difficulty step.

    ``players`` (names as ``selfplay league status`` lists them, weakest first) takes those networks
    as the levels, in that order, and ``visits`` may then give each level its own count (a name may
    come twice, one network at two counts): each step is measured and reported, not mended;
    ``levels`` and ``min_games`` are then unused."""
    import games as games_module

    from ..evaluation.agents import NetworkAgent, trained_search_config
    from ..evaluation.matches import play_match
    from ..model.checkpoint import atomic_write

    run_dir = Path(run_dir)
    config = load_run_config(run_dir)
    state = load_state(run_dir)
    table = rating_table(read_log(run_dir, upto=state["seq"]))
    ratings, intervals = table.ratings(), table.intervals()
    played: dict[str, float] = {}
    for line in read_log(run_dir, upto=state["seq"]):
        if "opponent" in line:
            for who in (line["learner"], line["opponent"]):
                played[who] = played.get(who, 0) + line["wins"] + line["draws"] + line["losses"]
    on_disk = league_networks(run_dir, state, tuple(kinds))
    counts = [visits] * len(players or []) if isinstance(visits, int) else [int(v) for v in visits]
    if players is not None:
        missing = [name for name in players if name not in on_disk]
        if missing:
            raise LeagueError(f"{run_dir}: no network {', '.join(missing)} on disk (it has: {', '.join(on_disk)})")
        if len(players) < 2 or len(counts) != len(players):
            raise LeagueError(f"a ladder of players needs two or more, and one visit count for all or one per player "
                              f"(got {len(players)} players, {len(counts)} counts)")
        candidates = {name: on_disk[name] for name in players}
    else:
        if not isinstance(visits, int):
            raise LeagueError("visits per level need the levels named (players); picking uses one count")
        candidates = {name: path for name, path in on_disk.items() if name in ratings and played.get(name, 0) >= min_games}
        if len(candidates) < 2:
            raise LeagueError(f"{run_dir}: fewer than two networks on disk with {min_games} rated games; let the league run longer")
        chosen = pick_levels({name: ratings[name] for name in candidates}, levels)
    game = games_module.make(config.train.game, **config.train.game_options)
    agents: dict[str, Any] = {}

    def agent(name: str, count: int):
        if (name, count) not in agents:
            search = trained_search_config(count, config.train.search) if count else None
            agents[name, count] = NetworkAgent(game, checkpoint_evaluator(candidates[name], game), count, config=search,
                                               name=f"{name}@{count}")
        return agents[name, count]

    def match(upper: str, lower: str, k: int, counts: tuple[int, int] | None = None):
        a, b = counts or (visits, visits)
        return play_match(game, agent(upper, a), agent(lower, b), games, seed=seed + k, opening_moves=opening_moves,
                          batch_size=games, stop_when_decided=False)

    if players is not None:
        chosen = list(players)
        scores = [Step.of(match(chosen[k], chosen[k - 1], k, (counts[k], counts[k - 1]))) for k in range(1, len(chosen))]
    else:
        chosen, scores = measure_levels(chosen, {name: ratings[name] for name in candidates}, match, retries)
    target = run_dir / LADDER_DIR
    if target.exists():
        shutil.rmtree(target)
    target.mkdir()
    entries = []
    for k, name in enumerate(chosen):
        level_dir = target / f"level-{k + 1}"
        level_dir.mkdir()
        sidecar = candidates[name]
        record = json.loads(sidecar.read_text())
        shutil.copy2(sidecar.with_name(record["file"]), level_dir / record["file"])
        shutil.copy2(sidecar, level_dir / sidecar.name)
        rated = name in ratings  # a member's latest network may have no league games yet
        entry: dict[str, Any] = {"level": k + 1, "player": name, "elo": round(ratings[name], 1) if rated else None,
                                 "elo_interval": [round(x, 1) for x in intervals[name]] if rated else None,
                                 "checkpoint": f"level-{k + 1}/{sidecar.name}", "visits": counts[k] if players else visits}
        if k > 0:
            r = scores[k - 1]
            entry["vs_below"] = {"opponent": chosen[k - 1], "score": r.score, "wins": r.wins, "draws": r.draws, "losses": r.losses}
            entry["beats_below"] = r.score > 0.5
        if k + 1 < len(chosen):
            r = scores[k]
            entry["vs_above"] = {"opponent": chosen[k + 1], "score": 1 - r.score, "wins": r.losses, "draws": r.draws,
                                 "losses": r.wins}
        entries.append(entry)
    index = {"game": config.train.game, "game_options": dict(config.train.game_options), "games_per_pair": games,
             "visits": visits, "levels": entries}
    with atomic_write(target / LADDER_FILE) as f:
        f.write(json.dumps(index, indent=1).encode())
    out = [f"ladder of {len(chosen)} levels in {target} ({games} games per neighbour pair, {visits} visits):"]
    for entry in entries:
        below = entry.get("vs_below")
        elo = "?" if entry["elo"] is None else f"{entry['elo']:.1f}"
        out.append(f"  level {entry['level']}: {entry['player']:<16} Elo {elo:>7}"
                   + (f"  scores {100 * below['score']:.0f}% vs level {entry['level'] - 1} "
                      f"(+{below['wins']:.0f} ={below['draws']:.0f} -{below['losses']:.0f})" if below else ""))
    unordered = [e["level"] for e in entries if e.get("beats_below") is False]
    if unordered:
        out.append(f"  levels {', '.join(map(str, unordered))} do not beat the level below in these games: the "
                   f"networks are too close (a longer league, or more --games or --visits, may separate them)")
    out.append(f"export a level: selfplay export {target}/level-1 --out brains/level-1")
    return "\n".join(out)


def _ladder_dir(path: str | Path) -> Path:
    """The directory holding ``ladder.json``: ``path`` itself or its ``ladder/``."""
    path = Path(path)
    return path if (path / LADDER_FILE).is_file() else path / LADDER_DIR


def is_ladder(path: str | Path) -> bool:
    """Whether ``path`` is a ladder directory, or a league directory that holds one."""
    return (_ladder_dir(path) / LADDER_FILE).is_file()


def read_ladder(path: str | Path) -> tuple[Path, dict[str, Any]]:
    """The ladder :func:`write_ladder` wrote, from its directory or the league directory above
    it: the ladder's directory and ``ladder.json`` (``levels[k - 1]["checkpoint"]`` is level
    ``k``'s checkpoint, relative to that directory). A one-line ``LeagueError`` otherwise."""
    directory = _ladder_dir(path)
    bad = LeagueError(f"{directory / LADDER_FILE}: not a ladder written by selfplay league ladder, or its checkpoints are gone")
    try:
        index = json.loads((directory / LADDER_FILE).read_text())
    except FileNotFoundError:
        raise LeagueError(f"{path}: no {LADDER_FILE} here or in {LADDER_DIR}/ (selfplay league ladder DIR writes one)") from None
    except ValueError:
        raise bad from None
    levels = index.get("levels") if isinstance(index, dict) else None
    if not isinstance(levels, list) or not levels:
        raise bad
    for k, entry in enumerate(levels, 1):
        if not isinstance(entry, dict) or entry.get("level") != k or not isinstance(entry.get("checkpoint"), str):
            raise bad
        if not (directory / entry["checkpoint"]).is_file():
            raise bad
    return directory, index
