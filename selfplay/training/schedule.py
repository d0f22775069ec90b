"""How a generation's self-play and learning share the machine: steps 1-3 of a generation
(selfplay.training.trainer), as one of two strategies chosen once, when the trainer is built.

**Alternating** (:class:`Alternating`, the default). Self-play and learning take turns, each with
every core. A generation is then a clean unit: one network made all its games, the checkpoint
after it holds the network and exactly the data it was trained on, and a resumed run continues
from that boundary. The price is that the learner idles during self-play and the actors during
learning.

**Overlapped** (:class:`Overlapped`, ``cluster.overlap``). The two run at once: the actors stream
positions while the learner learns. On a Ray cluster the actors have machines of their own; on a
GPU one inference process serves every actor process (selfplay.training.inference_server); on two
CPU cores, where a small network's learning leaves a core half idle, Connect Four's float32 small
preset makes a third more positions this way (docs/training.md, docs/ray.md).

Each strategy's :meth:`~Alternating.play_and_learn` returns ``(stats, losses, train seconds,
(policy lag, max lag))``, or None after a stop before anything was learned.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from .messages import SelfPlayStats
from .prefetch import prefetched

__all__ = ["Alternating", "Overlapped", "schedule_for"]


class Alternating:
    """Steps 1-3 in turn: the actors play a generation's positions with the current network,
    then the learner takes the replay ratio's steps."""

    def play_and_learn(self, trainer: Any, progress: Any):
        config, state = trainer.config, trainer.state
        # 1. self-play with the current network; stops early on a stop request or the end of the budget
        positions, stats = trainer.actors.collect(
            state.generation,
            trainer._actor_weights(),
            config.selfplay.positions_per_generation,
            should_stop=lambda: trainer.stop() or trainer._time_up(),
            on_progress=progress.selfplay,
            resign_threshold=state.resign_threshold,
            pairings=trainer.pairings,
        )
        progress.selfplay(stats)
        # 2. replay, and the resignation threshold for the next games
        fresh = self._take(trainer, positions, stats, state.generation)
        trainer._last_stats = stats
        if trainer.stop():  # keep what was played
            return None
        # 3. learn
        start = time.monotonic()
        learner = trainer.learner
        steps = learner.steps_for(fresh) if len(trainer.buffer) >= config.learner.min_positions else 0
        with prefetched(trainer.buffer, steps, trainer.device) as batches:  # sampled ahead on a thread on CUDA
            losses = learner.train_steps(batches, steps, trainer.rng, trainer._progress_fraction(), trainer.stop)
        return stats, losses, time.monotonic() - start, (0.0, 0)

    @staticmethod
    def _take(trainer: Any, positions: Any, stats: SelfPlayStats, generation: int) -> int:
        """Step 2: the learner's positions into the buffer, the counters, and the resignation
        threshold for the next games. The positions of opponents that learn too (league games
        between learners) wait in ``trainer.shared`` for their owners. Returns the positions to
        learn from now: these, and those given by ``trainer.receive`` since."""
        own = positions.own()
        if len(own):
            trainer.buffer.add(own.obs, own.policy, own.value, generation=generation)
        names = trainer.pairings.names if len(own) < len(positions) else ()
        trainer.shared = {name: positions.select(positions.owner == k + 1) for k, name in enumerate(names)
                          if (positions.owner == k + 1).any()}
        trainer.state.games += stats.games
        trainer.state.positions += stats.positions
        trainer.record_resign_samples(stats.resign_samples)
        fresh, trainer._received = len(own) + trainer._received, 0
        return fresh


class Overlapped:
    """Steps 1-3 at once (``cluster.overlap``; Ray actors, or local ones streaming,
    selfplay.training.streaming): the actors play on without pause, with the newest weights they
    have, and what they finish goes into the buffer as it arrives. The learner takes a
    generation's steps (``steps_for(positions_per_generation)``) meanwhile, but never more than
    ``learner.samples_per_position`` samples per position arrived in the generation: a bounded
    replay ratio. When the actors are slower, the learner waits for them; when faster, more
    positions arrive and each is sampled less. The generation ends when its positions have
    arrived and its steps are taken; the next weights then go out (one ``ray.put``). A
    position's policy lag: generations between the weights that played it and the learner's when
    it arrived."""

    def play_and_learn(self, trainer: Any, progress: Any):
        config, state, actors, learner = trainer.config, trainer.state, trainer.actors, trainer.learner
        actors.broadcast(state.generation, trainer._actor_weights(), state.resign_threshold, trainer.pairings)
        target = config.selfplay.positions_per_generation
        stats, arrived, lags = SelfPlayStats(), 0, []
        sums, steps_done, train_seconds = np.zeros(3), 0, 0.0
        losses = {"loss": math.nan, "policy_loss": math.nan, "value_loss": math.nan, "lr": math.nan, "steps": 0}
        start = time.monotonic()
        while not trainer.stop() and not trainer._time_up():
            ready = len(trainer.buffer) >= config.learner.min_positions
            allowed = min(learner.steps_for(arrived), learner.steps_for(target)) if ready else 0  # the bound
            if arrived >= target and (steps_done >= learner.steps_for(target) or not ready):
                break
            # 1-2. what the actors finished, into the buffer (waiting for it only when the learner must)
            # (a call returns after chunk_seconds, or once its actor has its share of a generation)
            for delivery in actors.poll(0.0 if steps_done < allowed else 0.1, num_positions=-(-target // actors.count)):
                arrived += self._arrive(trainer, delivery, lags)
                stats = stats.merge(delivery.stats)
            progress.streamed()
            # 3. learn, a few steps at a time, so that the stream keeps flowing
            if steps_done < allowed:
                t = time.monotonic()
                with prefetched(trainer.buffer, min(4, allowed - steps_done), trainer.device) as batches:
                    part = learner.train_steps(batches, min(4, allowed - steps_done), trainer.rng,
                                               trainer._progress_fraction(), trainer.stop)
                train_seconds += time.monotonic() - t
                if part["steps"]:
                    sums += part["steps"] * np.array([part["loss"], part["policy_loss"], part["value_loss"]])
                    steps_done += part["steps"]
                    losses.update(lr=part["lr"], steps=steps_done)
        if steps_done:
            losses.update(zip(("loss", "policy_loss", "value_loss"), (sums / steps_done).tolist()))
        stats.seconds = time.monotonic() - start
        stats.evaluator_seconds /= actors.count
        trainer.record_resign_samples(stats.resign_samples)
        trainer._last_stats = stats
        if not steps_done and trainer.stop():
            return None
        lag = (float(np.average([g for g, _ in lags], weights=[n for _, n in lags])) if lags else math.nan,
               max((g for g, _ in lags), default=0))
        return stats, losses, train_seconds, lag

    @staticmethod
    def _arrive(trainer: Any, delivery: Any, lags: list) -> int:
        """Step 2: one delivery of the stream into the buffer, tagged with the generation that
        played it, and its games into the run's counts; returns its positions."""
        positions = delivery.positions
        if len(positions):
            trainer.buffer.add(positions.obs, positions.policy, positions.value, generation=delivery.generation)
            lags.append((trainer.state.generation - delivery.generation, len(positions)))
        trainer.state.games += delivery.stats.games
        trainer.state.positions += delivery.stats.positions
        return len(positions)


def schedule_for(cluster: Any) -> Alternating | Overlapped:
    """The strategy of a run with ``cluster`` (a ClusterConfig): overlapped with ``cluster.overlap``."""
    return Overlapped() if cluster.overlap else Alternating()
