"""The whole configuration of a training run: one frozen dataclass of frozen sections.

:class:`TrainConfig` holds the game and six sections, each the part one component needs::

    net       selfplay.model.network.NetConfig     the policy-value network
    search    search.SearchConfig            the self-play search (its num_simulations is the full search)
    selfplay  SelfPlayConfig                 actors, playout caps, resignation, positions per generation
    learner   LearnerConfig                  optimizer, schedule, batch, replay buffer
    eval      EvalConfig                     rating each generation against baselines and its elders
    run       RunConfig                      time budget, device, seed, checkpoints
    cluster   ClusterConfig                  where actors run: this machine, or a Ray cluster

Every field carries a help string (``metadata["help"]``) and becomes a command-line flag named
``--SECTION.FIELD`` with dashes (``--selfplay.games-per-actor 64``, ``--search.root-policy puct``);
a few common ones also have short names (``--minutes``, ``--device``, ``--seed``, ``--backend``,
``--address``, ``--actors``).
:func:`selfplay.presets.preset` gives the starting point (``tiny``, ``small``, ``full``) for a game,
flags override it, and the result is saved as ``config.json`` in the run directory, from which ``--resume``
reads it back. Bad values fail at construction with one line naming the field (:class:`ConfigError`).

This module imports torch only when a :class:`TrainConfig` is built (``NetConfig`` lives with the
network), so self-play worker processes, which need :class:`SelfPlayConfig` alone, start without it.
"""

from __future__ import annotations

import argparse
import math
import os
import typing
import warnings
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Mapping

from search import SearchConfig
from search.config import SearchError

if typing.TYPE_CHECKING:
    from .model.network import NetConfig

__all__ = [
    "ClusterConfig",
    "ConfigError",
    "EvalConfig",
    "LearnerConfig",
    "RESUME_SAFE",
    "RunConfig",
    "SECTION_NAMES",
    "SelfPlayConfig",
    "TrainConfig",
    "add_config_arguments",
    "available_cores",
    "describe",
    "flat_items",
    "gumbel_search",
    "overrides_from_args",
    "sections",
    "with_overrides",
]


class ConfigError(ValueError):
    """A bad training setting (value out of range, unknown field, unsafe change on resume)."""


def _f(default: Any, help: str) -> Any:
    return field(default=default, metadata={"help": help})


def _need(ok: bool, section: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"{section}: {message}")


def _check_types(obj: Any, section: str) -> None:
    """A string where a number belongs (say, from a JSON file edited by hand) fails by name."""
    hints = typing.get_type_hints(type(obj))
    for f in fields(obj):
        kind = {int: int, float: (int, float), bool: bool, str: str}[hints[f.name]]
        value = getattr(obj, f.name)
        ok = isinstance(value, kind) and (hints[f.name] is bool or not isinstance(value, bool))
        _need(ok, section, f"{f.name} must be {hints[f.name].__name__}, got {value!r}")


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


# ----------------------------------------------------------------------------- sections


@dataclass(frozen=True)
class SelfPlayConfig:
    """How self-play games are generated. Simulation counts per move: the full search is
    ``search.num_simulations``; with playout caps most moves get ``fast_simulations``."""

    num_actors: int = _f(
        -1, "self-play worker processes: -1 one per CPU core (with run.device cuda: at most 8, each evaluating on "
        "the GPU; with cluster.backend ray: per CPU of the cluster, or per cluster.actor_resource slot), 0 none "
        "(play in the training process: tests and debugging; not with ray)"
    )
    games_per_actor: int = _f(
        64, "games each actor plays at once; every search step evaluates one leaf of each in one batch"
    )
    cache_positions: int = _f(
        262_144, "each actor remembers the network's outputs for up to this many positions (a power of two; "
        "search.cache) and answers a repeat from memory, cleared with every new network; 40 bytes a "
        "Connect Four position. 0: no cache"
    )
    fast_simulations: int = _f(
        0, "playout-cap randomization (KataGo): moves that are not full searches get this many "
        "simulations and give no training position (0: every move is a full search)"
    )
    full_search_prob: float = _f(
        0.25, "with fast_simulations > 0: probability that a move gets the full search"
    )
    random_opening_moves: int = _f(
        0, "each game starts from a uniformly random number (0 to this) of uniformly random moves "
        "(never one that ends the game). Only moves the search chose are learned, so the value "
        "targets stay honest, and the network sees positions off the lines good play keeps to"
    )
    root_value_weight: float = _f(
        0.0, "value target = (1 - w) * the game's result + w * the full search's root value, both from the "
        "mover's view (0: the result alone, AlphaZero; 0.5 averages them, less noise from random openings)"
    )
    positions_per_generation: int = _f(
        2000, "training positions (full-search moves of finished games) collected per generation, "
        "over all actors"
    )
    resign_value: float = _f(
        -1.0, "the player to move resigns when its full search's root value is below this (e.g. -0.9); "
        "-1 never resigns. With resign_calibrate, the starting threshold, moved every generation after"
    )
    resign_playout_fraction: float = _f(
        0.1, "fraction of games in which nobody resigns, played out to measure the false-resignation "
        "rate (resignations that would have turned a draw or a win into a loss)"
    )
    resign_from_generation: int = _f(
        3, "resignation is allowed from this generation on (an untrained value head means nothing)"
    )
    resign_calibrate: bool = _f(
        True, "with resign_value > -1: after every generation, set the threshold to the most aggressive one "
        "whose false-resignation rate on the latest played-out games is at most resign_target - resign_margin "
        "(AlphaZero); false: keep resign_value"
    )
    resign_target: float = _f(0.05, "the false-resignation rate the calibrated threshold keeps under")
    resign_margin: float = _f(
        0.0, "safety margin: the calibration wants resign_target minus this as the 95% upper bound "
        "(Wilson) of a threshold's false-resignation rate (the bound already keeps few games from "
        "justifying a bold threshold)"
    )
    resign_window: int = _f(1000, "played-out games (the latest) the calibration looks at")
    resign_floor: float = _f(
        -0.99, "the calibrated threshold never goes below this (it is the threshold while the played-out "
        "games do not justify a bolder one), unless the games show even this too bold: then -1, no resigning"
    )
    resign_ceiling: float = _f(-0.5, "the calibrated threshold never goes above this")

    def __post_init__(self) -> None:
        s = "selfplay"
        _check_types(self, s)
        _need(self.num_actors >= -1, s, f"num_actors must be -1 (one per core), 0 or more, got {self.num_actors}")
        _need(self.games_per_actor >= 1, s, f"games_per_actor must be >= 1, got {self.games_per_actor}")
        _need(self.fast_simulations >= 0, s, f"fast_simulations must be >= 0, got {self.fast_simulations}")
        _need(0 < self.full_search_prob <= 1, s, f"full_search_prob must be in (0, 1], got {self.full_search_prob}")
        _need(self.cache_positions >= 0, s, f"cache_positions must be >= 0, got {self.cache_positions}")
        _need(self.random_opening_moves >= 0, s, f"random_opening_moves must be >= 0, got {self.random_opening_moves}")
        _need(0 <= self.root_value_weight <= 1, s, f"root_value_weight must be in [0, 1], got {self.root_value_weight}")
        _need(self.positions_per_generation >= 1, s, f"positions_per_generation must be >= 1, got {self.positions_per_generation}")
        _need(-1 <= self.resign_value <= 1, s, f"resign_value must be in [-1, 1], got {self.resign_value}")
        _need(0 <= self.resign_playout_fraction <= 1, s, f"resign_playout_fraction must be in [0, 1], got {self.resign_playout_fraction}")
        _need(self.resign_from_generation >= 0, s, f"resign_from_generation must be >= 0, got {self.resign_from_generation}")
        _need(0 < self.resign_target < 1, s, f"resign_target must be in (0, 1), got {self.resign_target}")
        _need(0 <= self.resign_margin < self.resign_target, s,
              f"resign_margin must be in [0, resign_target), got {self.resign_margin}")
        _need(self.resign_window >= 1, s, f"resign_window must be >= 1, got {self.resign_window}")
        _need(-1 < self.resign_floor <= self.resign_ceiling < 1, s,
              f"need -1 < resign_floor <= resign_ceiling < 1, got {self.resign_floor} and {self.resign_ceiling}")

    @property
    def actors(self) -> int:
        """Worker processes to start (``num_actors`` with -1 resolved to the core count)."""
        return available_cores() if self.num_actors == -1 else self.num_actors


OPTIMIZERS = ("adamw", "sgd")
SCHEDULES = ("constant", "cosine", "step")


@dataclass(frozen=True)
class LearnerConfig:
    """How the network learns from the replay buffer."""

    optimizer: str = _f("adamw", "'adamw' or 'sgd' (with Nesterov momentum)")
    lr: float = _f(2e-3, "peak learning rate")
    momentum: float = _f(0.9, "sgd: momentum")
    weight_decay: float = _f(1e-4, "weight decay (decoupled for adamw, L2 for sgd)")
    schedule: str = _f(
        "cosine", "learning rate over the run's budget (time, or generations if run.generations is set): "
        "'constant', 'cosine' (from lr down to lr * lr_final_fraction) or 'step' (drops to "
        "lr * sqrt(lr_final_fraction) at half the budget and lr * lr_final_fraction at three quarters)"
    )
    lr_final_fraction: float = _f(0.1, "the learning rate at the end of the budget, as a fraction of lr")
    warmup_steps: int = _f(100, "optimizer steps of linear warm-up from 0 to the scheduled rate")
    batch_size: int = _f(256, "positions per optimizer step")
    samples_per_position: float = _f(
        4.0, "replay ratio: positions sampled for training per new self-play position, so a generation "
        "trains new_positions * samples_per_position / batch_size steps"
    )
    buffer_capacity: int = _f(100_000, "positions the replay buffer holds; the oldest are overwritten")
    min_positions: int = _f(1000, "no training until the buffer holds this many positions")
    augment: bool = _f(True, "sample each position through a random symmetry of the board")
    threads: int = _f(
        0, "torch threads for learning on the CPU (0: one per core; learning beside local actor processes, "
        "cluster.overlap, one per core they leave free, at least one)"
    )
    precision: str = _f(
        "auto", "'fp32', 'bf16' (autocast, float32 weights), or 'auto': bf16 on CUDA and on CPUs that compute it "
        "natively (AVX512-BF16, AMX: 2x the steps/s with channels-last), float32 elsewhere"
    )

    def __post_init__(self) -> None:
        s = "learner"
        _check_types(self, s)
        _need(self.optimizer in OPTIMIZERS, s, f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}")
        _need(self.schedule in SCHEDULES, s, f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        _need(self.lr > 0 and math.isfinite(self.lr), s, f"lr must be > 0, got {self.lr}")
        _need(0 <= self.momentum < 1, s, f"momentum must be in [0, 1), got {self.momentum}")
        _need(self.weight_decay >= 0, s, f"weight_decay must be >= 0, got {self.weight_decay}")
        _need(0 < self.lr_final_fraction <= 1, s, f"lr_final_fraction must be in (0, 1], got {self.lr_final_fraction}")
        _need(self.warmup_steps >= 0, s, f"warmup_steps must be >= 0, got {self.warmup_steps}")
        _need(self.batch_size >= 1, s, f"batch_size must be >= 1, got {self.batch_size}")
        _need(self.samples_per_position > 0, s, f"samples_per_position must be > 0, got {self.samples_per_position}")
        _need(self.buffer_capacity >= 1, s, f"buffer_capacity must be >= 1, got {self.buffer_capacity}")
        _need(self.min_positions >= 1, s, f"min_positions must be >= 1, got {self.min_positions}")
        _need(
            self.min_positions <= self.buffer_capacity, s,
            f"min_positions ({self.min_positions}) cannot exceed buffer_capacity ({self.buffer_capacity})",
        )
        _need(self.threads >= 0, s, f"threads must be >= 0, got {self.threads}")
        _need(self.precision in ("auto", "fp32", "bf16"), s, f"precision must be auto, fp32 or bf16, got {self.precision!r}")


@dataclass(frozen=True)
class EvalConfig:
    """Rating the network during and after training."""

    every: int = _f(2, "rate the network every this many generations (0: only at the end)")
    games: int = _f(20, "games against each opponent per rating (half with each colour)")
    visits: int = _f(32, "the network agent's simulations per move (0: the raw policy)")
    opponents: str = _f(
        "random,greedy,mcts:100", "fixed opponents, comma-separated agent specs (random, greedy, mcts:N)"
    )
    previous: int = _f(2, "also play the latest this many rated generations (the Elo ladder)")
    milestones: bool = _f(
        False, "also play the checkpoints kept at run.keep_every_minutes marks: direct games with the network of "
        "minute 5, 10, ... keep the Elo curve honest once the fixed opponents are beaten"
    )
    opening_moves: int = _f(
        2, "random plies opening each pair of rating games (each side plays both colours of an opening), "
        "so deterministic players do not replay one game"
    )
    solver_positions: int = _f(
        0, "connect4: also measure error rates against the perfect solver on this many positions per "
        "stage (0: skip; solving them the first time takes up to a second each, then they are cached)"
    )
    solver_sets: int = _f(
        1, "connect4: the final report measures solver errors on this many sets of solver_positions per "
        "stage (seeds 0, 1, ...; the first three ship with selfplay), ratings on the first"
    )
    final_games: int = _f(100, "games against each final opponent when the run ends (0: skip)")
    final_visits: int = _f(200, "the network agent's simulations per move in the final games")
    final_opponents: str = _f("random,greedy,mcts:200", "opponents of the final games, comma-separated")

    def __post_init__(self) -> None:
        s = "eval"
        _check_types(self, s)
        for name in ("every", "games", "visits", "previous", "opening_moves", "solver_positions", "final_games",
                     "final_visits"):
            _need(getattr(self, name) >= 0, s, f"{name} must be >= 0, got {getattr(self, name)}")
        _need(self.solver_sets >= 1, s, f"solver_sets must be >= 1, got {self.solver_sets}")
        for name in ("opponents", "final_opponents"):
            specs = [x.strip() for x in getattr(self, name).split(",")]
            _need(all(specs) or getattr(self, name) == "", s, f"{name} has an empty entry: {getattr(self, name)!r}")

    @property
    def opponent_specs(self) -> list[str]:
        return [x.strip() for x in self.opponents.split(",") if x.strip()]

    @property
    def final_opponent_specs(self) -> list[str]:
        return [x.strip() for x in self.final_opponents.split(",") if x.strip()]


DEVICES = ("auto", "cpu", "cuda")
BACKENDS = ("auto", "onnx", "int8", "torch")


@dataclass(frozen=True)
class RunConfig:
    """The run as a whole: budget, hardware, seed, checkpoints."""

    minutes: float = _f(
        0.0, "wall-clock budget of the whole run, resumed sessions included, each counted from the command's "
        "start; the final report comes after it (0: none)"
    )
    generations: int = _f(0, "stop after this many generations (0: none); at least one budget is needed")
    device: str = _f("auto", "where the network learns and, with cuda, evaluates: auto, cpu or cuda")
    inference: str = _f(
        "auto", "how actors evaluate the network: 'onnx' (onnxruntime), 'int8' (onnxruntime with the network "
        "quantized to int8 each generation, calibrated on replay positions: 2-3x faster on the CPU; ratings and "
        "final matches still run float32), 'torch', or 'auto' (onnxruntime on the CPU, where it is faster; torch "
        "on CUDA)"
    )
    seed: int = _f(0, "seed of every random choice in the run")
    keep_last: int = _f(3, "checkpoints kept (besides the best-rated one and the minute marks)")
    keep_every_minutes: float = _f(
        5.0, "also keep for good the last checkpoint of every this many minutes of the run, so that "
        "`selfplay bench curve` can measure the run at those marks (0: none)"
    )
    checkpoint_seconds: float = _f(
        60.0, "save a checkpoint (with the replay buffer) at most this often, in seconds of wall-clock; rated "
        "generations, the last one and a stop always save (0: every generation)"
    )
    progress: bool = _f(True, "show a progress bar")

    def __post_init__(self) -> None:
        s = "run"
        _check_types(self, s)
        _need(self.minutes >= 0 and math.isfinite(self.minutes), s, f"minutes must be >= 0, got {self.minutes}")
        _need(self.generations >= 0, s, f"generations must be >= 0, got {self.generations}")
        _need(self.device in DEVICES, s, f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        _need(self.inference in BACKENDS, s, f"inference must be one of {', '.join(BACKENDS)}, got {self.inference!r}")
        _need(self.keep_last >= 1, s, f"keep_last must be >= 1, got {self.keep_last}")
        _need(self.keep_every_minutes >= 0 and math.isfinite(self.keep_every_minutes), s,
              f"keep_every_minutes must be >= 0, got {self.keep_every_minutes}")
        _need(self.checkpoint_seconds >= 0 and math.isfinite(self.checkpoint_seconds), s,
              f"checkpoint_seconds must be >= 0, got {self.checkpoint_seconds}")


CLUSTER_BACKENDS = ("local", "ray")
INFERENCE_PLACES = ("auto", "actor", "server")


@dataclass(frozen=True)
class ClusterConfig:
    """Where the self-play actors run: processes on this machine, or Ray actors on a cluster."""

    backend: str = _f(
        "local", "'local': actor processes on this machine (multiprocessing); 'ray': Ray actors on a Ray cluster "
        "(pip install selfplay[ray]; docs/ray.md)"
    )
    address: str = _f(
        "", "ray: the cluster to join, as 'ray start' printed it (HOST:PORT), or 'auto' for the one started on this "
        "machine; '' starts a Ray instance in this process (or joins RAY_ADDRESS when that is set)"
    )
    actor_resource: str = _f(
        "", "ray: actors prefer nodes that offer this custom resource (ray start --resources '{\"NAME\": N}' gives a "
        "node N actor slots); with no free slot on a live node, an actor (a replacement too) runs wherever a CPU is "
        "free, so a run outlives the nodes it was given. With num_actors -1: one actor per slot ('': per cluster CPU)"
    )
    overlap: bool = _f(
        False, "actors play on while the learner learns (with the newest weights they have), and the learner "
        "takes learner.samples_per_position samples per arriving position at most; false: alternating generations"
    )
    inference: str = _f(
        "auto", "where the network runs: 'actor' (each actor batches its own games), 'server' (one inference process "
        "batches every actor's leaves; ray: one inference actor, on a GPU when the cluster has one), 'auto' ('server' "
        "on CUDA or when the Ray cluster has a GPU, else 'actor')"
    )
    chunk_seconds: float = _f(
        1.0, "seconds of play per call to an actor: how often games stream back (overlap), and at most what a lost Ray "
        "actor takes with it (its unfinished games are played again)"
    )

    def __post_init__(self) -> None:
        s = "cluster"
        _check_types(self, s)
        _need(self.backend in CLUSTER_BACKENDS, s, f"backend must be one of {', '.join(CLUSTER_BACKENDS)}, got {self.backend!r}")
        _need(self.inference in INFERENCE_PLACES, s,
              f"inference must be one of {', '.join(INFERENCE_PLACES)}, got {self.inference!r}")
        _need(self.chunk_seconds > 0 and math.isfinite(self.chunk_seconds), s,
              f"chunk_seconds must be > 0, got {self.chunk_seconds}")


# ----------------------------------------------------------------------------- the whole


SECTION_NAMES = ("net", "search", "selfplay", "learner", "eval", "run", "cluster")


def sections() -> dict[str, type]:
    """``{section name: its dataclass}``, in :data:`SECTION_NAMES` order."""
    from .model.network import NetConfig  # torch: only when a whole config is asked for

    return {"net": NetConfig, "search": SearchConfig, "selfplay": SelfPlayConfig, "learner": LearnerConfig,
            "eval": EvalConfig, "run": RunConfig, "cluster": ClusterConfig}


def gumbel_search(simulations: int, considered: int = 16) -> SearchConfig:
    """Self-play search: Gumbel root (policy improvement even with a handful of simulations,
    no Dirichlet noise or temperature needed), tree reuse."""
    return SearchConfig(num_simulations=simulations, root_policy="gumbel", gumbel_considered=considered, reuse_tree=True)


def _default_net() -> "NetConfig":
    return sections()["net"]()


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs; saved as the run's ``config.json``."""

    game: str  # registry name, e.g. "connect4"
    game_options: Mapping[str, Any] = field(default_factory=dict)  # games.make options
    preset: str = ""  # the preset it started from (a label; the fields below are what counts)
    net: "NetConfig" = field(default_factory=_default_net)
    search: SearchConfig = field(default_factory=lambda: gumbel_search(SearchConfig.num_simulations))  # self-play needs noise
    selfplay: SelfPlayConfig = field(default_factory=SelfPlayConfig)
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    run: RunConfig = field(default_factory=RunConfig)
    cluster: ClusterConfig = field(default_factory=ClusterConfig)

    def __post_init__(self) -> None:
        for name, kind in sections().items():
            if not isinstance(getattr(self, name), kind):
                raise ConfigError(f"config: {name} must be a {kind.__name__}, got {type(getattr(self, name)).__name__}")
        if self.run.minutes == 0 and self.run.generations == 0:
            raise ConfigError("run: give a budget: minutes > 0 or generations > 0")
        if self.selfplay.fast_simulations > self.search.num_simulations:
            raise ConfigError(
                f"selfplay: fast_simulations ({self.selfplay.fast_simulations}) exceeds the full search "
                f"(search.num_simulations = {self.search.num_simulations})"
            )
        if (why := _deterministic_search(self.search)) is not None:
            # A warning, not a ConfigError: a PUCT search is a legitimate thing to try from the
            # command line one flag at a time (and tests build one from a Gumbel preset).
            warnings.warn(f"search: {why}", UserWarning, stacklevel=3)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict: ``{"game": ..., "game_options": ..., "net": {...}, ...}``."""
        out: dict[str, Any] = {"game": self.game, "game_options": dict(self.game_options), "preset": self.preset}
        for name in SECTION_NAMES:
            out[name] = asdict(getattr(self, name))
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TrainConfig":
        """Inverse of :meth:`to_dict`; refuses unknown sections and fields by name. Missing fields
        take their defaults (a config written before a field existed)."""
        unknown = sorted(set(data) - {"game", "game_options", "preset", *SECTION_NAMES})
        if unknown:
            raise ConfigError(f"unknown config section(s): {', '.join(unknown)}")
        if not isinstance(data.get("game"), str):
            raise ConfigError("config has no game name")
        parts = {}
        for name, kind in sections().items():
            values = dict(data.get(name) or {})
            known = {f.name for f in fields(kind)}
            extra = sorted(set(values) - known)
            if extra:
                raise ConfigError(f"{name}: unknown field(s) {', '.join(extra)}")
            parts[name] = _build(kind, name, values)
        return _build(
            cls, "config", {"game": data["game"], "game_options": dict(data.get("game_options") or {}),
                            "preset": str(data.get("preset", "")), **parts}
        )

    def replace(self, **parts: Any) -> "TrainConfig":
        """A copy with whole sections replaced: ``cfg.replace(run=replace(cfg.run, minutes=5))``."""
        return _build(TrainConfig, "config", {**{f.name: getattr(self, f.name) for f in fields(self)}, **parts})


def _deterministic_search(search: SearchConfig) -> str | None:
    """Why self-play with ``search`` would play the same game from every start, or None.

    PUCT explores through root noise and the move temperature; Gumbel through its Gumbel noise.
    Without them, games differ only by their random openings, and the network learns from
    copies of a few games."""
    fix = "every game from a given position plays out the same; "
    if search.gumbel:
        if search.gumbel_scale == 0:
            return "Gumbel self-play with gumbel_scale=0 is deterministic; " + fix + "use gumbel_scale 1"
        return None
    if search.dirichlet_fraction == 0 and (search.temperature_moves == 0 or search.temperature == 0):
        return (
            "PUCT self-play with no Dirichlet noise (dirichlet_fraction=0) and no move temperature "
            "(temperature_moves=0 or temperature=0) is deterministic; " + fix + "set "
            "--search.dirichlet-fraction 0.25 --search.temperature-moves 15, or --search.root-policy gumbel"
        )
    return None


def _build(kind: type, section: str, values: Mapping[str, Any]) -> Any:
    """``kind(**values)`` with every error of the section's own validators as a ConfigError."""
    from .model.network import NetConfigError

    try:
        return kind(**values)
    except ConfigError:
        raise
    except (SearchError, NetConfigError, TypeError) as e:
        raise ConfigError(f"{section}: {e}") from None


def flat_items(config: TrainConfig) -> dict[str, Any]:
    """``{"selfplay.games_per_actor": 64, ...}``: every field of every section."""
    return {f"{name}.{f.name}": getattr(getattr(config, name), f.name) for name, kind in sections().items() for f in fields(kind)}


def with_overrides(config: TrainConfig, overrides: Mapping[str, Any]) -> TrainConfig:
    """``config`` with ``{"section.field": value}`` applied (unknown keys refused by name)."""
    grouped: dict[str, dict[str, Any]] = {}
    known = flat_items(config)
    for key, value in overrides.items():
        if key not in known:
            raise ConfigError(f"unknown setting {key!r}")
        section, name = key.split(".", 1)
        grouped.setdefault(section, {})[name] = value
    parts = {section: _build(type(getattr(config, section)), section, {**asdict(getattr(config, section)), **values})
             for section, values in grouped.items()}
    return config.replace(**parts)


#: Settings ``--resume`` may change: the budget and the hardware, nothing that changes what is
#: learned from what. (The number of actors changes which games are played, not how; so do where
#: they run and whether they play while the learner learns: a resumed run may move to a cluster.)
RESUME_SAFE = frozenset(
    {
        "run.minutes",
        "run.generations",
        "run.device",
        "run.inference",
        "run.progress",
        "run.keep_last",
        "run.keep_every_minutes",
        "run.checkpoint_seconds",
        "selfplay.num_actors",
        "learner.threads",
        "eval.final_games",
        "eval.final_visits",
        "eval.solver_sets",
        "eval.final_opponents",
        *(f"cluster.{f.name}" for f in fields(ClusterConfig)),
    }
)


# ----------------------------------------------------------------------------- command line

#: Short names for the settings people change most (``--minutes`` is ``--run.minutes``).
ALIASES = {"run.minutes": "--minutes", "run.device": "--device", "run.seed": "--seed", "run.generations": "--generations",
           "cluster.backend": "--backend", "cluster.address": "--address", "selfplay.num_actors": "--actors"}


def parse_bool(text: str) -> bool:
    """``true``/``false`` (also 1/0, yes/no, on/off) as a flag's value; anything else is an error."""
    value = text.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per field of every section, ``--section.field-name``, defaulting to "not given"
    (the preset or the resumed config decides). Values are parsed by the field's type."""
    for section, kind in sections().items():
        group = parser.add_argument_group(f"{section} settings", (kind.__doc__ or "").split("\n")[0])
        hints = typing.get_type_hints(kind)
        for f in fields(kind):
            key = f"{section}.{f.name}"
            names = [f"--{section}.{f.name.replace('_', '-')}"]
            if key in ALIASES:
                names.insert(0, ALIASES[key])
            kind_of = hints[f.name]
            group.add_argument(
                *names,
                dest=key,
                type=parse_bool if kind_of is bool else kind_of,
                default=argparse.SUPPRESS,
                metavar={bool: "BOOL", int: "N", float: "X", str: "TEXT"}[kind_of],
                help=f.metadata.get("help", "").replace("%", "%%"),  # argparse formats help with %
            )


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """``{"section.field": value}`` for the config flags given on the command line."""
    keys = {f"{s}.{f.name}" for s, kind in sections().items() for f in fields(kind)}
    return {k: v for k, v in vars(args).items() if k in keys}


def describe(config: TrainConfig) -> str:
    """One line: game, preset, network, search, budget."""
    opts = ",".join(f"{k}={v}" for k, v in config.game_options.items())
    search = config.search
    sims = f"{search.num_simulations}"
    if config.selfplay.fast_simulations:
        sims += f"/{config.selfplay.fast_simulations} (full p={config.selfplay.full_search_prob:g})"
    budget = " and ".join(
        x for x in (f"{config.run.minutes:g} min" if config.run.minutes else "",
                    f"{config.run.generations} generations" if config.run.generations else "") if x
    )
    where = ""
    if config.cluster.backend == "ray":
        where = f", on Ray{' at ' + config.cluster.address if config.cluster.address else ''}"
    where += " (overlapped)" if config.cluster.overlap else ""
    return (f"{config.game}{'(' + opts + ')' if opts else ''}, preset {config.preset or '-'}: "
            f"{config.net.describe()} net, {search.root_policy} search {sims} sims, budget {budget}{where}")

