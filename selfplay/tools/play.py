"""``selfplay play``: play a game against an agent in a pygame window.

    selfplay play connect4                                  # against the brain shipped in the package
    selfplay play arena                                     # the shipped ladder, at level 3 (Up/Down change it)
    selfplay play --agent runs/connect4-20261123-1200       # the game comes from the checkpoint
    selfplay play connect4 --agent mcts:1000 --second       # you move second
    selfplay play --agent runs/league-c4/ladder --level 2   # a difficulty ladder, at level 2
    selfplay play connect4 --analysis-only --overlay        # move for both sides, see the analysis

The window (:mod:`selfplay.tools.play_window`, keys in ``docs/play.md``) draws the board with the
last move marked and a preview of where a click plays, a side panel (whose turn, the result, the
moves, the agent's strength) and, on Tab, the analysis overlay: the search of ``selfplay analyze``
on the position, its win probability and top moves. The game it shows is a
:class:`~selfplay.tools.session.PlaySession`. This module holds the command:

* :func:`load_opponent` / :func:`load_difficulty`: agents from the command line's specs.
* :func:`run_window`, :func:`add_arguments`, :func:`main`: the window for a session, and the flags.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import games
from games.core import Game

from ..evaluation.agents import SPEC_HELP, Agent, NetworkAgent, load_agent, network_search_config, played_search
from .args import integer, number
from .session import Difficulty, PlayError, PlaySession, check_screenshot_moves, visit_levels

__all__ = [
    "add_arguments",
    "load_difficulty",
    "load_opponent",
    "main",
    "run_window",
]


# ------------------------------------------------------------------------------ loading


def load_opponent(
    spec: str | None,
    game_name: str | None,
    options: list[str] | None,
    visits: int | None,
    device: str = "cpu",
    level: int | None = None,
) -> tuple[Game, Agent]:
    """The game and the agent ``spec`` names (:func:`selfplay.evaluation.agents.load_agent`,
    or a league ladder at ``level``). A checkpoint or ladder records its game, so ``game_name``
    may then be left out; a baseline or ONNX file needs it. ``spec`` None: the ladder shipped
    for the game (at its start level), else the brain shipped for it, else greedy. ``visits``
    None: 200, or for a ladder the visits its levels were measured at."""
    game, difficulty = load_difficulty(spec, game_name, options, visits, device, level)
    return game, difficulty.agent


def load_difficulty(
    spec: str | None,
    game_name: str | None,
    options: list[str] | None,
    visits: int | None,
    device: str = "cpu",
    level: int | None = None,
) -> tuple[Game, Difficulty]:
    """:func:`load_opponent`'s game, and the levels its agent can be set to (:class:`Difficulty`):
    a ladder's levels, search sizes around a searching agent's own, or that agent alone."""
    from ..league.ladder import is_ladder

    if spec is None or spec == "pretrained":
        spec, options = _pretrained_or_greedy(spec, game_name, options)
    path = Path(os.path.expanduser(spec))
    if is_ladder(path):
        return _ladder_difficulty(path, game_name, options, visits, device, level)
    if level is not None:
        raise PlayError(f"--level picks a level of a league ladder; {spec!r} is not one (selfplay league ladder DIR writes one)")
    visits = 200 if visits is None else visits
    if path.suffix in (".json", ".safetensors") or path.is_dir():
        return _checkpoint_agent(path, game_name, options, visits, device)
    if not game_name:
        raise PlayError(f"agent {spec!r} does not say which game it plays; name the game: selfplay play GAME --agent {spec}")
    game = games.make(game_name, **games.parse_options(options))
    return game, visit_levels(load_agent(spec, game, visits=visits, device=device))


def _pretrained_or_greedy(spec: str | None, game_name: str | None, options: list[str] | None) -> tuple[str, list[str] | None]:
    """The opponent when none is named (``spec`` None): the difficulty ladder shipped for the
    game, else the brain shipped for it (:mod:`selfplay.pretrained`), else greedy; for
    ``pretrained``, the brain. With no ``-o`` options, a game whose brain plays other options
    opens with those (6x6 Othello), and says so. Returns (spec, options)."""
    from ..evaluation.agents import AgentError, pretrained_path
    from ..pretrained import ladder_for_game, variants

    if not game_name:
        raise PlayError("name the game to play, e.g. selfplay play connect4 (or give --agent CHECKPOINT)")
    game = games.make(game_name, **games.parse_options(options))
    ladder = ladder_for_game(game) if spec is None else None
    if ladder is not None:
        return str(ladder.path), options
    try:
        return str(pretrained_path(game)), options
    except AgentError:
        others = variants(game.name)
        if not options and others:
            brain = others[0]
            flags = " ".join(f"-o {k}={v}" for k, v in brain.options.items())
            print(f"{game.name}: playing with {flags}, the options of its shipped brain (give -o options to choose)")
            return str(brain.path), [f"{k}={v}" for k, v in brain.options.items()]
        if spec == "pretrained":
            raise
        print(f"no pretrained brain ships for {game.name} with these options: playing greedy (--agent chooses)")
        return "greedy", options


def _checkpoint_agent(
    path: Path, game_name: str | None, options: list[str] | None, visits: int, device: str, name: str | None = None
) -> tuple[Game, Difficulty]:
    from ..evaluation.networks import load_game_and_evaluator

    namespace = argparse.Namespace(checkpoint=str(path), game=game_name, option=options, device=device, threads=1,
                                   require_value=visits > 0)  # a brain without a value plays its raw policy
    game, evaluator = load_game_and_evaluator(namespace)
    label = name or (path.name if path.is_dir() else f"{path.parent.name}/{path.stem}")
    search = network_search_config(max(visits, 1), **played_search(path))  # a brain card's or the run's
    return game, visit_levels(NetworkAgent(game, evaluator, visits, config=search, name=f"{label}@{visits}"))


def _ladder_difficulty(
    path: Path, game_name: str | None, options: list[str] | None, visits: int | None, device: str, level: int | None
) -> tuple[Game, Difficulty]:
    """A league ladder's levels, each its checkpoint (or brain) at its own visits where the
    ladder names them per level (a shipped ladder), else at the ladder's, or at ``visits`` when
    given. ``level`` None: the ladder's ``start_level``, else 1."""
    from ..league.ladder import read_ladder

    directory, ladder = read_ladder(path)
    levels = ladder["levels"]
    chosen = int(ladder.get("start_level", 1)) if level is None else level
    if not 1 <= chosen <= len(levels):
        raise PlayError(f"{directory}: the ladder has levels 1..{len(levels)}, not {chosen}")

    def visits_of(i: int) -> int:
        return visits if visits is not None else int(levels[i].get("visits", ladder.get("visits", 0)))

    loaded: dict[int, tuple[Game, Agent]] = {}

    def load(i: int) -> tuple[Game, Agent]:
        if i not in loaded:
            checkpoint = directory / levels[i]["checkpoint"]
            game, found = _checkpoint_agent(checkpoint, game_name, options, visits_of(i), device, name=f"level {i + 1}")
            loaded[i] = game, found.agent
        return loaded[i]

    game, _ = load(chosen - 1)  # checks the game and options, and fails early on a bad checkpoint
    per_level = visits is None and all("visits" in e for e in levels)
    labels = tuple(f"level {e['level']} (Elo {e.get('elo', '?')}" + (f", {visits_of(i)} visits)" if per_level else ")")
                   for i, e in enumerate(levels))
    return game, Difficulty(labels, lambda i: load(i)[1], chosen - 1)


# ------------------------------------------------------------------------------ the command

def run_window(session: PlaySession, agent_name: str | None = None, **options) -> None:
    """Show ``session`` in a pygame window and play it until the window is closed (or Esc);
    ``options`` are :class:`selfplay.tools.play_window.PlayWindow`'s and its ``run``'s."""
    from .play_window import PlayWindow

    run_options = {k: options.pop(k) for k in ("max_frames", "screenshot", "after_moves") if k in options}
    PlayWindow(session, agent_name=agent_name, **options).run(**run_options)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("game", nargs="?", help="game name (optional when --agent is a checkpoint or a ladder)")
    parser.add_argument("--agent", help=f"your opponent: {SPEC_HELP}, or a league ladder directory (default: the "
                        "ladder shipped for the game, else pretrained when a brain ships for it, else greedy)")
    parser.add_argument("--level", type=integer(1), help="with a ladder (as --agent, or the one shipped for the game): "
                        "the level to start at (1 is the weakest; default: the ladder's start level, else 1)")
    parser.add_argument("--visits", type=integer(0), help="search visits per move of a network agent (0: raw policy; default 200, or a ladder's own)")
    parser.add_argument("--second", action="store_true", help="let the agent move first")
    parser.add_argument("--analysis-only", action="store_true", help="make both sides' moves yourself (the agent only analyzes)")
    parser.add_argument("--overlay", action="store_true", help="start with the analysis overlay on (Tab toggles it)")
    parser.add_argument("--analysis-visits", type=integer(1), default=200, help="visits of the overlay's analysis (selfplay analyze's search)")
    parser.add_argument("--move-time", type=number(0.05, 3600), default=10.0, help="the most seconds the agent thinks about one move")
    parser.add_argument("--moves", help="moves to play first, comma-separated in the game's notation (e.g. 4,4,3)")
    parser.add_argument("-o", "--option", action="append", metavar="KEY=VALUE", help="game option (repeatable)")
    parser.add_argument("--device", default="cpu", help="where a network runs: cpu, cuda, ...")
    parser.add_argument("--seed", type=integer(0), default=0, help="the agent's random seed")
    parser.add_argument("--size", type=integer(120, 4096), nargs=2, metavar=("W", "H"), help="board size in pixels")
    parser.add_argument("--screenshot", metavar="FILE", help="save the window as an image (PNG) once it is idle, then quit")
    parser.add_argument("--after-moves", type=integer(0), default=0, help="with --screenshot: wait until this many moves are played")


def main(args: argparse.Namespace) -> int:
    if args.after_moves and not args.screenshot:
        raise PlayError("--after-moves says when to take a --screenshot; give --screenshot FILE too")
    game, difficulty = load_difficulty(args.agent, args.game, args.option, args.visits, args.device, args.level)
    session = PlaySession(game, difficulty.agent, human=1 if args.second else 0, seed=args.seed, both_sides=args.analysis_only)
    if args.moves:
        session.play_line([m.strip() for m in args.moves.split(",") if m.strip()])
    if args.screenshot:
        check_screenshot_moves(session, args.after_moves)  # before a window opens, not never
    run_window(
        session,
        difficulty=difficulty,
        overlay=args.overlay,
        analysis_visits=args.analysis_visits,
        move_time=args.move_time,
        size=tuple(args.size) if args.size else None,
        screenshot=args.screenshot,
        after_moves=args.after_moves,
    )
    return 0
