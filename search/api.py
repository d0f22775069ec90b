"""The Python face of the search: :class:`Search` keeps B trees alive across moves (for a
self-play driver); :func:`run` is the one-shot call for notebooks.

A self-play driver::

    tree = Search(game, states, config, seed=0)      # B games, one tree each
    while True:
        result = tree.run(evaluator, simulations=sims, move_numbers=plies)   # one evaluator call per step
        ... store result.policy (the training target), result.root_values ...
        tree.advance(result.actions)                  # reuses the chosen subtrees
        tree.set_roots(fresh_states, games=finished)  # restart the games that ended
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

import numpy as np

from games.core import KERNEL_NAMES, Game, IllegalMoveError
from games.rng import make_rng

from .config import SearchConfig, SearchError
from .evaluators import is_native
from .kernels import (
    abandon_leaves,
    begin_search,
    expand_and_backup,
    fallback_forced,
    native_search,
    select_leaves,
)
from .roots import advance_roots, set_roots, summarize
from .tree import EXPANDED, PUCT, ROOT, TERMINAL, Tree, allocate_tree, kernel_config

__all__ = ["Search", "SearchResult", "run"]

#: How far past [-1, 1] an evaluator's value may stray by float32 rounding (then it is clipped).
VALUE_ROUNDING = 1e-5

#: A native search that can be stopped runs in slices of simulations, each about this long
#: (seconds), between which it polls ``stop``.
NATIVE_SLICE_SECONDS = 0.02


@dataclass(frozen=True)
class SearchResult:
    """What one search call found, per game. Values are from the root's player to move."""

    visit_counts: np.ndarray  # int32[B, A]: visits of each root action (reused visits included)
    q_values: np.ndarray  # float32[B, A]: mean value of each root action; NaN if unvisited
    priors: np.ndarray  # float32[B, A]: the evaluator's root prior (before Dirichlet noise)
    policy: np.ndarray  # float32[B, A]: the training target (visit frequencies, or Gumbel's
    #                     softmax(log prior + sigma(completed Q)))
    actions: np.ndarray  # int64[B]: the move chosen (-1 where the root is terminal or unsearched)
    root_values: np.ndarray  # float32[B]: mean value at the root (exact when solved)
    solved: np.ndarray  # bool[B]: the root's value is proven (terminal results, solver on)
    simulations: np.ndarray  # int32[B]: simulations run (fewer when solved, stopped or out of nodes)
    proven: np.ndarray  # bool[B, A]: the root action's q_values entry is exact (its child is proven)


def _seeds(seed: int | Sequence[int], batch: int) -> list[int]:
    if isinstance(seed, (int, np.integer)):
        return [int(seed) + b for b in range(batch)]
    seeds = [int(s) for s in seed]
    if len(seeds) != batch:
        raise SearchError(f"got {len(seeds)} seeds for {batch} games")
    return seeds


class Search:
    """B search trees (one per game in progress), kept alive across moves.

    ``states``: int64[B, S] (or one int64[S]). ``seed``: an int (game ``b`` gets ``seed + b``) or
    one seed per game; each game draws only from its own generator, so a batched search equals
    B single searches with those seeds. The trees hold ``config.node_capacity`` nodes each.
    """

    def __init__(
        self, game: Game, states: np.ndarray, config: SearchConfig = SearchConfig(), seed: int | Sequence[int] = 0
    ) -> None:
        if not isinstance(config, SearchConfig):
            raise SearchError(f"config must be a SearchConfig, got {type(config).__name__}")
        if game.num_players > 2:
            raise SearchError(f"{game.name}: the search handles one or two (zero-sum) players, not {game.num_players}")
        states = self._states(game, states)
        self.game = game
        self.config = config
        self.batch_size = states.shape[0]
        self._cfg = kernel_config(config)
        self._rules = game.kernels  # typed function pointers, resolved once per game
        if fallback_forced():  # measuring numba's slow path: the rules as dispatchers
            self._rules = tuple(getattr(game, f"{name}_fn") for name in KERNEL_NAMES)
        self.tree: Tree = allocate_tree(
            self.batch_size, config.node_capacity, game.num_actions, game.state_size, config.num_simulations
        )
        self.tree.rng[:, 0] = [make_rng(s)[0] for s in _seeds(seed, self.batch_size)]
        self._buffers: tuple[np.ndarray, ...] | None = None
        self.set_roots(states)

    # ------------------------------------------------------------------ state of the trees
    @staticmethod
    def _states(game: Game, states: Any) -> np.ndarray:
        states = np.asarray(states)
        if states.ndim == 1:
            states = states[None]
        if states.ndim != 2 or states.shape[1] != game.state_size or states.shape[0] < 1:
            raise SearchError(f"{game.name}: states must be int64[B, {game.state_size}], got shape {states.shape}")
        if not np.issubdtype(states.dtype, np.integer):
            raise SearchError(f"{game.name}: states must be integers, got {states.dtype}")
        return np.ascontiguousarray(states, dtype=np.int64)

    def _games(self, games: Any, count: int | None = None) -> np.ndarray:
        if games is None:
            games = np.arange(self.batch_size)
        games = np.ascontiguousarray(np.atleast_1d(games), dtype=np.int64)
        if games.ndim != 1 or (games.size and (games.min() < 0 or games.max() >= self.batch_size)):
            raise SearchError(f"game indices must lie in [0, {self.batch_size}), got {games}")
        if len(np.unique(games)) != len(games):
            raise SearchError("game indices must be distinct")
        if count is not None and count != len(games):
            raise SearchError(f"got {count} entries for {len(games)} games (batch size {self.batch_size})")
        return games

    @property
    def capacity(self) -> int:
        """Nodes per tree."""
        return self.tree.node_visits.shape[1]

    @property
    def root_states(self) -> np.ndarray:
        """int64[B, S]: the state at each root (a copy)."""
        return self.tree.node_states[:, ROOT].copy()

    @property
    def root_terminal(self) -> np.ndarray:
        """bool[B]: which games are over (their trees cannot be searched)."""
        return self.tree.node_status[:, ROOT] == TERMINAL

    @property
    def tree_sizes(self) -> np.ndarray:
        """int32[B]: nodes in use in each tree."""
        return self.tree.node_count.copy()

    def set_roots(self, states: np.ndarray, games: Any = None) -> None:
        """Restart the trees of ``games`` (default: all) at ``states`` (int64[G, S])."""
        states = self._states(self.game, states)
        games = self._games(games, states.shape[0])
        set_roots(*self._rules, self.game.params, self.tree, games, states)

    def advance(self, actions: Any, games: Any = None) -> None:
        """Play ``actions`` (int64[G]) in ``games`` (default: all). With ``config.reuse_tree`` the
        chosen child's subtree and its statistics become the new tree (at most ``capacity -
        num_simulations - 1`` nodes, kept breadth first); otherwise each tree restarts."""
        actions = np.ascontiguousarray(np.atleast_1d(actions), dtype=np.int64)
        games = self._games(games, actions.shape[0])
        keep = self.capacity - self.config.num_simulations - 1
        bad = advance_roots(
            *self._rules,
            self.game.params,
            self.tree,
            games,
            actions,
            bool(self.config.reuse_tree and keep >= 1),
            max(keep, 1),
        )
        if bad >= 0:
            b, a = int(games[bad]), int(actions[bad])
            if self.root_terminal[b]:
                raise IllegalMoveError(f"{self.game.name}: game {b} is over; no move can be played")
            legal_actions = self.game.legal_actions(self.tree.node_states[b, ROOT])
            legal = ", ".join(self.game.action_to_text(x) for x in legal_actions)
            raise IllegalMoveError(f"{self.game.name}: action {a} is illegal in game {b}; legal: {legal}")

    # ------------------------------------------------------------------ searching
    def run(
        self,
        evaluator: Any,
        simulations: int | Sequence[int] | None = None,
        move_numbers: Any = None,
        stop: Callable[[], bool] | None = None,
    ) -> SearchResult:
        """Run ``simulations`` (default ``config.num_simulations``; an int or one per game, each
        at most that) new simulations on every tree and read the roots. ``move_numbers``
        (int[B], default 0) picks each game's move temperature (``config.temperature`` while
        below ``config.temperature_moves``, else 0). Games whose root is terminal are skipped
        (action -1).

        ``stop`` (for a time limit, or a user who leaves) is polled between steps: after every
        evaluator call, or, for a native evaluator, every :data:`NATIVE_SLICE_SECONDS` or so.
        Once it returns true the search ends and the roots are read as they stand
        (``simulations`` says how many ran). The roots are expanded before the first poll, so a
        stopped search still chooses a move (with no simulations: the highest prior). Until it
        stops, the search is the same as without ``stop``. A native search with root noise
        (Dirichlet, or Gumbel's schedule) is not sliced, since each slice would draw new noise:
        it runs to its end."""
        sims = self._budget(simulations)
        tree = self.tree
        tree.sims_target[:] = np.where(self.root_terminal, 0, sims)
        tree.sims_done[:] = 0
        tree.full[:] = False
        if is_native(evaluator):
            self._run_native(evaluator, stop)
        else:
            if not callable(evaluator):
                raise SearchError(
                    f"evaluator must be callable (obs, mask) -> (logits, value), got {type(evaluator).__name__}"
                )
            self._run_steps(evaluator, stop)
        if tree.full.any():
            warnings.warn(
                f"{int(tree.full.sum())} of {self.batch_size} searches ran out of tree capacity "
                f"({self.capacity} nodes) and stopped early; raise SearchConfig.capacity",
                RuntimeWarning,
                stacklevel=2,
            )
        return self._summarize(move_numbers)

    def _budget(self, simulations: Any) -> np.ndarray:
        limit = self.config.num_simulations
        if simulations is None:
            return np.full(self.batch_size, limit, np.int32)
        sims = np.asarray(simulations)
        if sims.ndim == 0:
            sims = np.broadcast_to(sims, (self.batch_size,))
        if sims.shape != (self.batch_size,) or not np.issubdtype(sims.dtype, np.integer):
            raise SearchError(f"simulations must be an int or int[{self.batch_size}], got {simulations!r}")
        if sims.min() < 0 or sims.max() > limit:
            raise SearchError(
                f"simulations must lie in [0, config.num_simulations={limit}], got {sims.min()}..{sims.max()}"
            )
        return sims.astype(np.int32)

    def _run_native(self, evaluator: Any, stop: Callable[[], bool] | None) -> None:
        """The whole search in one numba call or, with ``stop``, in slices of simulations that
        double while a slice takes under :data:`NATIVE_SLICE_SECONDS`. A slice is the same
        kernel with a nearer target, so the simulations are the ones a single call runs: the
        kernel starts each slice at the root (``_begin_game``), which without root noise only
        copies the root's prior."""
        tree = self.tree
        search = lambda: native_search(  # noqa: E731
            *self._rules, self.game.params, tree, self._cfg, evaluator.native_kind, evaluator.native_rollouts
        )
        noise = self._cfg.root_policy != PUCT or self._cfg.dirichlet_fraction > 0
        if stop is None or noise:
            search()
            return
        target = tree.sims_target.copy()  # int32[B]
        size = 64
        while True:
            tree.sims_target[:] = np.minimum(tree.sims_done + size, target)
            started = time.perf_counter()
            search()
            finished = (tree.sims_done >= target) | tree.node_solved[:, ROOT] | tree.full | self.root_terminal
            if finished.all() or stop():
                break
            if time.perf_counter() - started < NATIVE_SLICE_SECONDS:
                size = min(2 * size, 1 << 20)
        tree.sims_target[:] = target

    def _run_steps(self, evaluator: Any, stop: Callable[[], bool] | None = None) -> None:
        game = self.game
        if self._buffers is None:
            size = self.batch_size * self.config.leaves_per_step
            self._buffers = (
                np.zeros((size, *game.obs_shape), np.float32),
                np.zeros((size, game.num_actions), np.bool_),
                np.zeros(size, np.int64),
                np.zeros(size, np.int64),
            )
        obs, masks, leaf_game, leaf_node = self._buffers
        roots_only = True
        while True:
            count = select_leaves(
                *self._rules, game.params, self.tree, self._cfg, roots_only, self.config.leaves_per_step,
                obs, masks, leaf_game, leaf_node,
            )
            if count:
                try:
                    logits, values = self._evaluate(evaluator, obs[:count], masks[:count], leaf_game[:count])
                except BaseException:  # leave the trees as if these leaves were never picked
                    abandon_leaves(self.tree, self._cfg, count, leaf_game, leaf_node)
                    raise
                expand_and_backup(self.tree, self._cfg, count, leaf_game, leaf_node, masks, logits, values)
            if roots_only:
                begin_search(self.tree, self._cfg)
                roots_only = False
            elif not count:
                return
            if stop is not None and stop():
                return

    def _evaluate(self, evaluator: Any, obs: np.ndarray, masks: np.ndarray,
                  games: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Evaluate leaves ``obs [n, ...]`` with ``masks bool[n, A]``. An evaluator whose
        ``per_game`` attribute is true is also told each leaf's game, ``games int64[n]`` (an index
        into the batch): two networks sharing one batched search route leaves by game."""
        n, A = masks.shape
        if games is not None and getattr(evaluator, "per_game", False):
            logits, values = evaluator(obs, masks, games)
        else:
            logits, values = evaluator(obs, masks)
        logits = np.ascontiguousarray(logits, dtype=np.float32)
        values = np.ascontiguousarray(values, dtype=np.float32).reshape(-1)
        if logits.shape != (n, A) or values.shape != (n,):
            raise SearchError(
                f"evaluator returned logits {logits.shape} and value {values.shape}; expected ({n}, {A}) and ({n},)"
            )
        # One reduction each, NaN included (a comparison with NaN is False): values must be in
        # [-1, 1], and logits may be -inf (a masked action) but not NaN or +inf.
        if not (np.abs(values).max() <= 1.0):
            # onnxruntime's tanh overshoots 1 by a rounding error (1.0000001), which stopped a
            # 10-minute run: up to VALUE_ROUNDING is that, and clipped; anything more is an error.
            if np.abs(values).max() <= 1.0 + VALUE_ROUNDING:
                return logits, np.clip(values, -1.0, 1.0)
            bad = int(np.flatnonzero(~(np.abs(values) <= 1.0 + VALUE_ROUNDING))[0])
            raise SearchError(
                f"evaluator returned value {values[bad]:.8g} for leaf {bad} of {n}; values must be finite and in "
                "[-1, 1], from the leaf's player to move"
            )
        if not (logits.max() < np.inf):
            bad = int(np.flatnonzero(~(logits < np.inf).all(axis=1))[0])
            value = logits[bad][~(logits[bad] < np.inf)][0]
            raise SearchError(f"evaluator returned logit {value:.6g} for leaf {bad} of {n}; logits must not be NaN or +inf")
        return logits, values

    def _summarize(self, move_numbers: Any) -> SearchResult:
        B, A = self.batch_size, self.game.num_actions
        moves = np.zeros(B, np.int64) if move_numbers is None else np.broadcast_to(np.asarray(move_numbers), (B,))
        temperatures = np.where(moves < self.config.temperature_moves, self.config.temperature, 0.0)
        out = (
            np.zeros((B, A), np.int32),
            np.zeros((B, A), np.float32),
            np.zeros((B, A), np.float32),
            np.zeros(B, np.int64),
            np.zeros(B, np.float32),
        )
        summarize(self.tree, self._cfg, np.ascontiguousarray(temperatures, np.float64), *out)
        visit_counts, q_values, policy, actions, root_values = out
        tree = self.tree
        expanded = tree.node_status[:, ROOT] == EXPANDED
        priors = np.where(tree.root_noised[:, None], tree.root_prior, tree.children_prior[:, ROOT])
        children = tree.children_index[:, ROOT]  # int32[B, A]: child node, or UNVISITED / ILLEGAL
        proven = (children >= 0) & np.take_along_axis(tree.node_solved, np.maximum(children, 0), axis=1)
        return SearchResult(
            visit_counts=visit_counts,
            q_values=q_values,
            priors=np.where(expanded[:, None], priors, 0.0).astype(np.float32),
            policy=policy,
            actions=actions,
            root_values=root_values,
            solved=tree.node_solved[:, ROOT] & expanded,
            simulations=tree.sims_done.copy(),
            proven=proven & expanded[:, None],
        )


def run(
    game: Game,
    states: np.ndarray,
    evaluator: Any,
    config: SearchConfig = SearchConfig(),
    seed: int | Sequence[int] = 0,
    move_numbers: Any = None,
) -> SearchResult:
    """Search ``states`` (int64[B, S] or one int64[S]) once with ``evaluator`` and ``config``;
    the same seed gives the same result. Raises SearchError if a state is terminal."""
    search = Search(game, states, replace(config, reuse_tree=False), seed)
    if search.root_terminal.any():
        first = int(np.flatnonzero(search.root_terminal)[0])
        raise SearchError(f"{game.name}: state {first} is terminal; nothing to search")
    return search.run(evaluator, move_numbers=move_numbers)
