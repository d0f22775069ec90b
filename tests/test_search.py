"""The search: tactics with known answers, exhaustive checks against minimax, points of view in
games whose turns do not alternate, determinism and batching, tree reuse, bad input."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import fields, replace
from functools import lru_cache

import numpy as np
import pytest
from numba import njit

import games
import search
from games.baselines import greedy_action
from games.core import KERNEL_NAMES, KERNEL_SIGNATURES, Game
from games.rng import make_rng
from search import RolloutEvaluator, Search, SearchConfig, SearchError, UniformEvaluator

ROLLOUT = RolloutEvaluator()
UNIFORM = UniformEvaluator()


@pytest.fixture(scope="module")
def ttt():
    return games.make("tictactoe")


@pytest.fixture(scope="module")
def c4():
    return games.make("connect4")


# --------------------------------------------------------------------------- exact references
def forced_win_moves(game: Game, state: np.ndarray, plies: int) -> set[int]:
    """Moves after which the mover wins within ``plies`` plies (counting the move) whatever the
    others do. Asks ``to_play`` at every node, so it is right for any turn order."""
    player = game.to_play(state)

    def wins(s, depth):
        if game.is_terminal(s):
            return game.returns(s)[player] > 0
        if depth == 0:
            return False
        children = [game.next_state(s, a) for a in game.legal_actions(s)]
        if game.to_play(s) == player:
            return any(wins(c, depth - 1) for c in children)
        return all(wins(c, depth - 1) for c in children)

    return {int(a) for a in game.legal_actions(state) if wins(game.next_state(state, a), plies - 1)}


def minimax_values(game: Game):
    """Exact value of a state for its player to move, memoized on the state's bytes."""

    @lru_cache(maxsize=None)
    def value(key: bytes) -> float:
        state = np.frombuffer(key, dtype=np.int64).copy()
        return max(move_value(state, a) for a in game.legal_actions(state))

    def move_value(state, action) -> float:
        player = game.to_play(state)
        child = game.next_state(state, action)
        if game.is_terminal(child):
            return float(game.returns(child)[player])
        v = value(child.tobytes())
        return v if game.to_play(child) == player else -v

    return value, move_value


def reachable_states(game: Game) -> np.ndarray:
    seen, stack = {}, [game.initial_state()]
    while stack:
        s = stack.pop()
        if s.tobytes() in seen or game.is_terminal(s):
            continue
        seen[s.tobytes()] = s
        stack.extend(game.next_state(s, a) for a in game.legal_actions(s))
    return np.stack(list(seen.values()))


# --------------------------------------------------------------------------- a non-alternating game
# Player 0 moves twice (plies 0 and 1), then player 1 once (ply 2); the outcome table (params) is
# player 0's score of the path a, b, c. Correct values: a=0 is worth max(min(1,1), min(-1,-1)) = 1
# and a=1 is worth 0. A search that assumed alternating turns would take the second move as the
# opponent's and pick a=1 (min over b of a=0 is -1).
TABLE = np.array([1, 1, -1, -1, 0, 0, 0, 0], dtype=np.int64)


@njit
def _ts_initial(params):
    return np.zeros(2, dtype=np.int64)  # [ply, path bits]


@njit
def _ts_terminal(params, state):
    return state[0] == 3


@njit
def _ts_mask(params, state, mask):
    mask[:] = state[0] < 3


@njit
def _ts_apply(params, state, action):
    state[1] = state[1] * 2 + action
    state[0] += 1


@njit
def _ts_outcome(params, state, player):
    score = np.float64(params[state[1]])
    return score if player == 0 else -score


@njit
def _ts_to_play(params, state):
    return 0 if state[0] < 2 else 1


@njit
def _ts_encode_agent(params, state, agent, out):
    out[:] = 0.0
    out[0, 0, min(state[0], 2)] = 1.0


@njit
def _ts_encode(params, state, out):
    _ts_encode_agent(params, state, 0, out)


@njit
def _ts_transform(params, state, k):
    return state.copy()


@pytest.fixture(scope="module")
def two_step():
    game = Game(
        name="two_step", version=1, options={}, num_players=2, num_actions=2, obs_shape=(1, 1, 3),
        state_size=2, max_length=3, params=TABLE, obs_perms=np.arange(3)[None], action_perms=np.arange(2)[None],
        initial_state_fn=_ts_initial, legal_mask_fn=_ts_mask, apply_action_fn=_ts_apply,
        is_terminal_fn=_ts_terminal, outcome_fn=_ts_outcome, to_play_fn=_ts_to_play, encode_fn=_ts_encode,
        agent_to_move_fn=_ts_to_play, encode_agent_fn=_ts_encode_agent, transform_state_fn=_ts_transform,
        render_text_fn=lambda p, s: str(s), action_to_text_fn=lambda p, a: str(a),
        text_to_action_fn=lambda p, t: int(t),
    )
    for name in KERNEL_NAMES:
        getattr(game, f"{name}_fn").compile(KERNEL_SIGNATURES[name].args)
    return game


# --------------------------------------------------------------------------- tactics
TTT_WIN = [0, 3, 1, 4]  # X: a1 b1, O: a2 b2; X wins at c1 (2); O's threat at c2 must not distract
TTT_BLOCK = [0, 4, 8, 2]  # O threatens the diagonal c1-b2-a3; X must take a3 (6)
TTT_FORK = [0, 1, 4, 8]  # X to move makes a double threat: a win in three plies
C4_WIN = [0, 0, 1, 1, 2, 2]  # both have three on a row; the mover (first) wins in column 3
C4_BLOCK = [0, 6, 1, 6, 2]  # first player threatens column 3; second must block there
C4_OPEN_THREE = [3, 0, 2, 0]  # first player plays 4 (or 1 is no good): open three, win in three


def searchers():
    return [
        pytest.param(ROLLOUT, SearchConfig(num_simulations=1500), id="rollout"),
        pytest.param(UNIFORM, SearchConfig(num_simulations=3000, solver=True), id="uniform+solver"),
    ]


@pytest.mark.parametrize("evaluator, config", searchers())
@pytest.mark.parametrize(
    "name, moves, plies",
    [
        ("tictactoe", TTT_WIN, 1),
        ("connect4", C4_WIN, 1),
        ("tictactoe", TTT_FORK, 3),
        ("connect4", C4_OPEN_THREE, 3),
    ],
)
def test_finds_forced_wins(name, moves, plies, evaluator, config):
    game = games.make(name)
    state = game.play(moves)
    winning = forced_win_moves(game, state, plies)
    assert winning and (plies == 1 or not forced_win_moves(game, state, plies - 2)), "bad fixture"
    result = search.run(game, state, evaluator, config, seed=3)
    assert int(result.actions[0]) in winning
    assert result.root_values[0] > 0.3
    if config.solver:  # proven: played at once, and the policy target is the proven wins
        assert result.solved[0] and result.root_values[0] == 1.0
        support = np.flatnonzero(result.policy[0])
        assert result.policy[0, result.actions[0]] > 0 and (result.q_values[0, support] == 1.0).all()


@pytest.mark.parametrize("evaluator, config", searchers())
@pytest.mark.parametrize("name, moves, block", [("tictactoe", TTT_BLOCK, 6), ("connect4", C4_BLOCK, 3)])
def test_blocks_a_loss_in_one(name, moves, block, evaluator, config):
    game = games.make(name)
    state = game.play(moves)
    _, move_value = minimax_values(game) if name == "tictactoe" else (None, None)
    if move_value is not None:  # the block is the only move that does not lose
        assert [a for a in game.legal_actions(state) if move_value(state, a) > -1] == [block]
    result = search.run(game, state, evaluator, config, seed=5)
    assert int(result.actions[0]) == block


def test_puct_with_rollouts_picks_only_optimal_moves_in_every_tictactoe_position(ttt):
    """All 4,520 non-terminal positions in one batch; the most-visited move is minimax-optimal.
    Pure MCTS needs more exploration than AlphaZero's c_init to resist noisy rollouts."""
    states = reachable_states(ttt)
    assert len(states) == 4520
    _, move_value = minimax_values(ttt)
    config = SearchConfig(num_simulations=2000, c_init=4.0)
    result = search.run(ttt, states, ROLLOUT, config, seed=0)
    for state, action in zip(states, result.actions):
        values = {int(a): move_value(state, a) for a in ttt.legal_actions(state)}
        assert values[int(action)] == max(values.values()), ttt.render_text(state)


def test_solver_proves_tictactoe_positions_exactly(ttt):
    states = reachable_states(ttt)
    value, move_value = minimax_values(ttt)
    result = search.run(ttt, states, UNIFORM, SearchConfig(num_simulations=1600, solver=True), seed=0)
    assert result.solved.mean() > 0.95
    exact = np.array([value(s.tobytes()) for s in states])
    assert (result.root_values[result.solved] == exact[result.solved]).all()
    for state, action in zip(states, result.actions):
        values = {int(a): move_value(state, a) for a in ttt.legal_actions(state)}
        assert values[int(action)] == max(values.values()), ttt.render_text(state)
    # Solved roots stopped early: they ran fewer simulations than asked, never more.
    assert (result.simulations[result.solved] <= 1600).all() and (result.simulations[~result.solved] == 1600).all()


def test_proven_marks_exactly_the_root_moves_whose_value_the_solver_knows(ttt):
    states = reachable_states(ttt)
    _, move_value = minimax_values(ttt)
    result = search.run(ttt, states, UNIFORM, SearchConfig(num_simulations=1600, solver=True), seed=0)
    assert result.proven.shape == (len(states), ttt.num_actions) and result.proven.any()
    for state, proven, q in zip(states, result.proven, result.q_values):
        assert not (proven & ~ttt.legal_mask(state)).any()
        for a in np.flatnonzero(proven):
            assert q[a] == move_value(state, a), ttt.render_text(state)
    unsolved = search.run(ttt, states[:4], UNIFORM, SearchConfig(num_simulations=50), seed=0)
    assert not unsolved.proven.any()  # no solver, no proofs


# --------------------------------------------------------------------------- stopping
@pytest.mark.parametrize("evaluator", [ROLLOUT, lambda obs, mask: UNIFORM(obs, mask)], ids=["native", "callable"])
def test_a_search_that_is_never_stopped_is_the_search_without_stop(c4, evaluator):
    config = SearchConfig(num_simulations=3000 if evaluator is ROLLOUT else 300, solver=True)
    states = np.stack([c4.initial_state(), c4.play([3, 3, 4])])
    plain = search.run(c4, states, evaluator, config, seed=5)
    polls = []
    polled = Search(c4, states, config, seed=5).run(evaluator, stop=lambda: polls.append(1) and False)
    assert len(polls) > (1 if evaluator is ROLLOUT else 100)  # sliced, and polled between slices
    for field in ("visit_counts", "q_values", "actions", "root_values", "simulations", "proven"):
        np.testing.assert_array_equal(getattr(plain, field), getattr(polled, field), err_msg=field)


@pytest.mark.parametrize("evaluator", [ROLLOUT, lambda obs, mask: UNIFORM(obs, mask)], ids=["native", "callable"])
def test_stop_ends_a_search_early_with_a_move(c4, evaluator):
    config = SearchConfig(num_simulations=200_000)
    tree = Search(c4, c4.initial_state(), config, seed=0)
    polls = []
    result = tree.run(evaluator, stop=lambda: polls.append(1) or len(polls) > 2)
    assert len(polls) == 3 and 0 < result.simulations[0] < config.num_simulations
    assert result.visit_counts.sum() == result.simulations[0] and c4.legal_mask(c4.initial_state())[result.actions[0]]
    at_once = Search(c4, c4.initial_state(), config, seed=0).run(evaluator, stop=lambda: True)
    assert c4.legal_mask(c4.initial_state())[at_once.actions[0]]  # the root is expanded before the first poll


# --------------------------------------------------------------------------- points of view
def test_non_alternating_turns_are_backed_up_from_each_movers_view(two_step):
    result = search.run(two_step, two_step.initial_state(), UNIFORM, SearchConfig(num_simulations=3000))
    assert result.actions[0] == 0
    assert result.q_values[0, 0] > 0.9 and abs(result.q_values[0, 1]) < 0.1
    proved = search.run(two_step, two_step.initial_state(), UNIFORM, SearchConfig(num_simulations=100, solver=True))
    assert proved.solved[0] and proved.root_values[0] == 1.0 and proved.actions[0] == 0


@pytest.mark.parametrize("solver", [False, True])
def test_arena_unit_acting_twice_in_a_row(solver):
    """From tests/test_arena.py (values there by exhaustive search): red's hurt archer acts, then
    red's fighter, then blue: stepping out of reach wins, a parting shot draws, waiting loses."""
    from games.arena import scenario

    game = games.make("arena", lineup="FA", map="open")
    state = scenario(game, {"red_1": ("d5", 3), "red_0": ("a8", 8), "blue_0": ("d4", 10)}, to_move="red_1", turn=57)
    names = {game.action_to_text(a): int(a) for a in game.legal_actions(state)}
    config = SearchConfig(num_simulations=2000, solver=solver)
    result = search.run(game, state, ROLLOUT, config, seed=1)
    assert game.action_to_text(result.actions[0]) in {"back", "left", "right"}
    q = result.q_values[0]
    if solver:
        assert result.solved[0] and result.root_values[0] == 1.0
    else:
        assert q[names["wait"]] < q[names["attack 0"]] < max(q[names[m]] for m in ("back", "left", "right"))


C4_LOST = [1, 1, 2, 2, 3]  # the first player has an open three on the bottom row: the mover is lost


def test_values_are_from_the_player_to_move(c4):
    won = search.run(c4, c4.play(C4_WIN), ROLLOUT, SearchConfig(num_simulations=500))
    lost = search.run(c4, c4.play(C4_LOST), ROLLOUT, SearchConfig(num_simulations=500))
    assert won.root_values[0] > 0.5 and lost.root_values[0] < -0.3
    assert won.q_values[0, 3] == 1.0  # a terminal child's value is exact
    proved = search.run(c4, c4.play(C4_LOST), UNIFORM, SearchConfig(num_simulations=3000, solver=True))
    assert proved.solved[0] and proved.root_values[0] == -1.0


# --------------------------------------------------------------------------- Gumbel
def test_gumbel_improved_policy_targets_the_winning_move(ttt):
    state = ttt.play(TTT_WIN)
    config = SearchConfig(num_simulations=16, root_policy="gumbel", gumbel_considered=16)
    result = search.run(ttt, state, UNIFORM, config, seed=0)
    assert result.actions[0] == 2 and result.policy[0].argmax() == 2
    assert result.policy[0, 2] > result.priors[0, 2] and result.policy[0].sum() == pytest.approx(1.0)
    legal = ttt.legal_mask(state)
    assert (result.policy[0][~legal] == 0).all() and (result.visit_counts[0][legal] >= 1).all()


def play_against_greedy(game: Game, policy, num_games: int, seed: int) -> float:
    """Mean score of ``policy(states, ply) -> actions`` against the one-ply greedy player, each
    side taken by half the games, all games advanced in lockstep."""
    rng = make_rng(seed)
    states = np.stack([game.initial_state()] * num_games)
    side = np.arange(num_games) % 2
    for ply in range(game.max_length):
        live = np.array([not game.is_terminal(s) for s in states])
        mine = np.array([live[i] and game.to_play(states[i]) == side[i] for i in range(num_games)])
        if mine.any():
            for i, a in zip(np.flatnonzero(mine), policy(states[mine], ply)):
                states[i] = game.next_state(states[i], a)
        for i in np.flatnonzero(live & ~mine):
            states[i] = game.next_state(states[i], greedy_action(game, states[i], rng))
    return float(np.mean([game.returns(s)[p] for s, p in zip(states, side)]))


@pytest.mark.parametrize("simulations, margin", [(4, 0.1), (16, 0.3)])
def test_gumbel_with_few_simulations_improves_on_the_raw_prior(ttt, simulations, margin):
    """The raw prior of the rollout evaluator is uniform, so playing it is playing at random;
    a Gumbel search of 4 or 16 simulations on top of it scores clearly better against greedy."""
    rng = np.random.default_rng(0)
    config = SearchConfig(num_simulations=simulations, root_policy="gumbel")

    def prior(states, ply):
        return [rng.choice(ttt.legal_actions(s)) for s in states]

    def gumbel(states, ply):
        return search.run(ttt, states, ROLLOUT, config, seed=1000 + ply).actions

    assert play_against_greedy(ttt, gumbel, 400, seed=1) > play_against_greedy(ttt, prior, 400, seed=1) + margin


# --------------------------------------------------------------------------- determinism, batching
def deterministic_net(obs: np.ndarray, mask: np.ndarray):
    """A fixed pseudo-network: logits and value are smooth functions of the observation. The
    weights are multiples of 1/8 and the planes 0 or 1, so every sum is exact in float32 and a
    row's logits do not depend on the batch around it (BLAS may sum in another order per batch
    size, which moved the last bit of a policy between batched and single searches)."""
    flat = obs.reshape(len(obs), -1)
    weights = np.round(8 * np.sin(np.arange(flat.shape[1] * mask.shape[1], dtype=np.float32))) / 8
    weights = weights.reshape(flat.shape[1], -1)
    return flat @ weights, np.tanh(flat.sum(1) * 0.3 - 1.0)


CONFIGS = {
    "rollout+noise+temperature": (ROLLOUT, SearchConfig(num_simulations=300, dirichlet_fraction=0.25, temperature_moves=99)),
    "rollout+gumbel": (ROLLOUT, SearchConfig(num_simulations=64, root_policy="gumbel")),
    "net+virtual-loss": (deterministic_net, SearchConfig(num_simulations=200, leaves_per_step=8, dirichlet_fraction=0.25)),
    "net+gumbel+solver": (deterministic_net, SearchConfig(num_simulations=50, root_policy="gumbel", leaves_per_step=4, solver=True)),
}


@pytest.mark.parametrize("name", CONFIGS)
def test_batched_search_equals_single_searches_with_the_same_seeds(c4, name):
    evaluator, config = CONFIGS[name]
    states = np.stack([c4.play(m) for m in ([], [3], [3, 3, 2], C4_WIN, C4_OPEN_THREE)])
    seeds = [11, 12, 13, 14, 15]
    batched = search.run(c4, states, evaluator, config, seed=seeds)
    for b, (state, seed) in enumerate(zip(states, seeds)):
        single = search.run(c4, state, evaluator, config, seed=seed)
        assert (single.visit_counts[0] == batched.visit_counts[b]).all()
        np.testing.assert_array_equal(single.q_values[0], batched.q_values[b])
        np.testing.assert_array_equal(single.policy[0], batched.policy[b])
        assert single.actions[0] == batched.actions[b] and single.root_values[0] == batched.root_values[b]
    again = search.run(c4, states, evaluator, config, seed=seeds)
    assert (again.visit_counts == batched.visit_counts).all() and (again.actions == batched.actions).all()
    if config.dirichlet_fraction or name == "rollout+gumbel":
        other = search.run(c4, states, evaluator, config, seed=[s + 100 for s in seeds])
        assert (other.visit_counts != batched.visit_counts).any()


@pytest.mark.parametrize("root_policy", ["puct", "gumbel"])
def test_python_evaluator_path_equals_the_native_loop(ttt, root_policy):
    """The uniform evaluator called from Python, one leaf per step, builds the same trees as the
    same evaluator running inside numba."""
    states = np.stack([ttt.play(m) for m in ([], [4], TTT_BLOCK)])
    config = SearchConfig(num_simulations=300, root_policy=root_policy, dirichlet_fraction=0.25 * (root_policy == "puct"))
    native = search.run(ttt, states, UNIFORM, config, seed=7)
    called = search.run(ttt, states, lambda obs, mask: UNIFORM(obs, mask), config, seed=7)
    for field in ("visit_counts", "q_values", "policy", "priors", "actions", "root_values"):
        np.testing.assert_array_equal(getattr(native, field), getattr(called, field), err_msg=field)


def test_virtual_loss_batches_leaves_per_evaluator_call(c4):
    sizes = []

    def evaluator(obs, mask):
        sizes.append(len(obs))
        return UNIFORM(obs, mask)

    states = np.stack([c4.play(C4_WIN), c4.play(C4_BLOCK)])
    result = search.run(c4, states, evaluator, SearchConfig(num_simulations=400, leaves_per_step=16), seed=0)
    assert max(sizes) > 2 and max(sizes) <= 32 and (result.simulations == 400).all()
    assert (result.visit_counts.sum(1) == 400).all()
    assert list(result.actions) == [3, 3]


def test_temperature_samples_early_moves_and_plays_the_most_visited_later(ttt):
    states = np.stack([ttt.initial_state()] * 64)
    config = SearchConfig(num_simulations=60, temperature=1.0, temperature_moves=2)
    early = search.run(ttt, states, UNIFORM, config, seed=0, move_numbers=np.ones(64, np.int64))
    late = search.run(ttt, states, UNIFORM, config, seed=0, move_numbers=np.full(64, 2))
    assert len(set(early.actions.tolist())) > 3
    assert (late.actions == late.visit_counts.argmax(1)).all()
    np.testing.assert_array_equal(early.visit_counts, late.visit_counts)


def test_gumbel_temperature_samples_the_improved_policy_early_and_plays_the_halving_winner_later(ttt):
    # Gumbel's sequential-halving winner is about a sample of the prior, so a sharp prior makes
    # self-play replay the same games. A temperature above 1 flattens the early moves' choice: they
    # follow the policy target raised to 1 / temperature.
    def sharp(obs, mask):  # prior e^4 : 1 for the centre, value 0 everywhere
        logits = np.zeros(mask.shape, np.float32)
        logits[:, 4] = 4.0
        return logits, np.zeros(mask.shape[0], np.float32)

    states = np.stack([ttt.initial_state()] * 512)
    config = SearchConfig(num_simulations=32, root_policy="gumbel", temperature=3.0, temperature_moves=2)
    early = search.run(ttt, states, sharp, config, seed=0, move_numbers=np.ones(512, np.int64))
    late = search.run(ttt, states, sharp, config, seed=0, move_numbers=np.full(512, 2))
    np.testing.assert_array_equal(early.policy, late.policy)
    target = early.policy.astype(np.float64) ** (1 / 3)
    target = (target / target.sum(1, keepdims=True)).mean(0)
    counts = np.bincount(early.actions, minlength=9) / 512
    assert target[4] < 0.5 and np.abs(counts - target).max() < 0.07
    assert (late.actions == 4).mean() > 0.8  # the halving winner keeps to the sharp prior
    halving = search.run(ttt, states, sharp, replace(config, temperature_moves=0), seed=0)
    np.testing.assert_array_equal(late.actions, halving.actions)


def test_per_game_simulation_budgets(ttt):
    tree = Search(ttt, np.stack([ttt.initial_state()] * 3), SearchConfig(num_simulations=50), seed=0)
    result = tree.run(UNIFORM, simulations=[10, 0, 50])
    assert result.simulations.tolist() == [10, 0, 50]
    assert result.visit_counts.sum(1).tolist() == [10, 0, 50] and result.actions[1] == -1
    stepped = Search(ttt, np.stack([ttt.initial_state()] * 3), SearchConfig(num_simulations=50), seed=0)
    same = stepped.run(lambda obs, mask: UNIFORM(obs, mask), simulations=np.array([10, 0, 50]))
    np.testing.assert_array_equal(same.visit_counts, result.visit_counts)
    assert same.actions[1] == -1 and same.simulations.tolist() == [10, 0, 50]
    with pytest.raises(SearchError, match="simulations must lie in"):
        tree.run(UNIFORM, simulations=51)


# --------------------------------------------------------------------------- tree reuse
def test_tree_reuse_keeps_the_chosen_subtree_statistics(c4):
    tree = Search(c4, c4.initial_state(), SearchConfig(num_simulations=400), seed=0)
    first = tree.run(ROLLOUT)
    action = int(first.actions[0])
    t = tree.tree
    child = t.children_index[0, 0, action]
    grandchildren = t.children_index[0, child]
    expected_visits = np.where(grandchildren >= 0, t.node_visits[0, np.maximum(grandchildren, 0)], 0)
    expected_q = np.where(expected_visits > 0, t.node_value_sum[0, np.maximum(grandchildren, 0)] / np.maximum(expected_visits, 1), np.nan)
    child_visits, child_value = t.node_visits[0, child], t.node_value_sum[0, child]
    tree.advance([action])
    assert tree.tree_sizes[0] > 1 and (tree.root_states[0] == c4.play([action])).all()
    assert t.node_visits[0, 0] == child_visits
    assert t.node_value_sum[0, 0] == pytest.approx(-child_value)  # now from the new mover's view
    second = tree.run(ROLLOUT, simulations=0)  # read the kept tree without searching
    np.testing.assert_array_equal(second.visit_counts[0], expected_visits)
    np.testing.assert_allclose(second.q_values[0], expected_q, rtol=1e-6)
    third = tree.run(ROLLOUT, simulations=100)
    assert third.visit_counts.sum() == expected_visits.sum() + 100


def test_reuse_off_restarts_the_tree(c4):
    tree = Search(c4, c4.initial_state(), SearchConfig(num_simulations=100, reuse_tree=False), seed=0)
    tree.advance(tree.run(ROLLOUT).actions)
    assert tree.tree_sizes[0] == 1 and tree.run(ROLLOUT, simulations=0).visit_counts.sum() == 0


def test_reuse_prunes_to_capacity_and_stays_consistent(c4):
    config = SearchConfig(num_simulations=100, capacity=160)
    tree = Search(c4, np.stack([c4.initial_state()] * 2), config, seed=0)
    for _ in range(6):
        result = tree.run(ROLLOUT)
        assert (result.simulations == 100).all()
        tree.advance(result.actions)
        sizes = tree.tree_sizes
        assert (sizes <= 160 - 100 - 1).all()
        t = tree.tree
        for b in range(2):
            n = sizes[b]
            assert (t.node_parent[b, 1:n] >= 0).all() and (t.node_parent[b, 1:n] < np.arange(1, n)).all()
            children = t.children_index[b, :n][t.node_status[b, :n] == 1]
            assert children.max() < n
            for node in range(1, n):  # every kept child points back at its parent
                assert t.children_index[b, t.node_parent[b, node], t.node_action[b, node]] == node


def _unproven_solved_nodes(tree: Search) -> list[tuple[int, int]]:
    """(game, node) of every expanded node marked solved whose proof is not in the tree: no
    child proven to win for its mover, and not every legal child solved."""
    t, out = tree.tree, []
    for b, n_nodes in enumerate(tree.tree_sizes):
        for n in range(n_nodes):
            if not t.node_solved[b, n] or t.node_status[b, n] != 1:
                continue
            children = [c for c in t.children_index[b, n] if c != -2]
            solved = [c for c in children if c >= 0 and t.node_solved[b, c]]
            if not (any(t.node_solved_value[b, c] >= 1 for c in solved) or len(solved) == len(children)):
                out.append((b, n))
    return out


@pytest.mark.parametrize("root_policy", ["gumbel", "puct"])
def test_reuse_pruned_to_capacity_never_keeps_a_proof_it_dropped(ttt, root_policy):
    """With the solver and a small tree, the kept subtree can lose part of a proof; its nodes
    must then be unsolved, or the next search reads a solved root with no proven move (this
    divided by zero in self-play, tic-tac-toe tiny preset)."""
    config = SearchConfig(num_simulations=16, capacity=22, solver=True, root_policy=root_policy, gumbel_considered=9,
                          dirichlet_fraction=0.0)
    rng = np.random.default_rng(0)

    def evaluator(obs, mask):  # sharp random priors, random values
        return rng.normal(0, 3, mask.shape).astype(np.float32), rng.uniform(-1, 1, mask.shape[0]).astype(np.float32)

    B = 64
    tree = Search(ttt, np.stack([ttt.initial_state()] * B), config, seed=1)
    for _ in range(40):
        result = tree.run(evaluator)
        for b in np.flatnonzero(~tree.root_terminal):
            if tree.tree.node_solved[b, 0] and result.root_values[b] > -1:  # a proven root plays a proven move
                assert result.policy[b, result.actions[b]] > 0
        playing = np.flatnonzero(~tree.root_terminal)
        tree.advance(result.actions[playing], games=playing)
        assert not _unproven_solved_nodes(tree)
        done = np.flatnonzero(tree.root_terminal)
        if done.size:
            tree.set_roots(np.stack([ttt.initial_state()] * done.size), games=done)


def test_running_out_of_nodes_stops_early_with_a_warning(c4):
    tree = Search(c4, c4.initial_state(), SearchConfig(num_simulations=50, capacity=51, reuse_tree=False), seed=0)
    tree.run(ROLLOUT)
    with pytest.warns(RuntimeWarning, match="ran out of tree capacity"):
        again = tree.run(ROLLOUT)  # same root, no room left
    assert again.simulations[0] < 50 and tree.tree_sizes[0] <= 51


def test_set_roots_restarts_chosen_games(ttt):
    tree = Search(ttt, np.stack([ttt.initial_state()] * 3), SearchConfig(num_simulations=20), seed=0)
    tree.run(UNIFORM)
    tree.set_roots(ttt.play(TTT_WIN)[None], games=[1])
    assert tree.tree_sizes.tolist()[1] == 1 and (tree.root_states[1] == ttt.play(TTT_WIN)).all()
    assert tree.run(UNIFORM).actions[1] == 2


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "options, message",
    [
        ({"num_simulations": 0}, "num_simulations must be >= 1"),
        ({"temperature": -1.0}, "temperature must be >= 0"),
        ({"capacity": 10, "num_simulations": 20}, "cannot hold"),
        ({"root_policy": "ucb"}, "root_policy must be one of"),
        ({"fpu": "median"}, "fpu must be one of"),
        ({"dirichlet_fraction": 1.5}, "dirichlet_fraction"),
        ({"root_policy": "gumbel", "dirichlet_fraction": 0.25}, "Dirichlet noise is for"),
        ({"leaves_per_step": 0}, "leaves_per_step"),
        ({"num_simulations": "800"}, "num_simulations must be int"),
        ({"solver": 1}, "solver must be bool"),
    ],
)
def test_bad_configuration_is_a_one_line_error(options, message):
    with pytest.raises(SearchError, match=message) as info:
        SearchConfig(**options)
    assert "\n" not in str(info.value)


FLOAT_FIELDS = [f.name for f in fields(SearchConfig) if f.type == "float"]


@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan])
@pytest.mark.parametrize("name", FLOAT_FIELDS)
def test_every_float_setting_refuses_inf_and_nan(name, value):
    """inf and NaN slip through range checks (``nan >= 0`` is False, ``inf > 0`` True) and would
    reach the kernels: virtual_loss=inf or gumbel_c_scale=inf make every Q meaningless."""
    with pytest.raises(SearchError, match=f"{name} must be finite, got") as info:
        SearchConfig(**{name: value})
    assert "\n" not in str(info.value)


def test_float_settings_are_the_ones_we_think():
    """The check above covers every float field; a new one is covered without a new test."""
    assert {"virtual_loss", "gumbel_c_scale", "gumbel_c_visit", "fpu_value", "c_init"} <= set(FLOAT_FIELDS)


def test_bad_calls_are_clear_errors(ttt):
    with pytest.raises(SearchError, match="terminal"):
        search.run(ttt, ttt.play([0, 3, 1, 4, 2]), UNIFORM)
    with pytest.raises(SearchError, match=r"int64\[B, 3\]"):
        Search(ttt, np.zeros((2, 4), np.int64))
    tree = Search(ttt, np.stack([ttt.initial_state()] * 2), SearchConfig(num_simulations=10))
    with pytest.raises(SearchError, match="got 3 entries for 2 games"):
        tree.set_roots(np.stack([ttt.initial_state()] * 3))
    with pytest.raises(SearchError, match="indices must lie in"):
        tree.advance([0], games=[2])
    with pytest.raises(games.IllegalMoveError, match="illegal in game 1"):
        tree.advance([0, 9])
    with pytest.raises(SearchError, match="evaluator returned logits"):
        tree.run(lambda obs, mask: (np.zeros((len(obs), 3)), np.zeros(len(obs))))
    with pytest.raises(SearchError, match="must be callable"):
        tree.run("uniform")


def _answers(values=0.0, logit=0.0, leaves=slice(1, 2)):
    """An evaluator: uniform logits and value 0, except ``leaves`` of each call (default the
    second), which get value ``values`` and ``logit`` on their first action."""

    def evaluate(obs, mask):
        logits, value = np.zeros(mask.shape, np.float32), np.zeros(len(obs), np.float32)
        value[leaves], logits[leaves, 0] = values, logit
        return logits, value

    return evaluate


@pytest.mark.parametrize(
    "evaluator, message",
    [
        (_answers(values=1.5), "value 1.5 for leaf 1 of 2; values must be finite and in \\[-1, 1\\]"),
        (_answers(values=-1.0001), "value -1.0001 for leaf 1 of 2"),
        (_answers(values=np.nan), "value nan for leaf 1 of 2"),
        (_answers(values=-np.inf), "value -inf for leaf 1 of 2"),
        (_answers(logit=np.nan), "logit nan for leaf 1 of 2; logits must not be NaN or \\+inf"),
        (_answers(logit=np.inf), "logit inf for leaf 1 of 2"),
    ],
)
def test_evaluator_output_out_of_range_is_named_in_one_line(ttt, evaluator, message):
    """A value outside [-1, 1] would outweigh every exact result in the tree, and NaN or +inf
    logits turned the prior silently uniform; the leaf is named, and the trees stay usable."""
    tree = Search(ttt, np.stack([ttt.initial_state()] * 2), SearchConfig(num_simulations=10), seed=0)
    with pytest.raises(SearchError, match=message) as info:
        tree.run(evaluator)
    assert "\n" not in str(info.value)
    assert tree.tree_sizes.tolist() == [1, 1]  # as if the failed step never happened
    assert (tree.run(UNIFORM).simulations == 10).all()


def test_evaluator_edges_of_the_range_are_accepted(ttt):
    """Values of exactly -1 and 1 are exact results; a -inf logit is a masked action (prior 0)."""
    state = ttt.initial_state()
    result = search.run(ttt, np.stack([state] * 2), _answers(-1.0, -np.inf, slice(None)), SearchConfig(num_simulations=20))
    assert result.priors[:, 0].tolist() == [0.0, 0.0] and (result.simulations == 20).all()
    assert np.allclose(result.priors[:, 1:].sum(1), 1.0)


def test_a_value_past_one_by_float32_rounding_is_clipped(ttt):
    """onnxruntime's tanh returns 1.0000001 for large inputs; that stopped a training run. A
    rounding error is clipped to 1, anything larger (-1.0001 above) is still refused."""
    overshoot = np.nextafter(np.float32(1), np.float32(2))  # 1.0000001
    result = search.run(ttt, ttt.initial_state(), _answers(overshoot, 0.0, slice(None)), SearchConfig(num_simulations=20))
    assert result.simulations[0] == 20 and result.root_values[0] <= 1.0


def test_finished_games_are_skipped_and_cannot_advance(ttt):
    tree = Search(ttt, np.stack([ttt.play([0, 3, 1, 4, 2]), ttt.initial_state()]), SearchConfig(num_simulations=20))
    result = tree.run(UNIFORM)
    assert result.actions[0] == -1 and result.simulations[0] == 0 and result.actions[1] >= 0
    assert tree.root_terminal.tolist() == [True, False]
    with pytest.raises(games.IllegalMoveError, match="game 0 is over"):
        tree.advance([0], games=[0])


def test_cheap_rules_build_the_same_trees_as_the_dispatchers(c4):
    assert all(hasattr(r, "__wrapper_address__") for r in c4.kernels) and c4.kernels is c4.kernels
    states = np.stack([c4.play(m) for m in ([], C4_BLOCK)])
    config = SearchConfig(num_simulations=200, leaves_per_step=4)
    cheap = Search(c4, states, config, seed=0)
    plain = Search(c4, states, config, seed=0)
    plain._rules = tuple(r.kernel for r in c4.kernels)  # the numba dispatchers themselves
    for evaluator in (ROLLOUT, deterministic_net):
        a, b = cheap.run(evaluator), plain.run(evaluator)
        np.testing.assert_array_equal(a.visit_counts, b.visit_counts)
        np.testing.assert_array_equal(a.q_values, b.q_values)


def test_import_does_not_load_torch_or_onnxruntime():
    code = "import sys, search; print(sorted(m for m in ('torch', 'onnxruntime') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_replace_keeps_validation():
    with pytest.raises(SearchError):
        replace(SearchConfig(), num_simulations=-5)
