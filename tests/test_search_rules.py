"""The search's selection rules against numbers worked out by hand or by mctx's published
formulas: PUCT's first-play urgency, Gumbel's sequential-halving schedule, and Gumbel's
completed-Q policy target."""

from __future__ import annotations

import math

import numpy as np
import pytest

import games
from search import Search, SearchConfig


@pytest.fixture(scope="module")
def ttt():
    return games.make("tictactoe")


# --------------------------------------------------------------------------- FPU
# Tic-tac-toe's empty board, X to move, every square legal. The evaluator gives the root the
# prior P below and value V_ROOT (X's view); every position after one move is worth W to O,
# the player to move there, so a visited first move is worth Q = -W to X.
P = np.array([0.4, 0.3] + [0.3 / 7] * 7)
V_ROOT, W = 0.2, -0.2


def _fpu_evaluator(obs, mask):
    root = obs.reshape(len(obs), -1).sum(1) == 0
    logits = np.tile(np.log(P).astype(np.float32), (len(obs), 1))
    return logits, np.where(root, V_ROOT, W).astype(np.float32)


def _second_choice_by_hand(fpu: str, fpu_value: float) -> int:
    """The root action the second simulation picks, by PUCT worked out here.

    Simulation 1 sees the root alone (N = 1, nothing visited): every action scores
    FPU + c sqrt(1) P(a) with one FPU for all, so it takes action 0, the largest prior. Then the
    root has N = 2 and mean value (V_ROOT + -W) / 2 from X's view; action 0 has Q = -W, N = 1."""
    N, c_init, c_base = 2, 1.25, 19652.0
    scale = (c_init + math.log((1 + N + c_base) / c_base)) * math.sqrt(N)
    if fpu == "absolute":
        first_play = fpu_value
    else:  # the parent's Q minus fpu_value * sqrt(prior mass already visited: P(0))
        first_play = (V_ROOT - W) / 2 - fpu_value * math.sqrt(P[0])
    scores = [-W + scale * P[0] / (1 + 1)] + [first_play + scale * p for p in P[1:]]
    return int(np.argmax(scores))


@pytest.mark.parametrize("fpu, fpu_value", [("reduction", 0.0), ("reduction", 0.3), ("reduction", 0.5), ("absolute", 0.0), ("absolute", 0.5)])
def test_first_play_urgency_picks_the_hand_computed_child(ttt, fpu, fpu_value):
    expected = _second_choice_by_hand(fpu, fpu_value)
    tree = Search(ttt, ttt.initial_state(), SearchConfig(num_simulations=2, fpu=fpu, fpu_value=fpu_value), seed=0)
    visits = tree.run(_fpu_evaluator).visit_counts[0]
    assert visits[0] >= 1 and visits.sum() == 2  # the first simulation took the largest prior
    assert visits[expected] == 2 - (expected != 0)  # the second went where the hand said


def test_the_fpu_reduction_changes_the_choice_in_that_position():
    """The case above is one where the reduction matters: without it (r = 0) the unvisited
    second-best prior wins (0.2 + 1.768 * 0.3 = 0.730 > 0.2 + 1.768 * 0.4 / 2 = 0.554); with
    r = 0.5 its urgency drops by 0.5 * sqrt(0.4) = 0.316 and the visited move wins."""
    assert _second_choice_by_hand("reduction", 0.0) == 1
    assert _second_choice_by_hand("reduction", 0.5) == 0
    # r = 0.3 separates sqrt(0.4) (urgency 0.2 - 0.19 = 0.010: the visited move wins) from a
    # reduction linear in the visited mass (0.2 - 0.12 = 0.08: the unvisited one would win)
    assert _second_choice_by_hand("reduction", 0.3) == 0


# --------------------------------------------------------------------------- Gumbel
def mctx_considered_visits(max_num_considered: int, num_simulations: int) -> list[int]:
    """mctx ``seq_halving.get_sequence_of_considered_visits`` (google-deepmind/mctx,
    mctx/_src/seq_halving.py), written out: the visit count the action of each simulation has
    before that simulation."""
    if max_num_considered <= 1:
        return list(range(num_simulations))
    log2max = int(math.ceil(math.log2(max_num_considered)))
    sequence: list[int] = []
    visits = [0] * max_num_considered
    considered = max_num_considered
    while len(sequence) < num_simulations:
        extra = max(1, int(num_simulations / (log2max * considered)))
        for _ in range(extra):
            sequence.extend(visits[:considered])
            for i in range(considered):
                visits[i] += 1
        considered = max(2, considered // 2)
    return sequence[:num_simulations]


def test_the_mctx_schedule_as_written_here():
    """The formula above on a case worked by hand: 4 actions, 16 simulations: log2(4) = 2
    phases; phase 1 gives each of 4 actions 16 // (2 * 4) = 2 visits, phase 2 gives each of the
    best 2 a further 16 // (2 * 2) = 4."""
    assert mctx_considered_visits(4, 16) == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    assert mctx_considered_visits(1, 4) == [0, 1, 2, 3]


class RootWatcher:
    """A uniform evaluator that records, at each call, the root's children's visit counts (a
    descent adds its visits before the leaf is evaluated, so call i shows simulation i)."""

    def __init__(self, tree_holder: list):
        self.tree_holder = tree_holder
        self.snapshots: list[np.ndarray] = []

    def __call__(self, obs, mask):
        t = self.tree_holder[0].tree
        children = t.children_index[0, 0]
        self.snapshots.append(np.where(children >= 0, t.node_visits[0, np.maximum(children, 0)], 0))
        return np.zeros(mask.shape, np.float32), np.zeros(len(obs), np.float32)

    def schedule(self) -> list[int]:
        """For each simulation, the visits its root action had before it."""
        out = []
        for before, after in zip(self.snapshots, self.snapshots[1:]):
            (action,) = np.flatnonzero(after - before)
            out.append(int(before[action]))
        return out


@pytest.mark.parametrize(
    "game_name, considered, simulations",
    [("tictactoe", 4, 16), ("tictactoe", 2, 7), ("tictactoe", 1, 5), ("tictactoe", 3, 10), ("connect4", 16, 50)],
)
def test_sequential_halving_visits_follow_mctx(game_name, considered, simulations):
    """Each simulation goes to an action whose visit count is the one mctx's schedule gives
    (considered actions are capped by the legal moves: 7 in Connect Four), so the visits per
    considered action per phase are mctx's; the actions left out get none."""
    game = games.make(game_name)
    config = SearchConfig(num_simulations=simulations, root_policy="gumbel", gumbel_considered=considered)
    holder: list = []
    watcher = RootWatcher(holder)
    holder.append(Search(game, game.initial_state(), config, seed=3))
    result = holder[0].run(watcher)
    assert len(watcher.snapshots) == simulations + 1  # the root, then one leaf per simulation
    m = min(considered, int(game.legal_mask(game.initial_state()).sum()))
    expected = mctx_considered_visits(m, simulations)
    assert watcher.schedule() == expected
    assert holder[0].tree.halving[0, :simulations].tolist() == expected
    assert (result.visit_counts[0] > 0).sum() == m  # exactly the considered actions were visited


def mctx_gumbel_policy(prior, raw_value, visits, q, c_visit, c_scale, rescale=True):
    """mctx's Gumbel MuZero policy target, written out from google-deepmind/mctx
    mctx/_src/qtransforms.py (``qtransform_completed_by_mix_value``, ``_compute_mixed_value``,
    ``_complete_qvalues``, ``_rescale_qvalues``) and policies.py (``softmax(logits +
    completed_qvalues)``):

    * mixed value = (raw_value + sum N * sum_{N(a)>0} P(a) Q(a) / sum_{N(a)>0} P(a)) / (1 + sum N)
    * completed Q(a) = Q(a) if N(a) > 0 else the mixed value
    * rescaled: (completed - min) / max(max - min, 1e-8); with ``rescale`` off (mctx's
      ``rescale_values=False``, here with the value's bounds): (completed + 1) / 2
    * sigma = (c_visit + max_a N(a)) * c_scale * rescaled
    * policy = softmax(log P + sigma)
    """
    visited = visits > 0
    p = np.maximum(prior, np.finfo(np.float64).tiny)
    weighted_q = np.sum(np.where(visited, p * np.nan_to_num(q) / p[visited].sum(), 0.0))
    mixed = (raw_value + visits.sum() * weighted_q) / (visits.sum() + 1)
    completed = np.where(visited, q, mixed)
    if rescale:
        rescaled = (completed - completed.min()) / max(completed.max() - completed.min(), 1e-8)
    else:
        rescaled = (completed + 1.0) / 2.0
    sigma = (c_visit + visits.max()) * c_scale * rescaled
    logits = np.log(p) + sigma
    return np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()


ROOT_LOGITS = np.array([0.5, -0.3, 1.2, 0.0, 2.0, -1.0, 0.7, 0.1, -0.5], np.float32)


def _shaped_evaluator(obs, mask):
    """Fixed root logits; a value that depends on where the marks are, so Q differs by move."""
    flat = obs.reshape(len(obs), 2, 9)
    value = np.tanh(flat[:, 0] @ np.linspace(-1, 1, 9) - flat[:, 1] @ np.linspace(1, -1, 9) + 0.1)
    return np.tile(ROOT_LOGITS, (len(obs), 1)), value.astype(np.float32)


@pytest.mark.parametrize(
    "considered, simulations, c_visit, c_scale, rescale",
    [(4, 16, 50.0, 0.1, True), (9, 40, 50.0, 0.1, True), (4, 12, 10.0, 0.5, True),
     (4, 16, 50.0, 0.1, False), (9, 40, 50.0, 1.0, False)],
)
def test_gumbel_policy_target_is_mctx_completed_q(ttt, considered, simulations, c_visit, c_scale, rescale):
    """The policy target equals mctx's formula on the search's own visits and Q values. With 4
    of 9 actions considered, five are unvisited and take the mixed value; the third case moves
    c_visit and c_scale away from their defaults so that swapping them would show; the last two
    scale Q by its fixed bounds instead of min-max (gumbel_rescale=False)."""
    config = SearchConfig(
        num_simulations=simulations, root_policy="gumbel", gumbel_considered=considered,
        gumbel_c_visit=c_visit, gumbel_c_scale=c_scale, gumbel_rescale=rescale,
    )
    result = Search(ttt, ttt.initial_state(), config, seed=5).run(_shaped_evaluator)
    visits = result.visit_counts[0].astype(np.float64)
    q = result.q_values[0].astype(np.float64)
    assert (visits == 0).any() == (considered < 9) and np.isnan(q[visits == 0]).all()
    logits, value = _shaped_evaluator(ttt.encode(ttt.initial_state())[None], None)
    prior = np.exp(logits[0] - logits[0].max()) / np.exp(logits[0] - logits[0].max()).sum()
    expected = mctx_gumbel_policy(prior.astype(np.float64), float(value[0]), visits, q, c_visit, c_scale, rescale)
    np.testing.assert_allclose(result.policy[0], expected, rtol=1e-4, atol=1e-6)
    other = mctx_gumbel_policy(prior.astype(np.float64), float(value[0]), visits, q, c_visit, c_scale, not rescale)
    assert np.abs(other - expected).max() > 1e-3  # the two scalings differ here, so the test tells them apart
    # and the formula is not flat here: the search changed the prior
    assert np.abs(expected - prior).max() > 0.01
