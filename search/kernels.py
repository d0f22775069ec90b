"""numba kernels over the tree arrays of :mod:`search.tree`: select, expand, back up, summarize.

Eight compiled entry points, each with an explicit signature so numba caches it on disk (the game
rules arrive as typed first-class functions, ``*game.kernels``; one compiled kernel serves every
game). Three take the rules: :func:`native_search` (the whole search, evaluator included, for the
uniform and random-rollout evaluators), :func:`select_leaves` (one step of a network search: pick
leaves and encode them) and :func:`set_roots` / :func:`advance_roots`. The others never touch a
game state: :func:`expand_and_backup`, :func:`abandon_leaves`, :func:`begin_search`,
:func:`summarize`.

One simulation: descend from the root by PUCT (or Gumbel's rules), adding a visit and a virtual
loss to every node on the way; at the first missing child, create it (one new node); evaluate it
(or, at a terminal or solved node, take the exact value); back the value up the path, each node
receiving it from its own player's point of view.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numba import njit, types

from games.core import KERNEL_TYPES
from games.playout import random_playout_value
from games.rng import rand_float

from .tree import (
    CONFIG_TYPE,
    EXPANDED,
    FPU_REDUCTION,
    GUMBEL,
    ILLEGAL,
    NEW,
    NO_PARENT,
    ROOT,
    TERMINAL,
    TREE_TYPE,
    UNVISITED,
)

__all__ = [
    "UNIFORM",
    "ROLLOUT",
    "native_search",
    "select_leaves",
    "expand_and_backup",
    "abandon_leaves",
    "begin_search",
    "summarize",
    "set_roots",
    "advance_roots",
]

UNIFORM, ROLLOUT = 0, 1  # native evaluators
_LOW_LOGIT = -1e9  # Gumbel scores of zero-prior actions (as mctx)
_TINY = 1e-30

# ======================================================================== small pieces


@njit(cache=True, inline="always", no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _view(value, value_player, player):
    """``value`` belongs to ``value_player``; the same result seen by ``player`` (zero-sum)."""
    return value if player == value_player else -value


@njit(cache=True, inline="always", no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _child_q(tree, b, child):
    """Q of an existing child from the point of view of the player who chooses it."""
    if tree.node_solved[b, child]:
        return np.float64(tree.node_solved_value[b, child])
    return tree.node_value_sum[b, child] / tree.node_visits[b, child]


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _normal(rng):
    u1 = rand_float(rng)
    u2 = rand_float(rng)
    return math.sqrt(-2.0 * math.log(1.0 - u1)) * math.cos(2.0 * math.pi * u2)


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _gamma(rng, alpha):
    """Gamma(alpha, 1) sample (Marsaglia-Tsang; alpha < 1 by the boost U**(1/alpha))."""
    boost = 1.0
    if alpha < 1.0:
        boost = (1.0 - rand_float(rng)) ** (1.0 / alpha)
        alpha += 1.0
    d = alpha - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    while True:
        x = _normal(rng)
        v = 1.0 + c * x
        if v <= 0.0:
            continue
        v = v * v * v
        if math.log(1.0 - rand_float(rng)) < 0.5 * x * x + d - d * v + d * math.log(v):
            return d * v * boost


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _fill_halving(row, num_considered, num_simulations):
    """Sequential halving's schedule (mctx ``get_sequence_of_considered_visits``): ``row[i]`` is
    the visit count the root action of simulation ``i`` must have. All considered actions share
    one count at any point, so the schedule is a single counter."""
    if num_considered <= 1:
        for i in range(num_simulations):
            row[i] = i
        return
    log2max = 0
    while (1 << log2max) < num_considered:
        log2max += 1
    i = 0
    visits = 0
    considered = num_considered
    while i < num_simulations:
        extra = max(1, num_simulations // (log2max * considered))
        for _ in range(extra):
            for _ in range(considered):
                if i < num_simulations:
                    row[i] = visits
                    i += 1
            visits += 1
        considered = max(2, considered // 2)


# ======================================================================== selection


@njit(cache=True, inline="always", no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _puct_action(tree, cfg, b, n):
    """argmax_a Q(a) + c(s) P(a) sqrt(N) / (1 + N(a)) over the legal actions of node ``n``."""
    A = tree.children_index.shape[2]
    visits = tree.node_visits[b, n]
    c = cfg.c_init + math.log((1.0 + visits + cfg.c_base) / cfg.c_base)
    scale = c * math.sqrt(visits)
    fpu = cfg.fpu_value
    if cfg.fpu_mode == FPU_REDUCTION:
        parent_q = _view(tree.node_value_sum[b, n] / visits, tree.node_player[b, n], tree.node_to_play[b, n])
        seen = 0.0
        for a in range(A):
            if tree.children_index[b, n, a] >= 0:
                seen += tree.children_prior[b, n, a]
        fpu = parent_q - cfg.fpu_value * math.sqrt(seen)
    best_a = -1
    best = -np.inf
    lost_a = -1  # a proven loss, played only when nothing else is left
    for a in range(A):
        child = tree.children_index[b, n, a]
        if child == ILLEGAL:
            continue
        prior = tree.children_prior[b, n, a]
        if child == UNVISITED or tree.node_visits[b, child] == 0:  # (0: left by an evaluator error)
            score = fpu + scale * prior
        else:
            q = _child_q(tree, b, child)
            if cfg.solver and tree.node_solved[b, child] and q <= -1.0:
                lost_a = a
                continue
            score = q + scale * prior / (1.0 + tree.node_visits[b, child])
        if score > best:
            best = score
            best_a = a
    return best_a if best_a >= 0 else lost_a


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _completed_q(tree, cfg, b, n, out):
    """Gumbel's sigma(completed Q) for every legal action of ``n`` into ``out`` (float64[A]),
    from the point of view of the player to move at ``n`` (mctx
    ``qtransform_completed_by_mix_value``: unvisited actions get the mixed value, then min-max
    rescaling and the (c_visit + max N) c_scale factor). Returns the largest child visit count."""
    A = tree.children_index.shape[2]
    raw = np.float64(tree.node_raw_value[b, n])
    sum_visits = 0
    max_visits = 0
    sum_prior = 0.0
    weighted = 0.0
    for a in range(A):
        child = tree.children_index[b, n, a]
        if child >= 0 and tree.node_visits[b, child] > 0:
            v = tree.node_visits[b, child]
            p = max(np.float64(tree.children_prior[b, n, a]), _TINY)
            sum_visits += v
            max_visits = max(max_visits, v)
            sum_prior += p
            weighted += p * _child_q(tree, b, child)
    mixed = raw
    if sum_visits > 0:
        mixed = (raw + sum_visits * weighted / sum_prior) / (1.0 + sum_visits)
    lo = np.inf
    hi = -np.inf
    for a in range(A):
        child = tree.children_index[b, n, a]
        if child == ILLEGAL:
            out[a] = 0.0
            continue
        q = mixed
        if child >= 0 and tree.node_visits[b, child] > 0:
            q = _child_q(tree, b, child)
        out[a] = q
        lo = min(lo, q)
        hi = max(hi, q)
    scale = (cfg.gumbel_c_visit + max_visits) * cfg.gumbel_c_scale / max(hi - lo, 1e-8)
    for a in range(A):
        if tree.children_index[b, n, a] != ILLEGAL:
            out[a] = (out[a] - lo) * scale
    return max_visits


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _gumbel_interior_action(tree, cfg, b, n, q):
    """Gumbel MuZero below the root: argmax pi'(a) - N(a) / (1 + sum N), where
    pi' = softmax(log prior + sigma(completed Q)) is the improved policy."""
    A = tree.children_index.shape[2]
    _completed_q(tree, cfg, b, n, q)
    top = -np.inf
    sum_visits = 0
    for a in range(A):
        child = tree.children_index[b, n, a]
        if child != ILLEGAL:
            q[a] += math.log(max(np.float64(tree.children_prior[b, n, a]), _TINY))
            top = max(top, q[a])
            if child >= 0:
                sum_visits += tree.node_visits[b, child]
    total = 0.0
    for a in range(A):
        if tree.children_index[b, n, a] != ILLEGAL:
            q[a] = math.exp(q[a] - top)
            total += q[a]
    best_a = -1
    best = -np.inf
    for a in range(A):
        child = tree.children_index[b, n, a]
        if child == ILLEGAL:
            continue
        visits = tree.node_visits[b, child] if child >= 0 else 0
        score = q[a] / total - visits / (1.0 + sum_visits)
        if score > best:
            best = score
            best_a = a
    return best_a


@njit(cache=True, inline="always", no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _gumbel_score(tree, b, a, q):
    prior = np.float64(tree.children_prior[b, ROOT, a])
    logit = math.log(prior) if prior > 0 else _LOW_LOGIT
    return max(_LOW_LOGIT, tree.root_gumbel[b, a] + logit + q[a])


@njit(cache=True, inline="always", no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _search_visits(tree, b, a):
    """Visits of root action ``a`` during the current search (reused visits not counted)."""
    child = tree.children_index[b, ROOT, a]
    return (tree.node_visits[b, child] if child >= 0 else 0) - tree.root_base_visits[b, a]


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _gumbel_root_action(tree, cfg, b, q):
    """Sequential halving with Gumbel-top-k at the root: among the actions whose visit count is
    the one the schedule asks for next, argmax g(a) + logits(a) + sigma(completed Q(a))."""
    A = tree.children_index.shape[2]
    _completed_q(tree, cfg, b, np.int64(ROOT), q)
    index = 0
    for a in range(A):
        if tree.children_index[b, ROOT, a] != ILLEGAL:
            index += _search_visits(tree, b, a)
    wanted = tree.halving[b, min(index, tree.halving.shape[1] - 1)]
    best_a = -1
    best = -np.inf
    any_a = -1
    any_best = -np.inf
    for a in range(A):
        if tree.children_index[b, ROOT, a] == ILLEGAL:
            continue
        score = _gumbel_score(tree, b, a, q)
        if score > any_best:
            any_best = score
            any_a = a
        if _search_visits(tree, b, a) == wanted and score > best:
            best = score
            best_a = a
    return best_a if best_a >= 0 else any_a


# ======================================================================== tree edits


@njit(cache=True, inline="always", no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _add_child(legal_mask, apply_action, is_terminal, outcome, to_play, encode, params, tree, b, n, a, state):
    """Create the child of ``n`` by action ``a`` at the next free index; return it. ``state``
    is scratch (int64[S]): the rules run on it, never on a view into the tree, because every
    array view costs two atomic reference-count updates."""
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
            child = _add_child(legal_mask, apply_action, is_terminal, outcome, to_play, encode, params, tree, b, n, a, state)
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
def _propagate_proof(tree, b, n):
    """MCTS-Solver: after an exact result below ``n``, mark ``n`` and its ancestors solved while
    their value is proven: a child proven to win for the mover (value 1), or every legal child
    solved (value: the mover's best)."""
    A = tree.children_index.shape[2]
    while n != NO_PARENT and not tree.node_solved[b, n]:
        best = -np.inf
        complete = True
        for a in range(A):
            child = tree.children_index[b, n, a]
            if child == ILLEGAL:
                continue
            if child < 0 or not tree.node_solved[b, child]:
                complete = False
                continue
            best = max(best, np.float64(tree.node_solved_value[b, child]))
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


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _begin_game(tree, cfg, b):
    """Start a search of game ``b`` at its expanded root: Dirichlet noise (puct) or Gumbel noise
    and the sequential-halving schedule (gumbel). Uses only game ``b``'s generator."""
    A = tree.children_index.shape[2]
    rng = tree.rng[b]
    for a in range(A):
        if tree.root_noised[b]:  # a second search of the same root: start from the clean prior
            tree.children_prior[b, ROOT, a] = tree.root_prior[b, a]
        tree.root_prior[b, a] = tree.children_prior[b, ROOT, a]
    tree.root_noised[b] = False
    legal = 0
    for a in range(A):
        legal += tree.children_index[b, ROOT, a] != ILLEGAL
    if cfg.root_policy == GUMBEL:
        for a in range(A):
            child = tree.children_index[b, ROOT, a]
            tree.root_base_visits[b, a] = tree.node_visits[b, child] if child >= 0 else 0
            tree.root_gumbel[b, a] = 0.0
            if child != ILLEGAL:
                u = max(rand_float(rng), 1e-300)
                tree.root_gumbel[b, a] = cfg.gumbel_scale * -math.log(-math.log(u) + 1e-300)
        _fill_halving(tree.halving[b], min(cfg.gumbel_considered, legal), tree.sims_target[b])
    elif cfg.dirichlet_fraction > 0.0:
        noise = tree.work_q
        total = 0.0
        for a in range(A):
            noise[a] = 0.0
            if tree.children_index[b, ROOT, a] != ILLEGAL:
                noise[a] = _gamma(rng, cfg.dirichlet_alpha)
                total += noise[a]
        f = cfg.dirichlet_fraction
        for a in range(A):
            if tree.children_index[b, ROOT, a] != ILLEGAL:
                eta = noise[a] / total if total > 0.0 else 1.0 / legal
                tree.children_prior[b, ROOT, a] = (1.0 - f) * tree.root_prior[b, a] + f * eta
        tree.root_noised[b] = True


# ======================================================================== entry points

_GAME = (*KERNEL_TYPES, types.int64[::1])  # rules kernels, then params


def _entry(signature, refcount=True):
    """``@njit(signature, cache=True, nogil=True)``, compiled (or loaded from the disk cache) at
    the first call rather than at import, so a command pays only for the kernels it uses. Without
    the GIL, two threads can search two ``Search`` objects at once (one waits on the GPU while
    the other searches).

    ``refcount=False`` compiles without numba's reference counting (``_nrt=False``): for the
    hot kernels, which allocate nothing (their scratch is ``tree.work_*``) and only borrow arrays
    the caller owns. With it on, numba wraps many array accesses of the inlined helpers in
    atomic increments and decrements it cannot prove redundant; they took ~60% of the time of
    a uniform-evaluator search."""

    def wrap(fn):
        compiled = None

        @functools.wraps(fn)
        def call(*args):
            nonlocal compiled
            if compiled is None:
                compiled = njit(signature, cache=True, nogil=True, _nrt=refcount)(fn)
            return compiled(*args)

        return call

    return wrap


@njit(cache=True, inline="always", no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _native_evaluate(
    legal_mask, apply_action, is_terminal, outcome, to_play, encode, params, tree, b, n, kind, rollouts, mask, state, rng
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
def native_search(legal_mask, apply_action, is_terminal, outcome, to_play, encode, params, tree, cfg, kind, rollouts):
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
                legal_mask, apply_action, is_terminal, outcome, to_play, encode, params, tree, b, np.int64(ROOT), kind, rollouts, mask, state, rng
            )
            _backup(tree, cfg, b, np.int64(ROOT), value, player)
        _begin_game(tree, cfg, b)
        while tree.sims_done[b] < tree.sims_target[b] and not tree.node_solved[b, ROOT]:
            leaf = _descend(legal_mask, apply_action, is_terminal, outcome, to_play, encode, params, tree, cfg, b, q, state)
            if leaf < 0:
                tree.full[b] = True
                break
            if tree.node_status[b, leaf] == NEW:
                value, player = _native_evaluate(
                    legal_mask, apply_action, is_terminal, outcome, to_play, encode, params, tree, b, leaf, kind, rollouts, mask, state, rng
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
            if status == NEW:
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
            leaf = _descend(legal_mask, apply_action, is_terminal, outcome, to_play, encode, params, tree, cfg, b, q, state)
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


@_entry(
    types.void(
        TREE_TYPE,
        CONFIG_TYPE,
        types.float64[::1],
        types.int32[:, ::1],
        types.float32[:, ::1],
        types.float32[:, ::1],
        types.int64[::1],
        types.float32[::1],
    )
)
def summarize(tree, cfg, temperatures, visit_counts, q_values, policy, actions, root_values):
    """Read the roots: ``visit_counts`` (int32[B, A]), ``q_values`` (float32[B, A], the root
    player's view, NaN where unvisited or illegal), the ``policy`` target (float32[B, A]: visit
    frequencies for puct, softmax(log prior + sigma(completed Q)) for gumbel), the chosen
    ``actions`` (int64[B], -1 at an unexpanded or terminal root) and ``root_values`` (float32[B],
    the root player's view: exact when solved). A root the solver proved won or drawn gets the
    proven best moves, uniformly, as its policy target. Move choice, in order: a solved root plays its
    proven best child; gumbel plays the sequential-halving winner; puct samples visit counts at
    ``temperatures[b]`` (0: most visited, ties to the higher prior)."""
    A = tree.children_index.shape[2]
    q = np.zeros(A)
    weights = np.zeros(A)
    for b in range(tree.node_visits.shape[0]):
        visit_counts[b, :] = 0
        q_values[b, :] = np.nan
        policy[b, :] = 0.0
        actions[b] = -1
        root_values[b] = np.nan
        if tree.node_status[b, ROOT] != EXPANDED:
            continue
        total = 0
        for a in range(A):
            child = tree.children_index[b, ROOT, a]
            if child >= 0 and tree.node_visits[b, child] > 0:
                visit_counts[b, a] = tree.node_visits[b, child]
                q_values[b, a] = _child_q(tree, b, child)
                total += visit_counts[b, a]
        root_values[b] = tree.node_value_sum[b, ROOT] / tree.node_visits[b, ROOT]
        if tree.node_solved[b, ROOT]:
            root_values[b] = tree.node_solved_value[b, ROOT]
        # ------------------------------------------------------------- policy target
        if cfg.root_policy == GUMBEL:
            _completed_q(tree, cfg, b, np.int64(ROOT), q)
            top = -np.inf
            for a in range(A):
                if tree.children_index[b, ROOT, a] != ILLEGAL:
                    prior = max(np.float64(tree.root_prior[b, a]), _TINY)
                    weights[a] = math.log(prior) + q[a]
                    top = max(top, weights[a])
            norm = 0.0
            for a in range(A):
                if tree.children_index[b, ROOT, a] != ILLEGAL:
                    weights[a] = math.exp(weights[a] - top)
                    norm += weights[a]
            for a in range(A):
                if tree.children_index[b, ROOT, a] != ILLEGAL:
                    policy[b, a] = weights[a] / norm
        else:
            for a in range(A):
                if total > 0:
                    policy[b, a] = visit_counts[b, a] / total
                else:
                    policy[b, a] = tree.root_prior[b, a]
        if cfg.solver and tree.node_solved[b, ROOT] and tree.node_solved_value[b, ROOT] > -1.0:
            # A proven result: the target is the proven best moves, not the visits so far.
            proven = 0
            for a in range(A):
                policy[b, a] = 0.0
                child = tree.children_index[b, ROOT, a]
                if child >= 0 and tree.node_solved[b, child]:
                    if tree.node_solved_value[b, child] == tree.node_solved_value[b, ROOT]:
                        policy[b, a] = 1.0
                        proven += 1
            for a in range(A):
                policy[b, a] /= proven
        # ------------------------------------------------------------- move choice
        best_a = -1
        if tree.node_solved[b, ROOT] and cfg.solver:
            best = -np.inf
            for a in range(A):
                child = tree.children_index[b, ROOT, a]
                if child >= 0 and tree.node_solved[b, child]:
                    v = np.float64(tree.node_solved_value[b, child])
                    if v > best or (v == best and visit_counts[b, a] > visit_counts[b, best_a]):
                        best = v
                        best_a = a
        elif cfg.root_policy == GUMBEL:
            _completed_q(tree, cfg, b, np.int64(ROOT), q)
            most = -1
            for a in range(A):
                if tree.children_index[b, ROOT, a] != ILLEGAL:
                    most = max(most, _search_visits(tree, b, a))
            best = -np.inf
            for a in range(A):
                if tree.children_index[b, ROOT, a] != ILLEGAL and _search_visits(tree, b, a) == most:
                    score = _gumbel_score(tree, b, a, q)
                    if score > best:
                        best = score
                        best_a = a
        else:
            most = -1
            for a in range(A):
                child = tree.children_index[b, ROOT, a]
                weights[a] = 0.0
                if child == ILLEGAL:
                    continue
                if cfg.solver and child >= 0 and tree.node_solved[b, child] and tree.node_solved_value[b, child] <= -1.0:
                    continue  # a proven loss is never chosen while anything else is left
                most = max(most, visit_counts[b, a])
                if (
                    best_a < 0
                    or visit_counts[b, a] > visit_counts[b, best_a]
                    or (visit_counts[b, a] == visit_counts[b, best_a] and tree.root_prior[b, a] > tree.root_prior[b, best_a])
                ):
                    best_a = a
            t = temperatures[b]
            if t > 0.0 and most > 0:
                norm = 0.0
                for a in range(A):
                    if tree.children_index[b, ROOT, a] == ILLEGAL or visit_counts[b, a] == 0:
                        continue
                    child = tree.children_index[b, ROOT, a]
                    if cfg.solver and tree.node_solved[b, child] and tree.node_solved_value[b, child] <= -1.0:
                        continue
                    weights[a] = math.exp(math.log(visit_counts[b, a] / most) / t)
                    norm += weights[a]
                if norm > 0.0:
                    pick = rand_float(tree.rng[b]) * norm
                    for a in range(A):
                        if weights[a] > 0.0:
                            best_a = a
                            pick -= weights[a]
                            if pick < 0.0:
                                break
        if best_a < 0:  # every action is a proven loss
            for a in range(A):
                if tree.children_index[b, ROOT, a] != ILLEGAL and (best_a < 0 or visit_counts[b, a] > visit_counts[b, best_a]):
                    best_a = a
        actions[b] = best_a


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _reset_root(is_terminal, to_play, params, tree, b, state):
    """Make ``state`` the whole tree of game ``b``: one unexpanded root."""
    tree.node_count[b] = 1
    tree.node_states[b, ROOT, :] = state
    tree.node_visits[b, ROOT] = 0
    tree.node_value_sum[b, ROOT] = 0.0
    tree.node_parent[b, ROOT] = NO_PARENT
    tree.node_action[b, ROOT] = -1
    tree.node_raw_value[b, ROOT] = 0.0
    tree.node_solved_value[b, ROOT] = 0.0
    tree.children_index[b, ROOT, :] = ILLEGAL
    tree.root_noised[b] = False
    if is_terminal(params, tree.node_states[b, ROOT]):
        tree.node_status[b, ROOT] = TERMINAL
        tree.node_to_play[b, ROOT] = -1
        tree.node_player[b, ROOT] = 0
        tree.node_solved[b, ROOT] = True
    else:
        player = to_play(params, tree.node_states[b, ROOT])
        tree.node_status[b, ROOT] = NEW
        tree.node_to_play[b, ROOT] = player
        tree.node_player[b, ROOT] = player
        tree.node_solved[b, ROOT] = False


@_entry(types.void(*_GAME, TREE_TYPE, types.int64[::1], types.int64[:, ::1]))
def set_roots(legal_mask, apply_action, is_terminal, outcome, to_play, encode, params, tree, games, states):
    """Restart the trees of ``games`` (int64[G]) at ``states`` (int64[G, S])."""
    for i in range(games.shape[0]):
        _reset_root(is_terminal, to_play, params, tree, games[i], states[i])


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _keep_subtree(tree, b, keep_root, limit):
    """Renumber the subtree under ``keep_root`` breadth first to 0, 1, ... (at most ``limit``
    nodes; children beyond it become UNVISITED again) and drop every other node."""
    count = tree.node_count[b]
    A = tree.children_index.shape[2]
    order = np.empty(min(count, limit), dtype=np.int64)  # new index -> old index
    new_of = np.full(count, -1, dtype=np.int64)  # old index -> new index
    order[0] = keep_root
    new_of[keep_root] = 0
    kept = 1
    head = 0
    while head < kept:
        old = order[head]
        head += 1
        if tree.node_status[b, old] != EXPANDED:
            continue
        for a in range(A):
            child = tree.children_index[b, old, a]
            if child >= 0 and kept < order.shape[0]:
                order[kept] = child
                new_of[child] = kept
                kept += 1
    # Copy the kept rows out, then back in their new places.
    visits = tree.node_visits[b, :count].copy()
    value_sum = tree.node_value_sum[b, :count].copy()
    player = tree.node_player[b, :count].copy()
    to_play = tree.node_to_play[b, :count].copy()
    status = tree.node_status[b, :count].copy()
    raw = tree.node_raw_value[b, :count].copy()
    solved = tree.node_solved[b, :count].copy()
    solved_value = tree.node_solved_value[b, :count].copy()
    parent = tree.node_parent[b, :count].copy()
    action = tree.node_action[b, :count].copy()
    states = tree.node_states[b, :count].copy()
    children = tree.children_index[b, :count].copy()
    prior = tree.children_prior[b, :count].copy()
    for i in range(kept):
        old = order[i]
        tree.node_visits[b, i] = visits[old]
        tree.node_value_sum[b, i] = value_sum[old]
        tree.node_player[b, i] = player[old]
        tree.node_to_play[b, i] = to_play[old]
        tree.node_status[b, i] = status[old]
        tree.node_raw_value[b, i] = raw[old]
        tree.node_solved[b, i] = solved[old]
        tree.node_solved_value[b, i] = solved_value[old]
        tree.node_parent[b, i] = NO_PARENT if i == 0 else new_of[parent[old]]
        tree.node_action[b, i] = -1 if i == 0 else action[old]
        tree.node_states[b, i, :] = states[old]
        tree.children_prior[b, i, :] = prior[old]
        for a in range(A):
            child = children[old, a]
            if child >= 0:
                child = new_of[child] if new_of[child] >= 0 else UNVISITED
            tree.children_index[b, i, a] = child
    tree.node_count[b] = kept
    # The root's statistics are kept from its own player to move's point of view.
    mover = tree.node_to_play[b, ROOT]
    if mover >= 0 and tree.node_player[b, ROOT] != mover:
        tree.node_value_sum[b, ROOT] = -tree.node_value_sum[b, ROOT]
        tree.node_solved_value[b, ROOT] = -tree.node_solved_value[b, ROOT]
        tree.node_player[b, ROOT] = mover
    tree.root_noised[b] = False


@_entry(types.int64(*_GAME, TREE_TYPE, types.int64[::1], types.int64[::1], types.boolean, types.int64))
def advance_roots(
    legal_mask, apply_action, is_terminal, outcome, to_play, encode, params, tree, games, actions, reuse, limit
):
    """Play ``actions[i]`` in game ``games[i]``. With ``reuse``, the chosen child's subtree
    (at most ``limit`` nodes) becomes the tree; otherwise the tree restarts at the new state.
    Returns -1, or the first ``i`` whose action is not legal (no game from ``i`` on is touched)."""
    mask = np.zeros(tree.children_index.shape[2], dtype=np.bool_)
    state = np.empty(tree.node_states.shape[2], dtype=np.int64)
    for i in range(games.shape[0]):
        b = games[i]
        a = actions[i]
        if tree.node_status[b, ROOT] == TERMINAL or not 0 <= a < mask.shape[0]:
            return i
        legal_mask(params, tree.node_states[b, ROOT], mask)
        if not mask[a]:
            return i
        child = tree.children_index[b, ROOT, a] if tree.node_status[b, ROOT] == EXPANDED else UNVISITED
        if reuse and child >= 0 and tree.node_status[b, child] != NEW:
            _keep_subtree(tree, b, child, limit)
        else:
            state[:] = tree.node_states[b, ROOT]
            apply_action(params, state, a)
            _reset_root(is_terminal, to_play, params, tree, b, state)
    return -1
