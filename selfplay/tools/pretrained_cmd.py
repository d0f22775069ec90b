"""``selfplay pretrained``: the brains shipped in the package, and how one is made.

::

    selfplay pretrained                                      # list them, with training and strength
    selfplay pretrained make connect4 runs/c4-120 --reproduce "selfplay train connect4 ..."

``make`` exports the checkpoint (``export``, with a value output so the brain can search) into
``selfplay/pretrained/NAME`` (or ``--root``), then measures the *exported* brain, the file a
user gets: matches at ``--visits`` and with its raw policy against every opponent, and for
Connect Four the solver benchmark. It writes every figure into ``card.json``
(:mod:`selfplay.pretrained`), so nothing on a card is typed by hand. The directory is written
beside the old one and swapped in at the end: an interrupted ``make`` leaves the old brain.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
from pathlib import Path
from typing import Any

from .args import integer

__all__ = ["add_arguments", "default_opponents", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action")
    make = sub.add_parser("make", help="export a checkpoint into the package and measure it (maintainers)")
    make.add_argument("name", help="the brain's directory name (connect4, arena, othello6)")
    make.add_argument("source", help="run directory or checkpoint (ckpt-*.json)")
    make.add_argument("--reproduce", action="append", required=True, metavar="COMMAND",
                      help="a command that reproduces the checkpoint (repeatable, in order)")
    make.add_argument("--machine", help="where it was trained (default: this machine)")
    make.add_argument("--opponents", help="comma-separated agents to measure against (default: the game's scripts, "
                      "greedy, mcts:200, mcts:1000)")
    make.add_argument("--games", type=integer(2), default=200, help="games per match with search (default 200)")
    make.add_argument("--raw-games", type=integer(0), default=100, help="games per match of the raw policy (0: none)")
    make.add_argument("--visits", type=integer(1), default=200, help="simulations per move with search (default 200)")
    make.add_argument("--opening-moves", type=integer(0), default=2, help="random opening plies per pair of games")
    make.add_argument("--search", action="append", metavar="KEY=VALUE", default=[],
                      help="a setting of the search the brain plays with (root_policy, c_init, fpu, fpu_value; "
                           "repeatable): measured with, written on the card, and used by every command that loads "
                           "the brain (default: the agents' PUCT search)")
    make.add_argument("--root", help="where the brains live (default: the package's selfplay/pretrained)")
    make.add_argument("--seed", type=integer(0), default=0)
    parser.add_argument("--root", dest="list_root", help="list the brains under this directory instead")


def parse_search(items: list[str]) -> dict[str, Any]:
    """``["root_policy=gumbel", "c_init=0.8"]`` -> ``{"root_policy": "gumbel", "c_init": 0.8}``,
    each value of its ``SearchConfig`` field's type; one line for a setting a card cannot name."""
    from ..evaluation.agents import network_search_config
    from ..pretrained import CARD_SEARCH, PretrainedError

    search: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or key not in CARD_SEARCH:
            raise PretrainedError(f"--search {item!r}: expected KEY=VALUE with KEY one of {', '.join(CARD_SEARCH)}")
        kind = type(getattr(network_search_config(1), key))
        try:
            search[key] = kind(value.strip())
        except ValueError:
            raise PretrainedError(f"--search {item!r}: {key} must be a {kind.__name__}") from None
    network_search_config(1, **search)  # checked as a whole: a bad value fails here, in one line
    return search


def default_opponents(game: Any) -> list[str]:
    """What a shipped brain is measured against: the game's scripted NPCs, greedy, and pure MCTS
    at 200 and 1000 rollouts."""
    return [*game.extra.get("scripts", {}), "greedy", "mcts:200", "mcts:1000"]


def _machine() -> str:
    return f"{os.cpu_count()} CPU cores ({platform.machine()}, {platform.system()}), no GPU"


def _make(args: argparse.Namespace) -> int:
    from export.contract import atomic_write

    from ..evaluation.curve import measure
    from ..pretrained import CARD_FILE, HERE, PretrainedError
    from .export_cmd import export_loaded, load_source

    root = Path(args.root).expanduser() if args.root else HERE
    if not args.name.isidentifier():
        raise PretrainedError(f"brain name {args.name!r}: use letters, digits and underscores")
    final = root / args.name
    building = root / ".building" / args.name  # its own name: the matches print it
    shutil.rmtree(building, ignore_errors=True)
    checkpoint, game = load_source(args.source)
    exported = export_loaded(checkpoint, game, building, with_value=True)[0]
    opponents = [s.strip() for s in args.opponents.split(",") if s.strip()] if args.opponents else default_opponents(game)
    search = parse_search(args.search)
    strength = measure(building, game, opponents, args.games, args.raw_games, args.visits, args.opening_moves, args.seed,
                       search=search)  # fmt: skip
    run = checkpoint.meta.get("run") or {}
    config = checkpoint.meta.get("config") or {}
    elapsed = run.get("elapsed")
    card = {
        "name": args.name,
        "summary": f"{game.name} brain from {checkpoint.path.parent.name}/{checkpoint.path.stem}",
        "reproduce": list(args.reproduce),
        "training": {
            "minutes": round(float(elapsed) / 60, 1) if isinstance(elapsed, (int, float)) else None,
            "machine": args.machine or _machine(),
            "generations": run.get("generation"),
            "games": run.get("games"),
            "positions": run.get("positions"),
            "network": config.get("net"),
            "checkpoint": f"{checkpoint.path.parent.name}/{checkpoint.path.name}",
        },
        "search": {**search, "visits": args.visits},
        "strength": strength,
        "bytes": exported.manifest.bytes,
    }
    with atomic_write(building / CARD_FILE) as f:
        f.write((json.dumps(card, indent=1) + "\n").encode())
    old = root / f".{args.name}.old"
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    building.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(building.parent, ignore_errors=True)
    print(f"wrote {final}/ ({exported.manifest.bytes / 2**20:.2f} MiB)")
    return 0


def main(args: argparse.Namespace) -> int:
    if args.action == "make":
        return _make(args)
    from ..pretrained import shipped

    brains = shipped(Path(args.list_root).expanduser() if args.list_root else None)
    for brain in brains:
        print(brain.describe())
    if not brains:
        print("no brains shipped")
    return 0
