"""Search speed: simulations per second of our search, and of OpenSpiel's C++ MCTSBot beside it.

``python -m search.bench --game connect4 --evaluator rollout --batch 1 --simulations 1000 --json``
(the CLI's ``selfplay bench search`` calls :func:`bench_search`). Both searches play games from
the start, one search per move with a fresh tree (no reuse, as MCTSBot does), the most-visited
move played, finished games restarted. For ``rollout``, OpenSpiel's MCTSBot with a
``RandomRolloutEvaluator`` (one rollout per leaf, UCT) does the same work on one core in the same
run, and ``ratio`` is ours over theirs. Compile or cache-load time is measured apart, never in
the rate.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, Callable

import numpy as np

import games

from . import kernels
from .api import Search
from .config import SearchConfig, SearchError
from .evaluators import RolloutEvaluator, UniformEvaluator

__all__ = ["bench_search", "OPENSPIEL_NAMES"]

#: Our game name -> OpenSpiel's, for the games whose default options match OpenSpiel's.
OPENSPIEL_NAMES = {"connect4": "connect_four", "tictactoe": "tic_tac_toe"}
EVALUATORS = ("rollout", "uniform")


def _ours(game, evaluator, batch: int, simulations: int, seconds: float, seed: int) -> dict[str, Any]:
    config = SearchConfig(num_simulations=simulations, reuse_tree=False)
    start = game.initial_state()
    search = Search(game, np.stack([start] * batch), config, seed=seed)
    began = time.perf_counter()
    search.run(evaluator, simulations=1)  # compiles the kernels, or loads them from the disk cache
    first_call = time.perf_counter() - began
    search.set_roots(np.stack([start] * batch))
    spent, total, moves = 0.0, 0, 0
    while spent < seconds or moves == 0:
        began = time.perf_counter()
        result = search.run(evaluator)
        spent += time.perf_counter() - began
        total += int(result.simulations.sum())
        moves += 1
        search.advance(result.actions)
        over = np.flatnonzero(search.root_terminal)
        if over.size:
            search.set_roots(np.stack([start] * over.size), games=over)
    return {
        "moves": moves,
        "total_simulations": total,
        "seconds": spent,
        "sims_per_second": total / spent,
        "first_call_seconds": first_call,
    }


def _openspiel(name: str, simulations: int, seconds: float, seed: int) -> dict[str, Any]:
    import pyspiel  # lazily: OpenSpiel is only the yardstick

    game = pyspiel.load_game(name)
    bot = pyspiel.MCTSBot(
        game,
        pyspiel.RandomRolloutEvaluator(1, seed),
        2.0,  # uct_c
        simulations,
        1000,  # max_memory_mb
        False,  # solve
        seed,
        False,  # verbose
    )
    state = game.new_initial_state()
    spent, moves = 0.0, 0
    while spent < seconds or moves == 0:
        began = time.perf_counter()
        action = bot.step(state)
        spent += time.perf_counter() - began
        moves += 1
        state.apply_action(action)
        if state.is_terminal():
            state = game.new_initial_state()
    total = moves * simulations
    return {
        "name": name,
        "bot": "pyspiel.MCTSBot(RandomRolloutEvaluator(n_rollouts=1), uct_c=2, solve=False)",
        "moves": moves,
        "total_simulations": total,
        "seconds": spent,
        "sims_per_second": total / spent,
    }


def bench_search(
    game_name: str = "connect4",
    evaluator: str | Callable = "rollout",
    batch: int = 1,
    simulations: int = 1000,
    seconds: float = 3.0,
    seed: int = 0,
    openspiel: bool = True,
    fallback: bool = False,
    **options: Any,
) -> dict[str, Any]:
    """Measure search speed (see the module docstring); returns a JSON-ready dict.

    ``fallback``: measure the search as it runs should numba drop the private fast paths
    (reference counting in the hot kernels, rules kernels as dispatchers); it calls
    :func:`search.kernels.force_fallback`, so it must come before any search in the process.
    ``fast_path`` in the report says which path ran.

    ``evaluator``: ``"rollout"``, ``"uniform"``, or any search evaluator callable (a network:
    ``selfplay bench search --net``), reported under its ``label`` attribute if it has one.

    ``seconds``: search time to spend on each side (at least one move each). ``openspiel``:
    run OpenSpiel's MCTSBot beside ours (rollout evaluator, games in :data:`OPENSPIEL_NAMES`
    with default options only). ``options``: game options (``width=8``).
    """
    if not callable(evaluator) and evaluator not in EVALUATORS:
        raise SearchError(f"bench: evaluator must be one of {EVALUATORS} or a callable, got {evaluator!r}")
    if batch < 1 or simulations < 1 or seconds <= 0:
        raise SearchError(
            f"bench: batch, simulations and seconds must be positive, got {batch}, {simulations}, {seconds}"
        )
    if fallback:
        kernels.force_fallback()
    game = games.make(game_name, **options)
    if callable(evaluator):
        chosen, label = evaluator, getattr(evaluator, "label", type(evaluator).__name__)
    else:
        chosen, label = (RolloutEvaluator() if evaluator == "rollout" else UniformEvaluator()), evaluator
    report: dict[str, Any] = {
        "game": game.version_tag,
        "options": dict(game.options),
        "evaluator": label,
        "batch": batch,
        "simulations": simulations,
        "seed": seed,
        **_ours(game, chosen, batch, simulations, seconds, seed),
        "fast_path": kernels.fast_path(),
        "openspiel": None,
        "ratio": None,
    }
    name = OPENSPIEL_NAMES.get(game_name)
    if openspiel and evaluator == "rollout" and name and not options:
        try:
            theirs = _openspiel(name, simulations, seconds, seed)
        except ImportError as e:
            report["openspiel"] = {"error": f"pyspiel unavailable: {e}"}
        else:
            report["openspiel"] = theirs
            report["ratio"] = report["sims_per_second"] / theirs["sims_per_second"]
    return report


def _format(report: dict[str, Any]) -> str:
    lines = [
        f"{report['game']}, {report['evaluator']} evaluator, {report['batch']} game(s) x "
        f"{report['simulations']} simulations: {report['sims_per_second']:,.0f} simulations/s "
        f"({report['moves']} moves in {report['seconds']:.2f} s; first call {report['first_call_seconds']:.2f} s)",
        "numba {numba}: function pointers {function_pointers}, reference-count-free kernels {refcount_free}".format(
            **report["fast_path"]
        ),
    ]
    theirs = report["openspiel"]
    if theirs and "error" not in theirs:
        lines.append(
            f"OpenSpiel MCTSBot ({theirs['name']}): {theirs['sims_per_second']:,.0f} simulations/s "
            f"({theirs['moves']} moves); ours / theirs = {report['ratio']:.2f}"
        )
    elif theirs:
        lines.append(f"OpenSpiel: {theirs['error']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m search.bench", description=__doc__.split("\n")[0])
    parser.add_argument("--game", default="connect4", help="registered game name")
    parser.add_argument("--evaluator", default="rollout", choices=EVALUATORS, help="native evaluator")
    parser.add_argument("--batch", type=int, default=1, help="games searched at once")
    parser.add_argument("--simulations", type=int, default=1000, help="simulations per move")
    parser.add_argument("--seconds", type=float, default=3.0, help="search time on each side")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-openspiel", action="store_true", help="skip the OpenSpiel comparison")
    parser.add_argument("--fallback", action="store_true", help="measure the fallback numba paths (see bench_search)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    try:
        report = bench_search(
            args.game, args.evaluator, args.batch, args.simulations, args.seconds, args.seed, not args.no_openspiel,
            args.fallback,
        )
    except (SearchError, games.GameError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2) if args.json else _format(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
