"""games: the game library. Rules as numba kernels behind one interface (see ``games.core``).

Depends on nothing else of ours. ``games.make(name, **options)`` builds a :class:`Game`;
``games.make_env(name, render_mode=None, **options)`` wraps it as a PettingZoo AEC environment.
"""

from .core import Game, GameError, IllegalMoveError, dihedral_perms, rules_from
from .registry import REGISTRY, Option, PluginError, game_info, list_games, make, parse_options

__all__ = [
    "Game",
    "GameError",
    "IllegalMoveError",
    "Option",
    "PluginError",
    "REGISTRY",
    "dihedral_perms",
    "game_info",
    "list_games",
    "make",
    "make_env",
    "parse_options",
    "rules_from",
]


def make_env(name: str, render_mode: str | None = None, **options):
    """PettingZoo AEC environment for game ``name`` (imports pettingzoo and pygame lazily)."""
    from .pettingzoo_env import make_env as _make_env

    return _make_env(name, render_mode=render_mode, **options)
