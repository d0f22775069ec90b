"""Actor processes that stream positions, optionally sharing one inference server.

:class:`StreamingActors` is the local counterpart of :class:`selfplay.training.ray_actors.RayActors`:
the :class:`~selfplay.training.messages.Actors` interface (``collect``, ``close``, ``count``) for
alternating generations, plus the stream that overlapped training reads
(:meth:`StreamingActors.broadcast`, :meth:`StreamingActors.poll`; ``selfplay.training.schedule.Overlapped``,
``cluster.overlap``)::

    driver (the learner)                                        actor processes (one Actor each)
    broadcast(): weights to the server (or to every actor) ──▶  ("weights", generation, Weights or None)
    poll(): one play call in flight per actor ──("play", n, seconds)──▶ Actor.play for up to ``seconds``
            ◀── ("positions", generation, Positions, stats) ── the games that finished

A play call ends after ``cluster.chunk_seconds``, when its actor has the positions asked for, or
as soon as a message waits for it (new weights cut a chunk short, so the positions played with
the old weights arrive first, tagged with their generation).

Where the network runs:

* ``inference actor``: each actor evaluates its own batches (``Actor.set_weights``), as
  :class:`~selfplay.training.processes.ActorPool` does;
* ``inference server``: one :class:`~selfplay.training.inference_server.InferenceServer`
  process holds the network, and every actor sends it its leaves through a channel of shared
  memory (``Actor.set_evaluator`` with a :class:`~selfplay.training.inference_server.RemoteEvaluator`).
  Only the server gets the weights; the actors are told the generation.

The driver writes to each actor on a thread of its own (:class:`Outbox`) and keeps reading
meanwhile: new weights (hundreds of kilobytes) and a chunk's positions may cross in a pipe, and
two processes that each wait in ``send`` for the other to read would wait forever.

A benchmark may hand every actor one fixed evaluator instead (a modeled device,
``selfplay bench pipeline``); weights then only mark generations.

Faults: an actor that fails or dies stops the run with its traceback or exit code
(:class:`~selfplay.training.messages.ActorError`), as an actor process does; the server serves the
others meanwhile, and :meth:`StreamingActors.close` leaves no process behind.
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
import time
from multiprocessing.connection import Connection, wait
from typing import Any, Callable

import games

from .inference_backends import BackendFactory, ServerOptions
from .inference_server import Channel, InferenceServer
from .messages import KEEP, ActorError, ActorSpec, Delivery, SelfPlayStats, Weights
from .processes import ActorPool

__all__ = ["SERVED_NICE", "Outbox", "StreamingActors", "serves_locally"]

#: Niceness of actor processes that share an inference server. The server (and the learner) are
#: what everyone waits on; the actors are throughput work. Where actors outnumber the free cores,
#: a server woken by its device or by a request then runs at once, instead of after an actor's
#: time slice, and the device does not idle meanwhile (docs/gpu.md, "One inference server for every actor").
SERVED_NICE = 10


def serves_locally(cluster: Any, device: str) -> bool:
    """Whether local actors send their leaves to one inference server: ``cluster.inference``
    ``server``, or ``auto`` on CUDA (on the CPU each actor's own onnxruntime is at least as fast:
    docs/gpu.md, "One inference server for every actor")."""
    inference = getattr(cluster, "inference", "auto")
    return inference == "server" or (inference == "auto" and str(device).startswith("cuda"))


class Outbox:
    """Messages to one actor, sent in order by a thread of their own, so that :meth:`put` never
    waits for the actor to read. ``error``: the OSError that ended the sending (the actor is
    gone), else None."""

    def __init__(self, conn: Connection, name: str = "selfplay-outbox") -> None:
        self.conn = conn
        self.error: BaseException | None = None
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def put(self, message: tuple) -> None:
        """Send ``message`` after those put before it."""
        self._queue.put(message)

    @property
    def busy(self) -> bool:
        """Whether messages are still being sent (true until :meth:`finish`'s are all out)."""
        return self._thread.is_alive()

    def finish(self) -> None:
        """Send what is queued, then end the thread."""
        self._queue.put(None)

    def _run(self) -> None:
        while (message := self._queue.get()) is not None:
            try:
                self.conn.send(message)
            except (OSError, ValueError) as error:  # the actor is gone; its reader reports why
                self.error = error
                return


class StreamingActors(ActorPool):
    """``count`` actor processes (actor ``i`` seeded ``spec.seed + i``) that stream positions.
    ``serve``: their leaves go to one inference server (``options``; ``factory`` builds its
    backend from weights, by default a network). ``evaluator``: every actor evaluates with this
    object instead of weights (benchmarks). ``chunk_seconds``: the longest play call. ``nice``:
    the actor processes' niceness (default: :data:`SERVED_NICE` with a server, else 0)."""

    def __init__(self, spec: ActorSpec, count: int, serve: bool = False, options: ServerOptions | None = None,
                 factory: BackendFactory | None = None, evaluator: Any = None, chunk_seconds: float = 1.0,
                 nice: int | None = None, log: Callable[[str], None] | None = None) -> None:
        context = multiprocessing.get_context("spawn")
        game = games.make(spec.game, **spec.game_options)
        self.chunk_seconds = chunk_seconds
        self.options = options or ServerOptions()
        self.fixed = serve or evaluator is not None  # the actors do not run the weights themselves
        self.server: InferenceServer | None = None
        self.connections, self.processes = [], []
        self.outboxes: list[Outbox] = []
        self.generation = -1
        self._weights: Weights | None = None
        self.weights_epoch = 0
        self.pairings_epoch = 0
        self.in_flight: list[tuple | None] = [None] * count  # the epoch each actor's play call was sent under
        channels: list[Channel] = []
        try:
            if serve:
                capacity = spec.selfplay.games_per_actor * spec.search.leaves_per_step
                channels = [Channel(capacity, game.obs_shape, game.num_actions, context) for _ in range(count)]
                self.server = InferenceServer(channels, spec.game, dict(spec.game_options), self.options, factory, context)
                (log or (lambda text: None))(f"one inference process ({self.options.device}) evaluates for every actor")
            sources = [c.client() for c in channels] if serve else [evaluator] * count
            super().__init__(spec, count, sources, (SERVED_NICE if serve else 0) if nice is None else nice)
            self.outboxes = [Outbox(conn, f"selfplay-outbox-{i}") for i, conn in enumerate(self.connections)]
        except BaseException:
            self.close()
            raise
        finally:
            for channel in channels:
                channel.release()

    @property
    def epoch(self) -> tuple:
        """Which broadcast of weights and pairings the actors play under now."""
        return self.weights_epoch, self.pairings_epoch

    @property
    def needs_torch_weights(self) -> bool:
        """The server runs torch on a GPU: send safetensors, not ONNX."""
        return self.server is not None and self.options.device.startswith("cuda")

    # ------------------------------------------------------------------ the stream
    def broadcast(self, generation: int, weights: Weights, resign_threshold: float | None = None, pairings: Any = KEEP) -> None:
        """From now on every actor plays with ``weights`` of ``generation`` (the server gets the
        weights; actors in the middle of a play call deliver what they have first), and with the
        resignation threshold and league pairings, when given."""
        if weights is not self._weights or generation != self.generation:  # (league members share generation numbers)
            self.generation, self._weights = generation, weights
            self.weights_epoch += 1
            if self.server is not None:
                self.server.set_weights(generation, weights)
            self._send_all(("weights", generation, None if self.fixed else weights))
        if resign_threshold is not None:
            self._send_all(("resign_threshold", resign_threshold))
        if not (isinstance(pairings, str) and pairings == KEEP):
            self.pairings_epoch += 1
            self._send_all(("pairings", pairings))

    def poll(self, timeout: float, num_positions: int = 1 << 40, issue: bool = True) -> list[Delivery]:
        """Keep a play call in flight on every actor (unless ``issue`` is false), and return the
        calls that finished within ``timeout`` seconds (waiting only until the first)."""
        if issue:
            for i, sent in enumerate(self.in_flight):
                if sent is None:
                    self._send(i, ("play", num_positions, self.chunk_seconds))
                    self.in_flight[i] = self.epoch
        return [d for d in self._receive(timeout) if isinstance(d, Delivery)]

    def _receive(self, timeout: float) -> list:
        """Messages from actors with a call in flight, within ``timeout``: Deliveries, and
        ``(i, SelfPlayStats)`` progress reports."""
        waiting = {self.connections[i]: i for i, sent in enumerate(self.in_flight) if sent is not None}
        out: list = []
        for conn in wait(list(waiting), timeout=timeout) if waiting else []:
            i = waiting[conn]
            while self.in_flight[i] is not None and conn.poll():
                try:
                    message = conn.recv()
                except (EOFError, OSError):
                    raise self._failure(i) from None
                if message[0] == "error":
                    raise ActorError(f"actor {i} failed:\n{message[1]}")
                if message[0] == "progress":
                    out.append((i, SelfPlayStats(**message[1])))
                elif message[0] == "positions":
                    _, generation, positions, stats = message
                    out.append(Delivery(generation, positions, SelfPlayStats(**stats), i, self.in_flight[i]))
                    self.in_flight[i] = None
        return out

    # ------------------------------------------------------------------ the pool interface
    def configure(self, generation: int, weights: Weights, resign_threshold: float | None, pairings: Any) -> None:
        """Alternating generations, :meth:`ActorPool.configure` (the same messages), with the
        weights going to the server only. Calls still in flight from the stream are waited for
        and dropped (other weights played them)."""
        self._abort()
        while any(sent is not None for sent in self.in_flight):
            self._receive(0.2)
        if self.server is not None:
            self.server.set_weights(generation, weights)
        self.generation, self._weights = generation, weights
        super().configure(generation, None if self.fixed else weights, resign_threshold, pairings)

    def server_stats(self) -> dict:
        """The inference server's counters ({} without one)."""
        return self.server.stats() if self.server is not None else {}

    # ------------------------------------------------------------------ messages
    def _abort(self) -> None:
        for i, sent in enumerate(self.in_flight):
            if sent is not None:
                self._send(i, ("abort",))

    def _send_all(self, message: tuple) -> None:
        for i in range(self.count):
            self._send(i, message)

    def _send(self, i: int, message: tuple) -> None:
        if self.outboxes[i].error is not None:
            raise self._failure(i)
        self.outboxes[i].put(message)

    def _request_stop(self) -> None:
        """("stop",) after what each outbox holds; reading meanwhile (an actor may be in the
        middle of sending positions) until every outbox is empty, or a few seconds."""
        if not self.outboxes:  # the pool failed while starting
            super()._request_stop()
            return
        for box in self.outboxes:
            box.put(("stop",))
            box.finish()
        readers = list(self.connections)
        deadline = time.monotonic() + 5.0
        while any(box.busy for box in self.outboxes) and readers and time.monotonic() < deadline:
            for conn in wait(readers, timeout=0.05):
                try:
                    conn.recv()
                except (EOFError, OSError):
                    readers.remove(conn)
        self.outboxes = []

    def close(self) -> None:
        """Stop every actor (each ends its play call first), then the server; reap them all."""
        super().close()
        self.connections, self.processes = [], []
        if self.server is not None:
            self.server.close()
            self.server = None
