"""The search as self-play uses it: playout caps (a cheap search or a full one per move) in trees
kept from move to move, the targets the actor records from them, and the training config's
check that self-play search settings explore at all."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import games
from search import Search, SearchConfig
from selfplay.training.actor import Actor
from selfplay.training.messages import ActorSpec
from selfplay.config import RunConfig, SelfPlayConfig, TrainConfig, with_overrides
from selfplay.presets import PRESETS, preset

from test_search_rules import mctx_considered_visits


def net(obs: np.ndarray, mask: np.ndarray):
    """A fixed pseudo-network: logits and value are smooth functions of the observation."""
    flat = obs.reshape(len(obs), -1)
    weights = np.sin(np.arange(flat.shape[1] * mask.shape[1], dtype=np.float32)).reshape(flat.shape[1], -1)
    return flat @ weights, np.tanh(flat.sum(1) * 0.3 - 1.0).astype(np.float32)


def root_visits(tree: Search) -> np.ndarray:
    """int[B, A]: the visits each root action has in the trees now (kept ones included)."""
    t = tree.tree
    children = t.children_index[:, 0]
    return np.where(children >= 0, np.take_along_axis(t.node_visits, np.maximum(children, 0), axis=1), 0)


# --------------------------------------------------------------------------- playout caps
@pytest.mark.parametrize("root_policy", ["gumbel", "puct"])
def test_cheap_and_full_searches_in_kept_trees_add_exactly_their_budget(root_policy):
    """As the presets play: each move every game gets a cheap (8) or full (32) search in the tree
    kept from its last move. A search adds exactly its budget to the kept visits, and with Gumbel
    its own visits (not the kept ones) follow sequential halving for its budget."""
    game = games.make("connect4")
    full, fast = 32, 8
    config = SearchConfig(num_simulations=full, root_policy=root_policy, reuse_tree=True,
                          dirichlet_fraction=0.25 * (root_policy == "puct"))
    B = 6
    tree = Search(game, np.stack([game.initial_state()] * B), config, seed=0)
    rng = np.random.default_rng(1)
    kept_any, restarted = False, 0
    for move in range(12):
        sims = np.where(rng.random(B) < 0.4, full, fast)
        kept = root_visits(tree)
        kept_any |= bool(kept.sum(1).min() > 0)
        result = tree.run(net, simulations=sims)
        assert result.simulations.tolist() == sims.tolist()
        np.testing.assert_array_equal(result.visit_counts, root_visits(tree))
        added = result.visit_counts - kept
        assert (added >= 0).all() and added.sum(1).tolist() == sims.tolist()
        if root_policy == "gumbel":
            legal = int(game.legal_mask(tree.root_states[0]).sum())
            for b in range(B):  # the multiset of this search's visits per considered action
                expected = np.zeros(game.num_actions, np.int64)
                schedule = mctx_considered_visits(min(16, legal), int(sims[b]))
                for before in schedule:  # one visit to an action that had `before` of them
                    expected[np.flatnonzero(expected == before)[0]] += 1
                assert sorted(added[b]) == sorted(expected), (move, b)
        assert (result.policy.sum(1) == pytest.approx(1.0, abs=1e-5))
        tree.advance(result.actions)
        over = np.flatnonzero(tree.root_terminal)  # as the actor does: finished games restart
        if over.size:
            tree.set_roots(np.stack([game.initial_state()] * over.size), games=over)
            restarted += over.size
    assert kept_any and restarted  # kept trees were searched, and fresh ones beside them


def test_a_full_search_after_a_cheap_one_sees_the_cheap_ones_visits():
    """PUCT's target is the visit frequencies of the whole kept tree: a full search of 32 after a
    cheap search of 8 in the same tree counts 40 visits, and its target is those 40."""
    game = games.make("connect4")
    config = SearchConfig(num_simulations=32, dirichlet_fraction=0.25, reuse_tree=True)
    tree = Search(game, game.initial_state(), config, seed=2)
    cheap = tree.run(net, simulations=8)
    full = tree.run(net, simulations=32)  # the same root: the search continues
    assert cheap.visit_counts.sum() == 8 and full.visit_counts.sum() == 40
    assert (full.visit_counts >= cheap.visit_counts).all()
    np.testing.assert_allclose(full.policy, full.visit_counts / 40, rtol=1e-6)


def _actor(search_config: SearchConfig, **selfplay) -> Actor:
    return Actor(ActorSpec("tictactoe", {}, search_config, SelfPlayConfig(**selfplay), seed=11))


@pytest.mark.parametrize("root_policy", ["gumbel", "puct"])
def test_the_actor_records_the_full_searches_of_kept_trees(root_policy):
    """With reuse and playout caps (the presets' self-play), every training position carries
    the policy of a full search of that position, never that of a cheap one."""
    config = SearchConfig(num_simulations=16, root_policy=root_policy, reuse_tree=True,
                          dirichlet_fraction=0.25 * (root_policy == "puct"), temperature_moves=4)
    actor = _actor(config, games_per_actor=8, fast_simulations=2, full_search_prob=0.4)
    actor.set_evaluator(0, net)
    searches = {"full": set(), "fast": set()}
    run = actor.tree.run

    def watched(evaluator, simulations=None, move_numbers=None):
        states = actor.tree.root_states
        result = run(evaluator, simulations=simulations, move_numbers=move_numbers)
        for b, sims in enumerate(np.broadcast_to(simulations, (len(states),))):
            key = (actor.game.encode(states[b]).tobytes(), result.policy[b].tobytes())
            searches["full" if sims == 16 else "fast"].add(key)
        return result

    actor.tree.run = watched
    positions, stats = actor.play(80)
    assert stats.full_moves < stats.moves and len(positions) >= 80
    recorded = {(o.tobytes(), p.tobytes()) for o, p in zip(positions.obs, positions.policy)}
    assert recorded <= searches["full"]
    assert searches["fast"] - searches["full"]  # cheap searches happened, and none was recorded
    assert not recorded & (searches["fast"] - searches["full"])


# --------------------------------------------------------------------------- the config check
def _train_config(search: SearchConfig) -> TrainConfig:
    return TrainConfig(game="tictactoe", search=search, run=RunConfig(minutes=1.0))


@pytest.mark.parametrize(
    "search",
    [
        SearchConfig(),  # PUCT, no noise, no temperature
        SearchConfig(temperature_moves=10, temperature=0.0),
        SearchConfig(temperature_moves=0, temperature=1.0),
        SearchConfig(root_policy="gumbel", gumbel_scale=0.0),
    ],
)
def test_self_play_that_cannot_explore_is_warned_about_in_one_line(search):
    with pytest.warns(UserWarning, match=r"^search: .* is deterministic; every game from a given position") as record:
        _train_config(search)
    assert len(record) == 1 and "\n" not in str(record[0].message)


@pytest.mark.parametrize(
    "search",
    [
        SearchConfig(dirichlet_fraction=0.25),  # noise alone varies the games
        SearchConfig(temperature_moves=8),  # temperature alone too
        SearchConfig(root_policy="gumbel"),  # Gumbel noise
    ],
)
def test_self_play_that_explores_is_accepted_quietly(search):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _train_config(search)


def test_presets_and_the_default_search_explore():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert TrainConfig(game="connect4", run=RunConfig(minutes=1.0)).search.root_policy == "gumbel"
        for name in ("tictactoe", "connect4", "othello"):
            for size in PRESETS:
                preset(name, size)
    with pytest.warns(UserWarning, match="PUCT self-play with no Dirichlet noise"):  # a flag away
        with_overrides(preset("tictactoe", "tiny"), {"search.root_policy": "puct"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with_overrides(preset("tictactoe", "tiny"), {"search.root_policy": "puct", "search.dirichlet_fraction": 0.25})
