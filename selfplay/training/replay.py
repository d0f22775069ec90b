"""The replay buffer: a ring of training positions, sampled with random board symmetries.

Each row is one position a self-play game visited:

* ``obs        float32[N, C, H, W]``: the game's ``encode``, from the player to move there;
* ``policy     float32[N, A]``: the search's action weights at that position (the policy target);
* ``value      float32[N]``: the game's final outcome **for the player to move there**, in [-1, 1];
* ``generation int64[N]``: a caller-chosen age stamp (the learner step or network generation
  that produced the game), so a learner can tell stale data from fresh.

New rows overwrite the oldest once ``capacity`` is reached. :meth:`ReplayBuffer.sample` draws
uniformly with replacement and, with ``augment``, passes each sample through a random symmetry
``k`` of the game, following the convention of ``games.core``::

    obs'    = obs.reshape(C, -1)[:, obs_perms[k]].reshape(C, H, W)
    policy' = policy[action_perms[k]]
    value'  = value                      (symmetries do not change who is winning)

:meth:`ReplayBuffer.save` writes an ``.npz`` of named arrays atomically; :meth:`ReplayBuffer.load`
reads it with ``allow_pickle=False`` and refuses a truncated or inconsistent file in one line.

Matching a checkpoint. ``total_added`` counts every row ever added, so it names a point in the
stream of rows. A checkpoint records it, and the file records it with ``step``, the checkpoint
step it was saved for (-1: none given). A file that is *ahead* of the checkpoint it is resumed
with (saved for a later checkpoint that never committed, or one found damaged) holds the
checkpoint's rows followed by newer ones: :meth:`ReplayBuffer.rewind` drops the newer ones.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from ..model.checkpoint import atomic_write

__all__ = ["ReplayBuffer", "ReplayError"]

FORMAT_VERSION = 1
#: Tolerance on a policy target's sum (targets are probability distributions).
POLICY_SUM_TOLERANCE = 1e-3


class ReplayError(ValueError):
    """Bad data for the replay buffer, or a replay file that cannot be read."""


def _check_perms(name: str, perms: np.ndarray | None, width: int) -> np.ndarray:
    """``int64[K, width]``, each row a permutation of ``range(width)``; identity alone if None."""
    if perms is None:
        return np.arange(width, dtype=np.int64)[None, :]
    perms = np.asarray(perms)
    if perms.ndim != 2 or perms.shape[1] != width or perms.shape[0] < 1:
        raise ReplayError(f"{name} must be [K, {width}], got shape {list(perms.shape)}")
    if not np.issubdtype(perms.dtype, np.integer) or not (np.sort(perms, axis=1) == np.arange(width)).all():
        raise ReplayError(f"every row of {name} must be a permutation of 0..{width - 1}")
    return perms.astype(np.int64)


class ReplayBuffer:
    """Ring buffer of (observation, policy target, value target, generation) rows.

    ``obs_perms int64[K, H*W]`` and ``action_perms int64[K, A]`` are the game's symmetry tables
    (``Game.obs_perms``, ``Game.action_perms``); leave both None for a game without symmetries.
    ``game`` is an optional label (the version tag) checked by :meth:`load`.
    """

    def __init__(
        self,
        capacity: int,
        obs_shape: tuple[int, int, int],
        num_actions: int,
        obs_perms: np.ndarray | None = None,
        action_perms: np.ndarray | None = None,
        game: str = "",
    ) -> None:
        if isinstance(capacity, bool) or not isinstance(capacity, (int, np.integer)) or capacity < 1:
            raise ReplayError(f"replay capacity must be a positive integer, got {capacity!r}")
        obs_shape = tuple(int(d) for d in obs_shape)
        if len(obs_shape) != 3 or min(obs_shape) < 1:
            raise ReplayError(f"observation shape must be three positive integers (C, H, W), got {obs_shape}")
        if int(num_actions) < 1:
            raise ReplayError(f"number of actions must be positive, got {num_actions}")
        if (obs_perms is None) != (action_perms is None):
            raise ReplayError("give both obs_perms and action_perms, or neither")
        self.capacity = int(capacity)
        self.obs_shape: tuple[int, int, int] = obs_shape  # (C, H, W)
        self.num_actions = int(num_actions)  # A
        self.game = str(game)
        self.obs_perms = _check_perms("obs_perms", obs_perms, obs_shape[1] * obs_shape[2])  # [K, H*W]
        self.action_perms = _check_perms("action_perms", action_perms, self.num_actions)  # [K, A]
        if self.obs_perms.shape[0] != self.action_perms.shape[0]:
            raise ReplayError(
                f"obs_perms has {self.obs_perms.shape[0]} symmetries but action_perms {self.action_perms.shape[0]}"
            )
        self.obs = np.zeros((self.capacity, *obs_shape), dtype=np.float32)  # [N, C, H, W]
        self.policy = np.zeros((self.capacity, self.num_actions), dtype=np.float32)  # [N, A]
        self.value = np.zeros(self.capacity, dtype=np.float32)  # [N], for the player to move
        self.generation = np.zeros(self.capacity, dtype=np.int64)  # [N]
        self.size = 0  # rows filled, <= capacity
        self.cursor = 0  # next row to write; the oldest row once full
        self.total_added = 0  # rows ever added, including overwritten ones
        self.saved_step = -1  # the checkpoint step of the file this buffer was loaded from (-1: none)

    @classmethod
    def for_game(cls, game, capacity: int) -> "ReplayBuffer":
        """A buffer shaped for a ``games.Game``, with its symmetries and version tag."""
        return cls(capacity, game.obs_shape, game.num_actions, game.obs_perms, game.action_perms, game.version_tag)

    @property
    def num_symmetries(self) -> int:
        return int(self.action_perms.shape[0])

    def __len__(self) -> int:
        return self.size

    def __repr__(self) -> str:
        label = f"{self.game}, " if self.game else ""
        return f"ReplayBuffer({label}{self.size}/{self.capacity} rows, {self.total_added} added)"

    # ------------------------------------------------------------------ writing
    def add(self, obs: np.ndarray, policy: np.ndarray, value: np.ndarray, generation: int = 0) -> None:
        """Append ``n`` rows: ``obs [n, C, H, W]``, ``policy [n, A]`` (each row a distribution),
        ``value [n]`` in [-1, 1] from the player to move. Checks them all before writing any."""
        obs = np.asarray(obs, dtype=np.float32)
        policy = np.asarray(policy, dtype=np.float32)
        value = np.asarray(value, dtype=np.float32)
        n = obs.shape[0] if obs.ndim == 4 else -1
        if obs.shape != (n, *self.obs_shape):
            raise ReplayError(f"obs must be [n, {', '.join(map(str, self.obs_shape))}], got {list(obs.shape)}")
        if policy.shape != (n, self.num_actions):
            raise ReplayError(f"policy must be [{n}, {self.num_actions}], got {list(policy.shape)}")
        if value.shape != (n,):
            raise ReplayError(f"value must be [{n}], got {list(value.shape)}")
        if not (np.isfinite(obs).all() and np.isfinite(policy).all() and np.isfinite(value).all()):
            raise ReplayError("replay rows must be finite (NaN or inf found)")
        if (policy < 0).any() or (np.abs(policy.sum(axis=1) - 1) > POLICY_SUM_TOLERANCE).any():
            raise ReplayError("every policy target must be a probability distribution (>= 0, summing to 1)")
        if (np.abs(value) > 1).any():
            raise ReplayError("value targets must lie in [-1, 1]")
        if n > self.capacity:  # only the newest rows would survive anyway
            obs, policy, value = obs[-self.capacity :], policy[-self.capacity :], value[-self.capacity :]
            self.total_added += n - self.capacity
            n = self.capacity
        rows = (self.cursor + np.arange(n)) % self.capacity
        self.obs[rows] = obs
        self.policy[rows] = policy
        self.value[rows] = value
        self.generation[rows] = generation
        self.cursor = int((self.cursor + n) % self.capacity)
        self.size = min(self.size + n, self.capacity)
        self.total_added += n

    # ------------------------------------------------------------------ reading
    def oldest_first(self) -> np.ndarray:
        """``int64[size]`` row indices, oldest first."""
        start = self.cursor if self.size == self.capacity else 0
        return (start + np.arange(self.size)) % self.capacity

    def sample(
        self, batch: int, rng: np.random.Generator, augment: bool = True
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``batch`` rows drawn uniformly with replacement, each through a random symmetry when
        ``augment``: (``obs float32[B, C, H, W]``, ``policy float32[B, A]``, ``value float32[B]``),
        fresh arrays the caller may keep."""
        if self.size == 0:
            raise ReplayError("cannot sample from an empty replay buffer")
        rows = rng.integers(0, self.size, size=batch)
        obs, policy, value = self.obs[rows], self.policy[rows], self.value[rows]
        if not augment or self.num_symmetries == 1:
            return obs, policy, value
        ks = rng.integers(0, self.num_symmetries, size=batch)
        channels = self.obs_shape[0]
        flat = obs.reshape(batch, channels, -1)
        obs = np.take_along_axis(flat, self.obs_perms[ks][:, None, :], axis=2).reshape(obs.shape)
        policy = np.take_along_axis(policy, self.action_perms[ks], axis=1)
        return obs, policy, value

    def rewind(self, total_added: int) -> int:
        """Drop the newest rows until ``total_added`` rows have ever been added: the buffer as it
        was at that point, less any older rows the dropped ones had overwritten (a full ring).
        Returns the number of rows dropped; nothing changes when the buffer is not ahead."""
        ahead = self.total_added - int(total_added)
        if ahead <= 0:
            return 0
        keep = self.oldest_first()[: max(self.size - ahead, 0)]
        obs, policy, value, generation = self.obs[keep], self.policy[keep], self.value[keep], self.generation[keep]
        k = keep.size
        self.obs[:k], self.policy[:k], self.value[:k], self.generation[:k] = obs, policy, value, generation
        dropped = self.size - k
        self.size, self.cursor, self.total_added = k, k % self.capacity, int(total_added)
        return dropped

    # ------------------------------------------------------------------ files
    def save(self, path: str | os.PathLike, step: int = -1) -> None:
        """Write the filled rows, oldest first, to ``path`` (``.npz``) atomically; ``step`` is
        the checkpoint the file goes with (-1: none)."""
        order = self.oldest_first()
        arrays = {
            "format_version": np.int64(FORMAT_VERSION),
            "game": np.str_(self.game),
            "capacity": np.int64(self.capacity),
            "total_added": np.int64(self.total_added),
            "step": np.int64(step),
            "obs": self.obs[order],
            "policy": self.policy[order],
            "value": self.value[order],
            "generation": self.generation[order],
            "obs_perms": self.obs_perms,
            "action_perms": self.action_perms,
        }
        with atomic_write(path) as f:
            np.savez(f, **arrays)

    @classmethod
    def load(
        cls, path: str | os.PathLike, capacity: int | None = None, expect_game: str | None = None
    ) -> "ReplayBuffer":
        """A buffer read from a :meth:`save` file. ``capacity`` overrides the saved one (a
        smaller one keeps the newest rows); ``expect_game`` refuses a file of another game."""
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as npz:
                fields = {k: npz[k] for k in npz.files}  # reads every member: zip CRCs are checked
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
            raise ReplayError(f"{path.name}: not a readable replay file ({type(e).__name__}: {e})") from None
        needed = ("format_version", "game", "capacity", "total_added", "obs", "policy", "value", "generation")
        missing = [k for k in needed + ("obs_perms", "action_perms") if k not in fields]
        if missing:
            raise ReplayError(f"{path.name}: not a replay file (missing {', '.join(missing)})")
        if int(fields["format_version"]) != FORMAT_VERSION:
            version = int(fields["format_version"])
            raise ReplayError(f"{path.name}: format version {version}, this code reads {FORMAT_VERSION}")
        game = str(fields["game"])
        if expect_game is not None and game != expect_game:
            raise ReplayError(f"{path.name}: replay data is for {game or 'an unnamed game'}, expected {expect_game}")
        obs, policy, value, generation = fields["obs"], fields["policy"], fields["value"], fields["generation"]
        n = obs.shape[0]
        if obs.ndim != 4 or policy.ndim != 2 or policy.shape[0] != n or value.shape != (n,) or generation.shape != (n,):
            raise ReplayError(f"{path.name}: arrays of inconsistent shapes")
        buffer = cls(
            int(capacity if capacity is not None else fields["capacity"]),
            obs.shape[1:],
            policy.shape[1],
            fields["obs_perms"],
            fields["action_perms"],
            game,
        )
        keep = min(n, buffer.capacity)
        buffer.obs[:keep] = obs[n - keep :]
        buffer.policy[:keep] = policy[n - keep :]
        buffer.value[:keep] = value[n - keep :]
        buffer.generation[:keep] = generation[n - keep :]
        buffer.size = keep
        buffer.cursor = keep % buffer.capacity
        buffer.total_added = int(fields["total_added"])
        buffer.saved_step = int(fields["step"]) if "step" in fields else -1  # files before the field: -1
        return buffer
