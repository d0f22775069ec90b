"""``selfplay pretrained``: the brains shipped in the package, and how one is made.

::

    selfplay pretrained                                      # list them, with training and strength
    selfplay pretrained make connect4 runs/c4-120 --reproduce "selfplay train connect4 ..."
    selfplay pretrained exploit arena --minutes 15 --seed 0  # add its exploitability to its card
    selfplay pretrained make-ladder arena_ladder runs/league-arena --levels 5 --reproduce "selfplay league arena ..."

``make`` exports the checkpoint (``export``, with a value output so the brain can search) into
``selfplay/pretrained/NAME`` (or ``--root``), then measures the *exported* brain, the file a
user gets: matches at ``--visits`` and with its raw policy against every opponent, and for
Connect Four the solver benchmark. With ``--exploit-minutes`` it then measures the brain's
exploitability as ``exploit`` does. It writes every figure into ``card.json``
(:mod:`selfplay.pretrained`), so nothing on a card is typed by hand. The directory is written
beside the old one and swapped in at the end: an interrupted ``make`` leaves the old brain.

``exploit`` trains a fresh exploiter against a shipped brain for a fixed, seeded budget
(:func:`selfplay.league.exploit.run_exploiter`, what ``selfplay league exploit`` runs, with the
league members' settings for the game) and writes its score against the brain, with search at
the card's visits and as raw policies, onto the card as ``exploitability``.

``make-ladder`` ships a difficulty ladder from one league: it picks the levels (as ``selfplay
league ladder`` does), exports each, plays each level against the one below at the levels' own
visits, measures each level against the opponents, and writes ONE card for all of them
(:mod:`selfplay.tools.pretrained_ladder`). What ``make`` and ``make-ladder`` share, building the
directory and writing its card, is :mod:`selfplay.tools.brain_card`.
"""

from __future__ import annotations

import argparse
import json
import shlex
from pathlib import Path
from typing import Any

from .args import integer, number
from .brain_card import building_dir, card_opponents, parse_search, swap_in, this_machine, usage_error, write_card

__all__ = ["DEFAULT_SEED", "SUBCOMMANDS", "add_arguments", "main"]

#: The subcommands; ``selfplay`` passes the words after ``pretrained`` to :func:`add_arguments`,
#: so only ``exploit`` loads the training settings (and torch) for its flags.
SUBCOMMANDS = ("make", "exploit", "make-ladder")

#: The seed of ``make``'s matches when none is given; cards made before they recorded their
#: seed were measured with it.
DEFAULT_SEED = 0


def add_arguments(parser: argparse.ArgumentParser, argv: list[str] | tuple[str, ...] = ()) -> None:
    """The arguments of ``selfplay pretrained``, then of the subcommand ``argv`` names."""
    sub = parser.add_subparsers(dest="action")
    make = sub.add_parser("make", help="export a checkpoint into the package and measure it (maintainers)")
    make.add_argument("name", help="the brain's directory name (connect4, arena, othello6)")
    make.add_argument("source", help="run directory or checkpoint (ckpt-*.json)")
    _reproduce_and_measure(make, games_help="games per match with search (default 200)", raw_games=100)
    make.add_argument("--visits", type=integer(1), default=200, help="simulations per move with search (default 200)")
    make.add_argument("--exploit-minutes", type=number(0), default=None, metavar="M",
                      help="then train an exploiter against the brain for M minutes and write its score on the card "
                           "(as selfplay pretrained exploit NAME --minutes M does)")
    make.add_argument("--exploit-seed", type=integer(0), default=0, help="the exploiter's seed (default 0)")
    make.add_argument("--exploit-args", default="", metavar="FLAGS", help="more flags of selfplay pretrained exploit "
                      "for the exploiter, quoted: --exploit-args='--games 200 --preset small'")
    exploit = sub.add_parser("exploit", help="measure a shipped brain's exploitability and write it on its card "
                             "(maintainers)")
    _exploit_arguments(exploit, config_flags=next((a for a in argv if not a.startswith("-")), None) == "exploit")
    ladder = sub.add_parser("make-ladder", help="pick, export and measure a difficulty ladder from a league, with one "
                            "card for every level (maintainers)")
    ladder.add_argument("name", help="the ladder's directory name (arena_ladder)")
    ladder.add_argument("source", help="a league directory (the levels are picked afresh, as selfplay league ladder "
                        "picks them) or a ladder directory holding ladder.json (its levels as they are)")
    _reproduce_and_measure(ladder, games_help="games of each level against the one below, and per opponent "
                           "(default 200)", raw_games=0)
    ladder.add_argument("--levels", type=integer(2), default=5, help="levels to pick from a league (default 5)")
    ladder.add_argument("--visits", default="200", metavar="N[,N...]", help="search visits of each level: one count "
                        "for all, or one per level from the weakest (0,50,200,200,200); 0 is the raw policy")
    ladder.add_argument("--min-step-score", type=number(0, 1), default=0.6, help="what each level must score against "
                        "the one below; a step short of it is reported and marked on the card (default 0.6)")
    ladder.add_argument("--start-level", type=integer(1), default=3, help="the level selfplay play opens at (default 3)")
    ladder.add_argument("--pick-games", type=integer(2), default=40, help="picking from a league: games between "
                        "neighbouring candidates (selfplay league ladder --games)")
    ladder.add_argument("--pick-visits", type=integer(0), default=0, help="picking from a league: their visits")
    ladder.add_argument("--min-games", type=integer(0), default=30, help="picking from a league: networks with fewer "
                        "league games are not candidates")
    ladder.add_argument("--players", metavar="NAME,NAME,...", help="from a league: these networks as the levels, "
                        "weakest first, instead of picking (a name twice: one network at two --visits counts)")
    ladder.add_argument("--plot", metavar="FILE", help="also draw the ladder (each level's Elo and visits, each step's "
                        "score with its 95%% interval) into this PNG, e.g. docs/img/arena-ladder.png")
    parser.add_argument("--root", dest="list_root", help="list the brains under this directory instead")


def _reproduce_and_measure(parser: argparse.ArgumentParser, games_help: str, raw_games: int) -> None:
    """The flags ``make`` and ``make-ladder`` share: the card's provenance and the matches."""
    parser.add_argument("--reproduce", action="append", required=True, metavar="COMMAND",
                        help="a command that reproduces the source (repeatable, in order)")
    parser.add_argument("--machine", help="where it was trained (default: this machine)")
    parser.add_argument("--opponents", help="comma-separated agents to measure against, or 'none' (default: the "
                        "game's scripts, the held-out ones too, random, greedy, mcts:200, mcts:1000)")
    parser.add_argument("--games", type=integer(2), default=200, help=games_help)
    parser.add_argument("--raw-games", type=integer(0), default=raw_games,
                        help=f"games per match of the raw policy (0: none; default {raw_games})")
    parser.add_argument("--opening-moves", type=integer(0), default=2, help="random opening plies per pair of games")
    parser.add_argument("--search", action="append", metavar="KEY=VALUE", default=[],
                        help="a setting of the search the brain plays with (root_policy, c_init, fpu, fpu_value; "
                             "repeatable): measured with, written on the card, and used by every command that loads "
                             "the brain (default: the agents' PUCT search)")
    parser.add_argument("--root", help="where the brains live (default: the package's selfplay/pretrained)")
    parser.add_argument("--seed", type=integer(0), default=DEFAULT_SEED, help="the matches' seed")


def _exploit_arguments(parser: argparse.ArgumentParser, config_flags: bool = True) -> None:
    from ..presets import PRESETS

    parser.add_argument("name", help="the shipped brain (arena, connect4, othello6)")
    parser.add_argument("--root", help="where the brains live (default: the package's selfplay/pretrained)")
    parser.add_argument("--games", type=integer(2), default=200, help="games of the exploiter against the brain, with "
                        "search at the card's visits and as raw policies each (default 200)")
    parser.add_argument("--preset", choices=PRESETS, default=None, help="the exploiter's training preset (default: "
                        "small, with the league members' settings for the game)")
    parser.add_argument("--run-dir", default=None, metavar="DIR", help="where the exploiter trains (default: "
                        "runs/exploit-NAME-DATE-TIME)")
    if config_flags:  # --minutes (the budget), --seed, and every training setting
        from ..config import add_config_arguments

        add_config_arguments(parser)


# ------------------------------------------------------------------------------ make


def _make(args: argparse.Namespace) -> int:
    from ..evaluation.curve import measure
    from ..pretrained import CARD_FILE, HERE
    from .export_cmd import export_loaded, load_source

    root = Path(args.root).expanduser() if args.root else HERE
    exploit = None
    if args.exploit_minutes is not None:  # its flags are checked before anything is measured
        argv = [args.name, *(["--root", args.root] if args.root else []), "--minutes", f"{args.exploit_minutes:g}",
                "--seed", str(args.exploit_seed), *shlex.split(args.exploit_args)]
        exploit = _exploit_parser().parse_args(argv)
    elif args.exploit_args:
        raise usage_error("--exploit-args needs --exploit-minutes")
    building, final = building_dir(root, args.name)
    checkpoint, game = load_source(args.source)
    exported = export_loaded(checkpoint, game, building, with_value=True)[0]
    opponents = card_opponents(args.opponents, game)
    search = parse_search(args.search)
    strength = measure(building, game, opponents, args.games, args.raw_games, args.visits, args.opening_moves, args.seed,
                       search=search)  # fmt: skip
    card = {
        "name": args.name,
        "summary": f"{game.name} brain from {checkpoint.meta.get('snapshot') or checkpoint.path.parent.name + '/' + checkpoint.path.stem}",
        "reproduce": list(args.reproduce),
        "training": training_record(checkpoint, args.machine or this_machine()),
        "search": {**search, "visits": args.visits},
        "strength": {"seed": args.seed, **strength},
        "bytes": exported.manifest.bytes,
    }
    write_card(building / CARD_FILE, card)
    swap_in(building, final)
    print(f"wrote {final}/ ({exported.manifest.bytes / 2**20:.2f} MiB)")
    if exploit is not None:
        _exploit(exploit)
    return 0


# ------------------------------------------------------------------------------ exploit


class _ExploitParser(argparse.ArgumentParser):
    """``selfplay pretrained exploit``'s flags, for ``make --exploit-args``: a bad flag is one line."""

    def error(self, message: str):
        raise usage_error(f"--exploit-args: {message}")


def training_record(checkpoint: Any, machine: str) -> dict[str, Any]:
    """The card's ``training``: how long and how much the network trained, from a training run's
    checkpoint (its run record) or a league snapshot (the league's time at the freeze, and the
    generation in its name, ``main0/g84``)."""
    run = checkpoint.meta.get("run") or {}
    snapshot = checkpoint.meta.get("snapshot")
    elapsed = run.get("elapsed", checkpoint.meta.get("elapsed"))
    generation = run.get("generation")
    if generation is None and isinstance(snapshot, str) and snapshot.rpartition("/g")[2].isdigit():
        generation = int(snapshot.rpartition("/g")[2])
    record = {
        "minutes": round(float(elapsed) / 60, 1) if isinstance(elapsed, (int, float)) else None,
        "machine": machine,
        "generations": generation,
        "games": run.get("games"),
        "positions": run.get("positions"),
        "network": checkpoint.net.to_dict(),
        "checkpoint": f"{checkpoint.path.parent.name}/{checkpoint.path.name}",
    }
    return record | ({"snapshot": snapshot} if snapshot else {})


def _exploit_parser() -> argparse.ArgumentParser:
    parser = _ExploitParser(prog="selfplay pretrained exploit")
    _exploit_arguments(parser)
    return parser


def _exploit_command(args: argparse.Namespace, overrides: dict[str, Any]) -> str:
    """The ``selfplay pretrained exploit`` command line that measures what ``args`` measured."""
    from ..config import ALIASES

    words = ["selfplay", "pretrained", "exploit", args.name]
    words += ["--root", args.root] if args.root else []
    words += ["--games", str(args.games)] + (["--preset", args.preset] if args.preset else [])
    for key, value in overrides.items():
        flag = ALIASES.get(key) or "--" + key.split(".")[0] + "." + key.split(".", 1)[1].replace("_", "-")
        words += [flag, f"{value:g}" if isinstance(value, float) else str(value).lower() if isinstance(value, bool) else str(value)]
    return shlex.join(words)


def _exploit(args: argparse.Namespace) -> int:
    import datetime

    import games

    from ..config import overrides_from_args, with_overrides
    from ..league.exploit import run_exploiter
    from ..presets import league_preset
    from ..pretrained import CARD_FILE, HERE, BRAIN, PretrainedError, shipped

    root = Path(args.root).expanduser() if args.root else HERE
    brain = next((p for p in shipped(root) if p.name == args.name), None)
    if brain is None or brain.kind != BRAIN:
        names = ", ".join(p.name for p in shipped(root) if p.kind == BRAIN) or "none"
        raise PretrainedError(f"no shipped brain {args.name!r} under {root}; brains: {names}")
    overrides = overrides_from_args(args)
    if not overrides.get("run.minutes") and not overrides.get("run.generations"):
        raise PretrainedError("give the exploiter a fixed budget: --minutes M (or --generations N)")
    game = games.make(brain.game, **brain.options)
    # the league members' settings: an exploiter trains as the agents it is compared with did
    config = with_overrides(league_preset(game.name, args.preset or "small", dict(game.options))[0],
                            {"run.minutes": 0.0, **overrides})
    visits = _card_visits(brain.card)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = Path(args.run_dir) if args.run_dir else Path("runs") / f"exploit-{args.name}-{stamp}"
    report = run_exploiter(str(brain.path), config, run_dir, games_=args.games, visits=visits)

    def wdl(part: dict[str, Any]) -> dict[str, Any]:
        return {k: part[k] for k in ("wins", "draws", "losses", "score")} | {"ci95": part["score_ci95"]}

    entry = {
        "minutes": config.run.minutes, "generations": report["generations"], "seed": config.run.seed,
        "preset": config.preset, "visits": report["visits"], "games": args.games, "search": wdl(report),
        "raw": wdl(report["raw"]), "machine": this_machine(), "command": _exploit_command(args, overrides),
    }  # fmt: skip
    card = dict(json.loads((brain.path / CARD_FILE).read_text()))
    card["exploitability"] = entry
    write_card(brain.path / CARD_FILE, card)
    print(f"{args.name}: an exploiter of {report['generations']} generations scores {100 * report['score']:.1f}% "
          f"against it at {report['visits']} visits, {100 * report['raw']['score']:.1f}% raw; written on its card")
    return 0


def _card_visits(card: dict[str, Any]) -> int:
    """The visits a brain's figures were measured at: its card's search, else its matches'."""
    visits = (card.get("search") or {}).get("visits")
    if visits is None:
        searched = [m["visits"] for m in card.get("strength", {}).get("matches", []) if m.get("visits")]
        visits = max(searched) if searched else 200
    return int(visits)


def main(args: argparse.Namespace) -> int:
    if args.action == "make":
        return _make(args)
    if args.action == "exploit":
        return _exploit(args)
    if args.action == "make-ladder":
        from .pretrained_ladder import make_ladder

        return make_ladder(args)
    from ..pretrained import shipped

    brains = shipped(Path(args.list_root).expanduser() if args.list_root else None)
    for brain in brains:
        print(brain.describe())
    if not brains:
        print("no brains shipped")
    return 0
