"""Real positions with their real masks, for verifying an export: every position of games
played by uniformly random moves from the start, as the model's inputs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Positions", "SEARCH_GAMES", "sample_positions"]

#: How many further random games :func:`sample_positions` plays to find a position with an
#: illegal action when its sample has none.
SEARCH_GAMES = 100


@dataclass(frozen=True)
class Positions:
    """``N`` non-terminal positions of one game, each as the brain's two inputs."""

    obs: np.ndarray  # float32[N, D], D = C*H*W: game.encode(state) flattened, from the player to move
    mask: np.ndarray  # float32[N, A]: 1.0 on legal actions
    states: np.ndarray  # int64[N, S]: the game states themselves

    def __len__(self) -> int:
        return int(self.obs.shape[0])


def sample_positions(game: Any, count: int = 1000, seed: int = 0) -> Positions:
    """``count`` positions from random games of ``game``: every non-terminal position of each
    game in turn, games played by uniformly random legal moves (``numpy`` generator ``seed``).

    The sample holds a position with an illegal action wherever random play reaches one, so a
    check of what a model does with masked actions has something to check: when the first
    ``count`` positions allow every action (a short sample of Connect Four's opening), the last
    is replaced by the first position with an illegal action of up to :data:`SEARCH_GAMES`
    further random games. A game where none has one keeps its sample as it is."""
    if count < 1:
        raise ValueError(f"sample_positions: count must be >= 1, got {count}")
    rng = np.random.default_rng(seed)
    obs, masks, states = [], [], []
    while len(obs) < count:
        state = game.initial_state()
        while not game.is_terminal(state) and len(obs) < count:
            mask = game.legal_mask(state)
            obs.append(game.encode(state).reshape(-1))
            masks.append(mask.astype(np.float32))
            states.append(state.copy())
            state = game.next_state(state, int(rng.choice(np.flatnonzero(mask))))
    if all(mask.all() for mask in masks):
        found = _position_with_illegal_action(game, rng)
        if found is not None:
            obs[-1], masks[-1], states[-1] = found
    return Positions(np.stack(obs).astype(np.float32), np.stack(masks), np.stack(states).astype(np.int64))


def _position_with_illegal_action(game: Any, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(obs [D], mask float32[A], state [S]) of the first non-terminal position with an illegal
    action in up to :data:`SEARCH_GAMES` random games played with ``rng``, or None."""
    for _ in range(SEARCH_GAMES):
        state = game.initial_state()
        while not game.is_terminal(state):
            mask = game.legal_mask(state)
            if not mask.all():
                return game.encode(state).reshape(-1), mask.astype(np.float32), state.copy()
            state = game.next_state(state, int(rng.choice(np.flatnonzero(mask))))
    return None
