"""numba kernels over the tree arrays of :mod:`search.tree`: descend, expand, back up.

The search's compiled entry points (here and in :mod:`search.roots`) each have an explicit
signature so numba caches them on disk (the rules arrive as typed first-class functions; one
compiled kernel serves every game). Here: :func:`native_search` (the whole search, evaluator
included, for the uniform and random-rollout evaluators), :func:`select_leaves` (one step of a
network search: pick leaves, encode them), :func:`expand_and_backup` (the step's second half),
:func:`abandon_leaves` and :func:`begin_search`.

One simulation: descend from the root by PUCT (or Gumbel's rules), adding a visit and a virtual
loss to every node on the way; at the first missing child, create it (one new node); evaluate it
(or, at a terminal or solved node, take the exact value); back the value up the path, each node
receiving it from its own player's point of view.
"""

from __future__ import annotations

import functools
import math
import warnings

import numba
import numpy as np
from numba import njit, types

from games.core import KERNEL_TYPES
from games.playout import random_playout_value

from .policies import _begin_game, _gumbel_interior_action, _gumbel_root_action, _puct_action, _view
from .tree import CONFIG_TYPE, EXPANDED, GUMBEL, ILLEGAL, NEW, NO_PARENT, ROOT, TERMINAL, TREE_TYPE, UNVISITED

__all__ = [
    "UNIFORM",
    "ROLLOUT",
    "native_search",
    "select_leaves",
    "expand_and_backup",
    "abandon_leaves",
    "begin_search",
    "fast_path",
    "force_fallback",
]

UNIFORM, ROLLOUT = 0, 1  # native evaluators


# ======================================================================== tree edits


@njit(cache=True, inline="always", no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _add_child(legal_mask, apply_action, is_terminal, outcome, to_play, encode, params, tree, b, n, a, state):
    """Create the child of ``n`` by action ``a`` at the next free index; return it. ``state``
    is scratch (int64[S]): the rules run on it rather than on a view into the tree (where numba
    counts references, a view costs two atomic updates)."""
    S = state.shape[0]
    for i in range(S):
        state[i] = tree.node_states[b, n, i]
    apply_action(params, state, a)
    c = tree.node_count[b]
    tree.node_count[b] = c + 1
    for i in range(S):
        tree.node_states[b, c, i] = state[i]
    player = tree.node_to_play[b, n]
    tree.node_visits[b, c] = 0
    tree.node_value_sum[b, c] = 0.0
    tree.node_player[b, c] = player
    tree.node_parent[b, c] = n
    tree.node_action[b, c] = a
    tree.node_raw_value[b, c] = 0.0
    if is_terminal(params, state):
        tree.node_status[b, c] = TERMINAL
        tree.node_to_play[b, c] = -1
        tree.node_solved[b, c] = True
        tree.node_solved_value[b, c] = outcome(params, state, np.int64(player))
        for i in range(tree.children_index.shape[2]):
            tree.children_index[b, c, i] = ILLEGAL
    else:
        tree.node_status[b, c] = NEW
        tree.node_to_play[b, c] = to_play(params, state)
        tree.node_solved[b, c] = False
        tree.node_solved_value[b, c] = 0.0
    tree.children_index[b, n, a] = c
    return c


@njit(cache=True, inline="always", no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _revert(tree, cfg, b, n):
    """Undo the visits and virtual losses a descent added from ``n`` up to the root."""
    while n != NO_PARENT:
        tree.node_visits[b, n] -= 1
        tree.node_value_sum[b, n] += cfg.virtual_loss
        n = tree.node_parent[b, n]


@njit(cache=True, inline="always", no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _descend(legal_mask, apply_action, is_terminal, outcome, to_play, encode, params, tree, cfg, b, q, state):
    """One descent from the root to a leaf (a new node, a terminal or a solved node), adding a
    visit and a virtual loss to every node on the path. Returns the leaf, or -1 (nothing
    changed) when a new node is needed and the tree is full."""
    n = np.int64(ROOT)
    while tree.node_status[b, n] == EXPANDED and not tree.node_solved[b, n]:
        if cfg.root_policy == GUMBEL:
            a = _gumbel_root_action(tree, cfg, b, q) if n == ROOT else _gumbel_interior_action(tree, cfg, b, n, q)
        else:
            a = _puct_action(tree, cfg, b, n)
        tree.node_visits[b, n] += 1
        tree.node_value_sum[b, n] -= cfg.virtual_loss
        child = tree.children_index[b, n, a]
        if child == UNVISITED:
            if tree.node_count[b] >= tree.node_visits.shape[1]:
                _revert(tree, cfg, b, n)
                return -1
            child = _add_child(
                legal_mask, apply_action, is_terminal, outcome, to_play, encode, params, tree, b, n, a, state
            )
        n = child
    tree.node_visits[b, n] += 1
    tree.node_value_sum[b, n] -= cfg.virtual_loss
    return n


@njit(cache=True, inline="always", no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _backup(tree, cfg, b, leaf, value, value_player):
    """Add ``value`` (``value_player``'s point of view) to every node from ``leaf`` to the root,
    each in its own player's view, and lift the virtual loss the descent left."""
    n = leaf
    while n != NO_PARENT:
        tree.node_value_sum[b, n] += cfg.virtual_loss + _view(value, value_player, tree.node_player[b, n])
        n = tree.node_parent[b, n]


@njit(cache=True, inline="always", no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _proof(tree, b, n):
    """What the tree proves about node ``n``: the best value among its solved children for the
    player to move at ``n`` (-inf if none), and whether every legal child is solved. ``n`` is
    proven when the first is 1 (a winning move) or the second holds."""
    best = -np.inf
    complete = True
    for a in range(tree.children_index.shape[2]):
        child = tree.children_index[b, n, a]
        if child == ILLEGAL:
            continue
        if child < 0 or not tree.node_solved[b, child]:
            complete = False
            continue
        best = max(best, np.float64(tree.node_solved_value[b, child]))
    return best, complete


@njit(cache=True, inline="always", no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _propagate_proof(tree, b, n):
    """MCTS-Solver: after an exact result below ``n``, mark ``n`` and its ancestors solved while
    their value is proven: a child proven to win for the mover (value 1), or every legal child
    solved (value: the mover's best)."""
    while n != NO_PARENT and not tree.node_solved[b, n]:
        best, complete = _proof(tree, b, n)
        if not (best >= 1.0 or complete):
            return
        tree.node_solved[b, n] = True
        tree.node_solved_value[b, n] = _view(best, tree.node_to_play[b, n], tree.node_player[b, n])
        n = tree.node_parent[b, n]


@njit(cache=True, inline="always", no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _backup_exact(tree, cfg, b, leaf):
    """Back up the exact value of a terminal or solved leaf (and, with the solver, its proof)."""
    _backup(tree, cfg, b, leaf, np.float64(tree.node_solved_value[b, leaf]), np.int64(tree.node_player[b, leaf]))
    if cfg.solver:
        _propagate_proof(tree, b, tree.node_parent[b, leaf])


@njit(cache=True, inline="always", no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _expand(tree, b, n, logits, mask, value):
    """Expand ``n``: prior = softmax of ``logits`` (float32[A]) over ``mask`` (bool[A]); the
    evaluator's ``value`` is from the point of view of the player to move at ``n``."""
    A = tree.children_index.shape[2]
    top = -np.inf
    legal = 0
    for a in range(A):
        if mask[a]:
            legal += 1
            top = max(top, np.float64(logits[a]))
    total = 0.0
    if top > -np.inf:
        for a in range(A):
            if mask[a]:
                total += math.exp(logits[a] - top)
    uniform = not (0.0 < total < np.inf)  # all -inf, or NaN/inf logits: fall back to uniform
    for a in range(A):
        if mask[a]:
            tree.children_index[b, n, a] = UNVISITED
            if uniform:
                tree.children_prior[b, n, a] = 1.0 / legal
            else:
                tree.children_prior[b, n, a] = math.exp(logits[a] - top) / total
        else:
            tree.children_index[b, n, a] = ILLEGAL
            tree.children_prior[b, n, a] = 0.0
    tree.node_status[b, n] = EXPANDED
    tree.node_raw_value[b, n] = value


@njit(cache=True, inline="always", no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _expand_uniform(tree, b, n, mask, value):
    """:func:`_expand` with equal logits, without the exponentials."""
    A = tree.children_index.shape[2]
    legal = 0
    for a in range(A):
        legal += mask[a]
    prior = 1.0 / legal
    for a in range(A):
        if mask[a]:
            tree.children_index[b, n, a] = UNVISITED
            tree.children_prior[b, n, a] = prior
        else:
            tree.children_index[b, n, a] = ILLEGAL
            tree.children_prior[b, n, a] = 0.0
    tree.node_status[b, n] = EXPANDED
    tree.node_raw_value[b, n] = value


# ======================================================================== entry points

_GAME = (*KERNEL_TYPES, types.int64[::1])  # rules kernels, then params


#: What the entry points were compiled with in this process: ``refcount_free`` False once a
#: hot kernel had to compile with reference counting (numba refused ``_nrt``), None before any.
#: ``force_fallback`` makes every kernel take the fallbacks (for measuring them; never cached).
_STATE = {"refcount_free": None, "force_fallback": False, "compiled": 0}


def force_fallback() -> None:
    """Compile every search kernel of this process as if numba had dropped its private fast
    paths: reference counting on, rules kernels as dispatchers (``Search`` asks this). For
    measuring the fallback's speed (``selfplay bench search --fallback``); call it before any
    search. Such kernels are never written to the disk cache, which keys on types, not flags."""
    if _STATE["compiled"]:
        raise RuntimeError("force_fallback() must come before the first search of the process")
    _STATE["force_fallback"] = True


def fallback_forced() -> bool:
    return bool(_STATE["force_fallback"])


def _entry(signature, refcount=True):
    """``@njit(signature, cache=True, nogil=True)``, compiled (or loaded from the disk cache) at
    the first call rather than at import, so a command pays only for the kernels it uses. Without
    the GIL, two threads can search two ``Search`` objects at once (one waits on the GPU while
    the other searches).

    ``refcount=False`` compiles without numba's reference counting (``_nrt=False``, a private
    option): for the hot kernels, which allocate nothing (their scratch is ``tree.work_*``) and
    only borrow arrays the caller owns. With it on, numba wraps many array accesses of the
    inlined helpers in atomic increments and decrements it cannot prove redundant; they took
    most of the time of a uniform-evaluator search. Should a numba release refuse the option,
    the kernel compiles with reference counting, slower but correct, and says so once
    (:func:`fast_path` reports it; a test fails on it)."""

    def wrap(fn):
        compiled = None

        def build():
            forced = _STATE["force_fallback"]
            options = {"cache": not forced, "nogil": True}
            if refcount or forced:
                return njit(signature, **options)(fn)
            try:
                kernel = njit(signature, _nrt=False, **options)(fn)
            except KeyError as e:  # "Unrecognized options: {'_nrt'}"
                _STATE["refcount_free"] = False
                warnings.warn(
                    f"numba {numba.__version__} refuses _nrt=False ({e}); search kernels compile with "
                    "reference counting, about 2x slower (docs/search.md: numba versions)",
                    RuntimeWarning,
                    stacklevel=3,
                )
                return njit(signature, **options)(fn)
            if _STATE["refcount_free"] is None:
                _STATE["refcount_free"] = True
            return kernel

        @functools.wraps(fn)
        def call(*args):
            nonlocal compiled
            if compiled is None:
                _STATE["compiled"] += 1
                compiled = build()
            return compiled(*args)

        call.refcount_free = not refcount
        return call

    return wrap


def _probe(values):
    total = 0.0
    view = values[1:]  # a view: numba counts its reference unless told not to
    for i in range(view.shape[0]):
        total += view[i]
    return total


def refcounting_removed() -> bool:
    """Whether ``_nrt=False`` still removes numba's reference counting: a small kernel with an
    array view, compiled (not cached) with and without it, must have and lose NRT calls."""
    sig = types.float64(types.float64[::1])
    try:
        without = njit(sig, _nrt=False)(_probe)
    except KeyError:  # the option is gone
        return False
    without, with_rc = without.inspect_llvm(sig.args), njit(sig)(_probe).inspect_llvm(sig.args)
    return "NRT_decref" in with_rc and "NRT_decref" not in without and "NRT_incref" not in without


def fast_path() -> dict:
    """How this numba runs the search: ``{"numba": version, "function_pointers": bool,
    "refcount_free": bool}``; both True on a supported numba. ``refcount_free`` compiles a
    small probe kernel unless a hot kernel has already been compiled in this process."""
    from games.core import function_pointers_available

    refcount_free = _STATE["refcount_free"]
    if refcount_free is None or refcount_free:
        refcount_free = refcounting_removed()
    return {
        "numba": numba.__version__,
        "function_pointers": function_pointers_available() and not _STATE["force_fallback"],
        "refcount_free": bool(refcount_free) and not _STATE["force_fallback"],
    }


@njit(cache=True, inline="always", no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _native_evaluate(
    legal_mask, apply_action, is_terminal, outcome, to_play, encode,
    params, tree, b, n, kind, rollouts, mask, state, rng,
):
    """Expand leaf ``n`` with a uniform prior and value 0 (UNIFORM) or the mean outcome of
    ``rollouts`` random playouts (ROLLOUT); return (value, its player). ``mask``, ``state``
    and ``rng`` are scratch (bool[A], int64[S], uint64[1])."""
    S = state.shape[0]
    for i in range(S):
        state[i] = tree.node_states[b, n, i]
    player = np.int64(tree.node_to_play[b, n])
    legal_mask(params, state, mask)
    _expand_uniform(tree, b, n, mask, 0.0)
    value = 0.0
    if kind == ROLLOUT:
        rng[0] = tree.rng[b, 0]
        for r in range(rollouts):
            if r > 0:
                for i in range(S):
                    state[i] = tree.node_states[b, n, i]
            value += random_playout_value(
                legal_mask, apply_action, is_terminal, outcome, to_play, encode, params, state, mask, rng, player
            )
        tree.rng[b, 0] = rng[0]
        value /= rollouts
        tree.node_raw_value[b, n] = value
    return value, player


@_entry(types.void(*_GAME, TREE_TYPE, CONFIG_TYPE, types.int64, types.int64), refcount=False)
def native_search(
    legal_mask, apply_action, is_terminal, outcome, to_play, encode, params, tree, cfg, kind, rollouts
):
    """The whole search for every game, evaluator included (``kind``: UNIFORM or ROLLOUT):
    expand unexpanded roots, begin, then ``sims_target[b] - sims_done[b]`` simulations each."""
    mask, state, rng, q = tree.work_mask, tree.work_state, tree.work_rng, tree.work_q
    for b in range(tree.node_visits.shape[0]):
        if tree.node_status[b, ROOT] == TERMINAL or tree.sims_target[b] <= 0:
            continue
        if tree.node_status[b, ROOT] == NEW:
            tree.node_visits[b, ROOT] += 1
            tree.node_value_sum[b, ROOT] -= cfg.virtual_loss
            value, player = _native_evaluate(
                legal_mask, apply_action, is_terminal, outcome, to_play, encode,
                params, tree, b, np.int64(ROOT), kind, rollouts, mask, state, rng,
            )
            _backup(tree, cfg, b, np.int64(ROOT), value, player)
        _begin_game(tree, cfg, b)
        while tree.sims_done[b] < tree.sims_target[b] and not tree.node_solved[b, ROOT]:
            leaf = _descend(
                legal_mask, apply_action, is_terminal, outcome, to_play, encode, params, tree, cfg, b, q, state
            )
            if leaf < 0:
                tree.full[b] = True
                break
            if tree.node_status[b, leaf] == NEW:
                value, player = _native_evaluate(
                    legal_mask, apply_action, is_terminal, outcome, to_play, encode,
                    params, tree, b, leaf, kind, rollouts, mask, state, rng,
                )
                _backup(tree, cfg, b, leaf, value, player)
            else:
                _backup_exact(tree, cfg, b, leaf)
            tree.sims_done[b] += 1


@_entry(
    types.int64(
        *_GAME,
        TREE_TYPE,
        CONFIG_TYPE,
        types.boolean,
        types.int64,
        types.float32[:, :, :, ::1],
        types.boolean[:, ::1],
        types.int64[::1],
        types.int64[::1],
    ),
    refcount=False,
)
def select_leaves(
    legal_mask, apply_action, is_terminal, outcome, to_play, encode, params, tree, cfg, roots_only,
    leaves_per_game, obs, masks, leaf_game, leaf_node
):
    """One step of a search with an outside evaluator: pick up to ``leaves_per_game`` new leaves
    per game (virtual loss spreads them), write their observations into ``obs``
    (float32[L, C, H, W]) and legal masks into ``masks`` (bool[L, A]), and return how many.
    Terminal and solved leaves are backed up at once and never sent out. With ``roots_only``,
    emit the unexpanded roots instead (a search's first step, which is not a simulation)."""
    count = 0
    q, state = tree.work_q, tree.work_state
    for b in range(tree.node_visits.shape[0]):
        status = tree.node_status[b, ROOT]
        if roots_only:
            if status == NEW and tree.sims_target[b] > 0:
                tree.node_visits[b, ROOT] += 1
                tree.node_value_sum[b, ROOT] -= cfg.virtual_loss
                encode(params, tree.node_states[b, ROOT], obs[count])
                legal_mask(params, tree.node_states[b, ROOT], masks[count])
                leaf_game[count] = b
                leaf_node[count] = ROOT
                count += 1
            continue
        if status != EXPANDED or tree.full[b]:
            continue
        sent = 0
        while sent < leaves_per_game and tree.sims_done[b] + sent < tree.sims_target[b]:
            if tree.node_solved[b, ROOT]:
                break
            leaf = _descend(
                legal_mask, apply_action, is_terminal, outcome, to_play, encode, params, tree, cfg, b, q, state
            )
            if leaf < 0:
                tree.full[b] = True
                break
            if tree.node_status[b, leaf] != NEW:
                _backup_exact(tree, cfg, b, leaf)
                tree.sims_done[b] += 1
                continue
            if tree.node_visits[b, leaf] > 1:  # already waiting for this step's evaluation
                _revert(tree, cfg, b, leaf)
                break
            encode(params, tree.node_states[b, leaf], obs[count])
            legal_mask(params, tree.node_states[b, leaf], masks[count])
            leaf_game[count] = b
            leaf_node[count] = leaf
            count += 1
            sent += 1
    return count


@_entry(
    types.void(
        TREE_TYPE,
        CONFIG_TYPE,
        types.int64,
        types.int64[::1],
        types.int64[::1],
        types.boolean[:, ::1],
        types.float32[:, ::1],
        types.float32[::1],
    ),
    refcount=False,
)
def expand_and_backup(tree, cfg, count, leaf_game, leaf_node, masks, logits, values):
    """Expand the ``count`` leaves :func:`select_leaves` sent out with the evaluator's
    ``logits`` (float32[L, A]) and ``values`` (float32[L], each from its leaf's player to
    move), and back the values up. A root's expansion is not counted as a simulation."""
    for i in range(count):
        b = leaf_game[i]
        n = leaf_node[i]
        _expand(tree, b, n, logits[i], masks[i], values[i])
        _backup(tree, cfg, b, n, np.float64(values[i]), np.int64(tree.node_to_play[b, n]))
        if n != ROOT:
            tree.sims_done[b] += 1


@_entry(types.void(TREE_TYPE, CONFIG_TYPE, types.int64, types.int64[::1], types.int64[::1]))
def abandon_leaves(tree, cfg, count, leaf_game, leaf_node):
    """Undo the descents of ``count`` leaves that will never be evaluated (the evaluator
    failed): their paths lose the visits and virtual losses; a new leaf stays in the tree with no
    visits, to be evaluated by a later descent."""
    for i in range(count):
        _revert(tree, cfg, leaf_game[i], leaf_node[i])


@_entry(types.void(TREE_TYPE, CONFIG_TYPE))
def begin_search(tree, cfg):
    """:func:`_begin_game` for every game with an expanded root and simulations to run."""
    for b in range(tree.node_visits.shape[0]):
        if tree.node_status[b, ROOT] == EXPANDED and tree.sims_target[b] > 0:
            _begin_game(tree, cfg, b)
