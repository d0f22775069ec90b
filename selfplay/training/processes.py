"""Actors on this machine: one in the calling process (:class:`LocalActors`: tests, debugging, and
CUDA, where one process feeds the GPU large batches), or one per worker process
(:class:`ActorPool`, multiprocessing ``spawn``), each talking in the plain messages of
:mod:`selfplay.training.messages`. Both are :class:`~selfplay.training.messages.Actors`.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import signal
import time
import traceback
from dataclasses import fields
from multiprocessing.connection import Connection, wait
from typing import Any, Callable

import games

from .actor import Actor
from .messages import KEEP, ActorError, Actors, ActorSpec, Positions, SelfPlayStats, Weights

__all__ = ["ActorPool", "LocalActors"]


class LocalActors(Actors):
    """One actor in this process, behind the :class:`Actors` interface."""

    def __init__(self, spec: ActorSpec) -> None:
        self.actor = Actor(spec)
        self.count = 1

    def configure(self, generation: int, weights: Weights, resign_threshold: float | None, pairings: Any) -> None:
        """Install ``weights`` (and ``resign_threshold`` and ``pairings``, if given)."""
        self.actor.set_weights(generation, weights)
        if resign_threshold is not None:
            self.actor.set_resign_threshold(resign_threshold)
        if pairings is not KEEP:
            self.actor.set_pairings(pairings)

    def gather(self, num_positions: int, should_stop: Callable[[], bool] | None,
               on_progress: Callable[[SelfPlayStats], None] | None) -> tuple[Positions, SelfPlayStats]:
        """Play until ``num_positions`` positions are collected."""
        return self.actor.play(num_positions, should_stop, on_progress)

    def close(self) -> None:
        pass


def _worker(conn: Connection, spec: ActorSpec, source: Any = None, nice: int = 0) -> None:
    """An actor process: answers messages until ("stop",), or until its parent is gone. A play
    call ends early when a message waits (abort, stop, or new weights: the positions of the old
    ones come first). ``source``: the evaluator this actor always runs, whatever weights arrive
    (the client half of an inference server's channel, or a fixed evaluator; the weights then
    only say the generation); None: it runs the weights it is sent. ``nice``: its niceness."""
    # Ctrl-C and SIGTERM are the driver's to handle: it stops the actors after saving its work.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if nice:
        os.nice(nice)
    parent = os.getppid()
    try:
        actor = Actor(spec)
        if source is not None and not callable(source):  # a channel to the inference server
            from .inference_server import RemoteEvaluator

            source = RemoteEvaluator(source)
        while True:
            message = conn.recv()
            if message[0] == "stop":
                break
            if message[0] == "weights":
                if source is None:
                    actor.set_weights(message[1], message[2])
                else:
                    actor.set_evaluator(message[1], source)
            elif message[0] == "resign_threshold":
                actor.set_resign_threshold(message[1])
            elif message[0] == "pairings":
                actor.set_pairings(message[1])
            elif message[0] == "play":  # ("play", num_positions[, seconds])
                deadline = time.monotonic() + (message[2] if len(message) > 2 else math.inf)

                def interrupted() -> bool:
                    if os.getppid() != parent:  # the driver died (SIGKILL): nobody will read
                        raise SystemExit(0)
                    return conn.poll() or time.monotonic() >= deadline

                positions, stats = actor.play(
                    message[1], interrupted, lambda s: conn.send(("progress", s.to_dict()))
                )
                conn.send(("positions", actor.generation, positions, stats.to_dict()))
            # ("abort",) between plays: nothing to abort
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        pass
    except BaseException:
        try:
            conn.send(("error", traceback.format_exc()))
        except (OSError, ValueError):
            pass
    finally:
        conn.close()


class ActorPool(Actors):
    """``count`` actor processes (multiprocessing ``spawn``), actor ``i`` seeded ``seed + i``."""

    def __init__(self, spec: ActorSpec, count: int, sources: list | None = None, nice: int = 0) -> None:
        """``sources[i]``: what actor ``i`` evaluates with instead of the weights (see
        ``_worker``); ``nice``: the actors' niceness."""
        if count < 1:
            raise ValueError(f"an actor pool needs at least one actor, got {count}")
        context = multiprocessing.get_context("spawn")
        self.game = games.make(spec.game, **spec.game_options)
        self.count = count
        self.connections: list[Connection] = []
        self.processes = []
        for i in range(count):
            ours, theirs = context.Pipe()
            spec_i = ActorSpec(**{**{f.name: getattr(spec, f.name) for f in fields(spec)}, "seed": spec.seed + i})
            source = sources[i] if sources else None
            process = context.Process(target=_worker, args=(theirs, spec_i, source, nice), name=f"selfplay-actor-{i}",
                                      daemon=True)
            process.start()
            theirs.close()
            self.connections.append(ours)
            self.processes.append(process)

    def configure(self, generation: int, weights: Weights, resign_threshold: float | None, pairings: Any) -> None:
        """Send ``weights`` (and ``resign_threshold`` and ``pairings``, if given) to every actor."""
        for i in range(self.count):
            self._send(i, ("weights", generation, weights))
            if resign_threshold is not None:
                self._send(i, ("resign_threshold", resign_threshold))
            if pairings is not KEEP:
                self._send(i, ("pairings", pairings))

    def gather(self, num_positions: int, should_stop: Callable[[], bool] | None,
               on_progress: Callable[[SelfPlayStats], None] | None) -> tuple[Positions, SelfPlayStats]:
        """Ask every actor for its share of ``num_positions``, and gather the answers. When
        ``should_stop()`` turns true, actors are told to return what they have."""
        share = -(-num_positions // self.count)
        for i in range(self.count):
            self._send(i, ("play", share))
        pending = {conn: i for i, conn in enumerate(self.connections)}
        progress = [SelfPlayStats() for _ in self.connections]
        parts: list[Positions] = []
        total = SelfPlayStats()
        aborted = False
        while pending:
            if not aborted and should_stop is not None and should_stop():
                for i in pending.values():
                    self._send(i, ("abort",))
                aborted = True
            for conn in wait(list(pending), timeout=0.2):
                i = pending[conn]
                try:
                    message = conn.recv()
                except EOFError:
                    raise self._failure(i) from None
                if message[0] == "error":
                    raise ActorError(f"actor {i} failed:\n{message[1]}")
                if message[0] == "progress":
                    progress[i] = SelfPlayStats(**message[1])
                elif message[0] == "positions":
                    _, _, positions, stats = message
                    parts.append(positions)
                    total = total.merge(stats)
                    progress[i] = SelfPlayStats(**stats)
                    del pending[conn]
            if on_progress is not None:
                merged = SelfPlayStats()
                for p in progress:
                    merged = merged.merge(p)
                merged.seconds = max(p.seconds for p in progress)  # wall-clock, as the total's below
                on_progress(merged)
        # Seconds are wall-clock: actors play side by side, so their sum is not the time taken.
        total.seconds = max((p.seconds for p in progress), default=0.0)
        total.evaluator_seconds /= self.count
        return Positions.concatenate(parts, self.game), total

    def _send(self, i: int, message: tuple) -> None:
        try:
            self.connections[i].send(message)
        except OSError:  # the actor is gone; it may have said why
            raise self._failure(i) from None

    def _failure(self, i: int) -> ActorError:
        conn = self.connections[i]
        try:
            while conn.poll(1.0):
                message = conn.recv()
                if message[0] == "error":
                    return ActorError(f"actor {i} failed:\n{message[1]}")
        except (EOFError, OSError):
            pass
        self.processes[i].join(timeout=1)
        return ActorError(f"actor {i} died (exit code {self.processes[i].exitcode})")

    def close(self) -> None:
        """Stop every actor (they finish their current message first), then reap them."""
        self._request_stop()
        self._reap()

    def _request_stop(self) -> None:
        for conn in self.connections:
            try:
                conn.send(("stop",))
            except (OSError, ValueError):
                pass

    def _reap(self) -> None:
        """Wait for every actor process to exit (killing what has not within seconds), and close
        the pipes."""
        for process in self.processes:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)
        for conn in self.connections:
            conn.close()

