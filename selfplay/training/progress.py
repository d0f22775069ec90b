"""The training run's progress bar (:class:`Progress`): games, positions/s, loss, Elo and the time
left, over the run's budget; a line per generation without a bar."""

from __future__ import annotations

import math
import sys
import time
from collections import deque
from typing import Any

__all__ = ["Progress", "finite"]

#: Seconds of arrivals the streaming rate averages over.
STREAM_WINDOW_SECONDS = 30.0


def finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


class Progress:
    """The progress bar over the budget (time, or generations without a time budget): games,
    positions/s, loss, Elo, ETA. Without a bar (``run.progress`` off), a line per generation."""

    def __init__(self, trainer: Any, enabled: bool) -> None:
        self.trainer = trainer
        self.enabled = enabled
        self.loss = math.nan
        self.elo = math.nan
        self.rate = math.nan
        self._arrivals: deque = deque()  # (clock time, the run's positions) while streaming
        self.clock = time.monotonic
        run = trainer.config.run
        self.by_time = run.minutes > 0
        self.bar = None
        if enabled:
            from tqdm import tqdm

            total = 60 * run.minutes if self.by_time else run.generations
            right = "{remaining} left" if self.by_time else "{n_fmt}/{total_fmt} generations"
            self.bar = tqdm(
                total=total, initial=min(self._done(), total), file=sys.stderr, dynamic_ncols=True,
                bar_format="{desc} {percentage:3.0f}%|{bar}| " + right,
            )
            self._refresh()

    def _done(self) -> float:
        return self.trainer.elapsed() if self.by_time else self.trainer.state.generation

    def _refresh(self, games: int | None = None) -> None:
        state = self.trainer.state
        text = (f"gen {state.generation + 1}: {state.games + (games or 0)} games, {self.rate:.0f} pos/s, "
                f"loss {self.loss:.3f}" + (f", Elo {self.elo:.0f}" if math.isfinite(self.elo) else ""))
        if self.bar is not None:
            self.bar.set_description_str(text, refresh=False)
            self.bar.n = min(self._done(), self.bar.total)
            self.bar.refresh()

    def selfplay(self, stats) -> None:
        # positions arrive only as games finish (in the arena, a whole batch at once at the turn
        # limit): until some have, the last generation's rate stands
        if stats.seconds > 0 and stats.positions > 0:
            self.rate = stats.positions / stats.seconds
        self._refresh(stats.games)

    def streamed(self) -> None:
        """Overlapped learning (selfplay.training.schedule.Overlapped): what has arrived is in the
        run's counts already, and the rate is the arrivals' over about the last half minute (a
        generation's own start would count positions played before it)."""
        now, positions = self.clock(), self.trainer.state.positions
        self._arrivals.append((now, positions))
        while len(self._arrivals) > 2 and now - self._arrivals[1][0] >= STREAM_WINDOW_SECONDS:
            self._arrivals.popleft()
        since, before = self._arrivals[0]
        if now - since >= 1.0 and positions > before:
            self.rate = (positions - before) / (now - since)
        self._refresh()

    def trained(self, losses: dict) -> None:
        if finite(losses["loss"]):
            self.loss = losses["loss"]
        self._refresh()
        if self.bar is None:
            t = self.trainer
            self.trainer.log(f"generation {t.state.generation}: {t.state.games} games, {self.rate:.0f} positions/s, "
                             f"loss {self.loss:.3f}, {t.elapsed() / 60:.1f} min")

    def rated(self, rating: dict, scores: dict) -> None:
        self.elo = rating["elo"]
        line = (f"generation {self.trainer.state.generation}: Elo {rating['elo']:.0f} "
                f"({rating['elo_lo']:.0f} .. {rating['elo_hi']:.0f}); "
                + ", ".join(f"{100 * s:.0f}% vs {o}" for o, s in scores.items()))
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
        else:
            self.trainer.log(line)
        self._refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
