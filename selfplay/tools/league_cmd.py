"""``selfplay league``: the command line of a league run (``GAME``, ``--resume DIR``) and of its
subcommands ``status``, ``ladder``, ``final`` (on a league directory) and ``exploit TARGET``.

This module only turns arguments into calls: the league itself is :mod:`selfplay.league.run`, its
files :mod:`selfplay.league.store`, the reports :mod:`selfplay.league.report`,
:mod:`selfplay.league.ladder` and :mod:`selfplay.league.final`, and ``exploit``
:mod:`selfplay.league.exploit`. Each subcommand's ``--help`` shows its own flags only.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
from dataclasses import fields, replace
from pathlib import Path
from typing import Sequence

import games
from games.core import GameError

from ..config import ConfigError, add_config_arguments, overrides_from_args, with_overrides
from ..league.exploit import run_exploiter
from ..league.population import LeagueConfig, LeagueError
from ..league.run import run_league
from ..league.store import LeagueRunConfig, load_run_config
from ..presets import PRESETS, league_preset

__all__ = ["RESUME_SAFE", "SUBCOMMANDS", "add_arguments", "config_from_args", "main"]

#: Settings --resume may change: the budget and the hardware (as selfplay train), where actors run included.
RESUME_SAFE = frozenset({"run.minutes", "run.generations", "run.device", "run.inference", "selfplay.num_actors", "learner.threads",
                         "league.plot_seconds", "league.keep_snapshots", "cluster.backend", "cluster.address",
                         "cluster.actor_resource", "cluster.inference", "cluster.chunk_seconds"})


def _league_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("league settings", (LeagueConfig.__doc__ or "").split("\n")[0])
    for f in fields(LeagueConfig):
        kind = type(f.default)  # int, float or str
        group.add_argument(f"--league.{f.name.replace('_', '-')}", dest=f"league.{f.name}", type=kind,
                           default=argparse.SUPPRESS, metavar={int: "N", float: "X"}.get(kind, "TEXT"),
                           help=f.metadata["help"].replace("%", "%%"))


#: ``selfplay league WORD ...``: these words are subcommands, each with its own flags and help;
#: any other word names the game a new league trains on.
SUBCOMMANDS = {
    "status": "the league's members, snapshots and ratings",
    "ladder": "pick and measure a ladder of levels from the league's networks (ladder/)",
    "final": "the main agents against every snapshot and eval.final_opponents, with search and raw",
    "exploit": "train a fresh learner against one fixed agent for --minutes, then score it against that agent",
}


def add_arguments(parser: argparse.ArgumentParser, argv: Sequence[str] = ()) -> None:
    """The arguments of ``selfplay league`` followed by ``argv``: those of the subcommand that
    ``argv`` names (``status DIR``, ``ladder DIR``, ``final DIR``, ``exploit TARGET``), else those
    of a league run (``GAME``, or ``--resume DIR``). So each subcommand's ``--help`` shows its own
    flags only."""
    words = [a for a in argv if not a.startswith("-")]
    command = words[0] if words and words[0] in SUBCOMMANDS else None
    if command is None:
        parser.add_argument("target", nargs="?", metavar="GAME", help="the game to train a league on (subcommands: "
                            + "; ".join(f"{k}: {v}" for k, v in SUBCOMMANDS.items()) + ")")
        parser.set_defaults(directory=None)
        parser.add_argument("-o", "--option", action="append", metavar="KEY=VALUE", help="game option (repeatable)")
        parser.add_argument("--preset", choices=PRESETS, default=None, help="the members' training preset (default: small)")
        parser.add_argument("--run-dir", default=None, metavar="DIR", help="where the league is written (default: "
                            "runs/league-GAME-DATE-TIME)")
        parser.add_argument("--resume", default=None, metavar="DIR", help="continue the league in DIR; may change only: "
                            + ", ".join(sorted(RESUME_SAFE)))
        parser.add_argument("--print-config", action="store_true", help="print the league's full config as JSON and exit")
        parser.add_argument("--no-final", action="store_true", help="skip the final matches of the main agents")
        _league_flags(parser)
        add_config_arguments(parser)
        return
    parser.prog, parser.description = f"{parser.prog} {command}", SUBCOMMANDS[command]
    parser.add_argument("target", choices=[command], help=argparse.SUPPRESS)  # the word itself, shown in prog
    if command == "exploit":
        parser.add_argument("directory", metavar="TARGET", help="the agent to exploit, any agent spec selfplay arena "
                            "takes: a run directory or checkpoint, an exported brain (directory or .onnx), "
                            "'pretrained', or a fixed player (mcts:200, a script: a specialist against it)")
        parser.add_argument("--init", default=None, metavar="CHECKPOINT", help="the network the exploiter starts from "
                            "(its architecture too; default: a fresh network); use one for every target compared")
        parser.add_argument("--game", default=None, help="the game, where neither TARGET nor --init names it "
                            "(mcts:200, a script, pretrained, a bare .onnx)")
        parser.add_argument("-o", "--option", action="append", metavar="KEY=VALUE", help="game option (repeatable)")
        parser.add_argument("--preset", choices=PRESETS, default=None, help="the exploiter's training preset "
                            "(default: small, with the league members' settings for the game)")
        parser.add_argument("--run-dir", default=None, metavar="DIR", help="where the exploiter is written "
                            "(default: runs/exploit-GAME-DATE-TIME)")
        parser.add_argument("--games", type=int, default=40, help="games of the final score, with search and raw each")
        add_config_arguments(parser)
        return
    parser.add_argument("directory", metavar="DIR", help="the league directory")
    if command == "ladder":
        parser.add_argument("--levels", type=int, default=5, help="levels, from beginner to strongest")
        parser.add_argument("--games", type=int, default=40, help="games between neighbouring levels")
        parser.add_argument("--visits", type=int, default=0, help="simulations per move in those games (0: raw policy, "
                            "an NPC's brain)")
        parser.add_argument("--opening-moves", type=int, default=2, help="random plies opening each pair of games")
        parser.add_argument("--min-games", type=int, default=30, help="networks with fewer league games are not candidates")
        parser.add_argument("--kinds", default="main", help="members whose networks may be levels, comma-separated "
                            "(main, main_exploiter, league_exploiter); the seed always may")
        parser.add_argument("--players", metavar="NAME,NAME,...", help="these networks as the levels, weakest first "
                            "(names as league status lists them, e.g. main0/g12,main0/g48,main0/g123): measured, not "
                            "picked or mended")
    elif command == "final":
        parser.add_argument("--games", type=int, default=40, help="games per pairing")
        parser.add_argument("--snapshots", type=int, default=8, help="the snapshots to play, evenly spaced over "
                            "the main agents' line and over the exploiters' (0: every snapshot on disk)")
        parser.add_argument("--workers", type=int, default=0, help="processes playing the matches, each on one "
                            "core (0: one per CPU core)")


def split_names(text: str | None) -> list[str] | None:
    """``--players A,B,C`` as a list (None when not given)."""
    return None if text is None else [name.strip() for name in text.split(",") if name.strip()]


def config_from_args(args: argparse.Namespace) -> tuple[LeagueRunConfig, Path, bool]:
    overrides = overrides_from_args(args)
    league_overrides = {k.split(".", 1)[1]: v for k, v in vars(args).items() if k.startswith("league.")}
    if args.resume:
        for given, flag in ((args.preset, "--preset"), (args.option, "-o"), (args.run_dir, "--run-dir")):
            if given:
                raise LeagueError(f"{flag} cannot be combined with --resume (the league's config.json decides)")
        config = load_run_config(args.resume)
        unsafe = sorted((set(overrides) | {f"league.{k}" for k in league_overrides}) - RESUME_SAFE)
        if unsafe:
            raise LeagueError(f"--resume keeps the league's settings; {', '.join('--' + k.replace('_', '-') for k in unsafe)} "
                              f"cannot change (allowed: {', '.join(sorted(RESUME_SAFE))})")
        return LeagueRunConfig(with_overrides(config.train, overrides),
                               replace(config.league, **league_overrides)), Path(args.resume), True
    if not args.target:
        raise LeagueError("give a game (selfplay league connect4), status DIR, ladder DIR, or --resume DIR")
    game = games.make(args.target, **games.parse_options(args.option))
    train, league_defaults = league_preset(game.name, args.preset or "small", dict(game.options))
    train = with_overrides(train, overrides)
    league_overrides = {**league_defaults, **league_overrides}
    if league_overrides.get("init") and not any(key.startswith("net.") for key in overrides):
        from ..model.checkpoint import load_checkpoint  # the members take the seed checkpoint's network

        train = train.replace(net=load_checkpoint(league_overrides["init"], expect_game=game).net)
    config = LeagueRunConfig(train, LeagueConfig(**league_overrides))
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = Path(args.run_dir) if args.run_dir else Path("runs") / f"league-{args.target}-{stamp}"
    return config, run_dir, False


def _exploit_game(args: argparse.Namespace) -> games.Game:
    """The game of ``selfplay league exploit TARGET``: ``--game``, else the one TARGET (a
    checkpoint, a run, a brain) was made for, else ``--init``'s (a fixed player such as
    ``mcts:200``, ``pretrained`` or a bare ``.onnx`` has no game of its own)."""
    from export.contract import game_of, is_brain, read_manifest

    from ..model.checkpoint import load_checkpoint

    if args.game:
        return games.make(args.game, **games.parse_options(args.option))
    target = Path(os.path.expanduser(args.directory))
    if is_brain(target):
        return game_of(read_manifest(target), str(target))
    source = args.directory if target.exists() and target.suffix != ".onnx" else args.init
    if source is None:
        raise LeagueError(f"selfplay league exploit {args.directory}: its game is not recorded there; name it with "
                          "--game GAME or --init CHECKPOINT")
    found = load_checkpoint(source)
    return games.make(found.game.rsplit("_v", 1)[0], **dict(found.game_options or {}))


def main(args: argparse.Namespace) -> int:
    from ..model.checkpoint import CheckpointError
    from ..training.ray_cluster import ClusterError

    try:
        if args.target == "exploit":
            game = _exploit_game(args)
            # the league's member settings: an exploiter trains as the agents it is compared with did
            train = with_overrides(league_preset(game.name, args.preset or "small", dict(game.options))[0],
                                   overrides_from_args(args))
            stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
            run_exploiter(args.directory, train, args.run_dir or Path("runs") / f"exploit-{game.name}-{stamp}",
                          games_=args.games, init=args.init)
            return 0
        if args.target in ("status", "ladder", "final"):
            if args.target == "status":
                from ..league.report import status_text

                print(status_text(args.directory))
            elif args.target == "final":
                from ..league.final import final_report

                if args.snapshots < 0:
                    raise LeagueError(f"--snapshots {args.snapshots}: give a count of snapshots, or 0 for every one")
                if args.workers < 0:
                    raise LeagueError(f"--workers must be >= 0 (0: one per CPU core), got {args.workers}")
                final_report(args.directory, games=args.games, log=print, max_snapshots=args.snapshots,
                             workers=args.workers or None)
            else:
                from ..league.ladder import write_ladder

                print(write_ladder(args.directory, args.levels, args.games, args.visits, opening_moves=args.opening_moves, min_games=args.min_games,
                                   kinds=tuple(k.strip() for k in args.kinds.split(",")), players=split_names(args.players)))
            return 0
        config, run_dir, resume = config_from_args(args)
        if args.print_config:
            print(json.dumps(config.to_dict(), indent=1))
            return 0
        run_league(config, run_dir, resume=resume, final_report=not args.no_final)
    except (ConfigError, CheckpointError, ClusterError) as e:
        raise LeagueError(" ".join(str(e).split())) from None
    return 0


if __name__ == "__main__":  # python -m selfplay.tools.league_cmd GAME ... (the same as `selfplay league`)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as selfplay.tools.cli.main: before the parser loads torch
    parser = argparse.ArgumentParser(prog="selfplay league", description="Train a league of learners.")
    add_arguments(parser, sys.argv[1:])
    try:
        sys.exit(main(parser.parse_args()))
    except (LeagueError, GameError, ValueError) as e:
        print(f"selfplay league: error: {e}", file=sys.stderr)
        sys.exit(2)
