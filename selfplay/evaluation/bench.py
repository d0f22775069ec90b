"""``selfplay bench games``: random-playout speed of every game, three ways, in one run.

* ``native``: our numba kernels (games.playout.random_playouts), one core, after warm-up;
* ``pettingzoo``: the same game through our PettingZoo AEC wrapper, stepped from Python;
* ``openspiel``: OpenSpiel's C++ implementation of the same game (where it has one with the
  same rules), stepped from Python through pyspiel: how a Python user drives OpenSpiel.

Each figure is actions played per second of uniformly random legal moves, whole games from the
start; ratios are ``native / other`` measured in the same process.
"""

from __future__ import annotations

import random
import sys
import time

import numpy as np

import games
from games.playout import random_playouts

__all__ = ["bench_games", "OPENSPIEL_EQUIVALENT"]

#: Our game name -> OpenSpiel game string with the same rules (default options only).
OPENSPIEL_EQUIVALENT = {
    "tictactoe": "tic_tac_toe",
    "connect4": "connect_four",
    "othello": "othello",
    "gomoku": "gomoku(size=15,connect=5)",
}


def _timed(run_once, seconds: float) -> tuple[int, float]:
    """Call ``run_once() -> steps`` until ``seconds`` pass; return (steps, elapsed)."""
    steps, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        steps += run_once()
    return steps, elapsed


def _native(game: games.Game, seconds: float) -> dict:
    start = time.perf_counter()
    random_playouts(game, 1, seed=0)  # compile or load from the numba cache
    first_call = time.perf_counter() - start
    batch = [1]
    seed = iter(range(1, 1 << 30))

    def run_once():
        t = time.perf_counter()
        n = random_playouts(game, batch[0], seed=next(seed))
        if time.perf_counter() - t < 0.05:  # grow the batch until a call is long enough to time
            batch[0] *= 2
        return n

    steps, elapsed = _timed(run_once, seconds)
    return {"steps_per_s": steps / elapsed, "first_call_s": first_call}


def _pettingzoo(name: str, seconds: float, options: dict) -> dict:
    env = games.make_env(name, **options)
    rng = np.random.default_rng(0)

    def run_once():
        env.reset(seed=int(rng.integers(1 << 31)))
        n = 0
        for agent in env.agent_iter():
            obs, _, terminated, truncated, _ = env.last()
            action = None if terminated or truncated else int(rng.choice(np.flatnonzero(obs["action_mask"])))
            env.step(action)
            n += action is not None
        return n

    steps, elapsed = _timed(run_once, seconds)
    return {"steps_per_s": steps / elapsed}


def _openspiel(spec: str, seconds: float) -> dict:
    import pyspiel

    game = pyspiel.load_game(spec)
    rng = random.Random(0)

    def run_once():
        state = game.new_initial_state()
        n = 0
        while not state.is_terminal():
            state.apply_action(rng.choice(state.legal_actions()))
            n += 1
        return n

    steps, elapsed = _timed(run_once, seconds)
    return {"game": spec, "steps_per_s": steps / elapsed}


def bench_games(seconds: float = 1.0, names: list[str] | None = None, progress: bool = True, **options) -> dict:
    """Measure every game (or ``names``); returns ``{game: {options, native, pettingzoo, openspiel?,
    ratio_native_to}}``.

    ``options`` (``map="bridge"``) go to every game measured; OpenSpiel's side runs with default
    options only, where its rules are ours."""
    results = {}
    for name in names or games.list_games():
        game = games.make(name, **options)
        row: dict = {"options": dict(game.options), "native": _native(game, seconds),
                     "pettingzoo": _pettingzoo(name, seconds, options)}
        if name in OPENSPIEL_EQUIVALENT and not options:
            row["openspiel"] = _openspiel(OPENSPIEL_EQUIVALENT[name], seconds)
        native = row["native"]["steps_per_s"]
        row["ratio_native_to"] = {k: native / row[k]["steps_per_s"] for k in ("pettingzoo", "openspiel") if k in row}
        results[name] = row
        if progress:
            others = "  ".join(f"{k} {row[k]['steps_per_s'] / 1e3:,.1f}k" for k in ("pettingzoo", "openspiel") if k in row)
            print(f"{name:>10}: native {native / 1e6:,.2f}M steps/s  {others}", file=sys.stderr)
    return results
