"""Random playouts over any game's kernels: the native speed benchmark and rollout evaluator."""

from __future__ import annotations

import numpy as np
from numba import njit, types

from .core import KERNEL_TYPES, Game
from .rng import make_rng, rand_below

__all__ = ["random_legal_action", "random_playout_value", "random_playouts"]

@njit(cache=True, inline="always")
def random_legal_action(mask, rng):
    """A uniformly random index among the True entries of ``mask`` (``bool[A]``, not all False)."""
    n = 0
    for a in range(mask.shape[0]):
        n += mask[a]
    pick = rand_below(rng, n)
    for a in range(mask.shape[0]):
        if mask[a]:
            if pick == 0:
                return a
            pick -= 1
    return -1


_ARGS = (*KERNEL_TYPES, types.int64[::1], types.int64[::1], types.boolean[::1], types.uint64[::1])


@njit(types.float64(*_ARGS, types.int64), cache=True)
def random_playout_value(
    legal_mask, apply_action, is_terminal, outcome, to_play, encode, params, state, mask, rng, player
):
    """Play uniformly random legal moves from ``state`` (modified in place) to the end.

    Returns the final outcome for ``player``. ``mask``: scratch ``bool[A]``; ``rng``: ``uint64[1]``.
    """
    while not is_terminal(params, state):
        legal_mask(params, state, mask)
        apply_action(params, state, random_legal_action(mask, rng))
    return outcome(params, state, player)


@njit(types.int64(*_ARGS, types.int64), cache=True)
def _playouts(
    legal_mask, apply_action, is_terminal, outcome, to_play, encode, params, start, mask, rng, games
):
    steps = 0
    state = start.copy()
    for _ in range(games):
        for i in range(start.shape[0]):  # a loop: `state[:] = start` compiles ~3 s of error-message code
            state[i] = start[i]
        while not is_terminal(params, state):
            legal_mask(params, state, mask)
            apply_action(params, state, random_legal_action(mask, rng))
            steps += 1
    return steps


def random_playouts(game: Game, num_games: int, seed: int = 0, state: np.ndarray | None = None) -> int:
    """Play ``num_games`` uniformly random games from ``state`` (default: the start); return the
    number of actions played."""
    start = game.initial_state() if state is None else state
    mask = np.zeros(game.num_actions, dtype=np.bool_)
    return int(_playouts(*game.kernels, game.params, start, mask, make_rng(seed), num_games))
