"""Name -> game constructor, with each game's options, so ``games.make("connect4", width=8)``.

Three kinds of names:

* the built-in games of :data:`REGISTRY`;
* **plugins**: games of other installed packages, found through the entry point group
  :data:`ENTRY_POINT_GROUP` (``selfplay.games``). An entry point names a module (or any
  object) with ``make(**options) -> Game``, and optionally ``OPTIONS`` (``{name: Option}``) and
  ``DESCRIPTION`` (default: the first line of its docstring). ``docs/plugins.md`` walks through
  writing one;
* **external specs**, PettingZoo AEC environments stepped in Python
  (``pettingzoo:pettingzoo.classic.tictactoe_v3`` or ``module:factory``; see
  :mod:`games.external`), told apart by the colon.

A plugin that cannot be imported, or whose game breaks the interface, is a :class:`PluginError`
(one line naming the plugin and the problem) when it is asked for, and never stops the other
games from loading.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import re
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .core import Game, GameError, _reason, integer_option, short_repr

__all__ = [
    "ENTRY_POINT_GROUP",
    "GameInfo",
    "Option",
    "PluginError",
    "REGISTRY",
    "make",
    "list_games",
    "game_info",
    "parse_options",
    "plugin_problems",
]

#: The entry point group through which other packages add games.
ENTRY_POINT_GROUP = "selfplay.games"
BUILT_IN = "built in"


class PluginError(GameError):
    """A game plugin that cannot be loaded, or whose game breaks the interface: one line that
    names the plugin, the package it comes from and what is wrong."""


@dataclass(frozen=True)
class Option:
    """One option of a game: its default (whose type, int or str, values are converted to), a
    help line, and the allowed values (None: any)."""

    default: Any
    help: str
    choices: tuple | None = None


@dataclass(frozen=True)
class GameInfo:
    name: str
    module: str  # module holding `make(**options) -> Game` (a plugin: its entry point's value)
    description: str
    options: dict[str, Option]
    source: str = BUILT_IN  # "built in", or the plugin's package: "selfplay-hex 0.1.0"
    factory: Callable[..., Game] | None = None  # a plugin's make; built-ins import `module`


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


_PLUGIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


@functools.lru_cache(maxsize=1)
def _plugins() -> tuple[dict[str, importlib.metadata.EntryPoint], dict[str, str]]:
    """The plugins' entry points by name, and the problems found without importing them
    (a taken name, a bad name, two packages claiming one name) by name. Read once per process."""
    found: dict[str, importlib.metadata.EntryPoint] = {}
    problems: dict[str, str] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        where = _source(ep)
        if ep.name in REGISTRY:
            problems[ep.name] = f"plugin game {ep.name!r} ({where}): the name is a built-in game's; rename the entry point"
        elif not _PLUGIN_NAME.fullmatch(ep.name):
            problems[ep.name] = (
                f"plugin game {short_repr(ep.name)} ({where}): a game name takes letters, digits, '_' and '-' only"
            )
        elif ep.name in found and found[ep.name].value != ep.value:
            problems[ep.name] = (
                f"plugin game {ep.name!r} is registered twice ({_source(found[ep.name])} and {where}); uninstall one"
            )
        else:
            found[ep.name] = ep
    for name in problems:
        found.pop(name, None)
    return found, problems


def _source(ep: importlib.metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return f"{dist.name} {dist.version}" if dist is not None else f"entry point {ep.value}"


def plugin_problems() -> dict[str, str]:
    """Plugins refused before loading (a taken or bad name, registered twice): name -> one line."""
    return dict(_plugins()[1])


def list_games() -> list[str]:
    """Built-in games, then installed plugins (not yet imported: :func:`game_info` does that)."""
    return [*REGISTRY, *sorted(_plugins()[0])]


def is_external(name: str) -> bool:
    """Whether ``name`` is an external spec (``pettingzoo:MODULE`` or ``MODULE:FACTORY``)."""
    return isinstance(name, str) and ":" in name


def game_info(name: str) -> GameInfo:
    """The :class:`GameInfo` of a built-in game or a plugin (imported here; a
    :class:`PluginError` if that fails). An unknown name is a :class:`GameError`."""
    if isinstance(name, str) and name in REGISTRY:
        return REGISTRY[name]
    plugins, problems = _plugins()
    if isinstance(name, str) and name in problems:
        raise PluginError(problems[name])
    if not isinstance(name, str) or name not in plugins:
        raise GameError(
            f"unknown game {short_repr(name)}; known games: {', '.join(list_games())} "
            "(or an external spec such as pettingzoo:pettingzoo.classic.tictactoe_v3)"
        )
    return _load_plugin(plugins[name])


@functools.lru_cache(maxsize=None)
def _load_plugin(ep: importlib.metadata.EntryPoint) -> GameInfo:
    label = f"plugin game {ep.name!r} ({_source(ep)})"
    try:
        target = ep.load()
    except Exception as e:  # noqa: BLE001 - any failure of someone else's import: one line
        raise PluginError(f"{label}: cannot import {ep.value}: {_reason(e)}") from None
    factory = getattr(target, "make", None)
    if not callable(factory):
        raise PluginError(f"{label}: {ep.value} has no make(**options) -> Game")
    options = getattr(target, "OPTIONS", None) or {}
    if not isinstance(options, dict) or not all(
        isinstance(k, str) and isinstance(o, Option) for k, o in options.items()
    ):
        raise PluginError(f"{label}: OPTIONS must be a dict of option name -> games.Option")
    description = getattr(target, "DESCRIPTION", None) or (getattr(target, "__doc__", None) or "").strip()
    description = description.splitlines()[0] if description else ""
    return GameInfo(ep.name, ep.value, description, dict(options), source=_source(ep), factory=factory)


def _made_by_plugin(info: GameInfo, options: dict[str, Any]) -> Game:
    """``info.factory(**options)``, checked against the interface; a :class:`PluginError` naming
    the plugin for anything wrong (a :class:`GameError` of its own about an option passes)."""
    label = f"plugin game {info.name!r} ({info.source})"
    try:
        game = info.factory(**options)
    except GameError:
        raise
    except Exception as e:  # noqa: BLE001 - a bug in the plugin: one line naming it
        raise PluginError(f"{label}: make() failed: {_reason(e)}") from None
    if not isinstance(game, Game):
        raise PluginError(f"{label}: make() returned {type(game).__name__}, not a games.Game")
    if game.name != info.name:
        raise PluginError(
            f"{label}: make() returned a game named {game.name!r}; name it {info.name!r}, as its entry point, "
            "so checkpoints and actor processes find it again"
        )
    try:
        game.kernels  # compiles each rules kernel for its exact signature
        state = game.initial_state()
    except Exception as e:  # noqa: BLE001
        message = str(e).removeprefix(f"{game.name}: ") if isinstance(e, GameError) else _reason(e)
        raise PluginError(f"{label}: {message}") from None
    if not (isinstance(state, np.ndarray) and state.dtype == np.int64 and state.shape == (game.state_size,)):
        raise PluginError(
            f"{label}: initial_state must return int64[{game.state_size}] (state_size), got {short_repr(state)}"
        )
    return game


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
    ``name`` is a built-in game, a plugin or an external spec (see the module docstring). Any bad
    name or option value is a :class:`GameError`, one line naming it."""
    if is_external(name):
        from .external import from_spec

        return from_spec(name, **options)
    info = game_info(name)
    unknown = sorted(set(options) - set(info.options))
    if unknown:
        known = ", ".join(info.options) or "none"
        raise GameError(f"unknown option {short_repr(unknown[0])} for game {name!r}; options: {known}")
    full = {k: _coerce(name, k, o, options.get(k, o.default)) for k, o in info.options.items()}
    if info.factory is not None:
        return _made_by_plugin(info, full)
    return importlib.import_module(info.module).make(**full)


def game_from_tag(tag: str, options: dict[str, Any] | None, where: str) -> Game:
    """The game a checkpoint records as its version tag (``connect4_v1``) and options; a
    :class:`GameError` starting with ``where`` when this installation cannot play it."""
    base, _, version = tag.rpartition("_v")
    if not base or not (base in REGISTRY or base in _plugins()[0] or base in _plugins()[1] or is_external(base)):
        raise GameError(f"{where}: checkpoint is for game {tag!r}, which this version does not know (a plugin not installed?)")
    game = make(base, **(options or {}))
    if game.version_tag != tag:
        raise GameError(f"{where}: checkpoint is for {tag}, but this version plays {game.version_tag}")
    return game


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
