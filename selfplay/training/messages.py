"""What the driver (the trainer, a league) and its self-play actors exchange, and the interface
that drives them: the lowest layer of selfplay.training, imported by the actor, by every pool of
actors and by the trainer, and importing none of them.

Actors talk only in plain picklable messages, so an actor process, a Ray actor and an actor in
this process run the same :class:`selfplay.training.actor.Actor`::

    to an actor     ("weights", generation, Weights)   ("resign_threshold", value)   ("play", num_positions[, seconds])
                    ("pairings", Pairings or None)   ("abort",)   ("stop",)
    from an actor   ("progress", stats dict)   ("positions", generation, Positions, stats dict)
                    ("error", traceback text)

:class:`Actors` is what the driver holds: ``collect`` for alternating generations, and, in the
pools that stream (``selfplay.training.streaming``, ``selfplay.training.ray_actors``),
``broadcast`` and ``poll`` returning :class:`Delivery` objects for overlapped learning.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Callable

import numpy as np

from games.core import Game
from search import SearchConfig

from ..config import SelfPlayConfig

__all__ = [
    "KEEP",
    "SCRIPT",
    "SELF",
    "ActorError",
    "ActorSpec",
    "Actors",
    "Delivery",
    "Pairings",
    "Positions",
    "SelfPlayStats",
    "Weights",
    "is_script",
]


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
    cache_hits: int = 0  # positions the search asked for that the actor's cache answered instead
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


class ActorError(RuntimeError):
    """An actor failed (its process, its Ray actor or its evaluator); the message carries its
    traceback or the reason."""


KEEP = "keep"  # collect(pairings=KEEP): leave the actors' pairings as they are


@dataclass
class Delivery:
    """One finished play call of a streaming pool: positions of games that ended in it, played
    by ``generation``'s weights."""

    generation: int
    positions: Positions
    stats: SelfPlayStats
    actor: int  # the slot
    epoch: tuple  # (weights, pairings) broadcast it was played under: the pool's ``epoch``
    call: tuple = ()  # (Ray actor id, its play call number from 0): which play call this is, unique in a run


class Actors(ABC):
    """What the trainer and the league drive: ``selfplay.training.processes.LocalActors`` (one
    actor in this process), ``selfplay.training.processes.ActorPool`` (processes),
    ``selfplay.training.streaming.StreamingActors`` (processes, perhaps sharing one inference
    server) and ``selfplay.training.ray_actors.RayActors`` (a cluster); the last two also stream,
    for ``cluster.overlap``. ``selfplay.training.pool.make_actors`` picks one.

    A generation's self-play is the same two steps everywhere, :meth:`configure` and then
    :meth:`gather`; each pool says how it does each."""

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
        self.configure(generation, weights, resign_threshold, pairings)
        return self.gather(num_positions, should_stop, on_progress)

    @abstractmethod
    def configure(self, generation: int, weights: Weights, resign_threshold: float | None, pairings: Any) -> None:
        """Every actor plays its next games with ``weights`` of ``generation`` (and with
        ``resign_threshold`` and ``pairings``, unless None and :data:`KEEP`)."""

    @abstractmethod
    def gather(self, num_positions: int, should_stop: Callable[[], bool] | None,
               on_progress: Callable[[SelfPlayStats], None] | None) -> tuple[Positions, SelfPlayStats]:
        """Play until ``num_positions`` of the learner's positions are in (or ``should_stop()``),
        reporting to ``on_progress(stats so far)``; the positions and the stats."""

    @abstractmethod
    def close(self) -> None:
        """Stop the actors and free what they hold."""
