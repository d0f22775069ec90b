"""A tiny counter-free PRNG for numba kernels: explicit state, no global random state.

``rng`` is a ``uint64[1]`` array (xorshift64*): pass it in, it advances in place. Seed it with
:func:`make_rng`; the same seed gives the same stream on every platform.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["make_rng", "next_u64", "rand_below", "rand_float"]


def make_rng(seed: int) -> np.ndarray:
    """``uint64[1]`` generator state from any integer seed (splitmix64 scrambled, never 0)."""
    z = (int(seed) + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    z ^= z >> 31
    return np.array([z or 1], dtype=np.uint64)


@njit(cache=True, inline="always")
def next_u64(rng):
    x = rng[0]
    x ^= x >> np.uint64(12)
    x ^= x << np.uint64(25)
    x ^= x >> np.uint64(27)
    rng[0] = x
    return x * np.uint64(0x2545F4914F6CDD1D)


@njit(cache=True, inline="always")
def rand_below(rng, n):
    """Uniform integer in [0, n) (n >= 1; bias below 2**-32 for the n used here)."""
    return np.int64((next_u64(rng) >> np.uint64(32)) * np.uint64(n) >> np.uint64(32))


@njit(cache=True, inline="always")
def rand_float(rng):
    """Uniform float in [0, 1)."""
    return np.float64(next_u64(rng) >> np.uint64(11)) * (1.0 / 9007199254740992.0)
