"""A modeled accelerator for benchmarks: a GPU running a given network, with no GPU.

GPUs are lent to this project only now and then, so the self-play pipeline is measured against a
*model* of one (``selfplay bench pipeline --device-model h200-128x10``). A :class:`DeviceModel`
answers a batch of ``B`` leaves after the time its :class:`LatencyTable` gives for ``B``,
sleeping rather than computing, and returns uniform priors (logits 0) and value 0 for every leaf.
The CPU work around it (the tree search, the copies, the inter-process messages) is real; only
the network's arithmetic is replaced by its measured duration.

One batch at a time per device. Every process that holds the same :class:`DeviceModel` (it is
handed to child processes when they are spawned) shares one timeline in shared memory::

    launch(B):  start = max(now, free_at);  free_at = start + table.seconds(B);  busy += table.seconds(B)
    wait(end):  sleep until end

so batches from several processes queue on the device one after another, as calls from one
CUDA context do. Separate processes on a real GPU do no better than this (time slicing between
contexts); they may do worse. The latency of a batch is what ``selfplay bench net`` measured for
the whole evaluator call, host copies included: a conservative model where a server overlaps its
copies with the device's work.

Tables (:data:`TABLES`) come from docs/gpu.md, "On a GPU" (evaluations/s at each batch
size). A table may hold several inference paths (fp32, bf16); a batch takes the faster, as the
inference server does (:class:`selfplay.training.inference_backends.TorchBackend` picks bf16 from
``bf16_from`` leaves on). Between measured batch sizes the latency is interpolated linearly in
``B``; below the smallest it stays the smallest's (a small call is bound by launches, not
arithmetic); above the largest it grows at the largest's rate.

This module imports neither torch nor numba.
"""

from __future__ import annotations

import multiprocessing
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["DeviceModel", "LatencyTable", "TABLES", "TRAIN_STEP_FORWARDS", "device_model"]

#: A training step (forward, backward, optimizer) as a multiple of a forward pass at the same
#: batch: an estimate (a backward pass costs about two forwards), not a measurement.
TRAIN_STEP_FORWARDS = 3.0


@dataclass(frozen=True)
class LatencyTable:
    """Measured evaluations/s of one network on one device, by batch size, per inference path."""

    name: str  # e.g. "h200-128x10"
    rates: dict  # path -> {batch: evaluations/s}, e.g. {"bf16": {64: 30e3, ...}, "fp32": {...}}
    source: str = ""  # where the figures come from

    def __post_init__(self) -> None:
        if not self.rates or any(not table for table in self.rates.values()):
            raise ValueError(f"latency table {self.name!r}: no measurements")
        for path, table in self.rates.items():
            if any(b < 1 or r <= 0 for b, r in table.items()):
                raise ValueError(f"latency table {self.name!r}, {path}: batches and rates must be positive")

    def path_seconds(self, path: str, batch: int) -> float:
        """Seconds for one call of ``batch`` leaves along ``path``."""
        table = self.rates[path]
        sizes = np.array(sorted(table), np.float64)  # [K]
        latency = sizes / np.array([table[int(b)] for b in sizes])  # [K] seconds per call
        if batch >= sizes[-1]:
            return float(latency[-1] * batch / sizes[-1])
        return float(np.interp(batch, sizes, latency))  # flat below the smallest size

    def seconds(self, batch: int) -> float:
        """Seconds for one call of ``batch`` leaves, along the fastest path for that batch."""
        return min(self.path_seconds(path, batch) for path in self.rates)

    def path_for(self, batch: int) -> str:
        """The fastest path at ``batch``."""
        return min(self.rates, key=lambda path: self.path_seconds(path, batch))

    def rate(self, batch: int) -> float:
        """Evaluations/s of back-to-back calls of ``batch`` leaves."""
        return batch / self.seconds(batch)


_H200_DOC = "docs/gpu.md, 'On a GPU': selfplay bench net on one H200 (torch 2.11, CUDA 13)"
_H200_128X10 = {
    "fp32": {64: 36e3, 256: 143e3, 1024: 256e3, 4096: 290e3, 16384: 306e3},
    "bf16": {64: 30e3, 256: 114e3, 1024: 466e3, 4096: 1.05e6, 16384: 1.27e6},
}
_H200_32X3 = {"bf16": {64: 61e3, 256: 232e3, 1024: 881e3, 4096: 3.0e6}}
# The H100: docs hold one figure, 1.0M evaluations/s bf16 for 128x10 at batch 4096 and above,
# against the H200's 1.05M. The H100 tables are the H200's with every rate at batch >= 4096
# scaled by 1.0 / 1.05 (the same GH100 chip with slower memory: large batches slow down, small
# ones are bound by launches and copies, which do not change).
_H100_SCALE = 1.0 / 1.05


def _h100(rates: dict) -> dict:
    return {path: {b: r * (_H100_SCALE if b >= 4096 else 1.0) for b, r in table.items()} for path, table in rates.items()}


_H100_DOC = "the H200's table, rates at batch >= 4096 scaled by 1.0/1.05 (docs/gpu.md: an H100 does 1.0M/s bf16 at 4096+)"

#: The shipped tables, by name: DEVICE-NETWORK; ``null`` answers at once (what the CPU alone can feed).
TABLES = {
    "null": LatencyTable("null", {"none": {1: 1e15}}, "no device time: the pipeline's CPU bound"),
    "h200-128x10": LatencyTable("h200-128x10", _H200_128X10, _H200_DOC),
    "h200-32x3": LatencyTable("h200-32x3", _H200_32X3, _H200_DOC + "; bf16 only"),
    "h100-128x10": LatencyTable("h100-128x10", _h100(_H200_128X10), _H100_DOC),
    "h100-32x3": LatencyTable("h100-32x3", _h100(_H200_32X3), _H100_DOC + "; bf16 only"),
}

# the shared timeline: seconds on time.monotonic(), and counters
_FREE_AT, _BUSY, _BATCHES, _LEAVES, _TRAIN_BUSY = range(5)


@dataclass
class DeviceModel:
    """One modeled device running the network of ``table``, shared by every process it is handed
    to at spawn (its timeline lives in shared memory). Use :func:`device_model` to make one."""

    table: LatencyTable
    _shared: Any = field(repr=False)  # multiprocessing RawArray('d', 5): the timeline and counters
    _lock: Any = field(repr=False)  # multiprocessing Lock

    # ------------------------------------------------------------------ the device
    def launch(self, batch: int, learning: bool = False) -> float:
        """Queue a call of ``batch`` leaves (``learning``: an optimizer step on ``batch``
        positions instead); returns the monotonic time at which it is done."""
        seconds = self.table.seconds(batch) * (TRAIN_STEP_FORWARDS if learning else 1.0)
        with self._lock:
            start = max(time.monotonic(), self._shared[_FREE_AT])
            self._shared[_FREE_AT] = start + seconds
            self._shared[_BUSY] += seconds
            if learning:
                self._shared[_TRAIN_BUSY] += seconds
            else:
                self._shared[_BATCHES] += 1
                self._shared[_LEAVES] += batch
        return start + seconds

    @staticmethod
    def wait(done_at: float) -> None:
        """Block until ``done_at`` (a time :meth:`launch` returned)."""
        left = done_at - time.monotonic()
        if left > 0:
            time.sleep(left)

    def train_step(self, batch: int) -> None:
        """One optimizer step on ``batch`` positions: :data:`TRAIN_STEP_FORWARDS` forwards' time."""
        self.wait(self.launch(batch, learning=True))

    # ------------------------------------------------------------------ as an evaluator
    def __call__(self, obs: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A search evaluator: uniform priors and value 0, after the device's time for the batch."""
        self.wait(self.launch(mask.shape[0]))
        return np.zeros(mask.shape, np.float32), np.zeros(mask.shape[0], np.float32)

    # ------------------------------------------------------------------ counters
    def counters(self) -> dict[str, float]:
        """Totals so far: ``busy_s`` (inference and learning), ``train_busy_s``, ``batches``
        (inference calls), ``leaves``, and ``at`` (now, monotonic)."""
        with self._lock:
            values = list(self._shared)
        return {"busy_s": values[_BUSY], "train_busy_s": values[_TRAIN_BUSY], "batches": values[_BATCHES],
                "leaves": values[_LEAVES], "at": time.monotonic()}

    @staticmethod
    def between(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        """The device's work between two :meth:`counters` readings: busy fraction, evaluations/s,
        mean batch."""
        wall = max(after["at"] - before["at"], 1e-9)
        batches = after["batches"] - before["batches"]
        leaves = after["leaves"] - before["leaves"]
        return {
            "seconds": wall,
            "busy_fraction": (after["busy_s"] - before["busy_s"]) / wall,
            "train_busy_fraction": (after["train_busy_s"] - before["train_busy_s"]) / wall,
            "evals_per_s": leaves / wall,
            "batches": batches,
            "mean_batch": leaves / batches if batches else float("nan"),
        }


def device_model(name: str | LatencyTable) -> DeviceModel:
    """A fresh modeled device (idle, counters at 0) for table ``name`` (a key of :data:`TABLES`)."""
    if isinstance(name, LatencyTable):
        table = name
    elif name in TABLES:
        table = TABLES[name]
    else:
        raise ValueError(f"unknown device model {name!r}; choose from {', '.join(TABLES)}")
    context = multiprocessing.get_context("spawn")
    return DeviceModel(table, context.RawArray("d", 5), context.Lock())
