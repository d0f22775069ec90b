"""Selection rules and root noise: PUCT, Gumbel MuZero's completed-Q selection and sequential
halving (Danihelka et al., ICLR 2022; mirrors mctx), Dirichlet and Gumbel noise. numba helpers over
the tree arrays of :mod:`search.tree`; every value here is from the point of view of the player
choosing at the node.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from games.rng import rand_float

from .tree import FPU_REDUCTION, GUMBEL, ILLEGAL, ROOT, UNVISITED

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
    rescaling, or with ``gumbel_rescale`` off the fixed bounds [-1, 1], and the
    (c_visit + max N) c_scale factor). Returns the largest child visit count."""
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
    if not cfg.gumbel_rescale:  # the value's bounds, [-1, 1], map to [0, 1]
        lo, hi = -1.0, 1.0
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
