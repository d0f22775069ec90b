"""Building a shipped brain's directory (``selfplay pretrained make`` and ``make-ladder``): the
card's search settings and opponents from the flags, the machine it names, the card written
atomically, and the new directory built beside the old one and swapped in at the end, so an
interrupted command leaves the old brain."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
from pathlib import Path
from typing import Any

__all__ = [
    "building_dir",
    "card_opponents",
    "default_opponents",
    "parse_search",
    "swap_in",
    "this_machine",
    "usage_error",
    "write_card",
]


def parse_search(items: list[str]) -> dict[str, Any]:
    """``["root_policy=gumbel", "c_init=0.8"]`` -> ``{"root_policy": "gumbel", "c_init": 0.8}``,
    each value of its ``SearchConfig`` field's type; one line for a setting a card cannot name."""
    from ..config import parse_bool
    from ..evaluation.agents import network_search_config
    from ..pretrained import CARD_SEARCH, PretrainedError

    search: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in CARD_SEARCH:
            raise PretrainedError(f"--search {item!r}: expected KEY=VALUE with KEY one of {', '.join(CARD_SEARCH)}")
        kind = type(getattr(network_search_config(1), key))
        try:  # bool("false") is True: booleans read as flags do
            search[key] = parse_bool(value) if kind is bool else kind(value.strip())
        except (ValueError, argparse.ArgumentTypeError):
            raise PretrainedError(f"--search {item!r}: {key} must be a {kind.__name__}") from None
    network_search_config(1, **search)  # checked as a whole: a bad value fails here, in one line
    return search


def default_opponents(game: Any) -> list[str]:
    """What a shipped brain is measured against: the game's scripted NPCs, those held out of
    leagues too, random, greedy, and pure MCTS at 200 and 1000 rollouts."""
    from ..evaluation.agents import game_scripts

    return [*game_scripts(game), "random", "greedy", "mcts:200", "mcts:1000"]


def card_opponents(text: str | None, game: Any) -> list[str]:
    if text is None:
        return default_opponents(game)
    return [] if text.strip() == "none" else [s.strip() for s in text.split(",") if s.strip()]


def usage_error(message: str) -> Exception:
    """A bad command line: the one-line error ``selfplay`` prints."""
    from ..pretrained import PretrainedError

    return PretrainedError(message)


def this_machine() -> str:
    return f"{os.cpu_count()} CPU cores ({platform.machine()}, {platform.system()}), no GPU"


def write_card(path: Path, card: dict[str, Any]) -> None:
    from export.contract import atomic_write

    with atomic_write(path) as f:
        f.write((json.dumps(card, indent=1) + "\n").encode())


def swap_in(building: Path, final: Path) -> None:
    """Replace ``final`` by the finished ``building`` directory: the old one stays until the
    new one is complete."""
    old = final.parent / f".{final.name}.old"
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    building.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    try:  # .building/ goes once empty; another brain may still be building in it
        building.parent.rmdir()
    except OSError:
        pass


def building_dir(root: Path, name: str) -> tuple[Path, Path]:
    from ..pretrained import PretrainedError

    if not name.isidentifier():
        raise PretrainedError(f"brain name {name!r}: use letters, digits and underscores")
    building = root / ".building" / name  # its own name: the matches print it
    shutil.rmtree(building, ignore_errors=True)
    return building, root / name
