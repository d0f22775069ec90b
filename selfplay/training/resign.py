"""Resignation: from the record lows that played-out self-play games report
(:attr:`~selfplay.training.messages.SelfPlayStats.resign_samples`), the threshold below which
the player to move resigns in the next generation's games.

A played-out game (one in ``resign_playout_fraction`` of games, where nobody resigns) reports
each time a full search's root value fell below every earlier one in the game: that value, and
whether its player went on to avoid losing. For any threshold these say which games would have
seen a resignation, and whether the first one would have been false
(:func:`resign_check_counts`). :func:`calibrate_resign_threshold` picks the boldest threshold
whose false-resignation rate stays under the target (AlphaZero keeps it under 5%), and
:func:`record_resign_samples` keeps the latest window of games in the run's state and sets the
threshold from them.
"""

from __future__ import annotations

import numpy as np

from ..config import SelfPlayConfig
from ..evaluation.elo import wilson_interval
from .state import RunState

__all__ = ["RESIGN_Z", "calibrate_resign_threshold", "record_resign_samples", "resign_check_counts"]


def resign_check_counts(samples: list, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(checks int64[T], false int64[T])`` for each of ``thresholds float[T]``, over played-out
    games given by their record lows (``SelfPlayStats.resign_samples``). With threshold ``v``
    a game is *checked* when some full-search root value in it fell below ``v``. The first value
    below ``v`` is the first record low below it (record lows only decrease), and the resignation
    there is *false* when its player did not lose."""
    thresholds = np.asarray(thresholds, np.float64)
    lows = [low for game in samples for low in game]
    if not lows:
        return np.zeros(thresholds.shape, np.int64), np.zeros(thresholds.shape, np.int64)
    values = np.array([low[0] for low in lows], np.float64)  # [M], in game order, decreasing within a game
    false = np.array([bool(low[1]) for low in lows])  # [M]
    game = np.repeat(np.arange(len(samples)), [len(g) for g in samples])  # [M]
    checks, falses = np.zeros(thresholds.shape, np.int64), np.zeros(thresholds.shape, np.int64)
    for t, v in enumerate(thresholds):
        below = np.flatnonzero(values < v)
        _, first = np.unique(game[below], return_index=True)  # each checked game's first low below v
        checks[t], falses[t] = first.size, int(false[below[first]].sum())
    return checks, falses


RESIGN_Z = 1.645  # one-sided 95%: the calibration's confidence that a threshold is within target


def calibrate_resign_threshold(samples: list, target: float, margin: float, floor: float, ceiling: float,
                               step: float = 0.01) -> float:
    """The resignation threshold for the next generation, from played-out games' record lows.

    Candidates run from ``ceiling`` down to ``floor`` in steps of ``step``; the answer is the
    highest (the boldest) whose false-resignation rate is at most ``target - margin`` with 95%
    confidence: the one-sided Wilson upper bound of ``false / checks`` (``z = 1.645``). So a
    handful of lucky games never justify a bold threshold (with no false resignation it takes
    ``z^2 (1 - b) / b``, about 51 checks at ``b = 5%``), and a measured rate near the target is
    not enough either; an optional margin leaves more room for the network to change before the
    next calibration (docs/results/2026-12-06-resignation-calibration.md says why a plain ``(false + 1) / (checks + 1)`` rule was
    not enough). When no candidate qualifies: ``floor``, unless the games show the floor itself
    too bold (its measured rate ``false / checks`` above ``target``): then -1, nobody resigns."""
    candidates = np.round(np.arange(ceiling, floor - step / 2, -step), 6)  # boldest first
    candidates = np.append(candidates[candidates > floor], floor)
    checks, false = resign_check_counts(samples, candidates)
    ok = np.flatnonzero(wilson_interval(false, checks, z=RESIGN_Z)[1] <= target - margin)
    if ok.size:
        return float(candidates[ok[0]])
    return -1.0 if checks[-1] and false[-1] / checks[-1] > target else float(floor)


def record_resign_samples(state: RunState, config: SelfPlayConfig, samples: list) -> None:
    """Keep the record lows of the latest ``config.resign_window`` played-out games in ``state``
    and, with ``config.resign_calibrate``, set the threshold of the next games from them."""
    if config.resign_value <= -1 or not samples:
        return
    state.resign_games = (state.resign_games + samples)[-config.resign_window:]
    if config.resign_calibrate:
        state.resign_threshold = calibrate_resign_threshold(
            state.resign_games, config.resign_target, config.resign_margin, config.resign_floor, config.resign_ceiling)
