"""Self-play actors: training targets from the right point of view, playout caps, resignation,
random openings, and the process pool's messages."""

from __future__ import annotations

import numpy as np
import pytest

import games
import search
from search import SearchConfig, UniformEvaluator
from selfplay.training.actor import Actor
from selfplay.training.messages import ActorError, ActorSpec, SelfPlayStats, Weights
from selfplay.training.processes import ActorPool, LocalActors
from selfplay.config import SelfPlayConfig

TTT = games.make("tictactoe")


def spec(search_config: SearchConfig, **selfplay) -> ActorSpec:
    return ActorSpec("tictactoe", {}, search_config, SelfPlayConfig(**selfplay), seed=7)


def fake_network(obs: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A deterministic stand-in for a network: prefers the centre and corners, and values a
    position by how many more marks the mover has in the middle row."""
    n = obs.shape[0]
    logits = np.tile(np.array([1.0, 0.0, 1.0, 0.0, 2.0, 0.0, 1.0, 0.0, 1.0], np.float32), (n, 1))
    value = np.tanh(obs[:, 0, 1, :].sum(axis=1) - obs[:, 1, 1, :].sum(axis=1)).astype(np.float32)
    return logits, value


def constant_value(v: float):
    """Every position is worth ``v`` to the player to move there."""

    def evaluate(obs: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros(mask.shape, np.float32), np.full(obs.shape[0], v, np.float32)

    return evaluate


def state_from_obs(obs: np.ndarray) -> np.ndarray:
    """The tic-tac-toe state an observation encodes (plane 0 the mover's marks, X moves at even plies)."""
    mine = int(sum(1 << c for c in range(9) if obs[0].reshape(-1)[c]))
    theirs = int(sum(1 << c for c in range(9) if obs[1].reshape(-1)[c]))
    ply = bin(mine).count("1") + bin(theirs).count("1")
    x, o = (mine, theirs) if ply % 2 == 0 else (theirs, mine)
    return np.array([x, o, ply], np.int64)


def split_games(positions) -> list[slice]:
    """Row ranges of the games in ``positions`` (no openings: a game starts at the empty board)."""
    starts = [i for i in range(len(positions)) if positions.obs[i].sum() == 0] + [len(positions)]
    assert starts[0] == 0
    return [slice(a, b) for a, b in zip(starts, starts[1:])]


def test_positions_are_seen_and_valued_from_the_player_to_move():
    actor = Actor(spec(SearchConfig(num_simulations=8, root_policy="gumbel"), games_per_actor=4))
    actor.set_evaluator(0, UniformEvaluator())
    positions, stats = actor.play(200)
    n = len(positions)
    assert positions.obs.shape == (n, 2, 3, 3) and positions.policy.shape == (n, 9) and positions.value.shape == (n,)
    assert positions.obs.dtype == positions.policy.dtype == positions.value.dtype == np.float32
    assert n == stats.positions >= 200 and stats.games >= 1 and stats.moves == stats.full_moves
    assert np.allclose(positions.policy.sum(axis=1), 1, atol=1e-5)
    occupied = positions.obs.sum(axis=1).reshape(n, 9) > 0
    assert (positions.policy[occupied] == 0).all(), "policy targets on occupied cells"
    # the mover never has more marks than the opponent (X moves when counts are equal)
    assert (positions.obs[:, 0].sum(axis=(1, 2)) <= positions.obs[:, 1].sum(axis=(1, 2))).all()
    decisive = 0
    for game in split_games(positions):
        values = positions.value[game]
        if (values == 0).all():
            continue  # a draw is 0 for everyone
        decisive += 1
        # players alternate, so the score alternates; the last mover made the winning move
        assert values[-1] == 1.0
        assert np.array_equal(values[:-1], -values[1:])
    assert decisive >= 1  # with random play some games are won: the check above ran


def test_only_full_searches_become_training_positions():
    full, fast = SearchConfig(num_simulations=8, root_policy="puct", reuse_tree=False), 1
    actor = Actor(spec(full, games_per_actor=8, fast_simulations=fast, full_search_prob=0.3))
    actor.set_evaluator(0, fake_network)
    positions, stats = actor.play(60)
    assert stats.full_moves < stats.moves and 0 < len(positions) <= stats.full_moves
    states = np.stack([state_from_obs(o) for o in positions.obs])
    expected = search.run(TTT, states, fake_network, full).policy
    cheap = search.run(TTT, states, fake_network, SearchConfig(num_simulations=fast, reuse_tree=False)).policy
    assert np.allclose(positions.policy, expected, atol=1e-6)
    assert not np.allclose(positions.policy, cheap, atol=1e-3)  # a fast search would have shown


def test_resignation_and_the_false_resignation_count():
    config = SearchConfig(num_simulations=8, root_policy="gumbel")
    # The evaluator says every position is won for its player to move, so the root value of
    # every search is bad for the mover: X wants to resign at once, in every game.
    actor = Actor(spec(config, games_per_actor=16, resign_value=-0.5, resign_playout_fraction=0.5,
                       resign_from_generation=1))
    actor.set_evaluator(0, constant_value(1.0))
    _, stats = actor.play(100)
    assert stats.resignations == 0 and stats.resign_checks == 0  # not yet: generation 0 < 1

    actor = Actor(spec(config, games_per_actor=16, resign_value=-0.5, resign_playout_fraction=0.5,
                       resign_from_generation=0))
    actor.set_evaluator(0, constant_value(1.0))
    positions, stats = actor.play(150)
    assert stats.resignations > 0 and stats.resign_checks > 0
    assert stats.resignations + stats.resign_checks == stats.games  # each game: resigned, or checked
    games_ = split_games(positions)
    resigned = [g for g in games_ if g.stop - g.start == 1]
    played_out = [g for g in games_ if g.stop - g.start > 1]
    assert len(resigned) == stats.resignations and len(played_out) == stats.resign_checks
    for g in resigned:  # X resigned on the empty board: X's one position scores -1
        assert positions.value[g.start] == -1.0
    # X would have resigned in every played-out game; it was wrong wherever X did not lose
    assert stats.false_resignations == sum(positions.value[g.start] >= 0 for g in played_out)
    assert np.isnan(SelfPlayStats().false_resignation_rate)


def test_random_openings_start_games_off_the_beaten_track():
    config = SearchConfig(num_simulations=4, root_policy="gumbel")
    actor = Actor(spec(config, games_per_actor=400, random_opening_moves=3))
    starts = actor.tree.root_states
    plies = starts[:, 2]
    assert set(plies.tolist()) == {0, 1, 2, 3} and np.array_equal(actor.moves, plies)
    assert not actor.tree.root_terminal.any()
    assert len({tuple(s) for s in starts[plies == 2]}) > 20  # random moves, not one line
    actor.set_evaluator(0, UniformEvaluator())
    positions, stats = actor.play(50)
    assert stats.game_length > stats.positions  # opening moves count as moves, never as positions


def test_actor_needs_a_network_first():
    actor = Actor(spec(SearchConfig(num_simulations=2), games_per_actor=2))
    with pytest.raises(RuntimeError, match="set_weights"):
        actor.play(1)


def test_local_actors_and_stop():
    actors = LocalActors(spec(SearchConfig(num_simulations=4, root_policy="gumbel"), games_per_actor=4))
    actors.actor.set_evaluator(0, UniformEvaluator())
    calls = []
    positions, stats = actors.actor.play(10_000, should_stop=lambda: len(calls) > 3 or calls.append(1))
    assert len(calls) == 4 and stats.moves == 4 * 4  # stopped after four moves of each game


@pytest.fixture(scope="module")
def onnx_weights() -> Weights:
    import warnings

    from selfplay.model.inference import onnx_bytes
    from selfplay.model.network import NetConfig, build_network

    model = build_network(NetConfig(kind="mlp", layers=1, hidden=16), TTT.obs_shape, TTT.num_actions)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Weights("onnx", onnx_bytes(model, TTT.obs_shape))


def test_a_pool_of_processes_plays_with_the_weights_it_is_sent(onnx_weights):
    pool = ActorPool(spec(SearchConfig(num_simulations=4, root_policy="gumbel"), games_per_actor=8), count=2)
    try:
        seen = []
        positions, stats = pool.collect(3, onnx_weights, 40, on_progress=seen.append)
        assert len(positions) == stats.positions >= 40 and stats.games > 0
        assert positions.obs.shape[1:] == TTT.obs_shape and np.allclose(positions.policy.sum(axis=1), 1, atol=1e-5)
        assert stats.evaluations > 0 and seen  # the network ran, and progress was reported
        again, _ = pool.collect(4, onnx_weights, 10)  # the actors keep serving
        assert len(again) >= 10
        with pytest.raises(ActorError, match="unknown weights format"):
            pool.collect(5, Weights("pickle", b""), 10)
    finally:
        pool.close()
    assert not any(p.is_alive() for p in pool.processes)


# ----------------------------------------------------------------------------- resignation threshold


def test_only_a_full_search_resigns_and_played_out_games_report_their_record_lows():
    config = SearchConfig(num_simulations=8, root_policy="gumbel")
    # every position is won for its player to move: root values are bad for the mover
    actor = Actor(spec(config, games_per_actor=4, fast_simulations=2, full_search_prob=0.2, resign_value=-0.5,
                       resign_playout_fraction=0.3, resign_from_generation=0))
    actor.set_evaluator(0, constant_value(1.0))
    full = {}
    real_run = actor.tree.run

    def run(evaluator, simulations, move_numbers):  # which games get a full search this move
        full["now"] = simulations == config.num_simulations
        return real_run(evaluator, simulations=simulations, move_numbers=move_numbers)

    actor.tree.run = run
    stats = SelfPlayStats()
    moves_without_full_search = 0
    for _ in range(300):
        before, may_resign = stats.resignations, ~actor.no_resign.copy()
        actor._move(actor._evaluator, stats)
        assert stats.resignations - before <= int((full["now"] & may_resign).sum())
        moves_without_full_search += int(not full["now"].any())
        if not full["now"].any():
            assert stats.resignations == before  # fast searches only: nobody resigned
    assert stats.resignations > 0 and moves_without_full_search > 20
    assert stats.moves > stats.full_moves  # fast searches were played, and none of them resigned
    assert stats.resign_samples and len(stats.resign_samples) <= stats.resign_checks + stats.games
    for game in stats.resign_samples:  # record lows: decreasing values, each [value, the player did not lose]
        values = [low[0] for low in game]
        assert values == sorted(values, reverse=True) and len(set(values)) == len(values)
        assert all(isinstance(low[1], bool) and -1 <= low[0] <= 1 for low in game)


def test_a_threshold_sent_to_the_actor_is_the_one_it_resigns_at():
    config = SearchConfig(num_simulations=8, root_policy="gumbel")
    actor = Actor(spec(config, games_per_actor=16, resign_value=-0.5, resign_playout_fraction=0.0, resign_from_generation=0))
    actor.set_evaluator(0, constant_value(1.0))
    actor.set_resign_threshold(-1.0)  # off: nobody resigns, however bad the value
    _, stats = actor.play(60)
    assert stats.resignations == 0
    with pytest.raises(ValueError, match="resign threshold"):
        actor.set_resign_threshold(1.5)


def test_false_resignations_per_threshold_from_record_lows():
    from selfplay.training.resign import resign_check_counts

    # record lows of four played-out games: [value, the player of that low did not lose]
    samples = [
        [[-0.2, True], [-0.7, False]],  # a dip of the eventual winner to -0.2, then the loser at -0.7
        [[-0.6, True]],  # the winner went down to -0.6: any threshold above it resigns it falsely
        [[0.1, False], [-0.95, False]],  # the loser, early and late
        [[-0.3, False], [-0.8, True]],  # the loser first, then the winner lower still
    ]
    checks, false = resign_check_counts(samples, [-0.9, -0.75, -0.65, -0.5, -0.25, -0.1])
    # -0.9: game 3 (-0.95, loser)                          -> 1 check, 0 false
    # -0.75: games 3, 4 (-0.8 by the winner)               -> 2 checks, 1 false
    # -0.65: games 1 (-0.7 loser), 3, 4 (-0.8 winner)       -> 3 checks, 1 false
    # -0.5: games 1, 2 (-0.6 winner), 3, 4                  -> 4 checks, 2 false
    # -0.25: games 1 (-0.7 loser), 2, 3, 4 (-0.3 loser)     -> 4 checks, 1 false
    # -0.1: game 1's first low below is -0.2 (winner)       -> 4 checks, 2 false
    assert checks.tolist() == [1, 2, 3, 4, 4, 4] and false.tolist() == [0, 1, 1, 2, 1, 2]


def test_the_calibrated_threshold_is_the_boldest_within_the_target():
    from selfplay.training.resign import calibrate_resign_threshold

    # 80 games the loser dips to -0.9; 20 games the winner dips to -0.7 (and the loser to -0.95)
    samples = [[[-0.9, False]]] * 80 + [[[-0.7, True], [-0.95, False]]] * 20
    # at -0.9 < v <= -0.7: 100 checks (the twenty by the loser at -0.95), 0 false: the one-sided
    # 95% Wilson bound of 0/n is z^2 / (n + z^2) = 2.706 / 102.7 = 2.6% <= 4%
    # at v > -0.7: 100 checks, 20 false (the winner first): 20%
    t = calibrate_resign_threshold(samples, target=0.05, margin=0.01, floor=-0.99, ceiling=-0.5, step=0.1)
    assert t == pytest.approx(-0.7)  # the boldest candidate at or below -0.7 (candidates -0.5, -0.6, -0.7, ...)
    # fewer games: 64 checks without a false one bound the rate by 2.706 / 66.7 = 4.06% > 4%: the floor
    assert calibrate_resign_threshold(samples[:64], 0.05, 0.01, -0.99, -0.5, 0.1) == -0.99
    # ... and 65 by 3.997%: where no winner ever dipped, the boldest candidate, the ceiling
    assert calibrate_resign_threshold(samples[:65], 0.05, 0.01, -0.99, -0.5, 0.1) == pytest.approx(-0.5)
    # a measured rate under the target is not enough: 3 false in 200 checks (1.5%) bounds it at
    # 3.7%, bold enough; 4 in 200 (2%) at 4.4%, and below -0.8 there is no evidence: the floor
    mixed = [[[-0.8, False]]] * 197 + [[[-0.8, True]]] * 3
    assert calibrate_resign_threshold(mixed, 0.05, 0.01, -0.99, -0.5, 0.1) == pytest.approx(-0.5)
    mixed = [[[-0.8, False]]] * 196 + [[[-0.8, True]]] * 4
    assert calibrate_resign_threshold(mixed, 0.05, 0.01, -0.99, -0.5, 0.1) == -0.99
    # a value head so wrong that even the floor resigns falsely too often: no resigning at all
    wrong = [[[-0.995, True]]] * 5 + [[[-0.995, False]]] * 5
    assert calibrate_resign_threshold(wrong, 0.05, 0.01, -0.99, -0.5, 0.1) == -1.0
    assert calibrate_resign_threshold([], 0.05, 0.01, -0.99, -0.5, 0.1) == -0.99  # no evidence: the floor



def test_the_value_target_mixes_the_game_result_with_the_searchs_root_value():
    """selfplay.root_value_weight w: target = (1 - w) * result + w * root value, both from the
    mover's view. The weight changes no move, so the same seed plays the same games."""
    values = {}
    for w in (0.0, 0.5, 1.0):
        actor = Actor(spec(SearchConfig(num_simulations=16, root_policy="gumbel"), games_per_actor=8, root_value_weight=w))
        actor.set_evaluator(0, fake_network)
        positions, _ = actor.play(120)
        values[w] = positions.value
    result, root, mixed = values[0.0], values[1.0], values[0.5]
    assert len(result) == len(root) == len(mixed)
    assert set(np.unique(result).tolist()) <= {-1.0, 0.0, 1.0}  # the result alone, as AlphaZero
    assert np.all(np.abs(root) <= 1) and not np.array_equal(root, result)
    np.testing.assert_allclose(mixed, 0.5 * result + 0.5 * root, atol=1e-6)
    with pytest.raises(ValueError, match="root_value_weight must be in"):
        SelfPlayConfig(root_value_weight=1.5)
