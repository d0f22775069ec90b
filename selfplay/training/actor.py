"""Self-play actors: B games at once, one batched network call per search step.

An :class:`Actor` keeps ``games_per_actor`` games in progress in one :class:`search.Search`. Each
search step sends one leaf of every game to the evaluator in one call, so the network sees
batches of B (the evaluator's batch is the number of games, not the number of simulations).
Finished games restart at once, so the batch stays full; a new network (:meth:`Actor.set_weights`)
takes over the games in progress, with fresh trees.

What a move does, per game:

* **Random openings**: with ``random_opening_moves = K`` a game starts after a uniformly random
  number (0 to K) of uniformly random moves, none of them learned. Self-play between strong
  players keeps to a few lines; openings put it in positions good play never reaches (after a
  blunder by either side), where the network must still play well.

* **Playout-cap randomization** (KataGo, Wu 2019): with ``fast_simulations > 0`` a move gets the
  full search (``search.num_simulations``) with probability ``full_search_prob`` and a fast one
  otherwise. Only full-search moves become training positions. Fast moves only advance the game,
  so cheap moves still yield whole games (value targets) while every policy target comes from a
  full search.
* **Resignation** (AlphaZero): from generation ``resign_from_generation`` on, the player to move
  resigns when the root value of a **full** search is below the threshold in force
  (:meth:`Actor.set_resign_threshold`; at first ``resign_value``). A fast, playout-capped search
  never resigns: a handful of simulations is too noisy to end a game on. In a
  ``resign_playout_fraction`` of games nobody resigns. The first time such a game would have seen a
  resignation is noted, and at the end a resignation by a player who did not lose counts as false.
  Played-out games also report their *record lows* (:attr:`SelfPlayStats.resign_samples`): each time
  a full search's root value fell below every earlier one in the game, that value and whether its
  player went on to avoid losing. They say, for any threshold, which games would have seen a
  resignation and whether the first one would have been false: :func:`calibrate_resign_threshold`
  picks the threshold from them (AlphaZero keeps the false-resignation rate under 5%).

A finished game gives one training position per full-search move: ``obs`` (``Game.encode`` of the
position, from the player to move), ``policy`` (the search's target) and ``value``, the game's
final score **for the player to move at that position** (``Game.returns(final)[player]``; a
resigned game scores -1 for the resigner and +1 for the other player).

Message passing. Actors are worker processes (:class:`ActorPool`, multiprocessing ``spawn``) that
talk only in plain picklable messages::

    to an actor     ("weights", generation, Weights)   ("resign_threshold", value)   ("play", num_positions[, seconds])
                    ("pairings", Pairings or None)   ("abort",)   ("stop",)
    from an actor   ("progress", stats dict)   ("positions", generation, Positions, stats dict)
                    ("error", traceback text)

so a Ray actor wraps :class:`Actor` unchanged (``set_weights`` and ``play`` are the whole interface;
``selfplay.training.ray_actors``, ``--backend ray``). :class:`LocalActors` runs one actor in the calling process with the same interface
(tests, debugging, and CUDA, where one process feeds the GPU large batches).

League games (:class:`Pairings`, :meth:`Actor.set_pairings`). A league learner plays other
networks: each new game draws an opponent (``Pairings.names[k]`` with probability
``Pairings.probs[k]``; :data:`SELF` is self-play) and a seat for the learner. The batch stays one
search: at every step each leaf goes to the network of the player to move at its game's root
(:class:`_RoutedEvaluator`, one call per network present in the batch), so each side searches
with its own network. Trees of versus games are restarted after every move (a subtree built by
one side's network is no use to the other). Only the learner's own full-search moves become
training positions, and each finished versus game is reported in ``SelfPlayStats.results`` as
``[opponent name, learner's seat, learner's score in [-1, 1]]``.

This module does not import torch unless an actor is given torch weights.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import signal
import time
import traceback
from dataclasses import asdict, dataclass, field, fields
from multiprocessing.connection import Connection, wait
from typing import Any, Callable, Protocol

import numpy as np

import games
from games.core import Game
from search import OnnxEvaluator, Search, SearchConfig

from ..config import SelfPlayConfig
from ..evaluation.elo import wilson_interval

__all__ = [
    "Actor",
    "ActorError",
    "ActorPool",
    "ActorSpec",
    "Actors",
    "LocalActors",
    "Pairings",
    "SCRIPT",
    "SELF",
    "Positions",
    "SelfPlayStats",
    "Weights",
    "calibrate_resign_threshold",
    "evaluator_from_weights",
    "is_script",
    "resign_check_counts",
    "make_actors",
]


# ----------------------------------------------------------------------------- messages


@dataclass(frozen=True)
class Weights:
    """A network as bytes, for sending to actors. ``format`` is ``"onnx"`` (a serialized ONNX
    model, run by onnxruntime), ``"safetensors"`` (a state dict, run by torch; ``net`` is its
    ``NetConfig.to_dict()``) or ``"brain"`` (an exported brain's model file, run by
    ``export.runtime``; ``net`` is its manifest, ``Manifest.to_dict()``)."""

    format: str
    data: bytes
    net: dict = field(default_factory=dict)


@dataclass
class Positions:
    """Training positions: ``N`` rows, each from a finished game.

    ``owner`` says whose moves they were: 0 the learner's, ``k + 1`` those of
    ``Pairings.names[k]``, an opponent that learns too (:attr:`Pairings.learners`, league games
    between two current learners: each learns its own moves of the game)."""

    obs: np.ndarray  # float32[N, C, H, W], from the player to move at the position
    policy: np.ndarray  # float32[N, A], the full search's policy target (of the mover's own network)
    value: np.ndarray  # float32[N], the final score for the player to move at the position
    owner: np.ndarray | None = None  # int16[N]: 0 the learner, k + 1 the opponent Pairings.names[k]; None: all 0

    def __post_init__(self) -> None:
        if self.owner is None:
            self.owner = np.zeros(len(self), np.int16)

    def __len__(self) -> int:
        return int(self.value.shape[0])

    def select(self, rows: np.ndarray) -> "Positions":
        """The rows ``rows`` (a boolean mask or indices)."""
        return Positions(self.obs[rows], self.policy[rows], self.value[rows], self.owner[rows])

    def own(self) -> "Positions":
        """The learner's own positions (owner 0)."""
        return self if not self.owner.any() else self.select(self.owner == 0)

    @classmethod
    def empty(cls, game: Game) -> "Positions":
        return cls(
            np.zeros((0, *game.obs_shape), np.float32), np.zeros((0, game.num_actions), np.float32), np.zeros(0, np.float32)
        )

    @classmethod
    def concatenate(cls, parts: list["Positions"], game: Game) -> "Positions":
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty(game)
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("obs", "policy", "value", "owner")))


SELF = "self"  # the opponent name that means self-play: the learner on both sides
# An opponent named script:NAME is a fixed player that moves without the learner's search: the
# game's scripted player NAME (game.extra["scripts"]), or a baseline: random, greedy, mcts:N.
SCRIPT = "script:"


def is_script(name: str) -> bool:
    """Whether the opponent ``name`` is a fixed player (``script:nearest``, ``script:mcts:200``)."""
    return isinstance(name, str) and name.startswith(SCRIPT)


@dataclass(frozen=True)
class Pairings:
    """Whom a learner's games are against. Each new game draws opponent ``names[k]`` with
    probability ``probs[k]`` and gives the learner a uniformly random seat; :data:`SELF` is the
    learner itself (self-play: both sides searched with, and learned from); ``script:NAME`` is a
    fixed player that moves by itself, not by the learner's search (the game's script ``NAME``, or
    ``random``, ``greedy``, ``mcts:N``) and never learns. ``weights`` holds a
    :class:`Weights` for every other name. Names are identities: a name always means the same
    network (an actor caches its evaluator by name)."""

    names: tuple  # tuple[str, ...], [K]
    probs: tuple  # tuple[float, ...], [K], summing to 1
    weights: dict = field(default_factory=dict)  # name -> Weights, for every name but SELF
    # Opponents that are learners too (a league's current members): their full-search moves are
    # recorded as well, as Positions with owner k + 1, for their own buffers.
    learners: tuple = ()

    def __post_init__(self) -> None:
        if not self.names or len(self.names) != len(self.probs):
            raise ValueError(f"pairings need as many probabilities as names, got {len(self.names)} and {len(self.probs)}")
        probs = np.asarray(self.probs, np.float64)
        if not (np.all(probs >= 0) and abs(probs.sum() - 1.0) < 1e-6):
            raise ValueError(f"pairing probabilities must be >= 0 and sum to 1, got {list(self.probs)}")
        missing = [n for n in self.names if n != SELF and not is_script(n) and n not in self.weights]
        if missing:
            raise ValueError(f"pairings: no weights for {', '.join(missing)}")
        strangers = [n for n in self.learners if n == SELF or is_script(n) or n not in self.names]
        if strangers:
            raise ValueError(f"pairings: learners {', '.join(map(str, strangers))} are not opponents")


@dataclass
class SelfPlayStats:
    """Counters of self-play work, summed over actors (:meth:`merge`)."""

    games: int = 0  # games finished
    positions: int = 0  # training positions produced (full-search moves of finished games)
    moves: int = 0  # moves played, full and fast
    full_moves: int = 0  # moves that got the full search
    evaluations: int = 0  # positions the network evaluated
    evaluator_calls: int = 0  # batched network calls
    seconds: float = 0.0  # wall-clock seconds spent playing (a pool: the slowest actor's)
    evaluator_seconds: float = 0.0  # of which inside the network (a pool: the mean over actors)
    game_length: int = 0  # moves of all finished games (mean length = game_length / games)
    first_player_score: float = 0.0  # sum over finished games of player 0's score in [-1, 1]
    draws: int = 0  # finished games with score 0
    resignations: int = 0  # games ended by a resignation
    resign_checks: int = 0  # no-resign games in which someone would have resigned
    false_resignations: int = 0  # ... and that player did not lose
    # One entry per finished played-out game (no-resign, resignation on): its record lows, the
    # root values of full searches that fell below every earlier one in the game, in order, each
    # as [value for the player to move, that player did not lose (so resigning there was false)].
    resign_samples: list = field(default_factory=list)
    # League games (Actor.set_pairings): one entry per finished game against another network,
    # [opponent name, the learner's seat, the learner's score in [-1, 1]].
    results: list = field(default_factory=list)

    def merge(self, other: "SelfPlayStats | dict") -> "SelfPlayStats":
        other = other if isinstance(other, SelfPlayStats) else SelfPlayStats(**other)
        return SelfPlayStats(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def false_resignation_rate(self) -> float:
        """False resignations among the checked ones (NaN before any check)."""
        return self.false_resignations / self.resign_checks if self.resign_checks else float("nan")


@dataclass(frozen=True)
class ActorSpec:
    """Everything needed to build an actor, in another process or on another machine."""

    game: str  # registry name
    game_options: dict
    search: SearchConfig
    selfplay: SelfPlayConfig
    seed: int
    device: str = "cpu"  # where a torch evaluator runs (ONNX weights always run on the CPU)
    threads: int = 1  # onnxruntime intra-op threads


# ----------------------------------------------------------------------------- the actor


class _CountingEvaluator:
    """Wraps an evaluator to count calls, positions and seconds."""

    def __init__(self, inner: Callable, stats: SelfPlayStats) -> None:
        self.inner = inner
        self.stats = stats
        self.per_game = bool(getattr(inner, "per_game", False))

    def __call__(self, obs: np.ndarray, mask: np.ndarray, *games: np.ndarray):
        start = time.perf_counter()
        out = self.inner(obs, mask, *games)
        self.stats.evaluator_seconds += time.perf_counter() - start
        self.stats.evaluator_calls += 1
        self.stats.evaluations += obs.shape[0]
        return out


class _RoutedEvaluator:
    """Several networks behind one batched search: leaf ``i`` of game ``games[i]`` goes to
    ``evaluators[owner[games[i]]]``, one call per network with all of its leaves."""

    per_game = True

    def __init__(self, evaluators: list[Callable], owner: np.ndarray) -> None:
        self.evaluators = evaluators
        self.owner = owner  # int64[B]: the network evaluating each game's leaves this move

    def __call__(self, obs: np.ndarray, mask: np.ndarray, games: np.ndarray):
        who = self.owner[games]  # [n]
        logits = np.empty(mask.shape, np.float32)
        values = np.empty(mask.shape[0], np.float32)
        for k in np.unique(who):
            rows = np.flatnonzero(who == k)
            part_logits, part_values = self.evaluators[k](obs[rows], mask[rows])
            logits[rows] = np.asarray(part_logits, np.float32).reshape(rows.size, -1)
            values[rows] = np.asarray(part_values, np.float32).reshape(-1)
        return logits, values


def evaluator_from_weights(weights: Weights, game: Game, device: str = "cpu", threads: int = 1) -> Callable:
    """A search evaluator running ``weights``: onnxruntime with ``threads`` intra-op threads for
    ONNX and brains, torch on ``device`` for safetensors."""
    if weights.format == "onnx":
        return OnnxEvaluator(weights.data, threads=threads)
    if weights.format == "brain":
        from export.contract import Manifest
        from export.runtime import Brain

        return Brain.from_bytes(weights.data, Manifest.from_dict(weights.net), threads=threads).evaluator()
    if weights.format == "safetensors":
        from safetensors.torch import load as load_tensors

        from ..model.inference import evaluator_for
        from ..model.network import NetConfig, build_network

        model = build_network(NetConfig.from_dict(weights.net), game.obs_shape, game.num_actions)
        model.load_state_dict(load_tensors(weights.data))
        if device == "cpu":
            import torch

            torch.set_num_threads(threads)
        return evaluator_for(model, game.obs_shape, device, backend="torch")
    raise ValueError(f"unknown weights format {weights.format!r}; expected 'onnx', 'safetensors' or 'brain'")


class Actor:
    """Plays ``selfplay.games_per_actor`` games at once with the network of the latest
    :meth:`set_weights`, and hands back training positions from the games that finish."""

    def __init__(self, spec: ActorSpec) -> None:
        self.spec = spec
        self.game = games.make(spec.game, **spec.game_options)
        self.config = spec.selfplay
        self.search_config = spec.search
        self.generation = -1
        self._evaluator: Callable | None = None
        B = spec.selfplay.games_per_actor
        seeds = np.random.SeedSequence(spec.seed)
        self.rng = np.random.default_rng(seeds.spawn(1)[0])  # playout caps, who never resigns
        self.moves = np.zeros(B, np.int64)  # [B] moves played in each game (the opening included)
        initial = self._openings(np.arange(B))
        self.tree = Search(self.game, initial, spec.search, seed=int(seeds.generate_state(1)[0]))
        self.records: list[list[tuple[np.ndarray, np.ndarray, int, int]]] = [[] for _ in range(B)]  # (obs, policy, player, owner)
        self.no_resign = self._draw_no_resign(B)  # [B] games played out whatever the value says
        self.would_resign = np.full(B, -1, np.int64)  # [B] first player who would have resigned, -1 none
        self.resign_threshold = float(spec.selfplay.resign_value)  # resign below this (-1: never)
        self.lowest = np.full(B, np.inf)  # [B] lowest full-search root value so far in a played-out game
        self.lows: list[list[tuple[float, int]]] = [[] for _ in range(B)]  # record lows: (value, player)
        self.pairings: Pairings | None = None  # None: plain self-play
        self.opponent = np.full(B, -1, np.int64)  # [B] index into pairings.names; -1 self-play
        self.learner_seat = np.zeros(B, np.int64)  # [B] the learner's player in a versus game
        self._learning = np.zeros(0, np.bool_)  # [K] pairings.names[k] learns its own moves too
        self._scripted = np.zeros(0, np.bool_)  # [K] pairings.names[k] is a scripted player
        self._opponents: dict[str, Callable] = {}  # name -> evaluator, cached while in the pairings

    # ------------------------------------------------------------------ interface
    def set_weights(self, generation: int, weights: Weights) -> None:
        """Play on with a new network. The games in progress continue; their trees restart,
        since the statistics in them came from the old network."""
        self.set_evaluator(generation, evaluator_from_weights(weights, self.game, self.spec.device, self.spec.threads))

    def set_evaluator(self, generation: int, evaluator: Callable) -> None:
        """:meth:`set_weights` with any evaluator ``(obs, mask) -> (logits, value)`` (in-process
        use: tests, a GPU model shared with the learner)."""
        self._evaluator = evaluator
        self.generation = int(generation)
        self.tree.set_roots(self.tree.root_states)

    def set_resign_threshold(self, threshold: float) -> None:
        """Resign below ``threshold`` from the next move on (-1: nobody resigns, while played-out
        games still report their record lows, so a calibration can raise it again)."""
        if not -1 <= threshold <= 1:
            raise ValueError(f"resign threshold must be in [-1, 1], got {threshold}")
        self.resign_threshold = float(threshold)

    def set_pairings(self, pairings: Pairings | None) -> None:
        """Play league games as :class:`Pairings` says (None: plain self-play). Every game in
        progress restarts, since its opponent or learner may have changed."""
        self.pairings = pairings
        if pairings is not None:
            keep = {}
            for name in pairings.names:
                if is_script(name):  # an Agent: act(states, move_numbers, seeds) -> actions
                    keep[name] = self._opponents.get(name) or self._script(name)
                elif name != SELF:
                    keep[name] = self._opponents.get(name) or evaluator_from_weights(
                        pairings.weights[name], self.game, self.spec.device, self.spec.threads)
            self._opponents = keep
            self._learning = np.array([name in pairings.learners for name in pairings.names], np.bool_)
            self._scripted = np.array([is_script(name) for name in pairings.names], np.bool_)
        else:
            self._opponents = {}
            self._learning = self._scripted = np.zeros(0, np.bool_)
        every = np.arange(self.tree.batch_size)
        self.tree.set_roots(self._openings(every))
        self.records = [[] for _ in every]
        self.lows = [[] for _ in every]
        self.no_resign[:] = self._draw_no_resign(every.size)
        self.would_resign[:] = -1
        self.lowest[:] = np.inf
        self._draw_opponents(every)

    def _script(self, name: str) -> Any:
        """The fixed player ``script:SPEC``, as an agent (:mod:`selfplay.evaluation.agents`): the
        game's script SPEC, or the baseline random, greedy or mcts:N."""
        from ..evaluation.agents import is_fixed_player, load_agent

        spec = name[len(SCRIPT):]
        if not is_fixed_player(spec, self.game):
            scripts = [SCRIPT + n for n in self.game.extra.get("scripts", {})]
            raise ActorError(f"{self.game.name} has no scripted player {name!r}; it has: "
                             f"{', '.join([*scripts, SCRIPT + 'random', SCRIPT + 'greedy', SCRIPT + 'mcts:N'])}")
        return load_agent(spec, self.game)

    def _draw_opponents(self, games_: np.ndarray) -> None:
        """Opponents and learner seats for new games ``games_``."""
        if self.pairings is None or not games_.size:
            self.opponent[games_] = -1
            return
        names, probs = self.pairings.names, np.asarray(self.pairings.probs, np.float64)
        picks = self.rng.choice(len(names), size=games_.size, p=probs / probs.sum())
        self.opponent[games_] = np.where(np.array([names[k] == SELF for k in picks]), -1, picks)
        self.learner_seat[games_] = self.rng.integers(0, self.game.num_players, size=games_.size)

    @property
    def resigning(self) -> bool:
        """Resignation is on for the run and this generation: resign, or note who would have."""
        return self.config.resign_value > -1 and self.generation >= self.config.resign_from_generation

    def play(
        self,
        num_positions: int,
        should_stop: Callable[[], bool] | None = None,
        on_progress: Callable[[SelfPlayStats], None] | None = None,
        progress_every: float = 1.0,
    ) -> tuple[Positions, SelfPlayStats]:
        """Play until finished games have produced at least ``num_positions`` training positions
        (or ``should_stop()`` says so; it is asked between moves). Games in progress when it
        returns carry on at the next call. ``on_progress(stats so far)`` is called about every
        ``progress_every`` seconds."""
        if self._evaluator is None:
            raise RuntimeError("Actor.play before set_weights: the actor has no network")
        stats = SelfPlayStats()
        evaluator = _CountingEvaluator(self._evaluator, stats)
        parts: list[Positions] = []
        start = last_report = time.perf_counter()
        while stats.positions < num_positions:
            if should_stop is not None and should_stop():
                break
            parts += self._move(evaluator, stats)
            now = time.perf_counter()
            if on_progress is not None and now - last_report >= progress_every:
                stats.seconds = now - start
                on_progress(stats)
                last_report = now
        stats.seconds = time.perf_counter() - start
        return Positions.concatenate(parts, self.game), stats

    # ------------------------------------------------------------------ one move of every game
    def _move(self, evaluator: Callable, stats: SelfPlayStats) -> list[Positions]:
        game, config, tree = self.game, self.config, self.tree
        B = tree.batch_size
        if config.fast_simulations > 0:
            full = self.rng.random(B) < config.full_search_prob
            sims = np.where(full, self.search_config.num_simulations, config.fast_simulations)
        else:
            full = np.ones(B, np.bool_)
            sims = np.full(B, self.search_config.num_simulations)
        states = tree.root_states  # [B, S], none terminal: finished games restart below
        players = np.array([game.to_play(s) for s in states])  # [B] player to move
        versus = self.opponent >= 0  # [B] league games against another network or a script
        learners = ~versus | (players == self.learner_seat)  # [B] the learner is to move
        scripted = np.zeros(B, np.bool_)  # [B] a scripted player is to move: no search, no record
        if versus.any() and self._scripted.any():
            scripted = versus & ~learners & self._scripted[np.maximum(self.opponent, 0)]
            sims = np.where(scripted, 0, sims)
            full = full & ~scripted
        if versus.any():  # each side searches with its own network: route leaves by root mover
            names = self.pairings.names
            evaluators = [evaluator] + [self._opponents[name] if name != SELF and not is_script(name) else evaluator
                                        for name in names]
            evaluator = _RoutedEvaluator(evaluators, np.where(learners | scripted, 0, 1 + self.opponent))
        result = tree.run(evaluator, simulations=sims, move_numbers=self.moves)
        actions = result.actions
        if scripted.any():
            actions = actions.copy()
            for k in np.unique(self.opponent[scripted]):  # one batched act per fixed player
                rows = np.flatnonzero(scripted & (self.opponent == k))
                seeds = self.rng.integers(0, 2**62, size=rows.size)
                actions[rows] = self._opponents[self.pairings.names[k]].act(states[rows], self.moves[rows], seeds)
        recorded = full & learners  # the learner learns its own moves...
        if versus.any() and self._learning.any():  # ... and an opponent that learns too, its own (owner k + 1)
            recorded |= full & versus & self._learning[np.maximum(self.opponent, 0)]
        for b in np.flatnonzero(recorded):
            owner = 0 if learners[b] else 1 + int(self.opponent[b])
            self.records[b].append((game.encode(states[b]), result.policy[b].copy(), int(players[b]), owner))
        stats.moves += B
        stats.full_moves += int(full.sum())

        resigned = np.zeros(B, np.bool_)
        if self.resigning:
            values = result.root_values  # [B], the mover's view
            # only a full search may end a game: a playout-capped one is too noisy to trust
            losing = full & (values < self.resign_threshold)
            first_time = losing & self.no_resign & (self.would_resign < 0)
            self.would_resign[first_time] = players[first_time]
            resigned = losing & ~self.no_resign
            for b in np.flatnonzero(full & self.no_resign & (values < self.lowest)):  # record lows
                self.lowest[b] = values[b]
                self.lows[b].append((round(float(values[b]), 4), int(players[b])))
        playing = np.flatnonzero(~resigned)
        if playing.size:
            tree.advance(actions[playing], games=playing)
            fresh = np.flatnonzero(versus & ~resigned)
            if fresh.size and self.search_config.reuse_tree:  # the subtree is the other network's
                tree.set_roots(tree.root_states[fresh], games=fresh)
        self.moves += 1

        finished = resigned | tree.root_terminal
        out = []
        for b in np.flatnonzero(finished):
            if resigned[b]:
                scores = np.ones(game.num_players)
                scores[players[b]] = -1.0
                stats.resignations += 1
            else:
                scores = game.returns(tree.root_states[b])
            out.append(self._finish(b, scores, stats))
        if finished.any():
            restart = np.flatnonzero(finished)
            tree.set_roots(self._openings(restart), games=restart)
            self._draw_opponents(restart)
            self.no_resign[restart] = self._draw_no_resign(restart.size)
            self.would_resign[restart] = -1
            self.lowest[restart] = np.inf
        return out

    def _finish(self, b: int, scores: np.ndarray, stats: SelfPlayStats) -> Positions:
        """The training positions of game ``b``, which ended with ``scores`` (float[players])."""
        records = self.records[b]
        self.records[b] = []
        stats.games += 1
        stats.game_length += int(self.moves[b])
        stats.first_player_score += float(scores[0])
        stats.draws += int(scores[0] == 0)
        if self.opponent[b] >= 0:
            seat = int(self.learner_seat[b])
            stats.results.append([self.pairings.names[self.opponent[b]], seat, float(scores[seat])])
        if self.would_resign[b] >= 0:
            stats.resign_checks += 1
            stats.false_resignations += int(scores[self.would_resign[b]] >= 0)
        if self.lows[b]:
            stats.resign_samples.append([[value, bool(scores[player] >= 0)] for value, player in self.lows[b]])
            self.lows[b] = []
        if not records:
            return Positions.empty(self.game)
        obs, policy, player, owner = zip(*records)
        stats.positions += owner.count(0)  # the learner's: what a generation counts
        value = scores[np.array(player)].astype(np.float32)
        return Positions(np.stack(obs), np.stack(policy), value, np.array(owner, np.int16))

    def _openings(self, games_: np.ndarray) -> np.ndarray:
        """int64[G, S]: fresh start positions for ``games_`` (random openings, see the module
        docstring); sets their move numbers."""
        game = self.game
        out = np.stack([game.initial_state()] * games_.size)
        for row, b in enumerate(games_):
            plies = int(self.rng.integers(0, self.config.random_opening_moves + 1)) if self.config.random_opening_moves else 0
            state = out[row]
            for done in range(plies):
                safe = [a for a in game.legal_actions(state) if not game.is_terminal(game.next_state(state, a))]
                if not safe:
                    plies = done
                    break
                state = game.next_state(state, int(self.rng.choice(safe)))
            out[row] = state
            self.moves[b] = plies
        return out

    def _draw_no_resign(self, count: int) -> np.ndarray:
        return self.rng.random(count) < self.config.resign_playout_fraction


# ----------------------------------------------------------------------------- resignation threshold


def resign_check_counts(samples: list, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(checks int64[T], false int64[T])`` for each of ``thresholds float[T]``, over played-out
    games given by their record lows (:attr:`SelfPlayStats.resign_samples`). With threshold ``v``
    a game is *checked* when some full-search root value in it fell below ``v``. The first value
    below ``v`` is the first record low below it (record lows only decrease), and the resignation
    there is *false* when its player did not lose."""
    thresholds = np.asarray(thresholds, np.float64)
    lows = [low for game in samples for low in game]
    if not lows:
        return np.zeros(thresholds.shape, np.int64), np.zeros(thresholds.shape, np.int64)
    values = np.array([low[0] for low in lows], np.float64)  # [M], in game order, decreasing within a game
    false = np.array([bool(low[1]) for low in lows])  # [M]
    game = np.repeat(np.arange(len(samples)), [len(g) for g in samples])  # [M]
    checks, falses = np.zeros(thresholds.shape, np.int64), np.zeros(thresholds.shape, np.int64)
    for t, v in enumerate(thresholds):
        below = np.flatnonzero(values < v)
        _, first = np.unique(game[below], return_index=True)  # each checked game's first low below v
        checks[t], falses[t] = first.size, int(false[below[first]].sum())
    return checks, falses


RESIGN_Z = 1.645  # one-sided 95%: the calibration's confidence that a threshold is within target


def calibrate_resign_threshold(samples: list, target: float, margin: float, floor: float, ceiling: float,
                               step: float = 0.01) -> float:
    """The resignation threshold for the next generation, from played-out games' record lows.

    Candidates run from ``ceiling`` down to ``floor`` in steps of ``step``; the answer is the
    highest (the boldest) whose false-resignation rate is at most ``target - margin`` with 95%
    confidence: the one-sided Wilson upper bound of ``false / checks`` (``z = 1.645``). So a
    handful of lucky games never justify a bold threshold (with no false resignation it takes
    ``z^2 (1 - b) / b``, about 51 checks at ``b = 5%``), and a measured rate near the target is
    not enough either; an optional margin leaves more room for the network to change before the
    next calibration. (A plain ``(false + 1) / (checks + 1)`` rule held a 12-minute Connect Four run
    at 4.5% false resignations overall, 15 of 334, with 10 of 44 generations above 5%.) When no
    candidate qualifies: ``floor``, unless the games show the floor itself too bold (its measured
    rate ``false / checks`` above ``target``): then -1, nobody resigns."""
    candidates = np.round(np.arange(ceiling, floor - step / 2, -step), 6)  # boldest first
    candidates = np.append(candidates[candidates > floor], floor)
    checks, false = resign_check_counts(samples, candidates)
    ok = np.flatnonzero(wilson_interval(false, checks, z=RESIGN_Z)[1] <= target - margin)
    if ok.size:
        return float(candidates[ok[0]])
    return -1.0 if checks[-1] and false[-1] / checks[-1] > target else float(floor)


# ----------------------------------------------------------------------------- running actors


KEEP = "keep"  # collect(pairings=KEEP): leave the actors' pairings as they are


class Actors(Protocol):
    """What the trainer and the league drive: :class:`LocalActors` (one actor in this process),
    :class:`ActorPool` (processes), ``selfplay.training.streaming.StreamingActors`` (processes,
    perhaps sharing one inference server) and ``selfplay.training.ray_actors.RayActors`` (a
    cluster); the last two also stream, for ``cluster.overlap``. :func:`make_actors` picks one."""

    count: int  # actors that play in parallel

    def collect(
        self,
        generation: int,
        weights: Weights,
        num_positions: int,
        should_stop: Callable[[], bool] | None = None,
        on_progress: Callable[[SelfPlayStats], None] | None = None,
        resign_threshold: float | None = None,
        pairings: Any = KEEP,
    ) -> tuple[Positions, SelfPlayStats]:
        """Play with ``weights`` (and ``resign_threshold`` and ``pairings``, if given) until
        ``num_positions`` of the learner's positions are in, or ``should_stop()``."""
        ...

    def close(self) -> None:
        """Stop the actors and free what they hold."""
        ...


class LocalActors:
    """One actor in this process, behind the :class:`Actors` interface."""

    def __init__(self, spec: ActorSpec) -> None:
        self.actor = Actor(spec)
        self.count = 1

    def collect(
        self,
        generation: int,
        weights: Weights,
        num_positions: int,
        should_stop: Callable[[], bool] | None = None,
        on_progress: Callable[[SelfPlayStats], None] | None = None,
        resign_threshold: float | None = None,
        pairings: Any = KEEP,
    ) -> tuple[Positions, SelfPlayStats]:
        """Install ``weights`` (and ``resign_threshold`` and ``pairings``, if given) and play
        until ``num_positions`` positions are collected."""
        self.actor.set_weights(generation, weights)
        if resign_threshold is not None:
            self.actor.set_resign_threshold(resign_threshold)
        if pairings is not KEEP:
            self.actor.set_pairings(pairings)
        return self.actor.play(num_positions, should_stop, on_progress)

    def close(self) -> None:
        pass


def _worker(conn: Connection, spec: ActorSpec, source: Any = None, nice: int = 0) -> None:
    """An actor process: answers messages until ("stop",), or until its parent is gone. A play
    call ends early when a message waits (abort, stop, or new weights: the positions of the old
    ones come first). ``source``: the evaluator this actor always runs, whatever weights arrive
    (the client half of an inference server's channel, or a fixed evaluator; the weights then
    only say the generation); None: it runs the weights it is sent. ``nice``: its niceness."""
    # Ctrl-C and SIGTERM are the driver's to handle: it stops the actors after saving its work.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if nice:
        os.nice(nice)
    parent = os.getppid()
    try:
        actor = Actor(spec)
        if source is not None and not callable(source):  # a channel to the inference server
            from .inference_server import RemoteEvaluator

            source = RemoteEvaluator(source)
        while True:
            message = conn.recv()
            if message[0] == "stop":
                break
            if message[0] == "weights":
                if source is None:
                    actor.set_weights(message[1], message[2])
                else:
                    actor.set_evaluator(message[1], source)
            elif message[0] == "resign_threshold":
                actor.set_resign_threshold(message[1])
            elif message[0] == "pairings":
                actor.set_pairings(message[1])
            elif message[0] == "play":  # ("play", num_positions[, seconds])
                deadline = time.monotonic() + (message[2] if len(message) > 2 else math.inf)

                def interrupted() -> bool:
                    if os.getppid() != parent:  # the driver died (SIGKILL): nobody will read
                        raise SystemExit(0)
                    return conn.poll() or time.monotonic() >= deadline

                positions, stats = actor.play(
                    message[1], interrupted, lambda s: conn.send(("progress", s.to_dict()))
                )
                conn.send(("positions", actor.generation, positions, stats.to_dict()))
            # ("abort",) between plays: nothing to abort
    except (EOFError, BrokenPipeError, KeyboardInterrupt):
        pass
    except BaseException:
        try:
            conn.send(("error", traceback.format_exc()))
        except (OSError, ValueError):
            pass
    finally:
        conn.close()


class ActorError(RuntimeError):
    """An actor process failed; the message carries its traceback."""


class ActorPool:
    """``count`` actor processes (multiprocessing ``spawn``), actor ``i`` seeded ``seed + i``."""

    def __init__(self, spec: ActorSpec, count: int, sources: list | None = None, nice: int = 0) -> None:
        """``sources[i]``: what actor ``i`` evaluates with instead of the weights (see
        ``_worker``); ``nice``: the actors' niceness."""
        if count < 1:
            raise ValueError(f"an actor pool needs at least one actor, got {count}")
        context = multiprocessing.get_context("spawn")
        self.game = games.make(spec.game, **spec.game_options)
        self.count = count
        self.connections: list[Connection] = []
        self.processes = []
        for i in range(count):
            ours, theirs = context.Pipe()
            spec_i = ActorSpec(**{**{f.name: getattr(spec, f.name) for f in fields(spec)}, "seed": spec.seed + i})
            source = sources[i] if sources else None
            process = context.Process(target=_worker, args=(theirs, spec_i, source, nice), name=f"selfplay-actor-{i}",
                                      daemon=True)
            process.start()
            theirs.close()
            self.connections.append(ours)
            self.processes.append(process)

    def collect(
        self,
        generation: int,
        weights: Weights,
        num_positions: int,
        should_stop: Callable[[], bool] | None = None,
        on_progress: Callable[[SelfPlayStats], None] | None = None,
        resign_threshold: float | None = None,
        pairings: Any = KEEP,
    ) -> tuple[Positions, SelfPlayStats]:
        """Send ``weights`` (and ``resign_threshold`` and ``pairings``, if given) to every actor,
        ask each for its share of ``num_positions``, and gather the answers. When
        ``should_stop()`` turns true, actors are told to return what they have."""
        share = -(-num_positions // self.count)
        for i in range(self.count):
            self._send(i, ("weights", generation, weights))
            if resign_threshold is not None:
                self._send(i, ("resign_threshold", resign_threshold))
            if pairings is not KEEP:
                self._send(i, ("pairings", pairings))
            self._send(i, ("play", share))
        pending = {conn: i for i, conn in enumerate(self.connections)}
        progress = [SelfPlayStats() for _ in self.connections]
        parts: list[Positions] = []
        total = SelfPlayStats()
        aborted = False
        while pending:
            if not aborted and should_stop is not None and should_stop():
                for i in pending.values():
                    self._send(i, ("abort",))
                aborted = True
            for conn in wait(list(pending), timeout=0.2):
                i = pending[conn]
                try:
                    message = conn.recv()
                except EOFError:
                    raise self._failure(i) from None
                if message[0] == "error":
                    raise ActorError(f"actor {i} failed:\n{message[1]}")
                if message[0] == "progress":
                    progress[i] = SelfPlayStats(**message[1])
                elif message[0] == "positions":
                    _, _, positions, stats = message
                    parts.append(positions)
                    total = total.merge(stats)
                    progress[i] = SelfPlayStats(**stats)
                    del pending[conn]
            if on_progress is not None:
                merged = SelfPlayStats()
                for p in progress:
                    merged = merged.merge(p)
                merged.seconds = max(p.seconds for p in progress)  # wall-clock, as the total's below
                on_progress(merged)
        # Seconds are wall-clock: actors play side by side, so their sum is not the time taken.
        total.seconds = max((p.seconds for p in progress), default=0.0)
        total.evaluator_seconds /= self.count
        return Positions.concatenate(parts, self.game), total

    def _send(self, i: int, message: tuple) -> None:
        try:
            self.connections[i].send(message)
        except OSError:  # the actor is gone; it may have said why
            raise self._failure(i) from None

    def _failure(self, i: int) -> ActorError:
        conn = self.connections[i]
        try:
            while conn.poll(1.0):
                message = conn.recv()
                if message[0] == "error":
                    return ActorError(f"actor {i} failed:\n{message[1]}")
        except (EOFError, OSError):
            pass
        self.processes[i].join(timeout=1)
        return ActorError(f"actor {i} died (exit code {self.processes[i].exitcode})")

    def close(self) -> None:
        """Stop every actor (they finish their current message first), then reap them."""
        for conn in self.connections:
            try:
                conn.send(("stop",))
            except (OSError, ValueError):
                pass
        for process in self.processes:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join(timeout=5)
        for conn in self.connections:
            conn.close()


def make_actors(spec: ActorSpec, count: int, cluster: Any = None, log: Callable[[str], None] | None = None) -> Actors:
    """The actors of a run: ``count`` actor processes, or one actor in this process when ``count``
    is 0; with ``cluster.backend == "ray"`` (a :class:`selfplay.config.ClusterConfig`), ``count``
    Ray actors (-1: one per cluster CPU), :class:`selfplay.training.ray_actors.RayActors`; with
    ``cluster.overlap`` or one inference server (``cluster.inference``), ``count`` (at least one)
    :class:`selfplay.training.streaming.StreamingActors`. All are :class:`Actors`."""
    if cluster is not None and cluster.backend == "ray":
        from .ray_actors import RayActors

        return RayActors(spec, count, cluster, log=log)
    if cluster is not None:  # a stream for overlapped learning, or one inference server for every actor
        from .streaming import StreamingActors, serves_locally

        serve = serves_locally(cluster, spec.device)
        if cluster.overlap or serve:
            from .inference_server import ServerOptions

            return StreamingActors(spec, max(count, 1), serve=serve, options=ServerOptions(device=spec.device),
                                   chunk_seconds=cluster.chunk_seconds, log=log)
    return LocalActors(spec) if count == 0 else ActorPool(spec, count)
