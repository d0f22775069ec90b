"""Name -> game constructor, with each game's options, so ``games.make("connect4", width=8)``."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from .core import Game, GameError, integer_option, short_repr

__all__ = ["GameInfo", "REGISTRY", "make", "list_games", "game_info", "parse_options"]


@dataclass(frozen=True)
class Option:
    default: Any
    help: str
    choices: tuple | None = None


@dataclass(frozen=True)
class GameInfo:
    name: str
    module: str  # module holding `make(**options) -> Game`
    description: str
    options: dict[str, Option]


def _opt(default, help, choices=None):
    return Option(default, help, tuple(choices) if choices else None)


REGISTRY: dict[str, GameInfo] = {
    info.name: info
    for info in [
        GameInfo("tictactoe", "games.tictactoe", "Tic-tac-toe on 3x3.", {}),
        GameInfo(
            "connect4",
            "games.connect4",
            "Connect Four: drop discs, four in a row wins.",
            {
                "width": _opt(7, "columns; (height + 1) * width <= 64", range(4, 10)),
                "height": _opt(6, "rows; (height + 1) * width <= 64", range(4, 10)),
            },
        ),
        GameInfo(
            "othello",
            "games.othello",
            "Othello (Reversi), with passes.",
            {"size": _opt(8, "board side", (6, 8))},
        ),
        GameInfo(
            "gomoku",
            "games.gomoku",
            "Gomoku: five (or more) in a row wins.",
            {"size": _opt(15, "board side", (9, 15))},
        ),
        GameInfo(
            "arena",
            "games.arena",
            "Turn-based tactics for two teams of units (the NPC showcase).",
            {
                "lineup": _opt("FAF", "each team's units, one kind letter each: F fighter, A archer (1-4)"),
                "map": _opt("pillars", "the battlefield", ("pillars", "bridge", "open", "small")),
                "turn_limit": _opt(60, "unit-turns before the game is decided by remaining HP"),
            },
        ),
    ]
}


def list_games() -> list[str]:
    return list(REGISTRY)


def game_info(name: str) -> GameInfo:
    if not isinstance(name, str) or name not in REGISTRY:
        raise GameError(f"unknown game {short_repr(name)}; known games: {', '.join(REGISTRY)}")
    return REGISTRY[name]


def _coerce(name: str, key: str, opt: Option, value: Any) -> Any:
    """``value`` of option ``key`` as its default's type (int or str), or a :class:`GameError`.
    Integers: see :func:`games.core.integer_option` (``8``, ``8.0``, ``"8"``; not ``7.9``,
    ``inf`` or ``True``). Text options take text only."""
    what = f"option {key!r} of {name}"
    if isinstance(opt.default, int):
        value = integer_option(value, what)
    elif isinstance(opt.default, str) and not isinstance(value, str):
        raise GameError(f"{what} takes text, got {short_repr(value)}")
    if opt.choices is not None and value not in opt.choices:
        raise GameError(
            f"option {key}={short_repr(value)} of {name} is out of range; allowed: "
            f"{', '.join(map(str, opt.choices))}"
        )
    return value


def make(name: str, **options: Any) -> Game:
    """The :class:`Game` ``name`` with ``options`` (strings are converted, so CLI input works).
    Any bad name or option value is a :class:`GameError`, one line naming it."""
    info = game_info(name)
    unknown = sorted(set(options) - set(info.options))
    if unknown:
        known = ", ".join(info.options) or "none"
        raise GameError(f"unknown option {short_repr(unknown[0])} for game {name!r}; options: {known}")
    full = {k: _coerce(name, k, o, options.get(k, o.default)) for k, o in info.options.items()}
    return importlib.import_module(info.module).make(**full)


def parse_options(pairs: list[str] | None) -> dict[str, str]:
    """Command-line game options: ``["width=8", "height=7"]`` -> ``{"width": "8", "height": "7"}``
    (``make`` converts and checks the values)."""
    out: dict[str, str] = {}
    for pair in pairs or []:
        if not isinstance(pair, str):
            raise GameError(f"option {short_repr(pair)} is not KEY=VALUE text (e.g. -o width=8)")
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise GameError(f"option {short_repr(pair)} is not KEY=VALUE (e.g. -o width=8)")
        if key in out and out[key] != value.strip():
            raise GameError(f"option {short_repr(key)} is given twice ({short_repr(out[key])} and {short_repr(value.strip())})")
        out[key] = value.strip()
    return out
