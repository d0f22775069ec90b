"""Positions for the Connect Four strength benchmark, answered by the perfect solver
(:mod:`games.connect4_solver`).

:func:`benchmark_positions` draws positions from varied play, careless to expert, by stage
(:data:`STAGES`): ``beginning`` (at most 14 moves played), ``middle`` (15 to 28), ``end``
(more), each with its answer key: the outcome of every move (``move_outcomes``). A move is an
*error* when another legal move has a strictly better outcome
(:func:`~games.connect4_solver.outcome_is_error`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .connect4_solver import ILLEGAL, Solver, get_solver, has_four
from .core import GameError

__all__ = ["STAGES", "BenchmarkPosition", "benchmark_positions", "stage_of"]

#: Benchmark stages by the number of moves already played: name -> (first, last), inclusive.
STAGES: dict[str, tuple[int, int]] = {"beginning": (0, 14), "middle": (15, 28), "end": (29, 63)}


def stage_of(num_moves: int) -> str:
    """The benchmark stage of a position with ``num_moves`` stones played."""
    for name, (first, last) in STAGES.items():
        if first <= num_moves <= last:
            return name
    raise GameError(f"connect4 solver: no stage holds {num_moves} moves")


@dataclass(frozen=True, eq=False)
class BenchmarkPosition:
    """A position of the strength benchmark, with its answer key."""

    moves: tuple[int, ...]  # 0-based columns played from the empty board
    outcomes: np.ndarray  # int8[W]: move_outcomes, for the player to move

    @property
    def stage(self) -> str:
        return stage_of(len(self.moves))


def benchmark_positions(
    num_per_stage: int,
    seed: int = 0,
    width: int = 7,
    height: int = 6,
    *,
    min_moves: int = 8,
    solver_from: int = 12,
    solver: Solver | None = None,
) -> dict[str, list[BenchmarkPosition]]:
    """``num_per_stage`` positions for each stage of :data:`STAGES` from varied play, answered.

    Games from the empty board, each with its own randomness ``eps = u**2``, ``u`` uniform in
    [0, 1): at every move, with probability ``eps`` a uniformly random column; otherwise a good
    one: from ``solver_from`` moves on, a random one among the solver's best (preferring, among
    those, a win in one, and moves that do not lose at once: a lost side resists); before that
    (solving costs seconds a move there), a random move that wins at once, or else does not
    lose at once. So positions from careless and from expert play both come up. Each game
    gives at most one position to each stage still short: a random one of its positions in the
    stage, with at least ``min_moves`` moves played (on 7x6, positions with fewer than 8 moves
    take tens of seconds to answer, the first few minutes), that qualifies: it is new (a mirror
    image counts as seen), the player to move cannot win at once, and not all its legal moves
    have the same outcome (an error is possible). The same seed gives the same positions.

    Returns stage -> positions, in :data:`STAGES` order; stages the board is too small to reach
    are left out. Fewer than ``num_per_stage`` only on boards too small to have that many.
    """
    solver = solver or get_solver(width, height)
    if (solver.width, solver.height) != (width, height):
        raise GameError(
            f"connect4 solver: the solver is for {solver.width}x{solver.height}, not {width}x{height}"
        )
    if num_per_stage < 0:
        raise GameError(f"connect4 solver: num_per_stage must be >= 0, got {num_per_stage}")
    cells = width * height
    ranges = {}  # stage -> (first, last) numbers of moves played
    for name, (first, last) in STAGES.items():
        first, last = max(first, min_moves), min(last, cells - 2)  # one empty cell: no choice
        if first <= last:
            ranges[name] = (first, last)
    rng = np.random.default_rng(seed)
    buckets: dict[str, list[BenchmarkPosition]] = {name: [] for name in ranges}
    seen: set[int] = set()  # keys of the positions tried, and of their mirror images
    for _ in range(100 * (num_per_stage + 10)):  # bounds the search on boards too small
        short = [name for name in ranges if len(buckets[name]) < num_per_stage]
        if not short:
            break
        moves, positions = _varied_game(solver, rng, solver_from)
        for name in short:
            first, last = ranges[name]
            for ply in rng.permutation(np.arange(first, min(last, len(positions) - 1) + 1)):
                outcomes = _qualify(solver, *positions[ply], int(ply), seen)
                if outcomes is not None:
                    buckets[name].append(BenchmarkPosition(tuple(moves[:ply]), outcomes))
                    break
    return buckets


def _varied_game(solver: Solver, rng: np.random.Generator, solver_from: int):
    """One game of :func:`benchmark_positions`: its moves and ``positions[i] = (current, mask)``
    after ``i`` moves, for every position before the end."""
    width, height = solver.width, solver.height
    eps = rng.random() ** 2
    moves: list[int] = []
    positions = [(0, 0)]
    while True:
        current, mask = positions[-1]
        if rng.random() < eps:
            cols = solver._legal_columns(mask)
        elif len(moves) >= solver_from:
            outcomes = solver.move_outcomes_at(current, mask, len(moves))
            cols = np.flatnonzero(outcomes == outcomes.max())
            sensible = np.intersect1d(cols, solver._sensible_columns(current, mask))
            cols = sensible if len(sensible) else cols
        else:
            cols = solver._sensible_columns(current, mask)
        col = int(rng.choice(cols))
        moves.append(col)
        current, mask = current ^ mask, mask | (mask + (1 << (col * (height + 1))))
        if has_four(np.int64(current ^ mask), height) or len(moves) == width * height:
            return moves, positions
        positions.append((current, mask))


def _qualify(
    solver: Solver, current: int, mask: int, num_moves: int, seen: set[int]
) -> np.ndarray | None:
    """The position's outcomes if it may join the benchmark (see :func:`benchmark_positions`)."""
    key = current + mask
    if key in seen or solver._can_win_now(current, mask):
        return None
    seen.add(key)
    seen.add(_mirror_key(key, solver.width, solver.height))
    outcomes = solver.move_outcomes_at(current, mask, num_moves)
    legal = outcomes[outcomes != ILLEGAL]
    return outcomes if legal.min() < legal.max() else None


def _mirror_key(key: int, width: int, height: int) -> int:
    """The key (``current + mask``, column by column) of the left-right mirror image."""
    h1 = height + 1
    column = (1 << h1) - 1
    return sum(((key >> (c * h1)) & column) << ((width - 1 - c) * h1) for c in range(width))
