"""The state of a training run that outlives a process: the stop request (Ctrl-C, SIGTERM) every
phase polls, :class:`RunState`, what a checkpoint records besides the network and optimizer
(``meta["run"]``), checked on the way in since a damaged sidecar can hold anything, and the names
of the run directory's own files (the checkpoints' are selfplay.model.checkpoint's, the
metrics' selfplay.training.metrics')."""

from __future__ import annotations

import math
import signal
import sys
import threading
from dataclasses import dataclass, field, fields
from typing import Any

__all__ = ["CONFIG_FILE", "FINAL_FILE", "RATINGS_FILE", "RunState", "StopRequest", "TrainError"]

CONFIG_FILE = "config.json"  # the full TrainConfig, read back by --resume
RATINGS_FILE = "ratings.json"  # every rating match and the fitted Elo
FINAL_FILE = "final.json"  # the final matches against the baselines


class TrainError(ValueError):
    """A run that cannot start or resume (bad directory, mismatched checkpoint): one line."""


# ----------------------------------------------------------------------------- stopping


class StopRequest:
    """Set by SIGINT/SIGTERM (or by calling :meth:`set`); polled by every phase of the run.
    The first Ctrl-C asks for a clean stop, a second one raises KeyboardInterrupt at once."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self._previous: dict[int, Any] = {}

    def __call__(self) -> bool:
        return self.reason is not None

    def set(self, reason: str) -> None:
        if self.reason is None:
            self.reason = reason

    def _handle(self, signum: int, frame: Any) -> None:
        if self.reason is not None and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.set(signal.Signals(signum).name)
        print(
            f"\n{self.reason}: stopping after saving a checkpoint (Ctrl-C again to quit without saving)",
            file=sys.stderr,
            flush=True,
        )

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()


# ----------------------------------------------------------------------------- the run


@dataclass
class RunState:
    """What a checkpoint's ``meta["run"]`` holds besides the network and optimizer."""

    generation: int = 0  # the network's generation: 0 untrained, g after g rounds of learning
    elapsed: float = 0.0  # wall-clock seconds of the run up to the checkpoint
    games: int = 0  # self-play games finished
    positions: int = 0  # training positions produced
    rng: dict = field(default_factory=dict)  # the learner's numpy generator state
    rated: list = field(default_factory=list)  # generations rated so far
    replay_added: int = -1  # the replay buffer's total_added at the checkpoint (-1: not recorded)
    lr_progress: float = -1.0  # the schedule's progress in [0, 1] at the checkpoint (-1: not recorded)
    resign_threshold: float | None = None  # the resignation threshold in force (None: resign_value)
    resign_games: list = field(default_factory=list)  # record lows of the latest played-out games
    milestones: list = field(default_factory=list)  # generations kept for good: the last checkpoint of each run.keep_every_minutes

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Any, step: int) -> "RunState":
        """A checkpoint's run state, checked (a damaged sidecar can hold anything); ``step`` is
        the checkpoint's. Raises ValueError with what is wrong."""
        if not isinstance(data, dict):
            raise ValueError("no run state")
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown run state field(s) {', '.join(map(str, unknown))}")
        state = cls(**data)

        def number(value: Any, integer: bool = False) -> bool:
            kind = int if integer else (int, float)
            return isinstance(value, kind) and not isinstance(value, bool) and math.isfinite(value)

        for name in ("generation", "games", "positions"):
            if not number(getattr(state, name), True) or getattr(state, name) < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {getattr(state, name)!r}")
        if state.generation != step:
            raise ValueError(f"generation {state.generation} in checkpoint step {step}")
        if not number(state.elapsed) or state.elapsed < 0:
            raise ValueError(f"elapsed must be >= 0 seconds, got {state.elapsed!r}")
        if not isinstance(state.rng, dict) or not isinstance(state.rated, list):
            raise ValueError("rng must be a generator state and rated a list")
        if not all(number(g, True) for g in state.rated):
            raise ValueError("rated must list generations")
        if not isinstance(state.milestones, list) or not all(number(g, True) for g in state.milestones):
            raise ValueError("milestones must list generations")
        if not number(state.replay_added, True) or not number(state.lr_progress) or state.lr_progress > 1:
            raise ValueError(f"bad replay_added {state.replay_added!r} or lr_progress {state.lr_progress!r}")
        if state.resign_threshold is not None and not (number(state.resign_threshold) and -1 <= state.resign_threshold <= 1):
            raise ValueError(f"resign_threshold must be in [-1, 1], got {state.resign_threshold!r}")
        ok = isinstance(state.resign_games, list) and all(
            isinstance(game, list) and all(isinstance(low, list) and len(low) == 2 and number(low[0]) for low in game)
            for game in state.resign_games
        )
        if not ok:
            raise ValueError("resign_games must be lists of [value, false] record lows")
        return state
