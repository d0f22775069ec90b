"""A run's budget: ``run.minutes`` of wall-clock (earlier sessions of a resumed run included)
and/or ``run.generations``, and where the learning-rate schedule stands in it.

The schedule runs over the budget's *position*, the larger of the two fractions used. A resumed
run continues the schedule from the progress its checkpoint recorded, over the rest of the
(perhaps changed) budget (selfplay.training.learner.continued_progress), so the rate never jumps
when ``--minutes`` changes on resume.
"""

from __future__ import annotations

from ..config import RunConfig

__all__ = ["Budget"]


class Budget:
    """The budget of ``run``, for a session that starts ``elapsed`` seconds and ``generation``
    generations into it with the schedule at ``lr_progress`` (-1: not recorded, then the
    schedule's progress is the position)."""

    def __init__(self, run: RunConfig, elapsed: float, generation: int, lr_progress: float) -> None:
        self.run = run
        self.anchor = (self.position(elapsed, generation), lr_progress)  # where this session's schedule starts

    def time_up(self, elapsed: float) -> bool:
        return self.run.minutes > 0 and elapsed >= 60 * self.run.minutes

    def spent(self, elapsed: float, generation: int) -> bool:
        generations = self.run.generations
        return self.time_up(elapsed) or (generations > 0 and generation >= generations)

    def position(self, elapsed: float, generations: int) -> float:
        """How much of the budget ``elapsed`` seconds and ``generations`` generations use, in
        [0, 1] (the larger of the two fractions)."""
        run = self.run
        parts = []
        if run.minutes > 0:
            parts.append(elapsed / (60 * run.minutes))
        if run.generations > 0:
            parts.append(generations / run.generations)
        return min(max(parts), 1.0)

    def lr_progress(self, position: float) -> float:
        """The learning-rate schedule's progress at budget ``position``: from the progress the
        checkpoint reached at this session's start, on to 1 at the end of the budget."""
        from .learner import continued_progress  # (torch: imported when a session learns, not before)

        start_position, start_progress = self.anchor
        return continued_progress(position, start_position, start_progress if start_progress >= 0 else start_position)

    def text(self, elapsed: float, generation: int) -> str:
        run = self.run
        parts = []
        if run.minutes > 0:
            parts.append(f"{elapsed / 60:.1f} of {run.minutes:g} minutes")
        if run.generations > 0:
            parts.append(f"{generation} of {run.generations} generations")
        return ", ".join(parts)
