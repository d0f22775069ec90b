"""The learner's batches, sampled ahead on a thread (into pinned memory on CUDA).

On a GPU the learner's step is a few milliseconds of device work, and sampling and augmenting a
batch with numpy (fancy indexing of the replay buffer, a symmetry per row) is a millisecond or two
of CPU work before each step. :func:`prefetched` moves that work off the critical path: a thread
samples the next batches while the current one trains, copies them into page-locked (pinned)
memory, so that ``tensor.to("cuda", non_blocking=True)`` is a true asynchronous copy, and hands
them over in order::

    with prefetched(buffer, steps, device) as source:
        learner.train_steps(source, steps, rng, ...)     # source.sample(...) pops the next batch

``source.sample`` takes the learner's arguments as they are: the first call samples in the
calling thread and tells the thread what to sample next (the same arguments, the same generator),
so the batches, and the generator's state after all ``steps`` are taken, are those of the serial
loop. Nothing else
may draw from that generator or write to the buffer until the block ends (the trainer adds
positions only between learning calls). Pinned slots are reused only after the device has copied
them: each batch's slot is released by a CUDA event recorded when the batch after it is taken.

On the CPU (no pinned memory, and the learner's threads already use every core) it hands over the
buffer itself.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from typing import Any, Iterator

import numpy as np

__all__ = ["prefetched"]

DEPTH = 2  # batches sampled ahead


@contextlib.contextmanager
def prefetched(buffer: Any, steps: int, device: str = "cpu", depth: int = DEPTH, pin: bool | None = None) -> Iterator[Any]:
    """A stand-in for ``buffer`` whose ``sample`` returns batches sampled ahead on a thread, for
    up to ``steps`` calls; ``buffer`` itself on the CPU (unless ``pin`` is False: a thread,
    no pinned memory; for tests and benchmarks)."""
    cuda = str(device).startswith("cuda")
    if steps <= 1 or (not cuda and pin is None):
        yield buffer
        return
    source = _Prefetcher(buffer, steps, depth, pin=cuda if pin is None else pin)
    try:
        yield source
    finally:
        source.close()


class _Prefetcher:
    def __init__(self, buffer: Any, steps: int, depth: int, pin: bool) -> None:
        self.buffer, self.steps, self.depth, self.pin = buffer, steps, depth, pin
        self.ready: queue.Queue = queue.Queue(maxsize=depth)
        self.free: queue.Queue = queue.Queue()  # slots whose batch the device has copied
        self.slots: list[list[np.ndarray]] = []  # [depth + 2] pinned arrays, one per field
        self.events: list[Any] = []  # CUDA event per slot: recorded when the batch after it was taken
        self.taken = 0  # batches handed out
        self.last_slot = -1
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def sample(self, *args: Any, **kwargs: Any) -> tuple:
        if self.thread is None:  # the first batch: sampled here; the rest on the thread, with the same arguments
            self.taken = 1
            first = self.buffer.sample(*args, **kwargs)
            self.thread = threading.Thread(target=self._run, args=(args, kwargs), name="selfplay-prefetch", daemon=True)
            self.thread.start()
            return first
        if self.last_slot >= 0:
            self._release(self.last_slot)
        while True:
            try:
                item = self.ready.get(timeout=1.0)
                break
            except queue.Empty:
                if not self.thread.is_alive():
                    raise RuntimeError("the learner's prefetch thread stopped") from self.error
        if isinstance(item, BaseException):
            raise item
        slot, batch = item
        self.last_slot = slot
        self.taken += 1
        return batch

    def _release(self, slot: int) -> None:
        """The batch in ``slot`` has had its copies queued: free it once the device has run them."""
        if self.pin:
            import torch

            self.events[slot].record(torch.cuda.current_stream())
        self.free.put(slot)

    def _run(self, args: tuple, kwargs: dict) -> None:
        try:
            for _ in range(self.steps - 1):
                if self.stop.is_set():
                    return
                batch = self.buffer.sample(*args, **kwargs)
                slot = self._slot(batch)
                if slot is None:
                    self.ready.put((-1, batch))
                    continue
                out = self.slots[slot]
                for target, part in zip(out, batch):
                    target[: len(part)] = part
                while not self.stop.is_set():
                    try:
                        self.ready.put((slot, tuple(t[: len(p)] for t, p in zip(out, batch))), timeout=0.5)
                        break
                    except queue.Full:
                        pass
        except BaseException as e:  # handed to the learner
            self.error = e
            try:
                self.ready.put(e, timeout=1.0)
            except queue.Full:  # nobody is taking batches any more
                pass

    def _slot(self, batch: tuple) -> int | None:
        """A pinned slot for ``batch`` (waiting until the device has copied one), or None
        without pinning."""
        if not self.pin:
            return None
        import torch

        if not self.slots:
            for _ in range(self.depth + 2):
                self.slots.append([torch.empty(np.shape(p), dtype=_torch_dtype(torch, p), pin_memory=True).numpy() for p in batch])
                self.events.append(torch.cuda.Event())
            for k in range(self.depth + 2):
                self.free.put(k)
        while True:
            try:
                slot = self.free.get(timeout=0.5)
                break
            except queue.Empty:
                if self.stop.is_set():
                    raise RuntimeError("stopped")
        self.events[slot].synchronize()  # (an event never recorded returns at once)
        return slot

    def close(self) -> None:
        self.stop.set()
        if self.thread is not None:
            while not self.ready.empty():  # unblock a thread waiting to hand over a batch
                self.ready.get_nowait()
            self.thread.join(timeout=10)


def _torch_dtype(torch: Any, array: np.ndarray) -> Any:
    return torch.from_numpy(np.zeros(1, np.asarray(array).dtype)).dtype
