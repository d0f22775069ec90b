"""``selfplay bench curve RUN``: a run's checkpoints at minute marks against fixed opponents
(:func:`selfplay.evaluation.curve.measure_curve`), printed, and written to ``curve.json`` and
``curve.png``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..evaluation.curve import CurveError, format_curve, measure_curve
from .args import integer

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``selfplay bench curve``."""
    parser.add_argument("run", help="a training run directory (metrics.csv and its checkpoints)")
    parser.add_argument("--minutes", help="minute marks, comma-separated (default: 6 even steps to the run's end)")
    parser.add_argument("--opponents", default="mcts:200,mcts:1000", help="agents to play, comma-separated")
    parser.add_argument("--games", type=integer(1), default=100, help="games per opponent at --visits")
    parser.add_argument("--raw-games", type=integer(0), default=0, help="games per opponent with the raw policy (0: none)")
    parser.add_argument("--visits", type=integer(1), default=200, help="simulations per move of the network")
    parser.add_argument("--opening-moves", type=integer(0), default=2, help="random plies opening each pair of games")
    parser.add_argument("--solver-positions", type=integer(0), default=50,
                        help="Connect Four: solver benchmark positions per stage (0: none)")  # fmt: skip
    parser.add_argument("--seed", type=integer(0), default=0, help="match and benchmark seed")
    parser.add_argument("--out", help="where curve.json and curve.png go (default: the run directory)")
    parser.add_argument("--json", action="store_true", help="print the JSON")


def main(args: argparse.Namespace) -> int:
    marks = None
    if args.minutes:
        try:
            marks = [float(m) for m in args.minutes.split(",") if m.strip()]
        except ValueError:
            raise CurveError(f"--minutes {args.minutes!r}: expected numbers separated by commas, e.g. 20,60,120") from None
        if not marks or min(marks) <= 0:
            raise CurveError(f"--minutes {args.minutes!r}: expected positive minute marks")
    opponents = [s.strip() for s in args.opponents.split(",") if s.strip()]
    if not opponents:
        raise CurveError("--opponents: name at least one agent, e.g. mcts:200")
    curve = measure_curve(args.run, marks, opponents, args.games, args.raw_games, args.visits, args.opening_moves,
                          args.seed, args.solver_positions, args.out, progress=not args.json)  # fmt: skip
    print(json.dumps(curve, indent=1) if args.json else format_curve(curve))
    if not args.json:
        print(f"wrote {Path(args.out or args.run) / 'curve.json'} and curve.png")
    return 0
