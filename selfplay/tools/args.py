"""Checked argument types for the commands' numeric flags, so a bad value is argparse's one-line
error (``argument --games: must be >= 1, got 0``) instead of a traceback or a run that never ends.

``type=integer(1)`` takes an integer >= 1; ``type=number(0, 60)`` a finite number in [0, 60]
(``nan`` and ``inf`` are refused: ``float()`` accepts both).
"""

from __future__ import annotations

import argparse
import math
from typing import Any, Callable

__all__ = ["integer", "number"]


def _bounds(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"in {low:g}..{high:g}"
    return f">= {low:g}" if low is not None else f"<= {high:g}"


def integer(low: int | None = None, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: a decimal integer in ``[low, high]`` (``None``: unbounded)."""
    return _checked(int, "integer", "an integer", low, high)


def number(low: float | None = None, high: float | None = None) -> Callable[[str], float]:
    """An argparse type: a finite number in ``[low, high]`` (``None``: unbounded)."""
    return _checked(float, "number", "a number", low, high)


def _checked(convert: type, name: str, kind: str, low: float | None, high: float | None) -> Callable[[str], Any]:
    """An argparse type named ``name`` (argparse names the type in "invalid integer value"
    messages): ``convert(text)``, which must succeed (else "must be ``kind``"), be finite when a
    float, and lie in ``[low, high]``. An integer out of range is shown as read, a number as typed."""

    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {kind}, got {text!r}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
        if (low is not None and value < low) or (high is not None and value > high):
            shown = text if isinstance(value, float) else value
            raise argparse.ArgumentTypeError(f"must be {_bounds(low, high)}, got {shown}")
        return value

    parse.__name__ = name
    return parse
