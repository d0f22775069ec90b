"""Players for matches: something that picks one move in each of many positions at once.

An :class:`Agent` answers ``act(states, move_numbers, rng_seed) -> actions`` for ``G`` positions
in one call, so a network agent runs one batched search (its evaluator sees batches of ``G``)
instead of ``G`` small ones. The arena (:mod:`selfplay.evaluation.matches`) calls each agent once per ply over
every game in which it is to move.

* :class:`RandomAgent`: a uniformly random legal move.
* :class:`GreedyAgent`: ``games.baselines`` one-ply greedy (win now, else do not let the opponent
  win next move).
* :class:`MCTSAgent`: pure MCTS, ``N`` simulations with one random rollout per leaf.
* :class:`NetworkAgent`: a policy-value network; the raw policy (``visits=0``) or a search.
* :class:`ScriptAgent`: a game's scripted NPC (``game.extra["scripts"]``, and the ones held out
  of leagues, ``game.extra["held_out_scripts"]``; the arena's are in ``games.arena_scripts``:
  ``nearest``, ``focus``, ``kite``, ``guard``; held out ``hunter``, ``phalanx``).
* :func:`load_agent`: an agent from a command-line spec (``random``, ``greedy``, ``mcts:N``, a
  script's name, an ``.onnx`` file or a checkpoint).

Randomness: ``rng_seed`` is one integer (position ``g`` then draws from seed ``rng_seed + g``, as
``search.Search`` does) or ``int64[G]``, one seed per position. Every position draws only from
its own seed, so a move never depends on which other positions share the call. Agents hold no
state between calls.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, ClassVar, Mapping, Protocol, runtime_checkable

import numpy as np
from numba import njit, types

from export.contract import is_brain
from games.baselines import _greedy
from games.core import KERNEL_TYPES, Game
from games.playout import random_legal_action
from games.rng import make_rng
from search import RolloutEvaluator, Search, SearchConfig

__all__ = [
    "Agent",
    "AgentError",
    "GreedyAgent",
    "MCTSAgent",
    "NetworkAgent",
    "RandomAgent",
    "ScriptAgent",
    "game_scripts",
    "is_baseline",
    "is_fixed_player",
    "load_agent",
    "pretrained_path",
    "network_search_config",
    "played_search",
    "trained_search_config",
]


class AgentError(ValueError):
    """A bad agent spec or bad input to an agent: one line."""


@runtime_checkable
class Agent(Protocol):
    """Chooses one move in each of ``G`` non-terminal positions, in one call.

    ``states``: int64[G, S]; ``move_numbers``: int64[G] (plies played in each game, for agents
    whose play depends on it); ``rng_seed``: an int (position ``g`` uses ``rng_seed + g``) or
    int64[G]. Returns int64[G], a legal action for the player to move in each state.
    """

    name: str

    def act(self, states: np.ndarray, move_numbers: np.ndarray, rng_seed: Any) -> np.ndarray: ...


# ------------------------------------------------------------------------------ helpers


def _check_states(game: Game, states: Any) -> np.ndarray:
    states = np.asarray(states)
    if states.ndim != 2 or states.shape[1] != game.state_size or not np.issubdtype(states.dtype, np.integer):
        got = f"{states.dtype}{list(states.shape)}"
        raise AgentError(f"{game.name}: states must be int64[G, {game.state_size}], got {got}")
    return np.ascontiguousarray(states, dtype=np.int64)


def position_seeds(rng_seed: Any, count: int) -> np.ndarray:
    """int64[G] seeds, one per position: ``rng_seed + arange(G)`` for an int, else as given."""
    if np.ndim(rng_seed) == 0:
        return int(rng_seed) + np.arange(count, dtype=np.int64)
    seeds = np.asarray(rng_seed)
    if seeds.shape != (count,) or not np.issubdtype(seeds.dtype, np.integer):
        raise AgentError(f"rng_seed must be an int or int64[{count}], got shape {seeds.shape}")
    return seeds.astype(np.int64)


def _rngs(rng_seed: Any, count: int) -> np.ndarray:
    """uint64[G, 1]: one generator per position."""
    return np.array([make_rng(int(s)) for s in position_seeds(rng_seed, count)], dtype=np.uint64).reshape(count, 1)


_BATCH_ARGS = (*KERNEL_TYPES, types.int64[::1], types.int64[:, ::1], types.uint64[:, ::1], types.int64)


@njit(types.int64[::1](*_BATCH_ARGS, types.boolean), cache=True)
def _baseline_actions(
    legal_mask, apply_action, is_terminal, outcome, to_play, encode, params, states, rngs, num_actions, greedy
):
    """int64[G]: a random (``greedy`` False) or one-ply greedy move in each of ``states``; -1 at
    a terminal state."""
    out = np.full(states.shape[0], -1, np.int64)
    mask = np.zeros(num_actions, dtype=np.bool_)
    for g in range(states.shape[0]):
        state = states[g]
        if is_terminal(params, state):
            continue
        if greedy:
            out[g] = _greedy(
                legal_mask, apply_action, is_terminal, outcome, to_play, encode, params, state, rngs[g], num_actions
            )
        else:
            legal_mask(params, state, mask)
            out[g] = random_legal_action(mask, rngs[g])
    return out


@njit(
    types.void(
        *KERNEL_TYPES, types.int64[::1], types.int64[:, ::1], types.float32[:, :, :, ::1], types.boolean[:, ::1]
    ),
    cache=True,
)
def _observe(legal_mask, apply_action, is_terminal, outcome, to_play, encode, params, states, obs, masks):
    """Fill ``obs`` (float32[G, C, H, W], from each player to move) and ``masks`` (bool[G, A])."""
    for g in range(states.shape[0]):
        obs[g] = 0.0
        encode(params, states[g], obs[g])
        legal_mask(params, states[g], masks[g])


def _checked(game: Game, states: np.ndarray, actions: np.ndarray, who: str) -> np.ndarray:
    if (actions < 0).any():
        g = int(np.flatnonzero(actions < 0)[0])
        raise AgentError(f"{who}: position {g} is terminal; agents act only in positions that are not over")
    return actions


# ------------------------------------------------------------------------------ agents


@dataclass
class _BaselineAgent:
    """A move from ``games.baselines`` in every position, drawn from each position's own seed."""

    game: Game
    name: str = ""
    greedy: ClassVar[bool] = False

    def act(self, states: np.ndarray, move_numbers: np.ndarray, rng_seed: Any) -> np.ndarray:
        states = _check_states(self.game, states)
        rngs = _rngs(rng_seed, states.shape[0])
        actions = _baseline_actions(*self.game.kernels, self.game.params, states, rngs, self.game.num_actions, self.greedy)
        return _checked(self.game, states, actions, self.name)


@dataclass
class RandomAgent(_BaselineAgent):
    """A uniformly random legal move."""

    name: str = "random"


@dataclass
class GreedyAgent(_BaselineAgent):
    """One-ply greedy (``games.baselines``): a move that wins at once, else one after which the
    opponent cannot win at once, uniformly among those."""

    name: str = "greedy"
    greedy: ClassVar[bool] = True


def _search(
    game: Game,
    states: np.ndarray,
    evaluator: Any,
    config: SearchConfig,
    move_numbers: Any,
    rng_seed: Any,
    who: str,
    stop: Callable[[], bool] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The move one search (one tree per position, seeded per position) chooses in each position,
    int64[G], and the root's value from the player to move's point of view, float32[G]. ``stop``
    ends the search early (``search.Search.run``)."""
    states = _check_states(game, states)
    seeds = position_seeds(rng_seed, states.shape[0])
    tree = Search(game, states, config, seed=[int(s) for s in seeds])
    if tree.root_terminal.any():
        _checked(game, states, np.where(tree.root_terminal, -1, 0), who)
    moves = None if move_numbers is None else np.asarray(move_numbers, dtype=np.int64)
    result = tree.run(evaluator, move_numbers=moves, stop=stop)
    return result.actions, result.root_values


@dataclass
class MCTSAgent:
    """Pure MCTS: ``rollouts`` simulations per move, each leaf valued by one uniformly random
    playout (``search.RolloutEvaluator``, inside numba); PUCT with a uniform prior, no noise,
    the most visited move. ``config`` overrides the search settings (``num_simulations`` is
    always ``rollouts``)."""

    game: Game
    rollouts: int
    config: SearchConfig | None = None
    name: str = ""
    _config: SearchConfig = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not (isinstance(self.rollouts, (int, np.integer)) and self.rollouts >= 1):
            raise AgentError(f"mcts: rollouts must be an integer >= 1, got {self.rollouts!r}")
        self.rollouts = int(self.rollouts)
        base = self.config or SearchConfig(dirichlet_fraction=0.0, temperature_moves=0, reuse_tree=False)
        self._config = replace(base, num_simulations=self.rollouts, capacity=0, reuse_tree=False)
        self.name = self.name or f"mcts:{self.rollouts}"

    def act(self, states: np.ndarray, move_numbers: np.ndarray, rng_seed: Any) -> np.ndarray:
        return self.think(states, move_numbers, rng_seed)[0]

    def think(
        self, states: np.ndarray, move_numbers: np.ndarray, rng_seed: Any, stop: Callable[[], bool] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`act`'s moves, int64[G], and the search's root values, float32[G] in [-1, 1]
        from the player to move's point of view. ``stop`` (polled every few milliseconds) ends
        the search early with the best move so far (a move time limit, a closed window)."""
        return _search(self.game, states, RolloutEvaluator(1), self._config, move_numbers, rng_seed, self.name, stop)


def network_search_config(visits: int, root_policy: str = "puct", **settings: Any) -> SearchConfig:
    """The search a :class:`NetworkAgent` runs by default: ``visits`` simulations, no noise,
    deterministic move choice (PUCT: the most visited; Gumbel: ``gumbel_scale=0``).

    PUCT is the default because it played at least as well as deterministic Gumbel at low visit
    counts: with a 32x3 Connect Four network distilled from pure-MCTS self-play, PUCT beat
    Gumbel 62% at 8 visits, 55% at 16 and 57% at 32 (200 games each, 4 random opening plies).
    Other ``SearchConfig`` fields can be set by name (``c_init=0.8``).
    """
    if root_policy not in ("puct", "gumbel"):
        raise AgentError(f"root_policy must be 'puct' or 'gumbel', got {root_policy!r}")
    try:
        if root_policy == "gumbel":
            return SearchConfig(num_simulations=visits, root_policy="gumbel", gumbel_scale=0.0, reuse_tree=False, **settings)
        return SearchConfig(num_simulations=visits, dirichlet_fraction=0.0, temperature_moves=0, reuse_tree=False, **settings)
    except TypeError as e:  # an unknown field
        raise AgentError(f"search settings {sorted(settings)}: {e}") from None


#: The training search's settings an agent keeps at play.
TRAINED_SEARCH = ("root_policy", "solver", "gumbel_rescale", "gumbel_c_visit", "gumbel_c_scale")


def trained_search_config(visits: int, trained: SearchConfig) -> SearchConfig:
    """The search an agent trained with ``trained`` plays with: :func:`network_search_config`
    with the training run's :data:`TRAINED_SEARCH` settings (root policy, solver, Gumbel's Q scaling)."""
    return network_search_config(visits, **{key: getattr(trained, key) for key in TRAINED_SEARCH})


@dataclass
class NetworkAgent:
    """A policy-value network (any evaluator ``(obs, mask) -> (logits, value)``).

    ``visits == 0``: the raw policy, the legal move with the highest logit (one evaluator call
    of ``G`` positions). ``visits > 0``: a search of ``visits`` simulations per move with
    ``config`` (default :func:`network_search_config`: PUCT, no noise, the most visited move);
    the evaluator sees batches of ``G`` leaves (times ``config.leaves_per_step``).
    """

    game: Game
    evaluator: Any
    visits: int = 0
    config: SearchConfig | None = None
    name: str = "network"
    _config: SearchConfig | None = field(init=False, repr=False, default=None)

    def __post_init__(self) -> None:
        if not (isinstance(self.visits, (int, np.integer)) and self.visits >= 0):
            raise AgentError(f"{self.name}: visits must be an integer >= 0, got {self.visits!r}")
        self.visits = int(self.visits)
        if not callable(self.evaluator):
            raise AgentError(f"{self.name}: evaluator must be callable (obs, mask) -> (logits, value)")
        if self.visits:
            base = self.config or network_search_config(self.visits)
            self._config = replace(base, num_simulations=self.visits, capacity=0, reuse_tree=False)

    def act(self, states: np.ndarray, move_numbers: np.ndarray, rng_seed: Any) -> np.ndarray:
        if self._config is not None:
            return _search(self.game, states, self.evaluator, self._config, move_numbers, rng_seed, self.name)[0]
        return self.policy_actions(states)

    def think(
        self, states: np.ndarray, move_numbers: np.ndarray, rng_seed: Any, stop: Callable[[], bool] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`act`'s moves, int64[G], and values, float32[G] in [-1, 1] from the player to
        move's point of view: the search's root values, or the network's for the raw policy.
        ``stop`` (polled after every network call) ends a search early with the best move so far."""
        if self._config is not None:
            return _search(self.game, states, self.evaluator, self._config, move_numbers, rng_seed, self.name, stop)
        return self._policy(states)

    def policy_actions(self, states: np.ndarray) -> np.ndarray:
        """int64[G]: the legal move with the highest logit in each state (ties: lowest index)."""
        return self._policy(states)[0]

    def _policy(self, states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        game = self.game
        states = _check_states(game, states)
        G = states.shape[0]
        obs = np.zeros((G, *game.obs_shape), np.float32)
        masks = np.zeros((G, game.num_actions), np.bool_)
        _observe(*game.kernels, game.params, states, obs, masks)
        if not masks.any(axis=1).all():
            _checked(game, states, np.where(masks.any(axis=1), 0, -1), self.name)
        logits, values = self.evaluator(obs, masks)
        logits = np.asarray(logits, dtype=np.float64).reshape(G, game.num_actions)
        actions = np.where(masks, logits, -np.inf).argmax(axis=1).astype(np.int64)
        return actions, np.asarray(values, dtype=np.float32).reshape(G)


def game_scripts(game: Game) -> dict[str, Any]:
    """Every scripted opponent of ``game`` by name: its league scripts (``extra["scripts"]``)
    and those held out of leagues (``extra["held_out_scripts"]``), each an object with
    ``act(game, state) -> action``."""
    return {**game.extra.get("scripts", {}), **game.extra.get("held_out_scripts", {})}


@dataclass
class ScriptAgent:
    """One of the game's scripted opponents (:func:`game_scripts`), deterministic, one position
    at a time."""

    game: Game
    script: str
    name: str = ""

    def __post_init__(self) -> None:
        scripts = game_scripts(self.game)
        if self.script not in scripts:
            known = ", ".join(self.game.extra.get("scripts", {})) or "none"
            held_out = ", ".join(self.game.extra.get("held_out_scripts", {}))
            known += f" (held out of leagues: {held_out})" if held_out else ""
            raise AgentError(f"{self.game.name} has no script {self.script!r}; its scripts: {known}")
        self._act = scripts[self.script].act
        self.name = self.name or self.script

    def act(self, states: np.ndarray, move_numbers: np.ndarray, rng_seed: Any) -> np.ndarray:
        states = _check_states(self.game, states)
        terminal = np.array([self.game.is_terminal(s) for s in states])
        if terminal.any():
            _checked(self.game, states, np.where(terminal, -1, 0), self.name)
        return np.array([self._act(self.game, s) for s in states], dtype=np.int64)


# ------------------------------------------------------------------------------ specs

SPEC_HELP = (
    "random, greedy, mcts:N, a game's script (arena: nearest, focus, kite, guard; held out of leagues: hunter, "
    "phalanx), pretrained (the brain shipped for the game), a checkpoint, an exported brain directory or an .onnx file"
)


def is_baseline(spec: str) -> bool:
    """Whether ``spec`` names a baseline of every game: ``random``, ``greedy`` or ``mcts:N`` (N >= 1)."""
    text = str(spec).strip()
    count = text.partition(":")[2]
    return text in ("random", "greedy") or (text.startswith("mcts:") and count.isdigit() and int(count) >= 1)


def played_search(path: str | Path) -> dict[str, Any]:
    """The search settings the network at ``path`` plays with when none are given: those the model
    card beside a brain names; for a checkpoint, its training run's root policy and solver setting
    (what :func:`trained_search_config` takes, so ``selfplay arena CHECKPOINT`` plays the network
    as the run's own evaluations did); ``{}`` (the default search) when neither says."""
    from ..model.checkpoint import checkpoint_sidecar
    from ..pretrained import card_search

    path = Path(path)
    if is_brain(path) or path.suffix == ".onnx":
        return card_search(path)
    try:
        meta = json.loads(checkpoint_sidecar(path).read_text()).get("meta", {})
        trained = meta.get("config", {}).get("search") or meta.get("search") or {}  # a run's / a league snapshot's
    except (OSError, ValueError, AttributeError):
        return {}  # no readable checkpoint: loading it names the problem
    return {key: trained[key] for key in TRAINED_SEARCH if key in trained}


def is_fixed_player(spec: str, game: Game) -> bool:
    """Whether ``spec`` names an agent with no network: a baseline (:func:`is_baseline`) or one of
    ``game``'s scripts (:func:`game_scripts`, the held-out ones too). These can be a league's
    fixed players or an exploiter's target."""
    return is_baseline(spec) or str(spec).strip() in game_scripts(game)


def load_agent(spec: str, game: Game, visits: int = 200, device: str = "cpu", search: Mapping[str, Any] | None = None) -> Agent:
    """The agent named by ``spec``: ``random``, ``greedy``, ``mcts:N`` (pure MCTS, ``N``
    rollouts), ``pretrained`` (the brain shipped for ``game``, :mod:`selfplay.pretrained`), a
    path ending ``.onnx``, an exported brain directory (``export``), or a checkpoint (run directory, ``ckpt-*.json`` or ``ckpt-*.safetensors``), played with ``visits``
    simulations per move (0: the raw policy; a brain searches only with a value output). The
    search is :func:`network_search_config` with the settings ``search`` (``SearchConfig`` fields
    such as ``root_policy``; None: :func:`played_search`, a brain card's or a training run's).
    Raises a one-line ``ValueError`` (:class:`AgentError`, or the loader's error for a bad file)."""
    text = str(spec).strip()
    if text == "random":
        return RandomAgent(game)
    if text == "greedy":
        return GreedyAgent(game)
    if text in game_scripts(game):
        return ScriptAgent(game, text)
    if text.startswith("mcts:") or text == "mcts":
        count = text.partition(":")[2]
        if not count.isdigit() or int(count) < 1:
            raise AgentError(f"agent {text!r}: expected mcts:N with N >= 1 rollouts per move, e.g. mcts:200")
        return MCTSAgent(game, int(count))
    label = None
    if text == "pretrained":
        text, label = str(pretrained_path(game)), f"pretrained/{game.name}"
    path = Path(os.path.expanduser(text))
    if text and (path.suffix == ".onnx" or path.is_dir() or path.suffix in (".json", ".safetensors")):
        from ..model.inference import load_brain_evaluator, load_evaluator  # torch: only when a network is asked for

        if visits and is_brain(path):  # a search needs the brain's value output: refuse one without
            evaluator = load_brain_evaluator(path, game)
        else:
            evaluator = load_evaluator(path, game, device=device)
        if label is None:
            onnx_or_dir = path.is_dir() or path.suffix == ".onnx"
            label = (path.stem if path.suffix == ".onnx" else path.name) if onnx_or_dir else f"{path.parent.name}/{path.stem}"
        if search is None:
            search = played_search(path)
        return NetworkAgent(game, evaluator, visits, config=network_search_config(max(visits, 1), **search),
                            name=f"{label}@{visits}")  # fmt: skip
    raise AgentError(f"unknown agent {text!r}: expected {SPEC_HELP}")


def pretrained_path(game: Game) -> Path:
    """The directory of the brain shipped for ``game`` (options included); one line if none."""
    from ..pretrained import for_game, shipped

    brain = for_game(game)
    if brain is None:
        offered = ", ".join(f"{p.game}({','.join(f'{k}={v}' for k, v in p.options.items())})" for p in shipped()) or "none"
        options = ",".join(f"{k}={v}" for k, v in game.options.items())
        raise AgentError(f"no pretrained brain ships for {game.name}({options}); shipped: {offered}")
    return brain.path
