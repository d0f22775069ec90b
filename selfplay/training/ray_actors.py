"""Self-play actors on a Ray cluster: the same :class:`~selfplay.training.actor.Actor`, as Ray actors.

``--backend ray`` (``cluster.backend``). :class:`RayActors` has the interface the trainer and the
league already use for actor processes (``collect(...)``, ``close()``, ``count``), plus a stream
for overlapped training (:meth:`RayActors.broadcast`, :meth:`RayActors.poll`)::

    driver (the learner)                                   Ray actors (_ActorHost: one Actor each)
    ray.put(weights) once per generation  ──configure──▶   Actor.set_weights / set_resign_threshold / set_pairings
    poll(): one play call in flight per actor ──play───▶   Actor.play(positions, for chunk_seconds)
            ◀── (generation, Positions, stats, node) ──    the positions of the games that finished

Chunks. An actor plays in calls of ``cluster.chunk_seconds`` (or until it has the positions asked
for); each call returns the positions of the games that finished in it, tagged with the
generation of the weights it played with. Games in progress carry on into the next call. A call
is the unit of delivery: its positions arrive whole or not at all, and nothing retries it
(``max_task_retries=0``), so no game is ever counted twice. Each delivery carries the id of its
call, ``(Ray actor id, call number)`` (:attr:`Delivery.call`); the driver checks that each actor's
calls arrive once and in order, and stops the run on one that arrives twice or is skipped.

Faults. An actor whose call fails because it, or its node, died (``RayActorError``) is replaced by a
new actor with a fresh seed; its unfinished games are lost and simply played again by others.
Its node is suspected (a killed node answers "unavailable" at once, but Ray marks it dead only
after its health checks fail, tens of seconds later), so the replacement goes elsewhere until
an actor there delivers again. An error in our own code (``RayTaskError``) is a bug, not a lost
machine: it stops the run with the actor's traceback, as an actor process's error does. So does an
actor slot that fails :data:`MAX_FAILURES` times in a row without delivering.

Placement. Actors ask for one CPU each. With ``cluster.actor_resource`` they prefer nodes that
offer that custom resource (``ray start --resources '{"selfplay_actor": 4}'``: four actor slots),
by *soft* node affinity: Ray places them there, and elsewhere when that node is dead or full.
Requesting the resource itself would leave a replacement unplaceable once those nodes are gone.

Inference. Each actor batches its own games (``cluster.inference actor``), or one inference
actor (:class:`_InferenceHost`) evaluates every actor's batches, merging the calls that wait
(``server``; on a GPU when the cluster has one: then the weights travel as safetensors for torch).


Ray itself is imported only through :mod:`selfplay.training.ray_cluster`, and only when a Ray
backend is asked for.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, fields
from typing import Any, Callable

import numpy as np

import games

from ..config import ClusterConfig
from .actor import Actor
from .messages import KEEP, ActorError, Actors, ActorSpec, Delivery, Positions, SelfPlayStats, Weights
from .ray_cluster import ClusterError, connect, disconnect, import_ray, require_ray
from .weights import evaluator_from_weights

__all__ = ["RayActors"]

MAX_FAILURES = 5  # an actor slot that fails this often in a row, without delivering, stops the run
SUSPECT_SECONDS = 120.0  # how long a node whose actor became unreachable is avoided


# ----------------------------------------------------------------------------- on the cluster


class _RemoteEvaluator:
    """An evaluator that sends each batch to the inference actor."""

    def __init__(self, server) -> None:
        self.server = server

    def __call__(self, obs: np.ndarray, mask: np.ndarray):
        import ray

        logits, values = ray.get(self.server.evaluate.remote(obs, mask))
        return np.array(logits), np.array(values)  # Ray hands back read-only views; the search kernels write


class _ActorHost:
    """One :class:`Actor` in a Ray actor process: the messages of an actor process as methods."""

    def __init__(self, spec: ActorSpec, server=None) -> None:
        self.actor = Actor(spec)
        self.server = server
        self.calls = 0  # play calls so far: the next one's number

    def configure(self, generation: int, weights: Weights | None, resign_threshold: float | None, pairings: Any) -> None:
        """New weights (None: keep), resignation threshold (None: keep), pairings (KEEP: keep).
        With an inference actor, the weights live there: only the generation changes here."""
        if weights is not None:
            if self.server is not None:
                self.actor.set_evaluator(generation, _RemoteEvaluator(self.server))
            else:
                self.actor.set_weights(generation, weights)
        if resign_threshold is not None:
            self.actor.set_resign_threshold(resign_threshold)
        if not (isinstance(pairings, str) and pairings == KEEP):
            self.actor.set_pairings(pairings)

    def play(self, num_positions: int, seconds: float) -> tuple[int, Positions, dict, str, tuple[str, int]]:
        """Play for up to ``seconds`` or until ``num_positions`` positions are in; returns
        ``(generation of the weights, positions, stats, node id, call)``, ``call`` the id of this
        delivery: ``(Ray actor id, this actor's play call number from 0)``."""
        import ray

        context = ray.get_runtime_context()
        call, self.calls = (context.get_actor_id(), self.calls), self.calls + 1
        deadline = time.monotonic() + seconds
        positions, stats = self.actor.play(num_positions, lambda: time.monotonic() >= deadline)
        return self.actor.generation, positions, stats.to_dict(), context.get_node_id(), call


class _InferenceHost:
    """The network for every actor, in one Ray actor (a GPU's, when it has one). Calls arrive on
    several threads; whichever thread gets the network next evaluates every call waiting, in one
    batch, so the batch grows with the number of actors.

    A batch that fails (the evaluator raised, or no weights yet) fails every call in it, each with
    a one-line :class:`ActorError` whose cause is the evaluator's exception: the callers whose
    requests another thread took wait on their events, and would otherwise wait forever. The host
    keeps no error: the next batch is evaluated afresh. A broken network fails that batch the
    same way, at once, so remembering the error would add nothing there; and it would turn a
    failure that passes (a merged batch too large for the GPU's memory) or one that new weights
    fix into a host that can only fail."""

    def __init__(self, game: str, game_options: dict, device: str) -> None:
        self.game = games.make(game, **game_options)
        self.device = device
        self.evaluator: Callable | None = None
        self.waiting: list[list] = []  # [obs [n, ...], mask [n, A], result or exception, done event]
        self.queue_lock = threading.Lock()
        self.network_lock = threading.Lock()

    def set_weights(self, generation: int, weights: Weights) -> None:
        evaluator = evaluator_from_weights(weights, self.game, self.device, threads=1)
        with self.network_lock:
            self.evaluator = evaluator

    def evaluate(self, obs: np.ndarray, mask: np.ndarray):
        """``(logits [n, A], values [n])`` for ``obs`` [n, ...] with legal ``mask`` [n, A]."""
        mine = [obs, mask, None, threading.Event()]
        with self.queue_lock:
            self.waiting.append(mine)
        with self.network_lock:
            with self.queue_lock:
                batch, self.waiting = self.waiting, []
            if batch:
                self._evaluate_batch(batch)
        mine[3].wait()
        if isinstance(mine[2], BaseException):
            raise mine[2]
        return mine[2]

    def _evaluate_batch(self, batch: list[list]) -> None:
        """Evaluate every call in ``batch`` at once, and wake each with its rows of the result;
        when that fails, with an :class:`ActorError` of its own, caused by the exception."""
        total = sum(call[0].shape[0] for call in batch)
        try:
            if self.evaluator is None:
                raise RuntimeError("it has no weights yet")
            logits, values = self.evaluator(np.concatenate([b[0] for b in batch]), np.concatenate([b[1] for b in batch]))
            logits, values = np.asarray(logits, np.float32), np.asarray(values, np.float32).reshape(-1)
            if logits.shape[0] != total or values.shape[0] != total:
                raise ValueError(f"it returned {logits.shape[0]} logits and {values.shape[0]} values for {total} positions")
        except BaseException as error:  # every call in the batch fails with it, not only this thread's
            text = " ".join(f"{type(error).__name__}: {error}".split())[:500]
            for call in batch:
                call[2] = ActorError(f"inference actor: the evaluator failed on a batch of {total} positions from "
                                     f"{len(batch)} calls: {text}")
                call[2].__cause__ = error
                call[3].set()
            return
        start = 0
        for call in batch:
            n = call[0].shape[0]
            call[2] = (logits[start:start + n], values[start:start + n])
            call[3].set()
            start += n


# ----------------------------------------------------------------------------- on the driver


def _lost(ray) -> tuple:
    """The errors of a call whose actor, worker process or node is gone (not a bug of ours)."""
    names = ("RayActorError", "WorkerCrashedError", "NodeDiedError", "ObjectLostError", "OwnerDiedError")
    return tuple(getattr(ray.exceptions, name) for name in names if hasattr(ray.exceptions, name))


@dataclass
class _Slot:
    handle: Any
    seed: int
    node: str = ""  # where it runs (known after its first delivery; before, where it was sent)
    pending: Any = None  # the ObjectRef of its play call in flight
    pending_epoch: tuple = ()  # RayActors.epoch when it was sent
    weights_epoch: int = 0  # the weights it was given (RayActors.weights_epoch)
    resign_threshold: float | None = None  # the threshold it was given (None: its spec's)
    pairings_epoch: int = 0  # the pairings it was given (RayActors.pairings_epoch)
    failures: int = 0  # in a row, without a delivery
    delivered: bool = False
    replacement: bool = False


class RayActors(Actors):
    """``count`` Ray actors playing self-play (or league) games; ``count`` -1: one per CPU of the
    cluster, or per ``cluster.actor_resource`` slot. The actor interface of
    :class:`~selfplay.training.processes.ActorPool` (:meth:`collect`, :meth:`close`), and a stream
    (:meth:`broadcast`, :meth:`poll`) for overlapped training."""

    def __init__(self, spec: ActorSpec, count: int, cluster: ClusterConfig, log: Callable[[str], None] | None = None) -> None:
        require_ray(cluster)
        self.ray = import_ray()
        self.spec = spec
        self.cluster = cluster
        self.log = log or (lambda text: None)
        self.game = games.make(spec.game, **spec.game_options)
        self._owns_ray = connect(cluster.address)
        try:
            self._start(count)
        except BaseException:
            self.close()
            raise

    def _start(self, count: int) -> None:
        ray = self.ray
        resources = ray.cluster_resources()
        gpus = resources.get("GPU", 0)
        serve = self.cluster.inference == "server" or (self.cluster.inference == "auto" and gpus >= 1)
        if count == -1:
            slots = resources.get(self.cluster.actor_resource, 0) if self.cluster.actor_resource else 0
            count = int(slots or max(1, resources.get("CPU", 1) - (serve and gpus < 1)))  # a CPU server takes one
        if count < 1:
            raise ClusterError(f"--backend ray needs at least one actor (--actors N, or -1 for one per cluster CPU), got {count}")
        if self.cluster.actor_resource and not resources.get(self.cluster.actor_resource):
            self.log(f"ray: no node offers the resource {self.cluster.actor_resource!r}; actors run wherever a CPU is free")
        self.count = count
        self.generation = -1
        self._weights: Weights | None = None
        self.weights_ref = None
        self.weights_epoch = 0  # how many weights were broadcast
        self.resign_threshold: float | None = None
        self.pairings_ref: Any = None  # None: plain self-play
        self.pairings_epoch = 0
        self.suspects: dict[str, float] = {}  # node id -> when an actor there became unreachable
        self.replaced = 0  # actors replaced so far
        self.calls: dict[str, int] = {}  # Ray actor id -> the number of its next play call to deliver
        self._created = 0
        self._announced = False
        self.server = None
        if serve:
            device = "cuda" if gpus >= 1 else "cpu"
            # on a GPU it needs no CPU slot of its own (a head started with --num-cpus 0 can hold it)
            host = ray.remote(num_cpus=0 if gpus >= 1 else 1, num_gpus=1 if gpus >= 1 else 0,
                              max_concurrency=max(2, count + 1))(_InferenceHost)
            self.server = host.remote(self.spec.game, dict(self.spec.game_options), device)
            self.log(f"ray: one inference actor ({device}) evaluates for every actor")
        self.server_on_gpu = self.server is not None and gpus >= 1
        self._host = ray.remote(num_cpus=1, max_restarts=0, max_task_retries=0)(_ActorHost)
        self.slots = [self._new_slot() for _ in range(count)]

    @property
    def epoch(self) -> tuple:
        """Which broadcast of weights and pairings the actors play under now."""
        return self.weights_epoch, self.pairings_epoch

    @property
    def needs_torch_weights(self) -> bool:
        """The inference actor runs on a GPU: send safetensors (torch), not ONNX."""
        return self.server_on_gpu

    # ------------------------------------------------------------------ actors and their nodes
    def _new_slot(self, replacing: int | None = None) -> _Slot:
        seed = self.spec.seed + self._created  # actor i of the first ones is seeded seed + i, as a local pool
        self._created += 1
        options: dict[str, Any] = {}
        node = self._preferred_node(replacing)
        if node:
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node, soft=True)
        spec = ActorSpec(**{**{f.name: getattr(self.spec, f.name) for f in fields(self.spec)}, "seed": seed})
        handle = self._host.options(**options).remote(spec, self.server)
        return _Slot(handle, seed, node=node, replacement=replacing is not None)

    def _preferred_node(self, replacing: int | None = None) -> str:
        """A live node to place a new actor on ('' for Ray's choice): one with a free
        ``actor_resource`` slot (the most free), else, while some node is suspected, the live
        unsuspected node with the most CPUs free of our actors (the one ``replacing`` gone)."""
        now = time.monotonic()
        self.suspects = {n: t for n, t in self.suspects.items() if now - t < SUSPECT_SECONDS}
        nodes = [n for n in self.ray.nodes() if n.get("Alive") and n["NodeID"] not in self.suspects]
        ours: dict[str, int] = {}
        for k, slot in enumerate(getattr(self, "slots", [])):
            if k != replacing:
                ours[slot.node] = ours.get(slot.node, 0) + 1
        name = self.cluster.actor_resource
        if name:
            free = {n["NodeID"]: n["Resources"].get(name, 0) - ours.get(n["NodeID"], 0) for n in nodes}
            best = max(free, key=free.get, default="")
            if best and free[best] >= 1:
                return best
        if self.suspects:
            free = {n["NodeID"]: n["Resources"].get("CPU", 0) - ours.get(n["NodeID"], 0) for n in nodes}
            return max(free, key=free.get, default="")
        return ""

    def _replace(self, i: int, error: BaseException) -> None:
        ray = self.ray
        old = self.slots[i]
        text = " ".join(str(error).split())
        unreachable = type(error).__name__ == "ActorUnavailableError" or "its node has died" in text or "node was terminated" in text
        if old.node and unreachable:
            self.suspects[old.node] = time.monotonic()
        try:
            ray.kill(old.handle, no_restart=True)
        except Exception:  # already gone
            pass
        if old.failures + 1 >= MAX_FAILURES:
            raise ActorError(f"ray: actor {i} failed {MAX_FAILURES} times in a row without delivering a game; the last "
                             f"time: {' '.join(str(error).split())[:500]}")
        where = f" on node {old.node[:8]}" if old.node else ""
        self.log(f"ray: actor {i}{where} lost ({type(error).__name__}); a new actor plays its unfinished games again")
        slot = self._new_slot(replacing=i)
        slot.failures = old.failures + 1
        self.slots[i] = slot
        self.replaced += 1

    # ------------------------------------------------------------------ the stream
    def broadcast(self, generation: int, weights: Weights, resign_threshold: float | None = None, pairings: Any = KEEP) -> None:
        """From the next play call on, every actor (and every replacement) plays with ``weights``
        of ``generation``: one ``ray.put`` per generation. Also the resignation threshold and
        the league pairings, when given."""
        if weights is not self._weights or generation != self.generation:  # (league members share generation numbers)
            self.generation, self._weights = generation, weights
            self.weights_ref = self.ray.put(weights)
            self.weights_epoch += 1
            if self.server is not None:
                self.ray.get(self.server.set_weights.remote(generation, self.weights_ref))
        if resign_threshold is not None:
            self.resign_threshold = resign_threshold
        if not (isinstance(pairings, str) and pairings == KEEP):
            self.pairings_ref = self.ray.put(pairings) if pairings is not None else None
            self.pairings_epoch += 1

    def _send(self, slot: _Slot, num_positions: int) -> None:
        """Bring ``slot`` up to date (weights, threshold, pairings: only what changed), and start
        its next play call. Calls from one driver run in order, so the play uses them."""
        weights = self.weights_ref if slot.weights_epoch != self.weights_epoch else None
        threshold = self.resign_threshold if slot.resign_threshold != self.resign_threshold else None
        pairings = self.pairings_ref if slot.pairings_epoch != self.pairings_epoch else KEEP
        if weights is not None or threshold is not None or not (isinstance(pairings, str) and pairings == KEEP):
            slot.handle.configure.remote(self.generation, weights, threshold, pairings)
            slot.weights_epoch, slot.resign_threshold, slot.pairings_epoch = self.weights_epoch, self.resign_threshold, self.pairings_epoch
        slot.pending = slot.handle.play.remote(num_positions, self.cluster.chunk_seconds)
        slot.pending_epoch = self.epoch

    def poll(self, timeout: float, num_positions: int = 1 << 40, issue: bool = True) -> list[Delivery]:
        """Keep a play call in flight on every actor (unless ``issue`` is false), and return the
        calls that finished within ``timeout`` seconds (waiting only until the first)."""
        ray = self.ray
        if issue:
            for slot in self.slots:
                if slot.pending is None:
                    self._send(slot, num_positions)
        pending = {slot.pending: i for i, slot in enumerate(self.slots) if slot.pending is not None}
        if not pending:
            return []
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=timeout)
        if ready:
            ready, _ = ray.wait(list(pending), num_returns=len(pending), timeout=0)
        out = []
        for ref in ready:
            i = pending[ref]
            slot = self.slots[i]
            slot.pending = None  # (pending_epoch stays: the delivery's)
            try:
                generation, positions, stats, node, call = ray.get(ref)
            except _lost(ray) as e:
                self._replace(i, e)
                continue
            except ray.exceptions.RayTaskError as e:
                raise ActorError(f"ray: actor {i} failed:\n{e}") from None
            self._check_call(i, call)
            if slot.replacement and not slot.delivered:
                self.log(f"ray: actor {i} replaced on node {node[:8]}")
            slot.node, slot.delivered, slot.failures = node, True, 0
            self.suspects.pop(node, None)
            out.append(Delivery(generation, positions, SelfPlayStats(**stats), i, slot.pending_epoch, call))
        if out and not self._announced and all(slot.delivered for slot in self.slots):
            self._announced = True
            where: dict[str, int] = {}
            for slot in self.slots:
                where[slot.node[:8]] = where.get(slot.node[:8], 0) + 1
            self.log(f"ray: {self.count} actors playing, on node{'s' if len(where) > 1 else ''} "
                     + ", ".join(f"{node} ({n})" for node, n in where.items()))
        return out

    def _check_call(self, i: int, call: tuple[str, int]) -> None:
        """Every play call of an actor is delivered once, in order: a call delivered twice would
        count its games twice, and one skipped would lose them (a bug of ours, never a lost
        machine: a lost actor's call fails, and its replacement is another Ray actor)."""
        actor_id, number = call
        expected = self.calls.get(actor_id, 0)
        if number < expected:
            raise ActorError(f"ray: actor {i} delivered play call {number} of Ray actor {actor_id} twice "
                             f"(its games would be counted twice)")
        if number > expected:
            raise ActorError(f"ray: actor {i} delivered play call {number} of Ray actor {actor_id}, but its call "
                             f"{expected} never arrived (its games would be lost)")
        self.calls[actor_id] = number + 1

    # ------------------------------------------------------------------ the pool interface
    def configure(self, generation: int, weights: Weights, resign_threshold: float | None, pairings: Any) -> None:
        """:meth:`broadcast`: the next play calls use ``weights`` (and the threshold and pairings)."""
        self.broadcast(generation, weights, resign_threshold, pairings)

    def gather(self, num_positions: int, should_stop: Callable[[], bool] | None,
               on_progress: Callable[[SelfPlayStats], None] | None) -> tuple[Positions, SelfPlayStats]:
        """Alternating generations, as :meth:`ActorPool.gather`: every actor plays until
        ``num_positions`` positions are in (or ``should_stop()``). The calls in flight then are
        waited for (they end within ``cluster.chunk_seconds``) and kept, since the same weights
        played them; not those of actors that have not started (waiting for a place on the
        cluster) or that are late: those stay in flight, and the next collect drops them (other
        weights played them)."""
        start = time.monotonic()
        parts: list[Positions] = []
        total = SelfPlayStats()
        stopped_at = None
        while True:
            remaining = num_positions - total.positions
            if stopped_at is None and (remaining <= 0 or (should_stop is not None and should_stop())):
                stopped_at = time.monotonic()
            if stopped_at is not None:
                waiting = [slot for slot in self.slots if slot.pending is not None and slot.delivered]
                if not waiting or time.monotonic() - stopped_at > self.cluster.chunk_seconds + 5.0:
                    break
            share = max(1, math.ceil(max(remaining, 1) / self.count))
            for delivery in self.poll(0.2, num_positions=share, issue=stopped_at is None):
                if delivery.epoch != self.epoch:  # a late call, from other weights or pairings
                    continue
                parts.append(delivery.positions)
                total = total.merge(delivery.stats)
            if on_progress is not None:
                total.seconds = time.monotonic() - start
                on_progress(total)
        total.seconds = time.monotonic() - start
        total.evaluator_seconds /= self.count
        return Positions.concatenate(parts, self.game), total

    def close(self) -> None:
        """End every actor (the inference actor too), and Ray itself if this pool started it."""
        ray = self.ray
        for slot in getattr(self, "slots", []):
            try:
                ray.kill(slot.handle, no_restart=True)
            except Exception:
                pass
        if getattr(self, "server", None) is not None:
            try:
                ray.kill(self.server, no_restart=True)
            except Exception:
                pass
        self.slots = []
        if self._owns_ray:
            disconnect()
            self._owns_ray = False
