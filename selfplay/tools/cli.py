"""The ``selfplay`` command line. Each command imports what it needs lazily, so ``selfplay games``
starts fast. Bad input (unknown game, option or move) is one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time

from .args import integer, number

#: When the command started (time.monotonic()): ``selfplay train --minutes`` counts from here.
STARTED = time.monotonic()

EXIT_USAGE = 2
#: selfplay.evaluation.bench_net.PATHS, flattened (written out so that parsing imports nothing)
_NET_PATHS = ("torch", "onnx", "int8", "fp32", "bf16", "bf16-compiled")
#: selfplay.evaluation.device_model.TABLES and bench_pipeline.DESIGNS, written out for the same reason
_DEVICE_MODELS = ("null", "h200-128x10", "h200-32x3", "h100-128x10", "h100-32x3")
_PIPELINE_DESIGNS = ("actor", "server", "threads")


class UsageError(Exception):
    """Bad command-line input: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not argparse's usage block
        raise UsageError(f"{self.prog}: error: {message}")


def _add_game_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("game", help="game name (see `selfplay games`), or an external spec: pettingzoo:MODULE, MODULE:FACTORY")
    p.add_argument(
        "-o", "--option", action="append", metavar="KEY=VALUE", help="game option, e.g. -o width=8 (repeatable)"
    )


# ---------------------------------------------------------------------------- selfplay games
def cmd_games(args) -> int:
    import games
    from games.registry import plugin_problems

    rows, problems = [], list(plugin_problems().values())
    for name in games.list_games():
        try:  # a broken plugin is one line on stderr; the other games still list
            info = games.game_info(name)
            game = games.make(name)
        except games.PluginError as e:
            problems.append(str(e))
            continue
        rows.append(
            {
                "name": name,
                "version": game.version,
                "description": info.description,
                "source": info.source,
                "module": info.module,
                "options": {
                    k: {"default": o.default, "choices": list(o.choices) if o.choices else None, "help": o.help}
                    for k, o in info.options.items()
                },
                "actions": game.num_actions,
                "observation": list(game.obs_shape),
                "agents": list(game.agent_names),
                "symmetries": game.num_symmetries,
            }
        )
    for problem in problems:
        print(f"selfplay: skipped {problem}", file=sys.stderr)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for r in rows:
        origin = "" if r["source"] == "built in" else f"  [plugin: {r['source']}, module {r['module']}]"
        print(f"{r['name']} (v{r['version']}): {r['description']}{origin}")
        print(
            f"    actions {r['actions']}, observation {'x'.join(map(str, r['observation']))}, "
            f"{len(r['agents'])} agents, {r['symmetries']} symmetries"
        )
        for k, o in r["options"].items():
            choices = o["choices"]
            allowed = f" [{choices[0]}..{choices[-1]}]" if choices and len(choices) > 3 else (
                f" [{', '.join(map(str, choices))}]" if choices else ""
            )
            print(f"    -o {k}={o['default']}{allowed}  {o['help']}")
    print("external: pettingzoo:MODULE or MODULE:FACTORY with -o max_length=N "
          "(e.g. pettingzoo:pettingzoo.classic.tictactoe_v3 -o max_length=9; docs/external.md)")
    return 0


# ---------------------------------------------------------------------------- selfplay check-game
def cmd_check_game(args) -> int:
    import games
    from games.testing import check_game

    game = games.make(args.game, **games.parse_options(args.option))
    try:
        check_game(game, num_games=args.games)
    except AssertionError as e:
        import traceback

        where = traceback.extract_tb(e.__traceback__)[-1]  # a bare assert: show its line
        print(f"selfplay: {game!r} breaks the game interface: {e or where.line}", file=sys.stderr)
        return 1
    print(f"{game!r}: passes the game interface checks ({args.games} random games)")
    return 0


# ---------------------------------------------------------------------------- selfplay play-text
def cmd_play_text(args) -> int:
    """Play in the terminal. A mistyped or illegal move is asked for again at a terminal (stdin
    a TTY); in a script (stdin a pipe or file) it is a bug in the script, so the game stops with
    the one-line error and exit code 2 rather than read the next line as the answer to
    another question. End of input abandons the game (exit 0)."""
    import games
    from selfplay.tools.play import load_opponent
    from selfplay.tools.session import PlaySession

    game, agent = load_opponent(args.opponent, args.game, args.option, args.visits, level=args.level)
    session = PlaySession(game, agent, human=args.human_player, seed=args.seed)
    interactive = sys.stdin.isatty()
    print(f"{game!r}: you are {_side(game, session.human)}; opponent: {agent.name}. Type a move, or 'quit'.")
    while not session.over:
        print(game.render_text(session.state))
        if not session.human_to_move:
            session.agent_move()
            print(session.describe_last(agent.name))
            continue
        mover = game.agent_names[game.agent_to_move(session.state)]
        legal = ", ".join(game.action_to_text(a) for a in game.legal_actions(session.state))
        try:
            text = input(f"{mover} to move ({legal}): ")
        except EOFError:
            print("\ninput ended; game abandoned")
            return 0
        if text.strip().lower() in {"quit", "exit", "q"}:
            return 0
        if text.strip().lower() == "undo":
            print("took back your last move" if session.undo() else "nothing to take back")
            continue
        try:
            session.play_text(text)
        except games.GameError as e:
            if not interactive:
                raise
            print(f"{e}; try again")
    print(game.render_text(session.state))
    print(session.result())
    return 0


def _side(game, player: int) -> str:
    agents = [a for a, p in zip(game.agent_names, game.agent_players) if p == player]
    return f"player {player} ({', '.join(agents)})"


# ---------------------------------------------------------------------------- selfplay bench
def cmd_bench_games(args) -> int:
    from selfplay.evaluation.bench import bench_games

    import games

    results = bench_games(seconds=args.seconds, names=args.games or None, progress=not args.json,
                          **games.parse_options(args.option))
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


def cmd_bench_search(args) -> int:
    import games
    from search.bench import bench_search

    evaluator = args.evaluator
    if args.net:
        from selfplay.evaluation.bench_net import network_evaluator, parse_net

        game = games.make(args.game, **games.parse_options(args.option))
        path = args.path or ("onnx" if args.device == "cpu" else "bf16")
        evaluator = network_evaluator(parse_net(args.net, game, args.device), game, args.device, path)
    result = bench_search(
        args.game,
        evaluator=evaluator,
        batch=args.batch,
        simulations=args.simulations,
        seconds=args.seconds,
        openspiel=not args.no_openspiel,
        fallback=args.fallback,
        **games.parse_options(args.option),
    )
    print(json.dumps(result, indent=2) if args.json else _format_flat(result))
    return 0


def cmd_bench_net(args) -> int:
    import games
    from selfplay.evaluation.bench_net import bench_net, format_report

    result = bench_net(args.game, args.net, args.device, args.batches, args.paths, args.seconds, args.threads,
                       progress=not args.json, **games.parse_options(args.option))
    print(json.dumps(result, indent=2) if args.json else format_report(result))
    return 0


def cmd_bench_startup(args) -> int:
    from search.startup import measure_startup

    result = measure_startup(args.game, cold=args.cold)
    print(json.dumps(result, indent=2) if args.json else _format_flat(result))
    return 0


def cmd_bench_brain(args) -> int:
    from export.bench import bench_brain

    result = bench_brain(args.path, batches=args.batches, seconds=args.seconds, threads=args.threads)
    print(json.dumps(result, indent=2) if args.json else _format_flat(result))
    return 0


def cmd_bench_actors(args) -> int:
    from selfplay.training.scaling import bench_actors, format_table

    modes = tuple(args.modes) if args.modes else (("alternating", "overlapped") if args.backend == "ray" else ("alternating",))
    rows = bench_actors(args.game, args.preset, tuple(args.actors), args.seconds, args.backend, args.address, modes,
                        log=lambda text: print(text, file=sys.stderr, flush=True))
    print(json.dumps(rows, indent=2) if args.json else format_table(rows))
    return 0


def cmd_bench_cache(args) -> int:
    from selfplay.evaluation.bench_cache import bench_cache, format_report

    report = bench_cache(args.checkpoint, args.preset, args.positions, args.rounds, args.capacity, args.inference,
                         log=None if args.json else lambda text: print(text, file=sys.stderr, flush=True))
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


def cmd_bench_pipeline(args) -> int:
    from selfplay.evaluation.bench_pipeline import bench_pipeline, format_report

    report = bench_pipeline(args.game, args.preset, tuple(args.device_model), args.device, args.net, tuple(args.designs),
                            args.actors, args.games_per_actor, args.seconds, args.warmup, args.generation_positions,
                            args.target_batch, args.max_wait_ms / 1000)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


def _format_flat(d: dict, prefix: str = "") -> str:
    lines = []
    for k, v in d.items():
        if isinstance(v, dict):
            lines.append(_format_flat(v, f"{prefix}{k}."))
        else:
            lines.append(f"{prefix}{k}: {v}")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- entry point
def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    parser = _Parser(prog="selfplay", description="Train game AI by self-play; export ONNX brains.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_Parser)

    p = sub.add_parser("games", help="list the games and their options")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_games)

    p = sub.add_parser("check-game", help="check a game (a plugin, an external spec) against the game interface")
    _add_game_args(p)
    p.add_argument("--games", type=integer(1), default=20, help="random games to play through")
    p.set_defaults(func=cmd_check_game)

    p = sub.add_parser("play-text", help="play a game in the terminal")
    _add_game_args(p)
    p.add_argument(
        "--opponent",
        help="who you play against: random, greedy, mcts:N, pretrained, a checkpoint, an .onnx file or a league ladder "
        "directory (default: pretrained when a brain ships for the game, else greedy)",
    )
    p.add_argument("--level", type=integer(1), help="with a ladder as --opponent: its level (1 is the weakest)")
    p.add_argument(
        "--visits", type=integer(0), help="search visits per move of a network opponent (0: raw policy; default 200, or a ladder's own)"
    )
    p.add_argument("--human-player", type=integer(0), default=0, help="your player (team) index; 0 moves first; type 'undo' to take back")
    p.add_argument("--seed", type=integer(0), default=0, help="opponent's random seed")
    p.set_defaults(func=cmd_play_text)

    chosen = _chosen(argv)
    bench = sub.add_parser("bench", help="benchmarks: speed beside a yardstick, strength against a solver")
    bsub = bench.add_subparsers(
        dest="what", metavar="{games,search,net,startup,brain,strength,curve,actors,cache,pipeline}", required=True,
        parser_class=_Parser
    )
    p = bsub.add_parser("games", help="random-playout steps/s: native, PettingZoo wrapper, OpenSpiel")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--seconds", type=number(0.01, 3600), default=1.0, help="time per measurement")
    p.add_argument("--games", nargs="*", help="only these games")
    p.add_argument("-o", "--option", action="append", metavar="KEY=VALUE",
                   help="game option for every game measured, e.g. --games arena -o map=bridge (repeatable)")
    p.set_defaults(func=cmd_bench_games)
    p = bsub.add_parser("search", help="MCTS simulations/s (rollout: beside OpenSpiel's C++ MCTSBot)")
    p.add_argument("--game", default="connect4")
    p.add_argument("--evaluator", choices=["rollout", "uniform"], default="rollout")
    p.add_argument("--net", help="search with a network instead: CHANNELSxBLOCKS (a fresh ResNet), mlp, default or a checkpoint")
    p.add_argument("--device", default="cpu", help="with --net: where it runs (cpu, cuda, cuda:1)")
    p.add_argument("--path", choices=_NET_PATHS,
                   help="with --net: inference path (default: onnx on the CPU, bf16 on CUDA; see bench net)")
    p.add_argument("--batch", type=integer(1), default=1, help="games searched at once")
    p.add_argument("--simulations", type=integer(1), default=1000, help="simulations per move")
    p.add_argument("--seconds", type=number(0.01, 3600), default=3.0, help="time per measurement")
    p.add_argument("--no-openspiel", action="store_true", help="skip the OpenSpiel side (rollout only)")
    p.add_argument(
        "--fallback", action="store_true",
        help="measure the search as it runs if numba drops the private fast paths (compiles afresh, ~30 s)",
    )
    p.add_argument("-o", "--option", action="append", metavar="KEY=VALUE", help="game option (repeatable)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_bench_search)
    p = bsub.add_parser("net", help="network evaluations/s by batch size and inference path (onnxruntime float32 "
                        "and int8, torch; bf16 and torch.compile on CUDA)")
    p.add_argument("--game", default="connect4")
    p.add_argument("--net", default="default", help="CHANNELSxBLOCKS (a fresh ResNet: 128x10), mlp, default (the size "
                   "picked for --device) or a checkpoint")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    p.add_argument("--batches", type=integer(1), nargs="+", default=[1, 64, 256, 1024], help="batch sizes to time")
    p.add_argument("--paths", nargs="+", choices=_NET_PATHS,
                   help="inference paths (default: every path of the device)")
    p.add_argument("--seconds", type=number(0.01, 3600), default=1.0, help="time per batch size and path")
    p.add_argument("--threads", type=integer(1), default=1, help="CPU intra-op threads (torch and onnxruntime)")
    p.add_argument("-o", "--option", action="append", metavar="KEY=VALUE", help="game option (repeatable)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_bench_net)
    p = bsub.add_parser("startup", help="seconds from a new process to its first search (numba cache as installed, or --cold)")
    p.add_argument("--game", default="connect4")
    p.add_argument("--cold", action="store_true", help="an empty numba cache: what the first search costs without warmup")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_bench_startup)
    p = bsub.add_parser("brain", help="an exported brain's latency (batch 1) and throughput (batch 64), onnxruntime")
    p.add_argument("path", help="a brain directory or its .onnx file")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 64], help="batch sizes to time")
    p.add_argument("--seconds", type=float, default=2.0, help="time per batch size")
    p.add_argument("--threads", type=int, default=1, help="onnxruntime intra-op threads")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_bench_brain)
    p = bsub.add_parser("actors", help="training speed by number of actors, alternating and overlapped (Ray): positions/s, "
                        "the learner's utilisation, policy lag (docs/ray.md)")
    p.add_argument("--game", default="tictactoe")
    p.add_argument("--preset", default="tiny", choices=["tiny", "small", "full"])
    p.add_argument("--backend", default="ray", choices=["ray", "local"])
    p.add_argument("--address", default="", help="the Ray cluster to join ('' starts a local Ray instance)")
    p.add_argument("--actors", type=integer(1), nargs="+", default=[1, 2], help="actor counts to measure")
    p.add_argument("--seconds", type=number(10, 36000), default=60.0, help="training time per measurement")
    p.add_argument("--modes", nargs="+", choices=["alternating", "overlapped"], help="default: both with ray, alternating locally")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_bench_actors)
    p = bsub.add_parser("cache", help="self-play positions/s with the actors' evaluation cache beside the same actor "
                        "without it, one process (docs/training.md)")
    p.add_argument("checkpoint", help="a run directory or checkpoint whose network plays (a trained one: its repeats "
                   "are what the cache answers)")
    p.add_argument("--preset", default="small", choices=["tiny", "small", "full"], help="whose self-play and search settings")
    p.add_argument("--positions", type=integer(1), default=4000, help="training positions per side per round")
    p.add_argument("--rounds", type=integer(1), default=3, help="rounds, each side in turn, a fresh network each")
    p.add_argument("--capacity", type=integer(1), help="cache entries (default: the preset's selfplay.cache_positions)")
    p.add_argument("--inference", choices=["int8", "onnx"], default="int8", help="the actors' network: int8 (as make "
                   "train's actors) or float32 onnxruntime")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_bench_cache)
    p = bsub.add_parser("pipeline", help="self-play and learning against one device (a modeled GPU, or a real one): "
                        "today's per-actor inference beside one inference server; evaluations/s, busy fraction, CPU per leaf")
    p.add_argument("--game", default="connect4")
    p.add_argument("--preset", default="full", choices=["tiny", "small", "full"], help="whose self-play and search settings")
    p.add_argument("--device-model", nargs="+", choices=_DEVICE_MODELS, default=["h200-32x3", "h200-128x10"],
                   help="modeled devices (DEVICE-NETWORK, from measured latency tables; docs/gpu.md)")
    p.add_argument("--device", choices=["cpu", "cuda"], help="the real device instead of a model, with the network --net "
                   "(self-play only)")
    p.add_argument("--net", default="preset", help="with --device: preset (the preset's network), CHANNELSxBLOCKS, mlp, "
                   "default or a checkpoint")
    p.add_argument("--designs", nargs="+", choices=_PIPELINE_DESIGNS, default=["actor", "server"],
                   help="actor: each actor process evaluates its own batches, alternating with the learner (today's); "
                   "server: one inference process, learner overlapped; threads: the actors as threads, one server")
    p.add_argument("--actors", type=integer(1), help="actor processes (default: one per core)")
    p.add_argument("--games-per-actor", type=integer(1), help="default: the preset's")
    p.add_argument("--seconds", type=number(0.5, 3600), default=10.0, help="measured time per design")
    p.add_argument("--warmup", type=number(0, 600), default=3.0, help="unmeasured time per design before it")
    p.add_argument("--generation-positions", type=integer(1),
                   help="modeled: positions per generation (new weights, fresh trees; today's design learns after each, "
                   "while the actors wait); default: the preset's")
    p.add_argument("--target-batch", type=integer(1), default=4096, help="the server launches once this many leaves wait")
    p.add_argument("--max-wait-ms", type=number(0, 1000), default=0.0,
                   help="while the device is idle, the longest a request waits for others")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_bench_pipeline)
    for what, module, help in (
        ("strength", "selfplay.tools.strength_cmd", "error rates against the Connect Four solver, raw network, value one ply deeper, and with search"),
        ("curve", "selfplay.tools.curve_cmd", ("a run's checkpoints at minute marks against fixed opponents (and the "
                                                "Connect Four solver): curve.json and curve.png")),
    ):
        p = bsub.add_parser(what, help=help)
        if chosen == "bench" and what in argv:
            importlib.import_module(module).add_arguments(p)
            p.set_defaults(func=_module_main(module))

    # Commands whose module brings its own arguments: (name, module, help). A module is imported
    # only when its command is the one asked for, so other commands start fast.
    for name, module, help in _MODULE_COMMANDS:
        p = sub.add_parser(name, help=help)
        if name == chosen:
            loaded = importlib.import_module(module)
            if hasattr(loaded, "SUBCOMMANDS"):  # its arguments depend on the subcommand the rest names
                loaded.add_arguments(p, argv[argv.index(name) + 1:])
            else:
                loaded.add_arguments(p)
            p.set_defaults(func=_module_main(module))
    return parser


_MODULE_COMMANDS = [
    ("play", "selfplay.tools.play", "play against an agent (a checkpoint, mcts:N, greedy...) in a pygame window"),
    ("train", "selfplay.tools.train_cmd", "train an agent by self-play (a run directory with checkpoints, metrics, plots)"),
    ("league", "selfplay.tools.league_cmd", "train a league (main agents, exploiters, PFSP); status, ladder, final DIR; "
     "exploit TARGET"),
    ("arena", "selfplay.tools.arena_cmd", "play two agents against each other: W/D/L and Elo with a 95%% interval"),
    ("analyze", "selfplay.tools.analyze", "JSON-lines analysis engine on stdin/stdout (KataGo style)"),
    ("export", "selfplay.tools.export_cmd", "export a checkpoint as a verified ONNX brain for game engines (or --verify one)"),
    ("pretrained", "selfplay.tools.pretrained_cmd", "the brains shipped in the package (selfplay play's default opponents)"),
    ("warmup", "selfplay.tools.warmup", "compile and cache every numba kernel now (make venv does; the first command is then fast)"),
]


def _chosen(argv: list[str] | None) -> str | None:
    """The command ``argv`` asks for: its first word that is not an option."""
    return next((a for a in argv or [] if not a.startswith("-")), None)


def _trains(argv: list[str]) -> bool:
    """Whether ``argv`` trains a network (a learner with torch's OpenMP threads)."""
    chosen = _chosen(argv)
    exploits = chosen == "pretrained" and ("exploit" in argv or any(a.startswith("--exploit-minutes") for a in argv))
    return chosen in ("train", "league") or (chosen == "bench" and "actors" in argv) or exploits


def parse_only(argv: list[str]) -> argparse.Namespace:
    """``argv`` parsed as ``selfplay`` parses it, the chosen command's own arguments included
    (``league exploit``, ``pretrained make``), and nothing run. Raises :class:`UsageError` for
    what the command line itself rejects (an unknown flag, a missing argument, a bad choice);
    the tests check every command in the docs this way."""
    return build_parser(argv).parse_args(argv)


def _module_main(module: str):
    def run(args) -> int:
        return importlib.import_module(module).main(args)

    return run


_OUR_PACKAGES = ("games", "search", "selfplay", "export")


def _is_ours(error: BaseException) -> bool:
    """Bad input is reported by our packages' ValueError subclasses (GameError, SearchError,
    CheckpointError, AgentError, ...): those are one line for the user."""
    return isinstance(error, UsageError) or type(error).__module__.split(".")[0] in _OUR_PACKAGES


def main(argv: list[str] | None = None) -> int:
    # The program may set its own environment (importing our packages never does): no pygame
    # banner on stdout, where `selfplay analyze` writes its answers.
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
    argv = sys.argv[1:] if argv is None else argv
    if _trains(argv):
        # torch's OpenMP threads spin while they wait for work: on cores shared with actors (or
        # anything else) a two-thread learner runs tens of times slower (docs/training.md, "CPU
        # threads"). OpenMP reads this once, when torch loads, and building a training command's
        # parser loads torch (its network flags), so it is set here, first. Actor processes
        # inherit it; the library (`Trainer`, `train`) leaves a caller's environment alone.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        args = parse_only(argv)
        return int(args.func(args) or 0)
    except (UsageError, ValueError) as e:
        if not _is_ours(e):
            raise  # a bug, not bad input: keep the traceback
        message = str(e)
        print(message if message.startswith("selfplay") else f"selfplay: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
