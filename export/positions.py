"""Real positions with their real masks, for verifying an export: every position of games
played by uniformly random moves from the start, as the model's inputs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["Positions", "sample_positions"]


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
    game in turn, games played by uniformly random legal moves (``numpy`` generator ``seed``)."""
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
    return Positions(np.stack(obs).astype(np.float32), np.stack(masks), np.stack(states).astype(np.int64))
