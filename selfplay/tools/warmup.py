"""``selfplay warmup``: compile every numba kernel the commands use into numba's disk cache.

numba compiles a kernel at its first use and caches it on disk. On a fresh install the cache
is empty, and the first search would pay for compiling the search kernels. ``make venv`` runs
this once after installing, in two processes, so that the first command of a new user starts
fast (``selfplay bench startup`` measures both cases). The search kernels take the rules as
typed function pointers, so they are compiled once for every game; each game adds its own small
rules kernels.

After ``pip install selfplay`` (no Makefile), run ``selfplay warmup`` once. It is also safe to
run again: kernels already cached load at once.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time

__all__ = ["warm", "warm_search", "warm_rules", "add_arguments", "main"]


def warm_search(part: str) -> str:
    """One part of the search kernels, on tic-tac-toe: ``native`` (the in-numba evaluators,
    reading roots, tree reuse), ``network`` (the steps around an outside evaluator) or
    ``matches`` (the match and baseline kernels). The parts share no kernel, so two processes
    can compile them at once."""
    import numpy as np

    import games
    import search
    from search import kernels
    from search.tree import allocate_tree, kernel_config

    game = games.make("tictactoe")
    config = search.SearchConfig(num_simulations=8, root_policy="gumbel", gumbel_considered=4)
    if part == "native":  # set_roots, native_search, summarize, advance_roots
        tree = search.Search(game, game.initial_state(), config)
        tree.advance(tree.run(search.RolloutEvaluator()).actions)
    elif part == "network":  # select_leaves, expand_and_backup, begin_search, abandon_leaves, the cache
        tree, cfg = allocate_tree(1, 9, game.num_actions, game.state_size, 8), kernel_config(config)
        obs = np.zeros((1, *game.obs_shape), np.float32)
        masks, index = np.zeros((1, game.num_actions), np.bool_), np.zeros(1, np.int64)
        kernels.select_leaves(*game.kernels, game.params, tree, cfg, True, 1, obs, masks, index, index)
        kernels.expand_and_backup(tree, cfg, 0, index, index, masks, np.zeros((1, game.num_actions), np.float32),
                                  np.zeros(1, np.float32))
        kernels.begin_search(tree, cfg)
        kernels.abandon_leaves(tree, cfg, 0, index, index)
        from search.cache import EvaluationCache  # the actors' and ratings' evaluation cache

        EvaluationCache(2)(obs, masks | True, lambda o, m: (np.zeros(m.shape, np.float32), np.zeros(len(o), np.float32)))
    else:  # importing them compiles the match and baseline kernels
        from ..evaluation.agents import load_agent
        from ..evaluation.matches import play_match

        play_match(game, load_agent("greedy", game), load_agent("random", game), 2, progress=False)
    return f"search ({part})"


def warm_rules(name: str) -> str:
    """Game ``name``'s rules kernels, each for the types the commands call it with. A plugin that
    cannot load or fails its checks is skipped with its one-line reason: warming up never fails
    an install."""
    import games
    from games.testing import check_game

    try:
        check_game(games.make(name), num_games=1)
    except (games.GameError, AssertionError) as e:
        return f"{name}: skipped: {e}"
    return name


def _job(job: str) -> str:
    kind, _, name = job.partition(":")
    return warm_search(name) if kind == "search" else warm_rules(name)


def warm(processes: int = 2, progress: bool = True) -> float:
    """Compile (or load) every kernel; return the seconds it took. Plugins are included."""
    import games

    jobs = ["search:native", "search:network", "search:matches", *(f"rules:{name}" for name in games.list_games())]
    began = time.perf_counter()
    if processes <= 1:
        done = map(_job, jobs)
    else:
        pool = multiprocessing.get_context("spawn").Pool(min(processes, len(jobs)))
        done = pool.imap_unordered(_job, jobs)
    live = progress and sys.stderr.isatty()
    try:
        for name in done:
            if ": skipped: " in name:
                print(f"{chr(13) if live else ''}selfplay warmup: {name}", file=sys.stderr)
            elif live:
                print(f"\rselfplay warmup: compiled {name:<16}", end="", file=sys.stderr, flush=True)
    finally:
        if processes > 1:
            pool.close()
            pool.join()
    seconds = time.perf_counter() - began
    if progress:
        print(f"\rselfplay warmup: numba kernels compiled and cached in {seconds:.0f} s", file=sys.stderr)
    return seconds


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--processes", type=int, default=2, help="compile in this many processes")


def main(args: argparse.Namespace) -> int:
    warm(max(1, args.processes))
    return 0
