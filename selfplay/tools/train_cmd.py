"""``selfplay train``'s command line: its flags, the config they make, and the run they start
(:func:`selfplay.training.trainer.train`). ``python -m selfplay.tools.train_cmd GAME ...`` is the
same as ``selfplay train GAME ...``."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import sys
from pathlib import Path

import games
from games.core import GameError

from ..config import RESUME_SAFE, ConfigError, TrainConfig, add_config_arguments, overrides_from_args, with_overrides
from ..presets import PRESETS, preset
from ..training.resume import config_for_resume, load_config
from ..training.state import TrainError
from ..training.trainer import train

__all__ = ["add_arguments", "config_from_args", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``selfplay train``."""
    parser.add_argument("game", nargs="?", help="game name (see `selfplay games`); not needed with --resume")
    parser.add_argument("-o", "--option", action="append", metavar="KEY=VALUE", help="game option, e.g. -o width=8 (repeatable)")
    parser.add_argument("--preset", choices=PRESETS, default=None, help="starting configuration (default: small)")
    parser.add_argument("--run-dir", default=None, metavar="DIR", help="where the run is written (default: runs/GAME-DATE-TIME)")
    parser.add_argument(
        "--resume", default=None, metavar="DIR",
        help="continue the run in DIR from its latest checkpoint; only these settings may change: "
        + ", ".join(sorted(RESUME_SAFE)),
    )
    parser.add_argument("--no-final", action="store_true", help="skip the final matches against eval.final_opponents")
    parser.add_argument("--print-config", action="store_true", help="print the run's full config as JSON and exit")
    add_config_arguments(parser)


def config_from_args(args: argparse.Namespace) -> tuple[TrainConfig, Path, bool]:
    """(config, run directory, resume?) from parsed ``selfplay train`` arguments."""
    overrides = overrides_from_args(args)
    if args.resume:
        for given, flag in ((args.preset, "--preset"), (args.option, "-o"), (args.run_dir, "--run-dir")):
            if given:
                raise TrainError(f"{flag} cannot be combined with --resume (the run's config.json decides)")
        run_dir = Path(args.resume)
        return config_for_resume(load_config(run_dir), run_dir, args.game, overrides), run_dir, True
    if not args.game:
        raise TrainError("give a game to train (e.g. selfplay train connect4), or --resume DIR")
    game = games.make(args.game, **games.parse_options(args.option))
    base = preset(args.game, args.preset or "small", dict(game.options))
    config = with_overrides(base, overrides)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", args.game)  # an external spec has colons: pettingzoo:...
    run_dir = Path(args.run_dir) if args.run_dir else Path("runs") / f"{slug}-{stamp}"
    return config, run_dir, False


def main(args: argparse.Namespace) -> int:
    """``selfplay train``: train, print the final strength and the checkpoint's path."""
    from ..model.checkpoint import CheckpointError
    from ..training.ray_cluster import ClusterError
    from .cli import STARTED

    # OMP_WAIT_POLICY=PASSIVE is set by the program (selfplay.tools.cli.main, or the block below),
    # before building the parser loads torch; by now it would be too late.
    try:
        config, run_dir, resume = config_from_args(args)
        if args.print_config:
            print(json.dumps(config.to_dict(), indent=1))
            return 0
        train(config, run_dir, resume=resume, final_report=not args.no_final, started=STARTED)
    except (ConfigError, CheckpointError, ClusterError) as e:
        raise TrainError(str(e)) from None
    return 0


if __name__ == "__main__":  # python -m selfplay.tools.train_cmd GAME ... (the CLI's `selfplay train` is the same)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as `selfplay train`: before the parser loads torch
    parser = argparse.ArgumentParser(prog="selfplay train", description="Train by self-play.")
    add_arguments(parser)
    try:
        sys.exit(main(parser.parse_args()))
    except (TrainError, GameError) as e:
        print(f"selfplay train: error: {e}", file=sys.stderr)
        sys.exit(2)
