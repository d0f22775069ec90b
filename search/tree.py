"""The search tree: a struct of preallocated arrays with a leading batch dimension (as in mctx).

``B`` games, ``N`` nodes per tree (the capacity), ``A`` actions, ``S`` state length, ``T`` the
longest simulation budget. Node ``ROOT`` (0) is the root; a simulation adds at most one node,
the next free index, so the tree never reallocates and never points outside its arrays. No
Python object exists per node: the kernels in :mod:`search.kernels` read and write these arrays.

Points of view. ``node_value_sum[b, n]`` and ``node_solved_value[b, n]`` are from the point of
view of ``node_player[b, n]``, the player who *chose* the action into ``n`` (the parent's player
to move; for the root, the root's player to move). So the statistics a parent compares when it
picks a child are already its own player's. ``node_raw_value`` (the evaluator's value) is from
the node's own player to move. Players need not alternate: every backup compares the player of
each node with the player the value belongs to (two players, zero-sum: ``v`` for one is ``-v``
for the other).
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

__all__ = ["Tree", "KernelConfig", "allocate_tree", "kernel_config", "TREE_TYPE", "CONFIG_TYPE"]

ROOT = 0
NO_PARENT = -1
UNVISITED = -1  # children_index: a legal action whose child node does not exist yet
ILLEGAL = -2  # children_index: an illegal action

# node_status
NEW = 0  # created by a simulation, waiting for the evaluator (not expanded yet)
EXPANDED = 1  # priors and children set
TERMINAL = 2  # a game-over state; its exact value is node_solved_value

# root policies and FPU modes as kernel constants
PUCT, GUMBEL = 0, 1
FPU_ABSOLUTE, FPU_REDUCTION = 0, 1


class Tree(NamedTuple):
    """B search trees of N nodes each. Shapes as documented; see the module docstring."""

    # ------------------------------------------------------------------ per node, [B, N]
    node_visits: np.ndarray  # int32[B, N]: completed + pending visits
    node_value_sum: np.ndarray  # float64[B, N]: sum of backed-up values, node_player's view
    node_player: np.ndarray  # int8[B, N]: whose view node_value_sum is in (see module doc)
    node_to_play: np.ndarray  # int8[B, N]: player to move at the node; -1 at a terminal node
    node_status: np.ndarray  # int8[B, N]: NEW, EXPANDED or TERMINAL
    node_raw_value: np.ndarray  # float32[B, N]: evaluator's value, node_to_play's view
    node_solved: np.ndarray  # bool[B, N]: exact value known (terminal, or proven by the solver)
    node_solved_value: np.ndarray  # float32[B, N]: that exact value, node_player's view
    node_parent: np.ndarray  # int32[B, N]: parent index; NO_PARENT at the root
    node_action: np.ndarray  # int32[B, N]: action from the parent into the node; -1 at the root
    node_states: np.ndarray  # int64[B, N, S]: the game state at each node
    children_index: np.ndarray  # int32[B, N, A]: child node, UNVISITED or ILLEGAL
    children_prior: np.ndarray  # float32[B, N, A]: prior probabilities (0 where illegal)
    node_count: np.ndarray  # int32[B]: nodes in use (indices 0 .. node_count - 1)
    # ------------------------------------------------------------------ per game, this search
    rng: np.ndarray  # uint64[B, 1]: each game's own generator (games.rng)
    sims_done: np.ndarray  # int32[B]: simulations finished in the current search
    sims_target: np.ndarray  # int32[B]: simulations asked of the current search
    full: np.ndarray  # bool[B]: the search stopped early: the tree ran out of nodes
    root_noised: np.ndarray  # bool[B]: children_prior[b, ROOT] holds noise (clean copy below)
    root_prior: np.ndarray  # float32[B, A]: the root's prior before Dirichlet noise
    root_gumbel: np.ndarray  # float32[B, A]: Gumbel noise drawn for this search (scaled)
    root_base_visits: np.ndarray  # int32[B, A]: root children's visits when this search began
    halving: np.ndarray  # int32[B, T]: Gumbel: visit count each simulation's action must have
    # ------------------------------------------------------------------ kernel workspace
    work_q: np.ndarray  # float64[A]
    work_mask: np.ndarray  # bool[A]
    work_state: np.ndarray  # int64[S]
    work_rng: np.ndarray  # uint64[1]


class KernelConfig(NamedTuple):
    """The scalars of :class:`search.SearchConfig` that kernels read, in kernel types."""

    root_policy: int  # PUCT or GUMBEL
    c_init: float
    c_base: float
    fpu_mode: int  # FPU_ABSOLUTE or FPU_REDUCTION
    fpu_value: float
    dirichlet_alpha: float
    dirichlet_fraction: float
    solver: bool
    virtual_loss: float
    gumbel_considered: int
    gumbel_scale: float
    gumbel_c_visit: float
    gumbel_c_scale: float
    gumbel_rescale: bool


def kernel_config(config) -> KernelConfig:
    return KernelConfig(
        root_policy=GUMBEL if config.gumbel else PUCT,
        c_init=float(config.c_init),
        c_base=float(config.c_base),
        fpu_mode=FPU_REDUCTION if config.fpu == "reduction" else FPU_ABSOLUTE,
        fpu_value=float(config.fpu_value),
        dirichlet_alpha=float(config.dirichlet_alpha),
        dirichlet_fraction=float(config.dirichlet_fraction),
        solver=bool(config.solver),
        virtual_loss=float(config.virtual_loss),
        gumbel_considered=int(config.gumbel_considered),
        gumbel_scale=float(config.gumbel_scale),
        gumbel_c_visit=float(config.gumbel_c_visit),
        gumbel_c_scale=float(config.gumbel_c_scale),
        gumbel_rescale=bool(config.gumbel_rescale),
    )


def allocate_tree(batch: int, capacity: int, num_actions: int, state_size: int, max_sims: int) -> Tree:
    """Zeroed arrays for ``batch`` trees of ``capacity`` nodes (roots are set by the caller)."""
    B, N, A, S = batch, capacity, num_actions, state_size
    return Tree(
        node_visits=np.zeros((B, N), np.int32),
        node_value_sum=np.zeros((B, N), np.float64),
        node_player=np.zeros((B, N), np.int8),
        node_to_play=np.zeros((B, N), np.int8),
        node_status=np.zeros((B, N), np.int8),
        node_raw_value=np.zeros((B, N), np.float32),
        node_solved=np.zeros((B, N), np.bool_),
        node_solved_value=np.zeros((B, N), np.float32),
        node_parent=np.full((B, N), NO_PARENT, np.int32),
        node_action=np.full((B, N), -1, np.int32),
        node_states=np.zeros((B, N, S), np.int64),
        children_index=np.full((B, N, A), ILLEGAL, np.int32),
        children_prior=np.zeros((B, N, A), np.float32),
        node_count=np.zeros(B, np.int32),
        rng=np.ones((B, 1), np.uint64),
        sims_done=np.zeros(B, np.int32),
        sims_target=np.zeros(B, np.int32),
        full=np.zeros(B, np.bool_),
        root_noised=np.zeros(B, np.bool_),
        root_prior=np.zeros((B, A), np.float32),
        root_gumbel=np.zeros((B, A), np.float32),
        root_base_visits=np.zeros((B, A), np.int32),
        halving=np.zeros((B, max_sims), np.int32),
        work_q=np.zeros(A, np.float64),
        work_mask=np.zeros(A, np.bool_),
        work_state=np.zeros(S, np.int64),
        work_rng=np.ones(1, np.uint64),
    )


#: numba types of the two records, for the explicit kernel signatures (which is what lets numba
#: cache kernels that take first-class functions on disk).
TREE_TYPE = numba.typeof(allocate_tree(1, 1, 1, 1, 1))
CONFIG_TYPE = numba.typeof(
    KernelConfig(0, 1.0, 1.0, 0, 0.0, 1.0, 0.0, False, 0.0, 1, 0.0, 1.0, 1.0, True)
)
