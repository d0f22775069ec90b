"""One inference server for the actor processes of this machine: every actor's leaves, batched.

Separate actor processes that each run the network (``cluster.inference actor``) time-slice a GPU
with small launches, each far below the batch a GPU needs (docs/gpu.md, "On a GPU"). Here
one process owns the network, and the actors send it their leaves::

    actor process i                      shared memory of channel i                  server process
    search step: n leaves ──copy──▶ obs[n, C, H, W], mask[n, A] ──pipe: n──▶ gather every waiting
                                                                              channel into one batch
                                                                              (pinned on CUDA), launch,
    expand, backup ◀──copy── logits[n, A], value[n] ◀──pipe: ''────────────── sync once, scatter back

* **No array is pickled.** A request is 8 bytes on the channel's pipe (the leaf count); the
  leaves and the answers travel through the channel's shared memory (:class:`Channel`), written
  by one side while the other waits.
* **Batching.** The server launches a batch when ``target_batch`` leaves wait; and while the device
  is idle, as soon as every live actor waits or the oldest request has waited ``max_wait``
  seconds (by default none). While a batch runs, requests gather for the next, so when the device
  is the bottleneck batches grow by themselves, and when the actors are, the device takes what
  comes at once. Up to two batches are in flight (two staging slots): one on the device, one
  being gathered.
* **One synchronisation per batch** on CUDA (selfplay.training.inference_backends.TorchBackend).
* **Weights go only to the server** (:meth:`InferenceServer.set_weights`); the actors are told
  the generation.
* **Faults.** An actor that dies (even by SIGKILL) closes its pipe: the server drops it and
  serves the others. A batch whose evaluation raises answers its actors with the error (they
  raise :class:`InferenceError`) and the server goes on. A server that dies makes every
  waiting actor raise :class:`InferenceError`, not hang. The server exits when its parent
  closes the control pipe, or dies.

Where a batch runs is a backend (selfplay.training.inference_backends: torch, any evaluator
callable, or a modeled device), built from weights by a factory handed to the server process when
it starts.
"""

from __future__ import annotations

import collections
import multiprocessing
import signal
import struct
import time
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

import numpy as np

from .inference_backends import BackendFactory, NetworkBackends, ServerOptions

__all__ = ["Channel", "InferenceError", "InferenceServer", "RemoteEvaluator"]

_REQUEST = struct.Struct("<q")  # a request: the number of leaves in the channel
IDLE_SECONDS = 1.0  # the longest the server blocks without looking at its parent


class InferenceError(RuntimeError):
    """The inference server could not evaluate a request (its message says why), or is gone."""


# ----------------------------------------------------------------------------- channels


@dataclass
class _Half:
    """One side of a :class:`Channel`: the shared memory and one end of the pipe."""

    memory: Any  # multiprocessing RawArray of bytes: obs | logits | value | mask
    conn: Connection
    capacity: int  # leaves per request, at most
    obs_shape: tuple
    num_actions: int

    def views(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(obs float32[cap, C, H, W], mask bool[cap, A], logits float32[cap, A], value float32[cap])``."""
        cap, A = self.capacity, self.num_actions
        sizes = (cap * int(np.prod(self.obs_shape)), cap * A, cap)  # float32 counts
        buffer = memoryview(self.memory).cast("B")
        offsets = np.cumsum((0,) + sizes) * 4
        obs = np.frombuffer(buffer, np.float32, sizes[0], offsets[0]).reshape(cap, *self.obs_shape)
        logits = np.frombuffer(buffer, np.float32, sizes[1], offsets[1]).reshape(cap, A)
        value = np.frombuffer(buffer, np.float32, sizes[2], offsets[2])
        mask = np.frombuffer(buffer, np.bool_, cap * A, offsets[3]).reshape(cap, A)
        return obs, mask, logits, value


class Channel:
    """The link between one client (an actor) and the server: shared memory for ``capacity``
    leaves and their answers, and a pipe for the requests. Made in the parent before it spawns
    the two sides; each side gets its own half (:meth:`client`, :meth:`server`), and the parent
    then drops its ends (:meth:`release`), so that a side's death closes the pipe for the other."""

    def __init__(self, capacity: int, obs_shape: tuple, num_actions: int, context=None) -> None:
        context = context or multiprocessing.get_context("spawn")
        size = 4 * capacity * (int(np.prod(obs_shape)) + num_actions + 1) + capacity * num_actions
        memory = context.RawArray("b", size)
        server_end, client_end = context.Pipe(duplex=True)
        self._server = _Half(memory, server_end, capacity, tuple(obs_shape), num_actions)
        self._client = _Half(memory, client_end, capacity, tuple(obs_shape), num_actions)

    def client(self) -> _Half:
        return self._client

    def server(self) -> _Half:
        return self._server

    def release(self, client: bool = True) -> None:
        """Close this process's copy of the server's end (and of the client's, unless a thread
        of this process is the client)."""
        self._server.conn.close()
        if client:
            self._client.conn.close()


class RemoteEvaluator:
    """A search evaluator that sends its leaves to the inference server over one channel."""

    def __init__(self, half: _Half) -> None:
        self.conn = half.conn
        self.capacity = half.capacity
        self.obs, self.mask, self.logits, self.value = half.views()

    def __call__(self, obs: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = obs.shape[0]
        if n > self.capacity:
            raise InferenceError(f"{n} leaves in one call; this channel holds {self.capacity}")
        self.obs[:n] = obs
        self.mask[:n] = mask
        try:
            self.conn.send_bytes(_REQUEST.pack(n))
            reply = self.conn.recv_bytes()
        except (EOFError, OSError):
            raise InferenceError("the inference server is gone") from None
        if reply:
            raise InferenceError(reply.decode(errors="replace"))
        return self.logits[:n].copy(), self.value[:n].copy()


# ----------------------------------------------------------------------------- the server loop


@dataclass
class _Request:
    client: int
    n: int
    at: float  # monotonic arrival time


@dataclass
class _Stats:
    batches: int = 0
    leaves: int = 0
    largest: int = 0
    gather_s: float = 0.0  # copying requests into the staging slot, and launching
    wait_s: float = 0.0  # blocked on a batch's result
    scatter_s: float = 0.0  # copying answers out and replying
    errors: int = 0
    dropped: int = 0  # clients gone
    cpu_s: float = field(default_factory=time.process_time)  # at start; reported as the time since

    def report(self) -> dict:
        out = {k: v for k, v in self.__dict__.items()}
        out["cpu_s"] = time.process_time() - self.cpu_s
        out["mean_batch"] = self.leaves / self.batches if self.batches else float("nan")
        return out


class _Server:
    """The loop of the server process (see the module docstring)."""

    def __init__(self, control: Connection, halves: list[_Half], factory: BackendFactory, game: Any,
                 options: ServerOptions) -> None:
        self.control, self.factory, self.game, self.options = control, factory, game, options
        self.conns = [h.conn for h in halves]
        self.capacity = [h.capacity for h in halves]
        self.views = [h.views() for h in halves]
        self.rows = max(options.target_batch, max(self.capacity, default=1))
        self.live = set(range(len(halves)))
        self.waiting: set[int] = set()  # clients with a request pending or in flight
        self.pending: collections.deque[_Request] = collections.deque()
        self.flights: collections.deque[tuple[int, list[tuple[int, int, int]]]] = collections.deque()  # (slot, [(client, offset, n)])
        self.free = [1, 0]
        self.backend: Any = None
        self.stats = _Stats()

    def run(self) -> None:
        options = self.options
        while True:
            now = time.monotonic()
            if self.pending and self.free and self.backend is not None:
                leaves = sum(r.n for r in self.pending)
                idle = not self.flights
                if leaves >= options.target_batch or (idle and (self.waiting >= self.live or now - self.pending[0].at >= options.max_wait)):
                    self._launch()
                    continue
            left = IDLE_SECONDS
            if self.flights:
                left = self.backend.remaining(self.flights[0][0])
                if left <= 0:
                    self._finish()
                    continue
            elif self.pending:
                left = max(0.0, self.pending[0].at + options.max_wait - now)
            for conn in wait([self.control, *(self.conns[i] for i in self.live)], timeout=min(left, IDLE_SECONDS)):
                if conn is self.control:
                    if not self._command():
                        return
                else:
                    self._receive(self.conns.index(conn))

    # ------------------------------------------------------------------ requests
    def _receive(self, i: int) -> None:
        try:
            data = self.conns[i].recv_bytes()
        except (EOFError, OSError):
            self._drop(i)
            return
        (n,) = _REQUEST.unpack(data)
        if i in self.waiting or not 1 <= n <= self.capacity[i]:
            self._reply(i, f"bad request: {n} leaves (the channel holds {self.capacity[i]}; one request at a time)")
        elif self.backend is None:
            self._reply(i, "the inference server has no network yet")
        else:
            self.pending.append(_Request(i, n, time.monotonic()))
            self.waiting.add(i)

    def _reply(self, i: int, error: str = "") -> None:
        self.waiting.discard(i)
        if i not in self.live:
            return
        try:
            self.conns[i].send_bytes(error.encode())
        except OSError:  # it died while waiting
            self._drop(i)

    def _drop(self, i: int) -> None:
        if i in self.live:
            self.live.discard(i)
            self.waiting.discard(i)
            self.pending = collections.deque(r for r in self.pending if r.client != i)
            self.conns[i].close()
            self.stats.dropped += 1

    # ------------------------------------------------------------------ batches
    def _launch(self) -> None:
        started = time.perf_counter()
        slot = self.free.pop()
        obs, mask = self.backend.inputs(slot)
        parts, total = [], 0
        while self.pending and (not parts or total + self.pending[0].n <= self.rows):
            request = self.pending.popleft()
            view_obs, view_mask = self.views[request.client][:2]
            obs[total:total + request.n] = view_obs[:request.n]
            mask[total:total + request.n] = view_mask[:request.n]
            parts.append((request.client, total, request.n))
            total += request.n
        try:
            self.backend.launch(slot, total)
        except Exception as e:  # the network failed on this batch: its clients hear why
            self.free.append(slot)
            self._fail(parts, e)
            return
        self.flights.append((slot, parts))
        self.stats.batches += 1
        self.stats.leaves += total
        self.stats.largest = max(self.stats.largest, total)
        self.stats.gather_s += time.perf_counter() - started

    def _finish(self) -> None:
        slot, parts = self.flights.popleft()
        started = time.perf_counter()
        try:
            logits, value = self.backend.result(slot)
        except Exception as e:
            self.free.append(slot)
            self._fail(parts, e)
            return
        waited = time.perf_counter()
        self.stats.wait_s += waited - started
        for client, offset, n in parts:
            if client in self.live:
                _, _, out_logits, out_value = self.views[client]
                out_logits[:n] = logits[offset:offset + n]
                out_value[:n] = value[offset:offset + n]
            self._reply(client)
        self.free.append(slot)
        self.stats.scatter_s += time.perf_counter() - waited

    def _fail(self, parts: list, error: BaseException) -> None:
        self.stats.errors += 1
        text = f"the inference server failed on a batch: {type(error).__name__}: {' '.join(str(error).split())[:500]}"
        for client, _, _ in parts:
            self._reply(client, text)

    def _drain(self) -> None:
        while self.flights:
            self._finish()

    # ------------------------------------------------------------------ the parent's commands
    def _command(self) -> bool:
        """One message from the parent; False to stop."""
        try:
            message = self.control.recv()
        except (EOFError, OSError):  # the parent is gone
            return False
        if message[0] == "stop":
            self._drain()
            return False
        if message[0] == "stats":
            self.control.send(("stats", self.stats.report()))
        elif message[0] == "weights":
            self._drain()
            try:
                self.backend = self.factory(message[2], self.backend, self.rows, self.game, self.options)
                self.control.send(("ok",))
            except Exception:
                self.control.send(("error", traceback.format_exc()))
        return True


def _server_main(control: Connection, halves: list[_Half], factory: BackendFactory, game_name: str, game_options: dict,
                 options: ServerOptions) -> None:
    """The server process."""
    import games

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver stops it, after saving its work
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        _Server(control, halves, factory, games.make(game_name, **game_options), options).run()
    except BaseException:
        try:
            control.send(("error", traceback.format_exc()))
        except OSError:
            pass


# ----------------------------------------------------------------------------- the parent's side


class InferenceServer:
    """The server process, from the parent's side. ``channels``: one per client; the server gets
    their server halves when it starts (the caller then calls ``Channel.release``)."""

    def __init__(self, channels: list[Channel], game_name: str, game_options: dict, options: ServerOptions | None = None,
                 factory: BackendFactory | None = None, context=None) -> None:
        context = context or multiprocessing.get_context("spawn")
        self.options = options or ServerOptions()
        self.control, theirs = context.Pipe(duplex=True)
        self.process = context.Process(
            target=_server_main, name="selfplay-inference",
            args=(theirs, [c.server() for c in channels], factory or NetworkBackends(), game_name, dict(game_options), self.options),
            daemon=True,
        )
        self.process.start()
        theirs.close()

    @property
    def pid(self) -> int:
        return self.process.pid

    def set_weights(self, generation: int, weights: Any) -> None:
        """Run ``weights`` from the next batch on (the batches in flight finish first)."""
        self._ask(("weights", generation, weights))

    def stats(self) -> dict:
        """Counters since the server started: batches, leaves, mean_batch, largest, seconds
        spent gathering, waiting on the device and scattering, the process's CPU seconds."""
        return self._ask(("stats",))[1]

    def _ask(self, message: tuple) -> tuple:
        try:
            self.control.send(message)
            while not self.control.poll(1.0):
                if not self.process.is_alive():
                    raise EOFError
            reply = self.control.recv()
        except (EOFError, OSError):
            raise InferenceError(f"the inference server died (exit code {self.process.exitcode})") from None
        if reply[0] == "error":
            raise InferenceError(f"the inference server failed:\n{reply[1]}")
        return reply

    def close(self) -> None:
        """Stop the server (it finishes the batches in flight) and reap it."""
        try:
            self.control.send(("stop",))
        except (OSError, ValueError):
            pass
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5)
        self.control.close()

