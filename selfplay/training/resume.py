"""Resuming a run: what a resumed run may change, and reading its directory back.

:func:`load_config` reads the run's ``config.json``, and :func:`config_for_resume` takes only the
overrides in :data:`selfplay.config.RESUME_SAFE`. :func:`load_run` reads before anything is
written: it checks the files a session rewrites, takes the newest checkpoint that loads (saying
which damaged ones it passed over), and cuts the replay buffer back to that checkpoint's row
count (``RunState.replay_added``): the buffer is written before the checkpoint's files, so after
a crash, or a fallback, it can be ahead. Anything wrong is one line (:class:`TrainError`), and the
directory is left as it was.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from games.core import Game

from ..config import RESUME_SAFE, ConfigError, TrainConfig, with_overrides
from .state import CONFIG_FILE, RATINGS_FILE, RunState, TrainError

__all__ = ["Resumed", "check_run_files", "config_for_resume", "load_config", "load_run", "metrics_rows"]


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


def config_for_resume(config: TrainConfig, run_dir: Path, game: str | None, overrides: dict[str, Any]) -> TrainConfig:
    """``config``, the config of the run in ``run_dir`` (:func:`load_config`), with ``overrides``,
    which may only change the settings in :data:`RESUME_SAFE`; ``game``, when given, must be the
    run's."""
    if game and game != config.game:
        raise TrainError(f"{run_dir} is a {config.game} run, not {game}")
    unsafe = sorted(set(overrides) - RESUME_SAFE)
    if unsafe:
        raise TrainError(
            f"--resume keeps the run's settings; {', '.join('--' + k.replace('_', '-') for k in unsafe)} cannot change "
            f"(allowed: {', '.join(sorted(RESUME_SAFE))})"
        )
    return with_overrides(config, overrides)


@dataclass
class Resumed:
    """What a run resumes from: one checkpoint, every part checked, and its replay buffer."""

    state: RunState
    model_state: dict
    optimizer_state: dict | None
    rng_state: dict  # the learner's numpy generator state ({}: none saved)
    table: Any  # selfplay.evaluation.ratings.RatingTable of every rating match so far
    buffer: Any  # selfplay.training.replay.ReplayBuffer, cut back to the checkpoint


def load_run(run_dir: Path, config: TrainConfig, game: Game, anchor: str | None,
             log: Callable[[str], None]) -> Resumed | None:
    """The newest usable checkpoint of ``run_dir``, falling back past damaged ones with a
    message, and a replay buffer that matches it (None: no checkpoint yet); the files a session
    rewrites checked. Reads only: raises TrainError (one line) and leaves the run directory as it
    was when anything is wrong. ``anchor``: the rating table's anchor player."""
    from ..model.checkpoint import REPLAY_FILE, list_checkpoints
    from .replay import ReplayBuffer, ReplayError

    check_run_files(run_dir, config)
    sidecars = list_checkpoints(run_dir)
    replay_path = run_dir / REPLAY_FILE
    if not sidecars:
        if replay_path.exists() or metrics_rows(run_dir, config):
            raise TrainError(f"cannot resume {run_dir}: it has no checkpoint, but a {REPLAY_FILE} or metrics "
                             f"rows that a fresh start would overwrite")
        log(f"{run_dir}: no checkpoint yet; starting at generation 0")
        return None
    problems = []
    for sidecar in reversed(sidecars):
        try:
            state, model_state, optimizer_state, rng_state, table = read_checkpoint(sidecar, config, game, anchor)
            break
        except TrainError as e:
            problems.append(str(e))
    else:
        raise TrainError(f"cannot resume {run_dir}: no usable checkpoint ({'; '.join(problems)})")
    if problems:
        log(f"{'; '.join(problems)}; resuming from {sidecar.name} instead (generation {state.generation})")
    if not replay_path.exists():
        raise TrainError(f"cannot resume {run_dir}: its replay buffer {REPLAY_FILE} is missing")
    try:
        buffer = ReplayBuffer.load(replay_path, config.learner.buffer_capacity, game.version_tag)
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
        log(f"{REPLAY_FILE} was saved for {saved_for}, {ahead} positions past {sidecar.name}: dropped the "
            f"{dropped} newest, so the buffer is the checkpoint's" + (
                f" (less {ahead - dropped} older ones they had overwritten)" if dropped < min(ahead, buffer.capacity) else ""))
    return Resumed(state, model_state, optimizer_state, rng_state, table, buffer)


def read_checkpoint(sidecar: Path, config: TrainConfig, game: Game, anchor: str | None) -> tuple:
    """``(RunState, model state, optimizer state, rng state, RatingTable)`` of one checkpoint,
    every part checked; TrainError naming the checkpoint and the problem otherwise."""
    from ..evaluation.ratings import RatingTable
    from ..model.checkpoint import CheckpointError, load_checkpoint
    from ..model.network import build_network
    from .learner import Learner

    try:
        saved = load_checkpoint(sidecar, expect_game=game, expect_net=config.net)
    except CheckpointError as e:
        raise TrainError(" ".join(str(e).split())) from None
    try:
        state = RunState.from_dict(saved.meta.get("run"), saved.step)
        # the weights, optimizer and generator state must load: try them on spares first
        spare = build_network(config.net, game.obs_shape, game.num_actions)
        spare.load_state_dict(saved.model_state)
        if saved.optimizer_state is not None:
            Learner(spare, config.learner, "cpu").load_state_dict(saved.optimizer_state)
        if state.rng:
            np.random.default_rng().bit_generator.state = state.rng
        table = RatingTable(anchor=anchor)
        for match in saved.meta.get("ratings", []):
            table.add(match["a"], match["b"], match["wins"], match["draws"], match["losses"], **match.get("meta", {}))
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, RuntimeError) as e:
        detail = " ".join(f"{type(e).__name__}: {e}".split())[:300]
        raise TrainError(f"{sidecar.name}: not a usable training checkpoint ({detail})") from None
    return state, saved.model_state, saved.optimizer_state, state.rng, table


def check_run_files(run_dir: Path, config: TrainConfig) -> None:
    """The files a session rewrites from the checkpoint must be readable, or they would be
    lost: ``metrics.csv`` (rows after the checkpoint are dropped) and ``ratings.json``
    (rewritten at the next rating). A missing one is fine: it starts anew."""
    from ..evaluation.ratings import RatingTable

    metrics_rows(run_dir, config)
    path = run_dir / RATINGS_FILE
    if path.exists():
        try:
            RatingTable.load(path)
        except (ValueError, TypeError, KeyError, AttributeError, OSError) as e:
            detail = " ".join(str(e).split())[:200]
            raise TrainError(f"cannot resume {run_dir}: {RATINGS_FILE} is damaged ({detail}); move it away to go on "
                             f"(the checkpoint holds every rating match, and the next rating rewrites it)") from None


def metrics_rows(run_dir: Path, config: TrainConfig) -> int:
    """Rows in ``metrics.csv`` (0 when there is none); TrainError when it cannot be read back."""
    import csv

    from .metrics import COLUMNS, METRICS_FILE, _score_column

    path = run_dir / METRICS_FILE
    if not path.exists():
        return 0
    known = set(COLUMNS) | {_score_column(o) for o in config.eval.opponent_specs}
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
        raise TrainError(f"cannot resume {run_dir}: {METRICS_FILE} is damaged ({detail}); move it away to go on "
                         f"without the earlier rows") from None
    return rows
