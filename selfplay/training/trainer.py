"""``selfplay train GAME``: AlphaZero training by self-play, one generation at a time.

One generation, read top to bottom in :meth:`Trainer.generation`::

    1. self-play   every actor plays with the current network until the generation's positions
                   are in (actors are processes, one per core, or Ray actors on a cluster; which
                   ones: selfplay.training.pool)
    2. replay      the positions go into the ring buffer (selfplay.training.replay)
    3. learn       the learner takes replay-ratio many optimizer steps on it (selfplay.training.learner)
    4. rate        every eval.every generations: matches against fixed baselines and earlier
                   generations, Elo over all games so far (selfplay.training.rating)
    5. record      a metrics row (CSV, TensorBoard), then a checkpoint with the replay buffer
                   (selfplay.model.checkpoint) when run.checkpoint_seconds have passed since the last
                   one, the generation was rated, or the run ends; plots after ratings

Steps 1-3 alternate (self-play, then learning, each with every core) or, with ``cluster.overlap``,
run at once: a strategy chosen once when the trainer is built (selfplay.training.schedule).

Run directory (``--run-dir``, default ``runs/GAME-DATE-TIME``)::

    config.json              the full TrainConfig (every field), read back by --resume
    ckpt-000012.json         checkpoint sidecar (game, network, step = generation, metrics, run state)
    ckpt-000012.safetensors  weights and optimizer state; the last run.keep_last and the best-rated kept
    replay.npz               the replay buffer, saved with every checkpoint
    ratings.json             every rating match and the fitted Elo (selfplay.evaluation.ratings.RatingTable)
    metrics.csv, tb/         one row / event set per generation (selfplay.training.metrics)
    losses.png elo.png speed.png (errors.png: Connect Four error rates by stage, when measured)
    final.json               the final matches against the baselines

Time. ``run.minutes`` is wall-clock of the whole run (self-play, learning, rating), counting the
time of earlier sessions of a resumed run; ``selfplay train`` counts each session from the
command's start, so its imports and set-up are part of the budget. The final matches come after
the budget. A
generation under way when the budget ends stops its self-play early and trains on what it has.

Interruption. Ctrl-C or SIGTERM stops the current phase, saves a checkpoint with the replay
buffer and exits. A second Ctrl-C quits at once, and the run resumes from the last checkpoint. A
SIGKILL loses at most the work since the last checkpoint. Checkpoint writes are atomic, so it
can never lose a checkpoint or the buffer.

Resume (selfplay.training.resume) reads before it writes, and leaves the directory as it was when
anything is wrong. The learning-rate schedule continues from the checkpoint's ``lr_progress`` over
the rest of the (perhaps changed) budget.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

import games
from games.core import Game

from .budget import Budget
from .messages import KEEP, ActorSpec, Weights
from .pool import actor_count, actors_label, learner_threads, make_actors
from .progress import Progress, finite
from .resign import record_resign_samples
from .resume import load_run
from .schedule import schedule_for
from .state import CONFIG_FILE, RunState, StopRequest, TrainError
from .weights import export_weights
from ..config import TrainConfig, available_cores, describe

__all__ = ["Trainer", "resolve_device", "train"]

PLOT_EVERY_SECONDS = 60.0  # plots take a second or two to draw: after a rating, at most this often
#: Replay positions that calibrate the int8 network's activation ranges (run.inference int8)
INT8_CALIBRATION = 256


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise TrainError("--device cuda: torch sees no CUDA device (use --device cpu or auto)")
    return device


class Trainer:
    """One session of a run: builds everything, then :meth:`run` loops over generations."""

    def __init__(self, config: TrainConfig, run_dir: str | Path, resume: bool = False, stop: StopRequest | None = None,
                 log: Callable[[str], None] | None = None, initial_state: dict | None = None,
                 started: float | None = None) -> None:
        """``initial_state``: a state dict the network of a new run starts from instead of its
        seeded initialization (a league learner starts from the league's seed network).
        ``started``: the ``time.monotonic()`` this session's budget counts from (default: when
        the trainer is ready; ``selfplay train`` passes the command's start)."""
        import torch

        from ..evaluation.ratings import RatingTable
        from ..model.network import build_network
        from .learner import Learner
        from .metrics import MetricsLog
        from .rating import Ratings
        from .replay import ReplayBuffer

        self.config = config
        self.run_dir = Path(run_dir)
        self.stop = stop or StopRequest()
        self.log = log or (lambda text: print(text, file=sys.stderr, flush=True))
        self.game: Game = games.make(config.game, **config.game_options)
        self.device = resolve_device(config.run.device)
        self.cores = available_cores()
        torch.set_num_threads(config.learner.threads or learner_threads(config, self.cores))
        self.state = RunState()
        table = RatingTable(anchor="random" if "random" in config.eval.opponent_specs else None)

        torch.manual_seed(config.run.seed)
        self.model = build_network(config.net, self.game.obs_shape, self.game.num_actions)
        if initial_state is not None:  # a checkpoint, when resuming from one, replaces it
            self.model.load_state_dict(initial_state)
        self.learner = Learner(self.model, config.learner, self.device)
        self.buffer = ReplayBuffer.for_game(self.game, config.learner.buffer_capacity)
        self.rng = np.random.default_rng(np.random.SeedSequence(config.run.seed))

        self.state.resign_threshold = config.selfplay.resign_value
        # reads only: nothing in the run directory changes until all of it checks out
        resumed = load_run(self.run_dir, config, self.game, table.anchor, self.log) if resume else None
        if resumed is not None:
            self.model.load_state_dict(resumed.model_state)
            if resumed.optimizer_state is not None:
                self.learner.load_state_dict(resumed.optimizer_state)
            if resumed.rng_state:
                self.rng.bit_generator.state = resumed.rng_state
            self.state, table, self.buffer = resumed.state, resumed.table, resumed.buffer
        self.ratings = Ratings(self.game, config, self.run_dir, self.device, self.cores, self.log, table)
        if resume:
            self.ratings.reload(self.state.rated, self.model, self._export)
        if self.state.resign_threshold is None:  # a checkpoint from before the threshold was saved
            self.state.resign_threshold = config.selfplay.resign_value
        self.session_start = time.monotonic() if started is None else min(started, time.monotonic())
        self.elapsed_before = self.state.elapsed
        # The learning rate's schedule continues from where the checkpoint left it
        self.budget = Budget(config.run, self.elapsed_before, self.state.generation, self.state.lr_progress)
        self.metrics = MetricsLog(self.run_dir, config.eval.opponent_specs, resume_from=self.state.generation)
        if self.metrics.notice:
            self.log(self.metrics.notice)
        self.schedule = schedule_for(config.cluster)  # steps 1-3: alternating, or overlapped
        self.actors = None
        self.pairings: Any = KEEP  # selfplay.training.messages.Pairings for league games; KEEP: plain self-play
        self.shared: dict = {}  # opponent name -> Positions of its own moves in the last generation (league)
        self._received = 0  # positions given by receive() since the last generation learned
        self._plotted = -math.inf  # when the plots were last drawn (monotonic seconds)
        self._plotted_generation = -1  # and the generation they were drawn after
        self._saved = time.monotonic()  # when the last checkpoint was written (or loaded)
        self._saved_generation = self.state.generation
        self._weights_cache: tuple[int, Any] = (-1, None)  # (generation, Weights)
        self._int8_cache: tuple[int, Any] = (-1, None)  # (generation, Weights quantized for the actors)
        self._last_stats = None  # the latest generation's self-play stats

    @property
    def table(self):
        """The run's :class:`selfplay.evaluation.ratings.RatingTable`: every rating match so far."""
        return self.ratings.table

    # ------------------------------------------------------------------ the loop
    def run(self) -> int:
        """Train until the budget is spent or a stop is requested; returns the final generation."""
        config = self.config
        self.start()
        if self._budget_spent():
            spent = self.budget.text(self.elapsed(), self.state.generation)
            self.log(f"{self.run_dir}: the budget is spent ({spent}); raise --minutes or --generations to go on")
            return self.state.generation
        num_actors = self.num_actors()
        self.actors = make_actors(self.actor_spec(), num_actors, config.cluster, log=self.log)
        count = self.actors.count if num_actors else 0
        self.log(f"{describe(config)}; {count or 'no'} {actors_label(config.cluster, count)}, "
                 f"learning on {self.device}; run directory {self.run_dir}")
        if self.int8_is_slow():
            self.log("run.inference int8: this CPU has no 8-bit dot products (VNNI), where int8 evaluates at about "
                     "half the float32 speed; --run.inference auto is faster here")
        progress = Progress(self, enabled=config.run.progress)
        try:
            while not self.stop() and not self._budget_spent():
                self._generation(progress)
            if self._saved_generation != self.state.generation:  # a stop between the check and the loop's
                self._save()
        finally:
            progress.close()
            self.actors.close()
            self.metrics.close()
        if self.state.rated and self._plotted_generation != self.state.generation:  # not drawn twice
            self._plot()
        return self.state.generation

    def start(self) -> None:
        """Before the first generation: a new run saves generation 0, the untrained network, so
        that it can resume from its first minute."""
        if self.state.generation == 0 and not self._has_checkpoint():
            self._save()

    def num_actors(self) -> int:
        """Actor processes for this run (selfplay.training.pool.actor_count)."""
        return actor_count(self.config, self.device)

    def actor_spec(self) -> ActorSpec:
        """The :class:`selfplay.training.messages.ActorSpec` of this session's actors."""
        config = self.config
        return ActorSpec(
            game=config.game,
            game_options=dict(config.game_options),
            search=config.search,
            selfplay=config.selfplay,
            # a fresh stream per session: a resumed run does not replay the games it already played
            seed=int(np.random.SeedSequence([config.run.seed, self.state.generation, self.state.games, 1]).generate_state(1)[0]),
            device=self.device,
        )

    def generation(self, progress: "Progress | None" = None):
        """One generation (steps 1-5) with the actors in ``self.actors`` (a league shares one pool
        among its learners and sets ``self.pairings``); returns its self-play stats."""
        return self._generation(progress or Progress(self, enabled=False))

    def close(self) -> None:
        """Close the files a session keeps open (``run`` does this itself)."""
        self.metrics.close()

    def final_report(self) -> list[dict[str, Any]]:
        """Matches of the final network against ``eval.final_opponents``, printed and saved to
        ``final.json``; the results as dicts."""
        return self.ratings.final_report(self.state.generation, self._weights)

    def _generation(self, progress: "Progress"):
        """Steps 1-5 of the module docstring, once; returns the self-play stats."""
        config, state = self.config, self.state
        started = time.monotonic()
        threshold = state.resign_threshold  # in force for this generation's games
        # 1-3. self-play, replay, learning: in turn, or overlapped
        played = self.schedule.play_and_learn(self, progress)
        if played is None:  # stopped before learning: the network is unchanged, so it is the same generation
            self._save()
            return self._last_stats
        stats, losses, train_seconds, lag = played
        state.generation += 1
        progress.trained(losses)
        # 4. rate
        eval_seconds, rating, scores = 0.0, None, {}
        rate_now = config.eval.every and state.generation % config.eval.every == 0
        if rate_now and not self.stop():
            start = time.monotonic()
            rating, scores = self.ratings.rate(state.generation, self._weights(), state)
            eval_seconds = time.monotonic() - start
        # 5. record
        from .metrics import generation_row

        resign_threshold = threshold if config.selfplay.resign_value > -1 else math.nan
        row = generation_row(state, len(self.buffer), self.elapsed(), stats, losses, train_seconds, eval_seconds, rating,
                             resign_threshold)
        row.update(policy_lag=lag[0], policy_lag_max=lag[1], learner_share=train_seconds / max(time.monotonic() - started, 1e-9))
        self.metrics.log(row, scores)
        # Saving the buffer takes time in proportion to its size, so checkpoints are spaced by
        # time, except where one is needed: rated generations (ratings refer to their weights)
        # and the last one.
        due = time.monotonic() - self._saved >= config.run.checkpoint_seconds
        if due or rating is not None or self.stop() or self._budget_spent():
            self._save(metrics={k: row[k] for k in ("loss", "policy_loss", "value_loss", "elo") if finite(row.get(k))})
        if rating is not None:
            if time.monotonic() - self._plotted >= PLOT_EVERY_SECONDS:
                self._plot()
            progress.rated(rating, scores)
        return stats

    # ------------------------------------------------------------------ positions in
    def receive(self, positions) -> None:
        """Positions of this learner's own moves, played on another learner's turn (a league game
        between two current members). They join the buffer now and add to the next generation's
        learning steps, as if played in it."""
        if len(positions):
            self.buffer.add(positions.obs, positions.policy, positions.value, generation=self.state.generation)
            self.state.positions += len(positions)
            self._received += len(positions)

    def record_resign_samples(self, samples: list) -> None:
        """Played-out games' record lows into the run's state, and the resignation threshold of
        the next games from them (selfplay.training.resign)."""
        record_resign_samples(self.state, self.config.selfplay, samples)

    # ------------------------------------------------------------------ the network out
    def weights(self):
        """The current network as a :class:`selfplay.training.messages.Weights` message (a league's
        other learners play against it)."""
        return self._weights()

    def _weights(self):
        """The current network as a message for the actors (ONNX on the CPU, safetensors for
        torch), made once per generation."""
        if self._weights_cache[0] != self.state.generation:
            self._weights_cache = (self.state.generation, self._export())
        return self._weights_cache[1]

    def int8_is_slow(self) -> bool:
        """Whether the actors were asked for int8 on a CPU where it is slower than float32."""
        from ..model.inference import int8_is_fast

        return self.config.run.inference == "int8" and str(self.device) == "cpu" and not int8_is_fast()

    def _actor_weights(self):
        """What the actors play with: :meth:`_weights`, or with ``run.inference int8`` those
        quantized to int8, calibrated on positions from the replay buffer (float32 until it holds
        :data:`INT8_CALIBRATION` of them)."""
        weights = self._weights()
        if self.config.run.inference != "int8" or weights.format != "onnx" or len(self.buffer) < INT8_CALIBRATION:
            return weights
        if self._int8_cache[0] != self.state.generation:
            from ..model.inference import int8_onnx

            rng = np.random.default_rng([self.config.run.seed, self.state.generation, 8])
            rows = rng.choice(len(self.buffer), INT8_CALIBRATION, replace=False)
            self._int8_cache = (self.state.generation, Weights("onnx", int8_onnx(weights.data, self.buffer.obs[rows])))
        return self._int8_cache[1]

    def _export(self):
        # an inference actor on a GPU runs torch, which takes safetensors
        torch_server = getattr(getattr(self, "actors", None), "needs_torch_weights", False)
        return export_weights(self.model, self.game, "cuda" if torch_server else self.device,
                              "torch" if torch_server else self.config.run.inference)

    # ------------------------------------------------------------------ records
    def _save(self, metrics: dict[str, float] | None = None) -> None:
        from ..model.checkpoint import save_checkpoint

        every = 60 * self.config.run.keep_every_minutes
        elapsed = self.elapsed()
        if (every and self._saved_generation < self.state.generation and self._saved_generation not in self.state.milestones
                and elapsed // every > self.state.elapsed // every):
            # the previous checkpoint was the last of its interval: the run's state at that minute mark
            self.state.milestones.append(self._saved_generation)
        self._saved, self._saved_generation = time.monotonic(), self.state.generation
        self.state.elapsed = elapsed
        self.state.rng = self.rng.bit_generator.state
        self.state.replay_added = self.buffer.total_added
        self.state.lr_progress = self.budget.lr_progress(self.budget.position(self.state.elapsed, self.state.generation))
        best = self.best_rated_generation()
        save_checkpoint(
            self.run_dir,
            self.state.generation,
            self.model,
            self.learner.state_dict(),
            meta={"run": self.state.to_dict(), "ratings": self.table.matches, "config": self.config.to_dict()},
            game=self.game,
            metrics=metrics,
            replay=self.buffer,
            keep_last=self.config.run.keep_last,
            keep_steps=self.state.milestones if best is None else [*self.state.milestones, best],
        )

    def best_rated_generation(self) -> int | None:
        """The generation, saved or being saved, that the run's ratings rate highest now, or None
        before any is rated. Every rating refits all generations on all games so far, so only the
        current fit compares them: the Elo a checkpoint recorded when it was saved came from an
        earlier fit with fewer games (in one 20-minute run, generation 100 recorded 870 at minute 8
        and the final fit put it at 646, 145 below the last rated generation)."""
        from ..model.checkpoint import checkpoints_by_step

        ratings = self.table.ratings()
        saved = {*checkpoints_by_step(self.run_dir), self.state.generation}
        rated = [(ratings[f"gen{g}"], g) for g in saved if math.isfinite(ratings.get(f"gen{g}", math.nan))]
        return max(rated)[1] if rated else None

    def _plot(self) -> None:
        from .metrics import plot_run

        self._plotted, self._plotted_generation = time.monotonic(), self.state.generation
        ratings, intervals = self.table.ratings(), self.table.intervals()
        generations = {int(k[3:]): (v, *intervals.get(k, (math.nan, math.nan))) for k, v in ratings.items()
                       if k.startswith("gen") and k[3:].isdigit()}
        plot_run(self.run_dir, {k: v for k, v in ratings.items() if not k.startswith("gen")}, generations)

    def _has_checkpoint(self) -> bool:
        from ..model.checkpoint import latest_checkpoint

        return latest_checkpoint(self.run_dir) is not None

    # ------------------------------------------------------------------ budget
    def elapsed(self) -> float:
        """Seconds of the run so far, earlier sessions included."""
        return self.elapsed_before + time.monotonic() - self.session_start

    def _time_up(self) -> bool:
        return self.budget.time_up(self.elapsed())

    def _budget_spent(self) -> bool:
        return self.budget.spent(self.elapsed(), self.state.generation)

    def _progress_fraction(self) -> float:
        """The schedule's progress for the generation being learned, counted as done: the last
        generation of a generation budget learns at the schedule's end value."""
        return self.budget.lr_progress(self.budget.position(self.elapsed(), self.state.generation + 1))

def train(config: TrainConfig, run_dir: str | Path, resume: bool = False, final_report: bool = True,
          stop: StopRequest | None = None, started: float | None = None) -> Trainer:
    """Run (or resume) the run ``config`` describes in ``run_dir``; returns the finished trainer.
    A new run writes ``config.json`` first. ``started``: see :class:`Trainer`."""
    from .ray_cluster import require_ray

    run_dir = Path(run_dir)
    require_ray(config.cluster)  # Ray missing, or a cluster that does not answer: one line, before anything is written
    if not resume:
        from ..model.checkpoint import atomic_write, latest_checkpoint

        if (run_dir / CONFIG_FILE).exists() or latest_checkpoint(run_dir) is not None:
            raise TrainError(f"{run_dir} already holds a run: resume it with --resume {run_dir}, or choose another --run-dir")
        run_dir.mkdir(parents=True, exist_ok=True)
        with atomic_write(run_dir / CONFIG_FILE) as f:
            f.write(json.dumps(config.to_dict(), indent=1).encode())
    with (stop or StopRequest()) as stop_request:
        trainer = Trainer(config, run_dir, resume=resume, stop=stop_request, started=started)
        trainer.run()
        if stop_request():
            trainer.log(f"stopped at generation {trainer.state.generation} ({trainer.elapsed() / 60:.1f} min); "
                        f"checkpoint saved. Resume with: selfplay train --resume {run_dir}")
        elif final_report:
            trainer.final_report()
            from ..model.checkpoint import checkpoints_by_step, latest_checkpoint

            latest = latest_checkpoint(run_dir)
            best = checkpoints_by_step(run_dir).get(trainer.best_rated_generation())
            trainer.log(f"final checkpoint: {latest}" + (f"; best rated: {best}" if best and best != latest else ""))
            trainer.log(f"play it: selfplay play --agent {run_dir}; analyze: selfplay analyze --checkpoint {run_dir}")
    return trainer
