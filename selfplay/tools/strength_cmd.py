"""``selfplay bench strength connect4 --checkpoint C``: the solver benchmark's error rates of a
network: raw, its value one ply deeper, and with search (:mod:`selfplay.evaluation.strength`)."""

from __future__ import annotations

import argparse
import json

from ..evaluation.networks import load_game_and_evaluator
from ..evaluation.strength import StrengthError, error_rates, format_report, load_positions

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``selfplay bench strength``."""
    parser.add_argument("game", help="connect4 (the game with a solver)")
    parser.add_argument("--checkpoint", required=True, help="checkpoint (run directory, ckpt-*.json) or .onnx file")
    parser.add_argument("-o", "--option", action="append", metavar="KEY=VALUE", help="game option (for an .onnx file)")
    parser.add_argument("--visits", type=int, default=200, help="simulations per move with search (0: raw network only)")
    parser.add_argument(
        "--positions", type=int, default=50,
        help="positions per stage (the first run answers them with the solver: ~2 min for 50; then cached)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the positions and of the search")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=None, help="onnxruntime threads (default: its choice)")
    parser.add_argument("--json", action="store_true", help="print JSON")


def main(args: argparse.Namespace) -> int:
    if args.positions < 1 or args.visits < 0:
        raise StrengthError("--positions must be >= 1 and --visits >= 0")
    game, evaluator = load_game_and_evaluator(args)
    if game.name != args.game:
        raise StrengthError(f"{args.checkpoint} is a {game.name} network, not {args.game}")
    positions = load_positions(game, args.positions, args.seed, progress=not args.json)
    report = error_rates(game, evaluator, positions, args.visits, args.seed, value=True)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0
