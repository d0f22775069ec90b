"""Move-path enumeration over any game's kernels, for correctness counts ("perft")."""

from __future__ import annotations

import numpy as np
from numba import njit, types

from .core import KERNEL_TYPES, Game

__all__ = ["perft", "count_games", "distinct_positions"]


@njit(types.int64(*KERNEL_TYPES, types.int64[::1], types.int64[::1], types.int64, types.int64), cache=True)
def _count(legal_mask, apply_action, is_terminal, outcome, to_play, encode, params, state, depth, num_actions):
    """Action sequences of exactly ``depth`` actions from ``state`` (games that end earlier do not
    count); with ``depth < 0``, complete games (action sequences to a terminal state)."""
    if depth == 0:
        return 1
    if is_terminal(params, state):
        return 1 if depth < 0 else 0
    mask = np.zeros(num_actions, dtype=np.bool_)
    legal_mask(params, state, mask)
    total = 0
    child = state.copy()
    for a in range(num_actions):
        if mask[a]:
            child[:] = state
            apply_action(params, child, a)
            total += _count(
                legal_mask, apply_action, is_terminal, outcome, to_play, encode, params, child, depth - 1, num_actions
            )
    return total


@njit(cache=True)
def _children(legal_mask, apply_action, is_terminal, params, states, num_actions):
    """All children of the non-terminal rows of ``states`` (int64[N, S]) -> int64[M, S]."""
    mask = np.zeros(num_actions, dtype=np.bool_)
    count = 0
    for i in range(states.shape[0]):
        if not is_terminal(params, states[i]):
            legal_mask(params, states[i], mask)
            count += mask.sum()
    out = np.empty((count, states.shape[1]), dtype=np.int64)
    j = 0
    for i in range(states.shape[0]):
        if not is_terminal(params, states[i]):
            legal_mask(params, states[i], mask)
            for a in range(num_actions):
                if mask[a]:
                    out[j] = states[i]
                    apply_action(params, out[j], a)
                    j += 1
    return out


def perft(game: Game, depth: int, state: np.ndarray | None = None) -> int:
    """Number of action sequences of exactly ``depth`` actions from ``state`` (games that end
    earlier are not counted; a pass is an action)."""
    start = game.initial_state() if state is None else state
    return int(_count(*game.kernels, game.params, start, depth, game.num_actions))


def count_games(game: Game, state: np.ndarray | None = None) -> int:
    """Number of distinct complete games (action sequences to a terminal state)."""
    start = game.initial_state() if state is None else state
    return int(_count(*game.kernels, game.params, start, -1, game.num_actions))


def distinct_positions(game: Game, max_depth: int) -> list[int]:
    """Distinct positions reachable after exactly 0..max_depth actions.

    Positions are told apart by the state array; a game's state must therefore hold nothing
    but the position (no move history) for these counts to be the textbook ones. Terminal
    positions count at their depth and are not expanded.
    """
    level = game.initial_state()[None, :]
    counts = [1]
    legal, apply, terminal = game.legal_mask_fn, game.apply_action_fn, game.is_terminal_fn
    for _ in range(max_depth):
        level = np.unique(_children(legal, apply, terminal, game.params, level, game.num_actions), axis=0)
        counts.append(len(level))
    return counts
