"""Kept for callers written before ``Game.kernels`` became cheap to pass: ``rules_of(game)`` is
``game.kernels`` (typed function pointers, resolved once per game; see ``games.core``)."""

from __future__ import annotations

from typing import Any

from games.core import Game

__all__ = ["rules_of"]


def rules_of(game: Game) -> tuple[Any, ...]:
    """``game.kernels``."""
    return game.kernels
