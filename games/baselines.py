"""Game-independent baseline policies over any game's kernels: uniform random and one-ply greedy.

``greedy``: play a move that wins at once; otherwise avoid moves after which the next player,
if an opponent, can win at once; choose uniformly among what is left. It never special-cases a
game and is right for non-alternating turn orders (it asks ``to_play`` after each move).
"""

from __future__ import annotations

import numpy as np
from numba import njit, types

from .core import KERNEL_TYPES, Game
from .playout import random_legal_action
from .rng import make_rng

__all__ = ["greedy_action", "random_action"]

_SIG = types.int64(*KERNEL_TYPES, types.int64[::1], types.int64[::1], types.uint64[::1], types.int64)


@njit(types.boolean(*KERNEL_TYPES, types.int64[::1], types.int64[::1], types.int64), cache=True)
def _can_win_now(legal_mask, apply_action, is_terminal, outcome, to_play, encode, params, state, num_actions):
    """Whether the player to move in ``state`` has a move that ends the game in their favour."""
    player = to_play(params, state)
    mask = np.zeros(num_actions, dtype=np.bool_)
    legal_mask(params, state, mask)
    child = state.copy()
    for a in range(num_actions):
        if mask[a]:
            child[:] = state
            apply_action(params, child, a)
            if is_terminal(params, child) and outcome(params, child, player) > 0:
                return True
    return False


@njit(_SIG, cache=True)
def _greedy(legal_mask, apply_action, is_terminal, outcome, to_play, encode, params, state, rng, num_actions):
    player = to_play(params, state)
    mask = np.zeros(num_actions, dtype=np.bool_)
    legal_mask(params, state, mask)
    safe = np.zeros(num_actions, dtype=np.bool_)
    child = state.copy()
    any_safe = False
    for a in range(num_actions):
        if not mask[a]:
            continue
        child[:] = state
        apply_action(params, child, a)
        if is_terminal(params, child):
            if outcome(params, child, player) > 0:
                return a
            safe[a] = outcome(params, child, player) == 0
        elif to_play(params, child) == player or not _can_win_now(
            legal_mask, apply_action, is_terminal, outcome, to_play, encode, params, child, num_actions
        ):
            safe[a] = True
        any_safe |= safe[a]
    return random_legal_action(safe if any_safe else mask, rng)


def greedy_action(game: Game, state: np.ndarray, rng: np.ndarray) -> int:
    """One-ply greedy move for the player to move; ``rng``: ``games.rng.make_rng(seed)``."""
    return int(_greedy(*game.kernels, game.params, state, rng, game.num_actions))


def random_action(game: Game, state: np.ndarray, rng: np.ndarray) -> int:
    """A uniformly random legal move."""
    return int(random_legal_action(game.legal_mask(state), rng))
