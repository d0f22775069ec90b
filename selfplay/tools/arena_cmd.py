"""``selfplay arena A B``: play two agents against each other and print W/D/L, the score, the
Elo difference with its 95% interval and the SPRT outcome (:mod:`selfplay.evaluation.matches`
plays the match)."""

from __future__ import annotations

import argparse
import json

from games.registry import parse_options

from ..evaluation.agents import SPEC_HELP, load_agent
from ..evaluation.elo import SPRT
from ..evaluation.matches import play_match, resolve_game
from .args import integer, number

__all__ = ["add_arguments", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``selfplay arena A B``."""
    parser.add_argument("agent_a", metavar="A", help=f"first agent: {SPEC_HELP}")
    parser.add_argument("agent_b", metavar="B", help=f"second agent: {SPEC_HELP}")
    parser.add_argument("--game", help="game name (default: the game of a checkpoint agent)")
    parser.add_argument(
        "-o", "--option", action="append", metavar="KEY=VALUE", help="game option, e.g. -o width=8 (repeatable)"
    )
    parser.add_argument("--games", type=integer(1), default=100, help="games to play at most (both colours equally)")
    parser.add_argument(
        "--visits", type=integer(0), default=200, help="search visits per move of network agents (0: raw policy)"
    )
    parser.add_argument("--seed", type=integer(0), default=0, help="match seed (openings and every random choice)")
    parser.add_argument(
        "--opening-moves", type=integer(0), default=2, help="random plies opening each pair of games (0: none)"
    )
    parser.add_argument("--batch", type=integer(1), default=None, help="games played at once (default min(games, 64))")
    parser.add_argument("--sprt", action="store_true", help="stop early when an SPRT of --elo0 against --elo1 decides")
    parser.add_argument("--elo0", type=number(), default=0.0, help="SPRT null hypothesis: A is this much stronger")
    parser.add_argument("--elo1", type=number(), default=50.0, help="SPRT alternative: A is this much stronger")
    parser.add_argument("--alpha", type=number(), default=0.05, help="SPRT false-positive rate")
    parser.add_argument("--beta", type=number(), default=0.05, help="SPRT false-negative rate")
    parser.add_argument("--all-games", action="store_true", help="play every game even when the result is decided")
    parser.add_argument("--device", default="cpu", help="where networks run (cpu, cuda)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON (with every game)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def main(args: argparse.Namespace) -> int:
    """``selfplay arena``: play the match, print W/D/L, score, Elo and the SPRT outcome."""
    game = resolve_game(args.game, parse_options(args.option), [args.agent_a, args.agent_b])
    agent_a = load_agent(args.agent_a, game, visits=args.visits, device=args.device)
    agent_b = load_agent(args.agent_b, game, visits=args.visits, device=args.device)
    sprt = SPRT(args.elo0, args.elo1, args.alpha, args.beta) if args.sprt else None
    result = play_match(
        game,
        agent_a,
        agent_b,
        args.games,
        seed=args.seed,
        sprt=sprt,
        progress=not args.no_progress,
        opening_moves=args.opening_moves,
        batch_size=args.batch,
        stop_when_decided=not args.all_games,
    )
    if args.json:
        print(json.dumps({"game": game.version_tag, "options": dict(game.options), **result.to_dict()}, indent=2))
    else:
        print(result.summary())
    return 0
