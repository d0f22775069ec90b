"""Kernels at the roots: read the results (policy target, move choice), restart trees, and move
them on by an action, keeping the chosen subtree (tree reuse)."""

from __future__ import annotations

import math

import numpy as np
from numba import njit, types

from games.rng import rand_float

from .kernels import _GAME, _entry, _proof
from .policies import _TINY, _child_q, _completed_q, _gumbel_score, _search_visits
from .tree import CONFIG_TYPE, EXPANDED, GUMBEL, ILLEGAL, NEW, NO_PARENT, ROOT, TERMINAL, TREE_TYPE, UNVISITED

__all__ = ["summarize", "set_roots", "advance_roots"]


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
    proven best child; at ``temperatures[b] > 0`` gumbel samples its policy target raised to
    1 / temperature and puct its visit counts; at 0 gumbel plays the sequential-halving winner and
    puct the most visited action (ties to the higher prior)."""
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
        elif cfg.root_policy == GUMBEL and temperatures[b] > 0.0:
            # Sequential halving's winner is all but fixed once the prior is sharp, and self-play
            # then replays the same few games; early moves sample the improved policy instead.
            norm = 0.0
            for a in range(A):
                weights[a] = 0.0
                child = tree.children_index[b, ROOT, a]
                if cfg.solver and child >= 0 and tree.node_solved[b, child] and tree.node_solved_value[b, child] <= -1.0:
                    continue  # never a proven loss
                if policy[b, a] > 0.0:
                    weights[a] = math.exp(math.log(np.float64(policy[b, a])) / temperatures[b])
                    norm += weights[a]
            best_a = _draw(tree.rng[b], weights, norm)
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
                if cfg.solver and child >= 0 and tree.node_solved[b, child] and tree.node_solved_value[b, child] <= -1:
                    continue  # a proven loss is never chosen while anything else is left
                most = max(most, visit_counts[b, a])
                if (
                    best_a < 0
                    or visit_counts[b, a] > visit_counts[b, best_a]
                    or (
                        visit_counts[b, a] == visit_counts[b, best_a]
                        and tree.root_prior[b, a] > tree.root_prior[b, best_a]
                    )
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
                    best_a = _draw(tree.rng[b], weights, norm)
        if best_a < 0:  # every action is a proven loss
            for a in range(A):
                if tree.children_index[b, ROOT, a] == ILLEGAL:
                    continue
                if best_a < 0 or visit_counts[b, a] > visit_counts[b, best_a]:
                    best_a = a
        actions[b] = best_a


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _draw(rng, weights, norm):
    """An index drawn with probability ``weights[a] / norm`` (weights >= 0 summing to ``norm``),
    or -1 when ``norm`` is 0."""
    chosen = -1
    if norm > 0.0:
        pick = rand_float(rng) * norm
        for a in range(weights.shape[0]):
            if weights[a] > 0.0:
                chosen = a
                pick -= weights[a]
                if pick < 0.0:
                    break
    return chosen


@njit(cache=True, no_cpython_wrapper=True, no_cfunc_wrapper=True)
def _reset_root(is_terminal, to_play, params, tree, b, state):
    """Make ``state`` the whole tree of game ``b``: one unexpanded root."""
    tree.node_count[b] = 1
    # Loops, not slice assignments: those compile seconds of error-message code (shape checks).
    for i in range(state.shape[0]):
        tree.node_states[b, ROOT, i] = state[i]
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
        for j in range(states.shape[1]):  # loops: see _reset_root
            tree.node_states[b, i, j] = states[old, j]
        for a in range(A):
            tree.children_prior[b, i, a] = prior[old, a]
            child = children[old, a]
            if child >= 0:
                child = new_of[child] if new_of[child] >= 0 else UNVISITED
            tree.children_index[b, i, a] = child
    tree.node_count[b] = kept
    # A solved node must keep its proof in the tree (summarize plays and targets the proven
    # children). Where the limit dropped part of a proof, the node is unsolved again; children
    # come after their parents in breadth-first order, so one backward pass settles every level.
    for i in range(kept - 1, -1, -1):
        if not tree.node_solved[b, i] or tree.node_status[b, i] != EXPANDED:
            continue
        best, complete = _proof(tree, b, i)
        if not (best >= 1.0 or complete):
            tree.node_solved[b, i] = False
            tree.node_solved_value[b, i] = 0.0
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
            for j in range(state.shape[0]):  # a loop: see _reset_root
                state[j] = tree.node_states[b, ROOT, j]
            apply_action(params, state, a)
            _reset_root(is_terminal, to_play, params, tree, b, state)
    return -1
