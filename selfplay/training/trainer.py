"""``selfplay train GAME``: AlphaZero training by self-play, in alternating generations.

One generation, read top to bottom in :meth:`Trainer.run`::

    1. self-play   every actor plays with the current network until the generation's positions
                   are in (actors are processes, one per core, or Ray actors on a cluster; see
                   selfplay.training.actor and selfplay.training.ray_actors)
    2. replay      the positions go into the ring buffer (selfplay.training.replay)
    3. learn       the learner takes replay-ratio many optimizer steps on it (selfplay.training.learner)
    4. rate        every eval.every generations: matches against fixed baselines and earlier
                   generations, Elo by Bradley-Terry over all games so far (selfplay.evaluation.matches, .elo)
    5. record      a metrics row (CSV, TensorBoard), then a checkpoint with the replay buffer
                   (selfplay.model.checkpoint) when run.checkpoint_seconds have passed since the last
                   one, the generation was rated, or the run ends; plots after ratings

**Alternating, not concurrent.** Self-play and learning take turns, each with every core. On a
small CPU machine (the target of ``make train``: two cores) a learner running beside the actors
would take a core from self-play, and self-play is where the time goes. Alternating also makes a
generation a clean unit: one network made all its games, the checkpoint after it holds the
network and exactly the data it was trained on, and a resumed run continues from that boundary.
The price is that the learner idles during self-play and the actors during learning. On a GPU,
where learning is cheap next to self-play, that price is small too. On a Ray cluster, where the
actors have machines of their own, or on a GPU (one inference process for every actor process,
selfplay.training.inference_server), ``cluster.overlap`` runs the two at once
(:meth:`Trainer._play_overlapped`; docs/ray.md, docs/training.md).

Run directory (``--run-dir``, default ``runs/GAME-DATE-TIME``)::

    config.json              the full TrainConfig (every field), read back by --resume
    ckpt-000012.json         checkpoint sidecar (game, network, step = generation, metrics, run state)
    ckpt-000012.safetensors  weights and optimizer state; the last run.keep_last and the best-rated kept
    replay.npz               the replay buffer, saved with every checkpoint
    ratings.json             every rating match and the fitted Elo (selfplay.evaluation.elo.RatingTable)
    metrics.csv, tb/         one row / event set per generation (selfplay.training.metrics)
    losses.png elo.png speed.png (errors.png: Connect Four error rates by stage, when measured)
    final.json               the final matches against the baselines

Time. ``run.minutes`` is wall-clock of the whole run (self-play, learning, rating), counting the
time of earlier sessions of a resumed run. The final matches come after the budget. A
generation under way when the budget ends stops its self-play early and trains on what it has.

Interruption. Ctrl-C or SIGTERM stops the current phase, saves a checkpoint with the replay
buffer and exits. A second Ctrl-C quits at once, and the run resumes from the last checkpoint. A
SIGKILL loses at most the work since the last checkpoint. Checkpoint writes are atomic, so it
can never lose a checkpoint or the buffer.

Resume (``Trainer._resume``) reads before it writes: it checks the files a session rewrites,
takes the newest checkpoint that loads (saying which damaged ones it passed over), and cuts the
replay buffer back to that checkpoint's row count (``RunState.replay_added``): the buffer is
written before the checkpoint's files, so after a crash, or a fallback, it can be ahead. Anything
wrong is one line (TrainError), and the directory is left as it was. The learning-rate schedule
continues from the checkpoint's ``lr_progress`` over the rest of the (perhaps changed) budget.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import re
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np

import games
from games.core import Game, GameError

from .prefetch import prefetched
from .progress import Progress, finite
from .state import RunState, StopRequest
from ..config import (
    RESUME_SAFE,
    ConfigError,
    TrainConfig,
    add_config_arguments,
    available_cores,
    describe,
    overrides_from_args,
    with_overrides,
)
from ..presets import PRESETS, preset

__all__ = ["Trainer", "TrainError", "add_arguments", "export_weights", "load_config", "main", "train"]

CONFIG_FILE = "config.json"
RATINGS_FILE = "ratings.json"
FINAL_FILE = "final.json"
BEST_METRIC = "elo"
PLOT_EVERY_SECONDS = 60.0  # plots take a second or two to draw: after a rating, at most this often
# Actor processes that ``num_actors -1`` starts on CUDA: each holds a CUDA context (about half a
# gigabyte), and on an H200 with 16 cores 15 of them made no more positions/s than 8.
CUDA_ACTORS = 8
#: Replay positions that calibrate the int8 network's activation ranges (run.inference int8)
INT8_CALIBRATION = 256


class TrainError(ValueError):
    """A run that cannot start or resume (bad directory, mismatched checkpoint): one line."""


def export_weights(model, game: Game, device: str, inference: str):
    """``model`` as a :class:`selfplay.training.actor.Weights` message for actors: ONNX on the CPU (unless
    ``inference`` is ``torch``), safetensors for torch otherwise."""
    from .actor import Weights

    if device == "cpu" and inference in ("auto", "onnx", "int8"):
        from ..model.inference import onnx_bytes

        with warnings.catch_warnings():  # the tracer's notes on shape checks, every export
            warnings.simplefilter("ignore")
            return Weights("onnx", onnx_bytes(model, game.obs_shape))
    from safetensors.torch import save as save_tensors

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    return Weights("safetensors", save_tensors(state), model.config.to_dict())


def checkpoint_weights(checkpoint, game: Game):
    """A loaded :class:`selfplay.model.checkpoint.Checkpoint`'s network as ONNX weights on the CPU:
    what an actor plays a fixed opponent with, and what :func:`selfplay.training.actor.evaluator_from_weights` runs."""
    return export_weights(checkpoint.build_model(), game, "cpu", "onnx")


def agent_weights(spec: str | Path, game: Game):
    """The network that the agent spec ``spec`` names, as :class:`selfplay.training.actor.Weights`
    an actor plays a fixed opponent with: whatever ``selfplay arena`` loads as a network (a run
    directory or checkpoint, an exported brain directory or its ``.onnx``, a bare evaluator
    ``.onnx``, ``pretrained``), after checking that it plays ``game``. A brain must have its
    value output (the actors search with it). One-line errors for anything else."""
    from export.contract import brain_paths, is_brain, read_manifest

    from ..evaluation.agents import pretrained_path
    from ..model.checkpoint import load_checkpoint
    from ..model.inference import load_brain_evaluator, load_evaluator
    from .actor import Weights

    text = str(spec).strip()
    path = pretrained_path(game) if text == "pretrained" else Path(os.path.expanduser(text))
    if is_brain(path):
        load_brain_evaluator(path, game)  # its game, sizes and value output, checked
        manifest = read_manifest(path)
        return Weights("brain", brain_paths(path)[0].with_name(manifest.model_file).read_bytes(), manifest.to_dict())
    if path.suffix == ".onnx":
        load_evaluator(path, game)  # an evaluator model (obs -> logits, value) of the game's shape
        return Weights("onnx", path.read_bytes())
    return checkpoint_weights(load_checkpoint(path, expect_game=game), game)


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise TrainError("--device cuda: torch sees no CUDA device (use --device cpu or auto)")
    return device


def load_config(run_dir: str | Path) -> TrainConfig:
    """The :class:`TrainConfig` saved in ``run_dir/config.json``."""
    path = Path(run_dir) / CONFIG_FILE
    if Path(run_dir).exists() and not Path(run_dir).is_dir():
        raise TrainError(f"{run_dir}: a file, not a run directory")
    if not Path(run_dir).is_dir():
        raise TrainError(f"{run_dir}: no such run directory")
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise TrainError(f"{run_dir}: not a run directory (no {CONFIG_FILE})") from None
    except (OSError, ValueError) as e:
        raise TrainError(f"{path}: unreadable config ({type(e).__name__}: {' '.join(str(e).split())})") from None
    if not isinstance(data, dict):
        raise TrainError(f"{path}: not a training config (a JSON {type(data).__name__}, not an object)")
    try:
        return TrainConfig.from_dict(data)
    except (ConfigError, TypeError, ValueError, AttributeError) as e:
        raise TrainError(f"{path}: not a usable training config ({' '.join(str(e).split())})") from None


class Trainer:
    """One session of a run: builds everything, then :meth:`run` loops over generations."""

    def __init__(self, config: TrainConfig, run_dir: str | Path, resume: bool = False, stop: StopRequest | None = None,
                 log: Callable[[str], None] | None = None, initial_state: dict | None = None) -> None:
        """``initial_state``: a state dict the network of a new run starts from instead of its
        seeded initialization (a league learner starts from the league's seed network)."""
        import torch

        from ..evaluation.elo import RatingTable
        from .learner import Learner
        from ..model.network import build_network
        from .replay import ReplayBuffer

        self.config = config
        self.run_dir = Path(run_dir)
        self.stop = stop or StopRequest()
        self.log = log or (lambda text: print(text, file=sys.stderr, flush=True))
        self.game: Game = games.make(config.game, **config.game_options)
        self.device = resolve_device(config.run.device)
        self.cores = available_cores()
        torch.set_num_threads(config.learner.threads or self.cores)
        self.state = RunState()
        self.table = RatingTable(anchor="random" if "random" in config.eval.opponent_specs else None)
        self.rated_weights: dict[int, Any] = {}  # generation -> Weights of recently rated networks

        torch.manual_seed(config.run.seed)
        self.model = build_network(config.net, self.game.obs_shape, self.game.num_actions)
        if initial_state is not None:  # a checkpoint, when resuming from one, replaces it
            self.model.load_state_dict(initial_state)
        self.learner = Learner(self.model, config.learner, self.device)
        self.buffer = ReplayBuffer.for_game(self.game, config.learner.buffer_capacity)
        self.rng = np.random.default_rng(np.random.SeedSequence(config.run.seed))

        self.state.resign_threshold = config.selfplay.resign_value
        if resume:  # reads only: nothing in the run directory changes until all of it checks out
            self._resume()
            self._reload_rated()
        if self.state.resign_threshold is None:  # a checkpoint from before the threshold was saved
            self.state.resign_threshold = config.selfplay.resign_value
        self.session_start = time.monotonic()
        self.elapsed_before = self.state.elapsed
        # The learning rate's schedule continues from where the checkpoint left it (see _lr_progress)
        self._lr_anchor = (self._budget_position(self.elapsed_before, self.state.generation), self.state.lr_progress)
        from .metrics import MetricsLog

        self.metrics = MetricsLog(self.run_dir, config.eval.opponent_specs, resume_from=self.state.generation)
        if self.metrics.notice:
            self.log(self.metrics.notice)
        self.actors = None
        self.pairings: Any = "keep"  # selfplay.training.actor.Pairings for league games; "keep": plain self-play
        self.shared: dict = {}  # opponent name -> Positions of its own moves in the last generation (league)
        self._received = 0  # positions given by receive() since the last generation learned
        self._plotted = -math.inf  # when the plots were last drawn (monotonic seconds)
        self._saved = time.monotonic()  # when the last checkpoint was written (or loaded)
        self._saved_generation = self.state.generation
        self._weights_cache: tuple[int, Any] = (-1, None)  # (generation, Weights)
        self._int8_cache: tuple[int, Any] = (-1, None)  # (generation, Weights quantized for the actors)
        self._milestones: dict[int, Any] = {}  # generation -> Weights of a checkpoint kept at a minute mark
        self._last_stats = None  # the latest generation's self-play stats
        self._solver_positions: list[dict] = []  # connect4 benchmark positions by set, each loaded when first needed

    # ------------------------------------------------------------------ resuming
    def _resume(self) -> None:
        """Load the newest usable checkpoint, falling back past damaged ones with a message, and
        a replay buffer that matches it; check the files a session rewrites. Reads only: raises
        TrainError (one line) and leaves the run directory as it was when anything is wrong."""
        from ..model.checkpoint import REPLAY_FILE, list_checkpoints
        from .replay import ReplayBuffer, ReplayError

        run_dir = self.run_dir
        self._check_run_files()
        sidecars = list_checkpoints(run_dir)
        replay_path = run_dir / REPLAY_FILE
        if not sidecars:
            if replay_path.exists() or self._metrics_rows():
                raise TrainError(f"cannot resume {run_dir}: it has no checkpoint, but a {REPLAY_FILE} or metrics "
                                 f"rows that a fresh start would overwrite")
            self.log(f"{run_dir}: no checkpoint yet; starting at generation 0")
            return
        problems = []
        for sidecar in reversed(sidecars):
            try:
                loaded = self._read_checkpoint(sidecar)
                break
            except TrainError as e:
                problems.append(str(e))
        else:
            raise TrainError(f"cannot resume {run_dir}: no usable checkpoint ({'; '.join(problems)})")
        state, model_state, optimizer_state, rng_state, table = loaded
        if problems:
            self.log(f"{'; '.join(problems)}; resuming from {sidecar.name} instead (generation {state.generation})")
        if not replay_path.exists():
            raise TrainError(f"cannot resume {run_dir}: its replay buffer {REPLAY_FILE} is missing")
        try:
            buffer = ReplayBuffer.load(replay_path, self.config.learner.buffer_capacity, self.game.version_tag)
        except ReplayError as e:
            raise TrainError(f"cannot resume {run_dir}: {' '.join(str(e).split())}") from None
        expected = state.replay_added if state.replay_added >= 0 else state.positions  # older checkpoints
        if buffer.total_added < expected:
            raise TrainError(f"cannot resume {run_dir}: {REPLAY_FILE} holds {buffer.total_added} positions ever added, "
                             f"fewer than the {expected} of {sidecar.name}: it is not this checkpoint's buffer")
        if buffer.total_added > expected:  # saved for a later checkpoint that never committed, or a damaged one
            saved_for = f"checkpoint {buffer.saved_step}" if buffer.saved_step >= 0 else "a later checkpoint"
            ahead = buffer.total_added - expected
            dropped = buffer.rewind(expected)
            self.log(f"{REPLAY_FILE} was saved for {saved_for}, {ahead} positions past {sidecar.name}: dropped the "
                     f"{dropped} newest, so the buffer is the checkpoint's" + (
                         f" (less {ahead - dropped} older ones they had overwritten)" if dropped < min(ahead, buffer.capacity) else ""))
        self.model.load_state_dict(model_state)
        if optimizer_state is not None:
            self.learner.load_state_dict(optimizer_state)
        if rng_state:
            self.rng.bit_generator.state = rng_state
        self.state, self.table, self.buffer = state, table, buffer

    def _read_checkpoint(self, sidecar: Path) -> tuple:
        """``(RunState, model state, optimizer state, rng state, RatingTable)`` of one checkpoint,
        every part checked; TrainError naming the checkpoint and the problem otherwise."""
        from ..model.checkpoint import CheckpointError, load_checkpoint
        from ..evaluation.elo import RatingTable
        from .learner import Learner
        from ..model.network import build_network

        try:
            saved = load_checkpoint(sidecar, expect_game=self.game, expect_net=self.config.net)
        except CheckpointError as e:
            raise TrainError(" ".join(str(e).split())) from None
        try:
            state = RunState.from_dict(saved.meta.get("run"), saved.step)
            # the weights, optimizer and generator state must load: try them on spares first
            spare = build_network(self.config.net, self.game.obs_shape, self.game.num_actions)
            spare.load_state_dict(saved.model_state)
            if saved.optimizer_state is not None:
                Learner(spare, self.config.learner, "cpu").load_state_dict(saved.optimizer_state)
            if state.rng:
                np.random.default_rng().bit_generator.state = state.rng
            table = RatingTable(anchor=self.table.anchor)
            for match in saved.meta.get("ratings", []):
                table.add(match["a"], match["b"], match["wins"], match["draws"], match["losses"], **match.get("meta", {}))
        except (KeyError, TypeError, ValueError, AttributeError, IndexError, RuntimeError) as e:
            detail = " ".join(f"{type(e).__name__}: {e}".split())[:300]
            raise TrainError(f"{sidecar.name}: not a usable training checkpoint ({detail})") from None
        return state, saved.model_state, saved.optimizer_state, state.rng, table

    def _check_run_files(self) -> None:
        """The files a session rewrites from the checkpoint must be readable, or they would be
        lost: ``metrics.csv`` (rows after the checkpoint are dropped) and ``ratings.json``
        (rewritten at the next rating). A missing one is fine: it starts anew."""
        from ..evaluation.elo import RatingTable

        self._metrics_rows()
        path = self.run_dir / RATINGS_FILE
        if path.exists():
            try:
                RatingTable.load(path)
            except (ValueError, TypeError, KeyError, AttributeError, OSError) as e:
                detail = " ".join(str(e).split())[:200]
                raise TrainError(f"cannot resume {self.run_dir}: {RATINGS_FILE} is damaged ({detail}); move it away to go on "
                                 f"(the checkpoint holds every rating match, and the next rating rewrites it)") from None

    def _metrics_rows(self) -> int:
        """Rows in ``metrics.csv`` (0 when there is none); TrainError when it cannot be read back."""
        import csv

        from .metrics import COLUMNS, METRICS_FILE, _score_column

        path = self.run_dir / METRICS_FILE
        if not path.exists():
            return 0
        known = set(COLUMNS) | {_score_column(o) for o in self.config.eval.opponent_specs}
        try:
            with open(path, newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f)
                header = reader.fieldnames or []
                if "generation" not in header or not set(header) <= known:
                    raise ValueError(f"unexpected header {','.join(header)[:80]!r}")
                rows = 0
                for row in reader:
                    if any(row.get(None) or ()) or not float(row["generation"]) >= 0:  # cells past the header
                        raise ValueError(f"bad row {reader.line_num}")
                    for value in row.values():  # every cell a number or empty (read_metrics, the plots)
                        if isinstance(value, str) and value:
                            float(value)
                    rows += 1
        except (OSError, ValueError, TypeError, csv.Error) as e:
            detail = " ".join(str(e).split())[:200]
            raise TrainError(f"cannot resume {self.run_dir}: {METRICS_FILE} is damaged ({detail}); move it away to go on "
                             f"without the earlier rows") from None
        return rows

    # ------------------------------------------------------------------ the loop
    def run(self) -> int:
        """Train until the budget is spent or a stop is requested; returns the final generation."""
        from .actor import make_actors

        config = self.config
        self.start()
        if self._budget_spent():
            self.log(f"{self.run_dir}: the budget is spent ({self._budget_text()}); raise --minutes or --generations to go on")
            return self.state.generation
        num_actors, spec = self.num_actors(), self.actor_spec()
        self.actors = make_actors(spec, num_actors, config.cluster, log=self.log)
        kind = ("Ray actor", "Ray actors") if config.cluster.backend == "ray" else ("actor process", "actor processes")
        count = self.actors.count if num_actors else 0
        self.log(f"{describe(config)}; {count or 'no'} {kind[count != 1]}, "
                 f"learning on {self.device}; run directory {self.run_dir}")
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
        if self.state.rated:
            self._plot()
        return self.state.generation

    def start(self) -> None:
        """Before the first generation: a new run saves generation 0, the untrained network, so
        that it can resume from its first minute."""
        if self.state.generation == 0 and not self._has_checkpoint():
            self._save()

    def num_actors(self) -> int:
        """Actor processes for this run (0: one actor in this process); with Ray,
        ``selfplay.num_actors`` as given (-1: the pool counts the cluster's CPUs).

        On CUDA, -1 starts one actor per core up to :data:`CUDA_ACTORS`, each evaluating on the GPU:
        each actor's tree search runs on one core, and on an H200 with 16 cores 8 actors made 2.8x
        the positions/s of one in-process actor (docs/training.md, "On a GPU")."""
        config = self.config
        if config.cluster.backend == "ray":
            return config.selfplay.num_actors
        if self.device == "cuda" and config.selfplay.num_actors == -1:
            return min(config.selfplay.actors, CUDA_ACTORS)
        return config.selfplay.actors

    def actor_spec(self):
        """The :class:`selfplay.training.actor.ActorSpec` of this session's actors."""
        from .actor import ActorSpec

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

    def _generation(self, progress: "Progress"):
        """Steps 1-5 of the module docstring, once; returns the self-play stats."""
        config, state = self.config, self.state
        started = time.monotonic()
        threshold = state.resign_threshold  # in force for this generation's games
        # 1-3. self-play, replay, learning: in turn, or overlapped on a Ray cluster
        played = self._play_overlapped(progress) if config.cluster.overlap else self._play_then_learn(progress)
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
            rating, scores = self._rate(state.generation)
            eval_seconds = time.monotonic() - start
        # 5. record
        row = self._row(stats, losses, train_seconds, eval_seconds, rating, threshold)
        row.update(policy_lag=lag[0], policy_lag_max=lag[1], learner_share=train_seconds / max(time.monotonic() - started, 1e-9))
        self.metrics.log(row, scores)
        # Saving the buffer takes a quarter of a second per 150,000 positions (and on a GPU the
        # buffer is ten times that), so checkpoints are spaced by time, except where one is needed:
        # rated generations (ratings refer to their weights) and the last one.
        due = time.monotonic() - self._saved >= config.run.checkpoint_seconds
        if due or rating is not None or self.stop() or self._budget_spent():
            self._save(metrics={k: row[k] for k in ("loss", "policy_loss", "value_loss", "elo") if finite(row.get(k))})
        if rating is not None:
            if time.monotonic() - self._plotted >= PLOT_EVERY_SECONDS:
                self._plot()
            progress.rated(rating, scores)
        return stats

    def _play_then_learn(self, progress: "Progress"):
        """Steps 1-3 in turn: the actors play a generation's positions with the current network,
        then the learner takes the replay ratio's steps. Returns ``(stats, losses, train seconds,
        (policy lag, max lag))``, or None after a stop during self-play."""
        config, state = self.config, self.state
        # 1. self-play with the current network; stops early on a stop request or the end of the budget
        positions, stats = self.actors.collect(
            state.generation,
            self._actor_weights(),
            config.selfplay.positions_per_generation,
            should_stop=lambda: self.stop() or self._time_up(),
            on_progress=progress.selfplay,
            resign_threshold=state.resign_threshold,
            pairings=self.pairings,
        )
        progress.selfplay(stats)
        # 2. replay, and the resignation threshold for the next games
        fresh = self._take(positions, stats, state.generation)
        self._last_stats = stats
        if self.stop():  # keep what was played
            return None
        # 3. learn
        start = time.monotonic()
        steps = self.learner.steps_for(fresh) if len(self.buffer) >= config.learner.min_positions else 0
        with prefetched(self.buffer, steps, self.device) as batches:  # sampled ahead on a thread on CUDA
            losses = self.learner.train_steps(batches, steps, self.rng, self._progress_fraction(), self.stop)
        return stats, losses, time.monotonic() - start, (0.0, 0)

    def _play_overlapped(self, progress: "Progress"):
        """Steps 1-3 at once (``cluster.overlap``; Ray actors, or local ones streaming,
        selfplay.training.streaming): the actors play on without pause, with the
        newest weights they have, and what they finish goes into the buffer as it arrives. The
        learner takes a generation's steps (``steps_for(positions_per_generation)``) meanwhile,
        but never more than ``learner.samples_per_position`` samples per position arrived in the
        generation: a bounded replay ratio. When the actors are slower, the learner waits for
        them; when faster, more positions arrive and each is sampled less. The generation ends
        when its positions have arrived and its steps are taken; the next weights then go out
        (one ``ray.put``). A position's policy lag: generations between the weights that played
        it and the learner's when it arrived. Returns what :meth:`_play_then_learn` does."""
        from .actor import SelfPlayStats

        config, state, actors, learner = self.config, self.state, self.actors, self.learner
        actors.broadcast(state.generation, self._actor_weights(), state.resign_threshold, self.pairings)
        target = config.selfplay.positions_per_generation
        stats, arrived, lags = SelfPlayStats(), 0, []
        sums, steps_done, train_seconds = np.zeros(3), 0, 0.0
        losses = {"loss": math.nan, "policy_loss": math.nan, "value_loss": math.nan, "lr": math.nan, "steps": 0}
        start = time.monotonic()
        while not self.stop() and not self._time_up():
            ready = len(self.buffer) >= config.learner.min_positions
            allowed = min(learner.steps_for(arrived), learner.steps_for(target)) if ready else 0  # the bound
            if arrived >= target and (steps_done >= learner.steps_for(target) or not ready):
                break
            # 1-2. what the actors finished, into the buffer (waiting for it only when the learner must)
            # (a call returns after chunk_seconds, or once its actor has its share of a generation)
            for delivery in actors.poll(0.0 if steps_done < allowed else 0.1, num_positions=-(-target // actors.count)):
                arrived += self._arrive(delivery, lags)
                stats = stats.merge(delivery.stats)
            stats.seconds = time.monotonic() - start
            progress.selfplay(stats)
            # 3. learn, a few steps at a time, so that the stream keeps flowing
            if steps_done < allowed:
                t = time.monotonic()
                with prefetched(self.buffer, min(4, allowed - steps_done), self.device) as batches:
                    part = learner.train_steps(batches, min(4, allowed - steps_done), self.rng, self._progress_fraction(),
                                               self.stop)
                train_seconds += time.monotonic() - t
                if part["steps"]:
                    sums += part["steps"] * np.array([part["loss"], part["policy_loss"], part["value_loss"]])
                    steps_done += part["steps"]
                    losses.update(lr=part["lr"], steps=steps_done)
        if steps_done:
            losses.update(zip(("loss", "policy_loss", "value_loss"), (sums / steps_done).tolist()))
        stats.seconds = time.monotonic() - start
        stats.evaluator_seconds /= actors.count
        self._calibrate_resignation(stats.resign_samples)
        self._last_stats = stats
        if not steps_done and self.stop():
            return None
        lag = (float(np.average([g for g, _ in lags], weights=[n for _, n in lags])) if lags else math.nan,
               max((g for g, _ in lags), default=0))
        return stats, losses, train_seconds, lag

    def _arrive(self, delivery, lags: list) -> int:
        """One delivery of the stream into the buffer, tagged with the generation that played it,
        and its games into the run's counts; returns its positions."""
        positions = delivery.positions
        if len(positions):
            self.buffer.add(positions.obs, positions.policy, positions.value, generation=delivery.generation)
            lags.append((self.state.generation - delivery.generation, len(positions)))
        self.state.games += delivery.stats.games
        self.state.positions += delivery.stats.positions
        return len(positions)

    def _take(self, positions, stats, generation: int) -> int:
        """Step 2 of an alternating generation: the learner's positions into the buffer, the
        counters, and the resignation threshold for the next games. The positions of opponents
        that learn too (league games between learners) wait in :attr:`shared` for their owners.
        Returns the positions to learn from now: these, and those given by :meth:`receive` since."""
        own = positions.own()
        if len(own):
            self.buffer.add(own.obs, own.policy, own.value, generation=generation)
        names = self.pairings.names if len(own) < len(positions) else ()
        self.shared = {name: positions.select(positions.owner == k + 1) for k, name in enumerate(names)
                       if (positions.owner == k + 1).any()}
        self.state.games += stats.games
        self.state.positions += stats.positions
        self._calibrate_resignation(stats.resign_samples)
        fresh, self._received = len(own) + self._received, 0
        return fresh

    def receive(self, positions) -> None:
        """Positions of this learner's own moves, played on another learner's turn (a league game
        between two current members). They join the buffer now and add to the next generation's
        learning steps, as if played in it."""
        if len(positions):
            self.buffer.add(positions.obs, positions.policy, positions.value, generation=self.state.generation)
            self.state.positions += len(positions)
            self._received += len(positions)

    # ------------------------------------------------------------------ pieces
    def _calibrate_resignation(self, samples: list) -> None:
        """Keep the record lows of the latest ``selfplay.resign_window`` played-out games and set
        the threshold of the next games from them (selfplay.training.actor.calibrate_resign_threshold)."""
        from .actor import calibrate_resign_threshold

        sp, state = self.config.selfplay, self.state
        if sp.resign_value <= -1 or not samples:
            return
        state.resign_games = (state.resign_games + samples)[-sp.resign_window:]
        if sp.resign_calibrate:
            state.resign_threshold = calibrate_resign_threshold(
                state.resign_games, sp.resign_target, sp.resign_margin, sp.resign_floor, sp.resign_ceiling)

    def weights(self):
        """The current network as a :class:`selfplay.training.actor.Weights` message (a league's other
        learners play against it)."""
        return self._weights()

    def _weights(self):
        """The current network as a message for the actors (ONNX on the CPU, safetensors for
        torch), made once per generation."""
        if self._weights_cache[0] != self.state.generation:
            self._weights_cache = (self.state.generation, self._export())
        return self._weights_cache[1]

    def _actor_weights(self):
        """What the actors play with: :meth:`_weights`, or with ``run.inference int8`` those
        quantized to int8, calibrated on positions from the replay buffer (float32 until it holds
        :data:`INT8_CALIBRATION` of them)."""
        weights = self._weights()
        if self.config.run.inference != "int8" or weights.format != "onnx" or len(self.buffer) < INT8_CALIBRATION:
            return weights
        if self._int8_cache[0] != self.state.generation:
            from ..model.inference import int8_onnx
            from .actor import Weights

            rng = np.random.default_rng([self.config.run.seed, self.state.generation, 8])
            rows = rng.choice(len(self.buffer), INT8_CALIBRATION, replace=False)
            self._int8_cache = (self.state.generation, Weights("onnx", int8_onnx(weights.data, self.buffer.obs[rows])))
        return self._int8_cache[1]

    def _export(self):
        # an inference actor on a GPU runs torch, which takes safetensors
        torch_server = getattr(getattr(self, "actors", None), "needs_torch_weights", False)
        return export_weights(self.model, self.game, "cuda" if torch_server else self.device,
                              "torch" if torch_server else self.config.run.inference)

    def _network_agent(self, generation: int, weights, visits: int, name: str):
        from .actor import evaluator_from_weights
        from ..evaluation.agents import NetworkAgent, trained_search_config

        # one thread: rating batches are small, and idle spinning threads only contend
        evaluator = evaluator_from_weights(weights, self.game, self.device, threads=1)
        search = None
        if visits:  # the self-play search made deterministic: no noise, the best move; the same solver setting
            search = trained_search_config(visits, self.config.search)
        return NetworkAgent(self.game, evaluator, visits, config=search, name=name)

    def _rate(self, generation: int) -> tuple[dict[str, float], dict[str, float]]:
        """Matches of this generation against the baselines and the latest rated generations;
        returns (``{"elo", "elo_lo", "elo_hi"}``, ``{opponent: score}``)."""
        from ..evaluation.agents import load_agent

        config = self.config.eval
        weights = self._weights()
        me = self._network_agent(generation, weights, config.visits, f"gen{generation}")
        opponents = [load_agent(spec, self.game) for spec in config.opponent_specs]
        recent = sorted(self.rated_weights)[-config.previous:] if config.previous else []
        for old in recent:
            opponents.append(self._network_agent(old, self.rated_weights[old], config.visits, f"gen{old}"))
        for old in self.state.milestones if config.milestones else []:
            if old not in recent and old != generation:
                opponents.append(self._network_agent(old, self._milestone_weights(old), config.visits, f"gen{old}"))
        scores = {}
        for k, result in enumerate(self._matches(me, opponents, config.games, [generation, 2])):
            self.table.add(result, generation=generation)
            if k < len(config.opponent_specs):
                scores[config.opponent_specs[k]] = result.score
        self.rated_weights[generation] = weights
        for old in sorted(self.rated_weights)[: -max(config.previous, 1)]:
            del self.rated_weights[old]
        self.state.rated.append(generation)
        self.table.save(self.run_dir / RATINGS_FILE)
        ratings, intervals = self.table.ratings(), self.table.intervals()
        name = f"gen{generation}"
        lo, hi = intervals.get(name, (math.nan, math.nan))
        rating = {"elo": ratings.get(name, math.nan), "elo_lo": lo, "elo_hi": hi}
        if config.solver_positions and self.game.name == "connect4":
            rating.update(self._solver_errors(me.evaluator))
        return rating, scores

    def _milestone_weights(self, generation: int):
        """The float32 network of the checkpoint kept at a minute mark, exported once."""
        if generation not in self._milestones:
            from ..model.checkpoint import load_checkpoint

            model = load_checkpoint(self.run_dir / f"ckpt-{generation:06d}.json", expect_game=self.game).build_model()
            self._milestones[generation] = export_weights(model, self.game, "cpu", "onnx")
        return self._milestones[generation]

    def _matches(self, me, opponents: list, games_each: int, seed_key: list[int], progress: bool = False) -> list:
        """``play_match(me, opponent)`` for every opponent, one thread per core (the search
        kernels and onnxruntime release the GIL), results in the opponents' order."""
        from concurrent.futures import ThreadPoolExecutor

        from ..evaluation.matches import play_match

        def match(k: int):
            seed = int(np.random.SeedSequence([self.config.run.seed, *seed_key, k]).generate_state(1)[0])
            return play_match(self.game, me, opponents[k], games_each, seed=seed, opening_moves=self.config.eval.opening_moves,
                              batch_size=games_each, stop_when_decided=False, progress=progress)

        with ThreadPoolExecutor(max_workers=max(1, min(self.cores, len(opponents)))) as pool:
            return list(pool.map(match, range(len(opponents))))

    def _solver_errors(self, evaluator) -> dict[str, float]:
        """Connect Four: how often the raw network and its rating search throw away a better
        result, judged by the perfect solver (selfplay.evaluation.strength)."""
        from ..evaluation.strength import error_rates

        report = error_rates(self.game, evaluator, self._benchmark_positions(), self.config.eval.visits, seed=0)
        return {
            f"solver_error_{who}" + ("" if stage == "all" else f"_{stage}"): row["rate"]
            for who in ("raw", "search") if who in report
            for stage, row in report[who].items()
        }

    def _benchmark_positions(self, sets: int = 1) -> dict[str, list]:
        """The solved Connect Four positions of ``eval.solver_positions`` per stage from the first
        ``sets`` seeds, each stage's positions of every set together; loaded once."""
        from ..evaluation.strength import load_positions

        while len(self._solver_positions) < sets:
            seed = len(self._solver_positions)
            self._solver_positions.append(load_positions(self.game, self.config.eval.solver_positions, seed=seed, progress=True))
        return {stage: [p for positions in self._solver_positions[:sets] for p in positions[stage]]
                for stage in self._solver_positions[0]}

    def _reload_rated(self) -> None:
        """After a resume: the weights of the latest rated generations still on disk."""
        from ..model.checkpoint import CheckpointError, list_checkpoints, load_checkpoint

        wanted = set(self.state.rated[-max(self.config.eval.previous, 1):])
        saved_model = {k: v.clone() for k, v in self.model.state_dict().items()}
        for sidecar in list_checkpoints(self.run_dir):
            step = int(sidecar.stem.split("-")[1])
            if step in wanted:
                try:
                    self.model.load_state_dict(load_checkpoint(sidecar, expect_game=self.game).model_state)
                except CheckpointError:
                    continue
                self.rated_weights[step] = self._export()
        self.model.load_state_dict(saved_model)

    def final_report(self) -> list[dict[str, Any]]:
        """Matches of the final network against ``eval.final_opponents``, printed and saved to
        ``final.json``; the results as dicts."""
        from ..evaluation.agents import load_agent

        config = self.config.eval
        if not config.final_games or not config.final_opponent_specs:
            return []
        generation = self.state.generation
        name = f"gen{generation}@{config.final_visits}"
        me = self._network_agent(generation, self._weights(), config.final_visits, name)
        results = []
        self.log(f"final strength of generation {generation} ({config.final_visits} visits per move), "
                 f"{config.final_games} games against each opponent:")
        start = time.monotonic()
        opponents = [load_agent(spec, self.game) for spec in config.final_opponent_specs]
        for result in self._matches(me, opponents, config.final_games, [generation, 3]):
            self.log("  " + result.summary())
            results.append({k: v for k, v in result.to_dict().items() if k != "records"})
        self.log(f"  ({time.monotonic() - start:.0f} s)")
        final: dict[str, Any] = {"generation": generation, "visits": config.final_visits, "matches": results}
        if config.solver_positions and self.game.name == "connect4":
            from ..evaluation.strength import error_rates, format_report

            final["solver"] = error_rates(self.game, me.evaluator, self._benchmark_positions(config.solver_sets),
                                          config.final_visits, seed=0, config=me.config)
            self.log("  error rates against the perfect solver (moves that throw away a better result):")
            for line in format_report(final["solver"]).splitlines():
                self.log("    " + line)
        from ..model.checkpoint import atomic_write

        with atomic_write(self.run_dir / FINAL_FILE) as f:
            f.write(json.dumps(final, indent=1).encode())
        return results

    def _row(self, stats, losses, train_seconds, eval_seconds, rating, resign_threshold: float) -> dict[str, Any]:
        seconds = max(stats.seconds, 1e-9)
        games_done = max(stats.games, 1)
        return {
            "generation": self.state.generation,
            "elapsed_s": self.elapsed(),
            "games": self.state.games,
            "positions": self.state.positions,
            "buffer": len(self.buffer),
            "selfplay_s": stats.seconds,
            "positions_per_s": stats.positions / seconds,
            "moves_per_s": stats.moves / seconds,
            "evals_per_s": stats.evaluations / seconds,
            "mean_batch": stats.evaluations / max(stats.evaluator_calls, 1),
            "network_share": stats.evaluator_seconds / seconds,
            "game_length": stats.game_length / games_done if stats.games else math.nan,
            "first_player_score": stats.first_player_score / games_done if stats.games else math.nan,
            "draw_rate": stats.draws / games_done if stats.games else math.nan,
            "resign_rate": stats.resignations / games_done if stats.games else math.nan,
            "false_resign_rate": stats.false_resignation_rate,
            "resign_checks": stats.resign_checks,
            "resign_threshold": resign_threshold if self.config.selfplay.resign_value > -1 else math.nan,
            "train_steps": losses["steps"],
            "train_s": train_seconds,
            "loss": losses["loss"],
            "policy_loss": losses["policy_loss"],
            "value_loss": losses["value_loss"],
            "lr": losses["lr"],
            "eval_s": eval_seconds,
            **(rating or {}),
        }

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
        self.state.lr_progress = self._lr_progress(self._budget_position(self.state.elapsed, self.state.generation))
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
            best_metric=BEST_METRIC,
            keep_steps=self.state.milestones,
        )

    def _plot(self) -> None:
        from .metrics import plot_run

        self._plotted = time.monotonic()
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
        return self.config.run.minutes > 0 and self.elapsed() >= 60 * self.config.run.minutes

    def _budget_spent(self) -> bool:
        generations = self.config.run.generations
        return self._time_up() or (generations > 0 and self.state.generation >= generations)

    def _budget_position(self, elapsed: float, generations: int) -> float:
        """How much of the budget ``elapsed`` seconds and ``generations`` generations use, in
        [0, 1] (the larger of the two fractions)."""
        run = self.config.run
        parts = []
        if run.minutes > 0:
            parts.append(elapsed / (60 * run.minutes))
        if run.generations > 0:
            parts.append(generations / run.generations)
        return min(max(parts), 1.0)

    def _lr_progress(self, position: float) -> float:
        """The learning-rate schedule's progress at budget ``position`` (selfplay.training.learner.continued_progress):
        from the progress the checkpoint reached at this session's start, on to 1 at the end of
        the (perhaps changed) budget, so the rate never jumps when ``--minutes`` changes on resume."""
        from .learner import continued_progress

        start_position, start_progress = self._lr_anchor
        return continued_progress(position, start_position, start_progress if start_progress >= 0 else start_position)

    def _progress_fraction(self) -> float:
        """The schedule's progress for the generation being learned, counted as done: the last
        generation of a generation budget learns at the schedule's end value."""
        return self._lr_progress(self._budget_position(self.elapsed(), self.state.generation + 1))

    def _budget_text(self) -> str:
        run = self.config.run
        parts = []
        if run.minutes > 0:
            parts.append(f"{self.elapsed() / 60:.1f} of {run.minutes:g} minutes")
        if run.generations > 0:
            parts.append(f"{self.state.generation} of {run.generations} generations")
        return ", ".join(parts)


def train(config: TrainConfig, run_dir: str | Path, resume: bool = False, final_report: bool = True,
          stop: StopRequest | None = None) -> Trainer:
    """Run (or resume) the run ``config`` describes in ``run_dir``; returns the finished trainer.
    A new run writes ``config.json`` first."""
    from .ray_actors import require_ray

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
        trainer = Trainer(config, run_dir, resume=resume, stop=stop_request)
        trainer.run()
        if stop_request():
            trainer.log(f"stopped at generation {trainer.state.generation} ({trainer.elapsed() / 60:.1f} min); "
                        f"checkpoint saved. Resume with: selfplay train --resume {run_dir}")
        elif final_report:
            trainer.final_report()
            from ..model.checkpoint import best_checkpoint, latest_checkpoint

            latest = latest_checkpoint(run_dir)
            best = best_checkpoint(run_dir, BEST_METRIC)
            trainer.log(f"final checkpoint: {latest}" + (f"; best rated: {best}" if best and best != latest else ""))
            trainer.log(f"play it: selfplay play --agent {run_dir}; analyze: selfplay analyze --checkpoint {run_dir}")
    return trainer


# ----------------------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``selfplay train``."""
    parser.add_argument("game", nargs="?", help="game name (see `selfplay games`); not needed with --resume")
    parser.add_argument("-o", "--option", action="append", metavar="KEY=VALUE", help="game option, e.g. -o width=8 (repeatable)")
    parser.add_argument("--preset", choices=PRESETS, default=None, help="starting configuration (default: small)")
    parser.add_argument("--run-dir", default=None, metavar="DIR", help="where the run is written (default: runs/GAME-DATE-TIME)")
    parser.add_argument(
        "--resume", default=None, metavar="DIR",
        help="continue the run in DIR from its latest checkpoint; only these settings may change: "
        + ", ".join(sorted(RESUME_SAFE)),
    )
    parser.add_argument("--no-final", action="store_true", help="skip the final matches against eval.final_opponents")
    parser.add_argument("--print-config", action="store_true", help="print the run's full config as JSON and exit")
    add_config_arguments(parser)


def config_from_args(args: argparse.Namespace) -> tuple[TrainConfig, Path, bool]:
    """(config, run directory, resume?) from parsed ``selfplay train`` arguments."""
    overrides = overrides_from_args(args)
    if args.resume:
        for given, flag in ((args.preset, "--preset"), (args.option, "-o"), (args.run_dir, "--run-dir")):
            if given:
                raise TrainError(f"{flag} cannot be combined with --resume (the run's config.json decides)")
        run_dir = Path(args.resume)
        config = load_config(run_dir)
        if args.game and args.game != config.game:
            raise TrainError(f"{run_dir} is a {config.game} run, not {args.game}")
        unsafe = sorted(set(overrides) - RESUME_SAFE)
        if unsafe:
            raise TrainError(
                f"--resume keeps the run's settings; {', '.join('--' + k.replace('_', '-') for k in unsafe)} cannot change "
                f"(allowed: {', '.join(sorted(RESUME_SAFE))})"
            )
        return with_overrides(config, overrides), run_dir, True
    if not args.game:
        raise TrainError("give a game to train (e.g. selfplay train connect4), or --resume DIR")
    game = games.make(args.game, **games.parse_options(args.option))
    base = preset(args.game, args.preset or "small", dict(game.options))
    config = with_overrides(base, overrides)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", args.game)  # an external spec has colons: pettingzoo:...
    run_dir = Path(args.run_dir) if args.run_dir else Path("runs") / f"{slug}-{stamp}"
    return config, run_dir, False


def main(args: argparse.Namespace) -> int:
    """``selfplay train``: train, print the final strength and the checkpoint's path."""
    from ..model.checkpoint import CheckpointError
    from .ray_actors import ClusterError

    # OMP_WAIT_POLICY=PASSIVE is set by the program (selfplay.tools.cli.main, or the block below),
    # before building the parser loads torch; by now it would be too late.
    try:
        config, run_dir, resume = config_from_args(args)
        if args.print_config:
            print(json.dumps(config.to_dict(), indent=1))
            return 0
        train(config, run_dir, resume=resume, final_report=not args.no_final)
    except (ConfigError, CheckpointError, ClusterError) as e:
        raise TrainError(str(e)) from None
    return 0


if __name__ == "__main__":  # python -m selfplay.training.trainer GAME ... (the CLI's `selfplay train` is the same)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as `selfplay train`: before the parser loads torch
    parser = argparse.ArgumentParser(prog="selfplay train", description="Train by self-play.")
    add_arguments(parser)
    try:
        sys.exit(main(parser.parse_args()))
    except (TrainError, GameError) as e:
        print(f"selfplay train: error: {e}", file=sys.stderr)
        sys.exit(2)
