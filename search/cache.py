"""An evaluation cache: a position the network has seen before costs a lookup, not an evaluation.

Self-play searches meet the same positions again and again: a transposition in the tree, a
position the previous move's search evaluated in a subtree the move threw away, the first plies
every game in the batch starts from. On Connect Four (the ``make train`` preset, 128 games per
actor) about one evaluation in five repeats one made earlier with the same network.

:class:`EvaluationCache` wraps any evaluator ``(obs, mask) -> (logits, value)``, answers the rows
it remembers and sends only the others (each once, even when a batch holds it twice) to the
network. It is a transposition table as chess engines keep one: ``capacity`` entries (a power of
two), each position stored at the entry its 64-bit hash picks, replacing what was there. The
hash covers the observation's and the legal-move mask's bytes, so a hit is what the network
returned for that very input (two different inputs share a 64-bit hash with probability about
``capacity / 2**64`` per lookup). Clear it when the network changes (:meth:`clear`). Threads may
share one: lookups and stores hold a lock, the network call does not.

Memory: ``capacity`` times (8 bytes of key, 4 per action, 4 of value): 10 MB for Connect Four's
default 262,144 entries. Hashing and lookup run in numba, about 0.1 microseconds a row.
"""

from __future__ import annotations

import threading
from typing import Callable

import numpy as np
from numba import njit

__all__ = ["EvaluationCache"]

_EMPTY = np.uint64(0)  # the key of an entry never written (a hash of 0 is stored as 1)


@njit(cache=True, nogil=True)
def _hash_rows(obs: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """uint64[N]: a hash of each row of ``obs`` (uint8[N, B]) and ``mask`` (uint8[N, A]), never 0.
    Eight bytes at a time into splitmix64's finalizer (Steele, Lea, Flood 2014)."""
    n = obs.shape[0]
    out = np.empty(n, np.uint64)
    m1, m2, gold = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB), np.uint64(0x9E3779B97F4A7C15)
    s30, s27, s31, s8 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(8)
    for i in range(n):
        h = gold
        for row in (obs[i], mask[i]):
            word = np.uint64(0)
            for j in range(row.shape[0]):
                word = (word << s8) | np.uint64(row[j])
                if j % 8 == 7 or j == row.shape[0] - 1:
                    z = h ^ word
                    z = (z ^ (z >> s30)) * m1
                    z = (z ^ (z >> s27)) * m2
                    h = (z ^ (z >> s31)) + gold
                    word = np.uint64(0)
        out[i] = h if h != _EMPTY else np.uint64(1)
    return out


@njit(cache=True, nogil=True)
def _find(keys: np.ndarray, hashes: np.ndarray) -> np.ndarray:
    """int64[N]: the entry holding each hash, -1 where the table does not hold it."""
    where = np.empty(hashes.size, np.int64)
    last = np.uint64(keys.size - 1)
    for i in range(hashes.size):
        entry = np.int64(hashes[i] & last)
        where[i] = entry if keys[entry] == hashes[i] else -1
    return where


@njit(cache=True, nogil=True)
def _store(keys: np.ndarray, logits: np.ndarray, values: np.ndarray, hashes: np.ndarray,
           new_logits: np.ndarray, new_values: np.ndarray) -> None:
    """Write each hash's outputs to the entry it picks, replacing what was there."""
    last = np.uint64(keys.size - 1)
    for i in range(hashes.size):
        entry = np.int64(hashes[i] & last)
        keys[entry] = hashes[i]
        logits[entry] = new_logits[i]
        values[entry] = new_values[i]


class EvaluationCache:
    """Remembers the network's outputs for up to ``capacity`` positions (rounded up to a power of
    two; see the module docstring).

    ``cache(obs, mask, evaluator)``: ``evaluator``'s answer for every row, calling it only for the
    rows not remembered. :meth:`wrap` gives the same as an evaluator callable.
    """

    def __init__(self, capacity: int) -> None:
        if not (isinstance(capacity, (int, np.integer)) and capacity >= 1):
            raise ValueError(f"EvaluationCache: capacity must be an integer >= 1, got {capacity!r}")
        self.capacity = 1 << (int(capacity) - 1).bit_length()
        self.lookups = 0  # rows asked for
        self.hits = 0  # ... answered from memory (a repeat within one batch counts as a hit)
        self._keys = np.zeros(self.capacity, np.uint64)  # [capacity] the hash stored in each entry, 0: none
        self._logits: np.ndarray | None = None  # float32[capacity, A], allocated at the first call
        self._values = np.zeros(self.capacity, np.float32)  # [capacity], the mover's view
        self._lock = threading.Lock()

    @classmethod
    def within(cls, max_bytes: int, num_actions: int, max_capacity: int = 1 << 20) -> "EvaluationCache":
        """The largest cache, up to ``max_capacity`` entries, whose table takes at most
        ``max_bytes`` for a game of ``num_actions`` moves (at least one entry)."""
        entry = 8 + 4 * num_actions + 4  # key, logits, value
        fits = min(int(max_bytes) // entry, int(max_capacity))
        return cls(1 << max(fits.bit_length() - 1, 0))

    def __len__(self) -> int:
        """Entries holding a position."""
        return int(np.count_nonzero(self._keys))

    def clear(self) -> None:
        """Forget every position (the network changed); the counters stay."""
        with self._lock:
            self._keys[:] = _EMPTY

    def wrap(self, evaluator: Callable) -> Callable:
        """``evaluator`` answered through this cache: ``(obs, mask) -> (logits, value)``."""
        return lambda obs, mask: self(obs, mask, evaluator)

    def __call__(self, obs: np.ndarray, mask: np.ndarray, evaluator: Callable) -> tuple[np.ndarray, np.ndarray]:
        """``(logits float32[N, A], value float32[N])`` for ``obs`` ``[N, ...]`` and ``mask`` ``bool[N, A]``."""
        n, num_actions = mask.shape
        hashes = _hash_rows(np.ascontiguousarray(obs).reshape(n, -1).view(np.uint8),
                            np.ascontiguousarray(mask).reshape(n, -1).view(np.uint8))  # [N]
        logits = np.empty((n, num_actions), np.float32)
        values = np.empty(n, np.float32)
        with self._lock:
            if self._logits is None or self._logits.shape[1] != num_actions:
                self._logits = np.zeros((self.capacity, num_actions), np.float32)
                self._keys[:] = _EMPTY
            where = _find(self._keys, hashes)  # [N]
            known = where >= 0
            logits[known], values[known] = self._logits[where[known]], self._values[where[known]]
        missing = np.flatnonzero(~known)  # [M] rows to evaluate, repeats among them once
        unique, first, inverse = np.unique(hashes[missing], return_index=True, return_inverse=True)
        with self._lock:
            self.lookups += n
            self.hits += n - unique.size
        if unique.size:
            rows = missing[first]  # [U] one row per new position
            new_logits, new_values = evaluator(obs[rows], mask[rows])
            new_logits = np.asarray(new_logits, np.float32).reshape(rows.size, num_actions)
            new_values = np.asarray(new_values, np.float32).reshape(rows.size)
            logits[missing], values[missing] = new_logits[inverse], new_values[inverse]
            with self._lock:
                _store(self._keys, self._logits, self._values, unique, new_logits, new_values)
        return logits, values
