"""Presets: each game's starting configuration (``tiny``, ``small``, ``full``) before its flags.

``selfplay train GAME --preset NAME`` starts from :func:`preset`; ``selfplay league GAME`` and
``selfplay league exploit`` from :func:`league_preset`, which adds the league settings a game's
leagues need. Flags override either, and the run saves the result as its ``config.json``
(:mod:`selfplay.config`). Where the tuned values come from: docs/training.md and docs/league.md.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Mapping

from .config import ClusterConfig, ConfigError, EvalConfig, LearnerConfig, RunConfig, SelfPlayConfig, TrainConfig, gumbel_search

__all__ = ["PRESETS", "league_preset", "preset"]

PRESETS = ("tiny", "small", "full")


def preset(game: str, name: str = "small", game_options: Mapping[str, Any] | None = None) -> TrainConfig:
    """The starting configuration ``name`` (tiny, small or full) for ``game``.

    * ``tiny``: minutes on a laptop CPU; tic-tac-toe plays perfectly after it.
    * ``small``: ``make train``: 20 minutes of Connect Four on two CPU cores.
    * ``full``: hours, sized for a GPU (a bigger network, a longer search).

    Tic-tac-toe and Connect Four have tuned values; other games get generic ones scaled from the
    Connect Four ones.
    """
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    options = dict(game_options or {})
    base = TrainConfig(game=game, game_options=options, preset=name, run=RunConfig(minutes=20.0))
    if game == "tictactoe":
        return _tictactoe(base, name)
    if game == "connect4":
        return _connect4(base, name)
    return _generic(base, name)


def _tictactoe(base: TrainConfig, name: str) -> TrainConfig:
    from .model.network import NetConfig

    # A 2x128 MLP learns tic-tac-toe exactly (2x64 came within a position or two of it in 5
    # minutes); a conv net buys nothing on a 3x3 board.
    net = NetConfig(kind="mlp", layers=2, hidden=128 if name == "tiny" else 256)
    sims = {"tiny": 16, "small": 32, "full": 64}[name]
    # The solver: a deterministic Gumbel search of 16 simulations once chose a block over an
    # immediate win, because the prior for the block was e^6 times larger; a proven win is now
    # played at once, and proven results become exact policy targets.
    search = replace(gumbel_search(sims, considered=9), solver=True)
    return base.replace(
        net=net,
        search=search,
        selfplay=SelfPlayConfig(games_per_actor=64, random_opening_moves=5, positions_per_generation=2000),
        learner=LearnerConfig(lr=3e-3, batch_size=128, samples_per_position=8.0, buffer_capacity=20_000,
                              min_positions=1000, warmup_steps=50),
        eval=EvalConfig(every=10, games=20, visits=sims, opponents="random,greedy,mcts:100", opening_moves=0, final_games=20,
                        final_visits=sims, final_opponents="random,greedy,mcts:1000"),
        run=RunConfig(minutes={"tiny": 5.0, "small": 10.0, "full": 30.0}[name]),
    )


def _connect4(base: TrainConfig, name: str) -> TrainConfig:
    from .model.network import NetConfig

    # The solver's error rates by stage, at every rating (errors.png): the standard board's
    # positions ship with selfplay, so they cost well under a second per rating; other sizes
    # would have to be solved first, so they are off there.
    standard = (int(base.game_options.get("width", 7)), int(base.game_options.get("height", 6))) == (7, 6)
    solver = 50 if standard else 0
    if name == "full":
        return base.replace(
            net=NetConfig(channels=128, blocks=10, hidden=128),
            search=gumbel_search(64),
            selfplay=SelfPlayConfig(games_per_actor=1024, fast_simulations=16, full_search_prob=0.25,
                                    positions_per_generation=50_000, resign_value=-0.95),
            learner=LearnerConfig(lr=1e-3, batch_size=1024, buffer_capacity=2_000_000, min_positions=20_000),
            eval=EvalConfig(every=2, games=50, visits=64, opponents="greedy,mcts:200,mcts:1000", solver_positions=solver),
            run=RunConfig(minutes=240.0),
        )
    # small is `make train`: 20 minutes on two CPU cores, where the network's speed is the
    # bottleneck. A 64x3 network evaluated through int8 onnxruntime (2-3x the float32 speed) beat
    # the 32x2 float32 one per minute, and six random opening plies hold off the draw collapse
    # that stalled two; the value target averages the game's result and the search's root value,
    # +2 points against mcts:1000 over three seeds (the A/B runs:
    # docs/results/2026-12-06-strength-per-minute.md).
    small = name == "small"
    # int8 is 3.2x float32 on a core with VNNI and half of it without (an AVX2 AMD EPYC): there the
    # actors evaluate float32, and a smaller network buys back the speed (32x3: 19k evaluations/s
    # on one core, 64x3 4.9k; the A/B: docs/results/2026-12-06-strength-per-minute.md).
    int8 = small and _int8_is_fast()
    if small:
        # There the value head is the 32x3 network's narrowest part: one plane of 42 cells in, a
        # single tanh out. Four planes into 64 units and win/draw/loss outputs (cross-entropy, which
        # also learns the draws that a fifth of late self-play games end in) cost 1% more compute
        # and gave +2.9 points against mcts:1000 over three seeds, with a curve that rises to the end.
        net = (NetConfig(channels=64, blocks=3, hidden=64) if int8
               else NetConfig(channels=32, blocks=3, hidden=64, value_planes=4, value_head="wdl"))
    else:
        net = NetConfig(channels=16, blocks=2, hidden=32)
    # There, too, cheaper training positions beat sharper targets on three seeds each: a full
    # search of 16 simulations instead of 32 (+4 to +7 points against mcts:1000), then full
    # searches on half the moves instead of a quarter (a position costs 24 evaluations instead
    # of 40; +0.2 to +5.7 more, and fewer solver errors). More positions and learning steps in
    # 20 minutes count for more.
    cheap = small and not int8
    full = 16 if cheap else 32
    # And there the learner learns beside self-play (cluster.overlap), on the time the actors
    # leave it, instead of taking turns with them: 33% more positions and 21% more learning
    # steps in the 20 minutes, the curve ahead at every mark, +1.7 points against mcts:200 over
    # three seeds (+0.4 against mcts:1000, within noise). Its peak learning rate is 5e-3: 3e-3
    # instead of 2e-3 cut the raw solver errors on each of three seeds (10.8% against 12.9% on the
    # mean), 4e-3 instead of 3e-3 gave 95.0% against mcts:1000 on the mean (93.3%), and 5e-3
    # instead of 4e-3 cut the errors with search on every seed (4.0% against 4.8% on the mean)
    # and scored 95% or more against mcts:1000 on every seed (96.3% on the mean).
    return base.replace(
        net=net,
        search=gumbel_search(full),
        selfplay=SelfPlayConfig(games_per_actor=128, fast_simulations=8, full_search_prob=0.5 if cheap else 0.25,
                                random_opening_moves=6 if small else 2, root_value_weight=0.5 if small else 0.0,
                                positions_per_generation=4000, resign_value=-0.95),
        learner=LearnerConfig(lr=5e-3 if cheap else 2e-3, batch_size=256, samples_per_position=2.0, buffer_capacity=150_000,
                              min_positions=2000),
        eval=EvalConfig(every=10 if small else 6, games=20, visits=32, opponents="random,greedy,mcts:200,mcts:1000",
                        milestones=small, solver_positions=solver, solver_sets=3 if small and standard else 1,
                        final_games=200 if small else 100, final_visits=200,
                        final_opponents="mcts:200,mcts:1000" if small else "random,greedy,mcts:200,mcts:1000"),
        run=RunConfig(minutes=20.0 if small else 5.0, inference="int8" if int8 else "auto"),
        cluster=ClusterConfig(overlap=cheap),
    )


def _int8_is_fast() -> bool:
    from .model.inference import int8_is_fast

    return int8_is_fast()


def _generic(base: TrainConfig, name: str) -> TrainConfig:
    import games

    from .model.network import NetConfig

    net = {"tiny": NetConfig(channels=16, blocks=2, hidden=32), "small": NetConfig(), "full": NetConfig(channels=128, blocks=10, hidden=128)}[name]
    sims = {"tiny": 16, "small": 32, "full": 64}[name]
    # A game that ships scripted opponents (the arena's NPCs) is judged against them at the end:
    # a trained brain has to beat what the game would otherwise ship.
    try:
        scripts = list(games.make(base.game, **base.game_options).extra.get("scripts", {}))
    except ValueError:  # an unknown game or bad options: the run itself reports it
        scripts = []
    return base.replace(
        net=net,
        search=gumbel_search(sims),
        selfplay=SelfPlayConfig(games_per_actor=1024 if name == "full" else 64, positions_per_generation=2000 if name != "full" else 20_000),
        learner=LearnerConfig(buffer_capacity=100_000 if name != "full" else 1_000_000),
        eval=EvalConfig(every=3, games=20, visits=sims, opponents="random,greedy,mcts:100",
                        final_opponents=",".join(["random", "greedy", *scripts, "mcts:200"])),
        run=RunConfig(minutes={"tiny": 5.0, "small": 20.0, "full": 240.0}[name]),
    )


def league_preset(game: str, name: str, options: dict[str, Any]) -> tuple[TrainConfig, dict[str, Any]]:
    """A new league's starting point before its flags: ``selfplay train``'s preset for the members,
    and the LeagueConfig fields that differ from their defaults, where a game's leagues were measured
    to need other settings (the runs: docs/league.md).

    The arena: no league exploiter (a 2-core league gives the main agent half the turns instead of
    a third), the two walkers ``random`` and ``mcts:50`` in the pool beside the scripts (what taught
    the main agent to punish a wandering unit), and games opening with 0-2 random plies, as its
    final matches do (without them the raw policy fell behind the scripts)."""
    train = preset(game, name, options)
    if train.cluster.overlap:  # league members take turns on the actors
        train = train.replace(cluster=replace(train.cluster, overlap=False))
    if game != "arena":
        return train, {}
    return (train.replace(selfplay=replace(train.selfplay, random_opening_moves=2)),
            {"league_exploiters": 0, "scripts": "all,random,mcts:50"})
