"""The game and evaluator that a command's ``--checkpoint`` names: a run directory (its latest
checkpoint), a checkpoint file, an exported brain directory, or a bare ``.onnx`` file (which
records no game, so ``--game`` names it). ``selfplay analyze``, ``selfplay play`` and
``selfplay bench strength`` load their networks here.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import games
from games.core import Game

from .analysis import AnalysisError

__all__ = ["checkpoint_game", "load_game_and_evaluator"]


def checkpoint_game(checkpoint: Any) -> Game:
    """The game a checkpoint was trained on, from its version tag and options."""
    name, _, version = checkpoint.game.rpartition("_v")
    if not name or not version.isdigit():
        raise AnalysisError(f"{checkpoint.path.name}: game tag {checkpoint.game!r} is not NAME_vVERSION")
    game = games.make(name, **(checkpoint.game_options or {}))
    if game.version != int(version):
        raise AnalysisError(f"{checkpoint.path.name}: checkpoint is for {checkpoint.game}; this selfplay plays {game.version_tag}")
    if tuple(checkpoint.obs_shape) != tuple(game.obs_shape) or checkpoint.num_actions != game.num_actions:
        raise AnalysisError(
            f"{checkpoint.path.name}: checkpoint has observations {tuple(checkpoint.obs_shape)} and "
            f"{checkpoint.num_actions} actions; {game!r} has {tuple(game.obs_shape)} and {game.num_actions}"
        )
    return game


def load_game_and_evaluator(args: argparse.Namespace) -> tuple[Game, Any]:
    """The game and evaluator that ``--checkpoint``, ``--game``, ``-o`` and ``--device`` name."""
    from export.contract import game_of, is_brain, read_manifest

    from ..model.checkpoint import load_checkpoint
    from ..model.inference import evaluator_for, load_brain_evaluator, load_evaluator

    path = Path(args.checkpoint)
    options = games.parse_options(args.option)
    if path.suffix == ".onnx" and not is_brain(path):
        if not args.game:
            raise AnalysisError(f"{path}: an ONNX file does not record its game; name the game it plays")
        game = games.make(args.game, **options)
        return game, load_evaluator(path, game, device=args.device, threads=args.threads)
    if is_brain(path):  # an exported brain records its game in its manifest, as a checkpoint does
        game = game_of(read_manifest(path), str(path))
        need_value = getattr(args, "require_value", True)  # analysis reports values; play at 0 visits needs none
        evaluator = lambda: load_brain_evaluator(path, game, threads=args.threads, require_value=need_value)  # noqa: E731
    else:
        checkpoint = load_checkpoint(path)
        game = checkpoint_game(checkpoint)
        evaluator = lambda: evaluator_for(checkpoint.build_model(), game.obs_shape, args.device, threads=args.threads)  # noqa: E731
    if args.game and args.game != game.name:
        raise AnalysisError(f"{path}: checkpoint is for {game!r}, not {args.game}")
    if options:  # given, they must describe the checkpoint's game
        asked = games.make(game.name, **{**dict(game.options), **options})
        if asked.version_tag != game.version_tag or dict(asked.options) != dict(game.options):
            raise AnalysisError(f"{path}: checkpoint is for {game!r}, not {asked!r}")
    return game, evaluator()
