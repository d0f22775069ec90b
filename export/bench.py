"""How fast a brain runs on this machine, with onnxruntime in Python: ``selfplay bench brain PATH``.

Latency is what one NPC decision costs (batch 1: one ``session.run`` on one position); throughput
what a batch of 64 positions gets through. Both on real positions of the brain's game, one
onnxruntime thread unless asked otherwise, graph optimisations on (as :class:`Brain` runs).
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np

from .positions import sample_positions
from .runtime import Brain

__all__ = ["bench_brain"]


def bench_brain(path: str, batches: Sequence[int] = (1, 64), seconds: float = 1.0, threads: int = 1) -> dict[str, Any]:
    """``{"brain", "game", "threads", "batches": {B: {"median_ms", "p90_ms", "positions_per_s"}}}``
    for each batch size ``B``: per-call times of ``brain.run`` over ``seconds`` each, after a
    warm-up, cycling through 1024 real positions."""
    brain = Brain.load(path, threads=threads)
    positions = sample_positions(brain.game(), 1024, seed=0)
    results: dict[str, Any] = {}
    for batch in batches:
        starts = range(0, len(positions) - batch + 1, batch)
        chunks = [(positions.obs[s : s + batch], positions.mask[s : s + batch]) for s in starts]
        for obs, mask in chunks[:20]:  # warm-up
            brain.run(obs, mask)
        times = []
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline or len(times) < 50:
            obs, mask = chunks[len(times) % len(chunks)]
            start = time.perf_counter()
            brain.run(obs, mask)
            times.append(time.perf_counter() - start)
        times_ms = np.array(times) * 1e3
        results[str(batch)] = {
            "median_ms": round(float(np.median(times_ms)), 4),
            "p90_ms": round(float(np.percentile(times_ms, 90)), 4),
            "positions_per_s": round(batch / float(np.median(times)), 1),
            "calls": len(times),
        }
    return {
        "brain": str(brain.path),
        "game": brain.manifest.game["tag"],
        "network": brain.manifest.network,
        "threads": threads,
        "batches": results,
    }
