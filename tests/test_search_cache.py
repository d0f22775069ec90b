"""The evaluation cache (search.cache): exact answers, one network call per new position, a full
table still exact; self-play through it plays the very same games with fewer
network evaluations."""

from __future__ import annotations

import numpy as np
import pytest

import games
from search import SearchConfig
from search.cache import EvaluationCache
from selfplay.config import ConfigError, SelfPlayConfig
from selfplay.training.actor import Actor
from selfplay.training.messages import ActorSpec


class CountingNet:
    """A deterministic stand-in for a network that records every row it is asked for: logits and
    value are functions of the observation's bytes, different for different positions."""

    def __init__(self) -> None:
        self.rows = 0
        self.calls = 0

    def __call__(self, obs: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.rows += obs.shape[0]
        self.calls += 1
        flat = obs.reshape(obs.shape[0], -1).astype(np.float64)
        weights = np.sin(np.arange(1, flat.shape[1] + 1))  # [F]
        value = np.tanh(flat @ weights).astype(np.float32)  # [N]
        logits = (np.cos(np.outer(flat @ weights, np.arange(1, mask.shape[1] + 1))) * mask).astype(np.float32)  # [N, A]
        return logits, value


def batch(ids: list[int], planes: int = 2, actions: int = 9) -> tuple[np.ndarray, np.ndarray]:
    """Observations ``[N, planes, 3, 3]`` that differ exactly when the ids differ, and full masks."""
    obs = np.zeros((len(ids), planes, 3, 3), np.float32)
    for row, i in enumerate(ids):
        obs[row].reshape(-1)[: i.bit_length()] = [(i >> b) & 1 for b in range(i.bit_length())]
        obs[row, -1, 2, 2] += 1  # no all-zero row: id 0 is a position too
    return obs, np.ones((len(ids), actions), np.bool_)


def test_answers_equal_the_network_and_each_new_position_is_evaluated_once():
    net, cache = CountingNet(), EvaluationCache(1 << 16)
    obs, mask = batch([1, 2, 3, 2, 1])  # a batch with repeats in it
    logits, value = cache(obs, mask, net)
    want_logits, want_value = CountingNet()(obs, mask)
    assert np.array_equal(logits, want_logits) and np.array_equal(value, want_value)
    assert net.rows == 3 and cache.hits == 2 and cache.lookups == 5

    obs, mask = batch([3, 4, 1])  # two remembered, one new
    logits, value = cache(obs, mask, net)
    want_logits, want_value = CountingNet()(obs, mask)
    assert np.array_equal(logits, want_logits) and np.array_equal(value, want_value)
    assert net.rows == 4 and net.calls == 2 and cache.hits == 4

    cache(*batch([1, 3]), net)  # all remembered: no call at all
    assert net.calls == 2


def test_the_mask_is_part_of_the_key():
    net, cache = CountingNet(), EvaluationCache(10)
    obs, mask = batch([5, 5])
    mask[1, 0] = False  # same observation, another legal-move mask
    logits, _ = cache(obs, mask, net)
    assert net.rows == 2 and logits[1, 0] == 0 and logits[0, 0] != 0


def test_a_full_table_replaces_entries_and_stays_exact():
    net, cache = CountingNet(), EvaluationCache(3)
    assert cache.capacity == 4  # rounded up to a power of two
    ids = list(range(40))
    obs, mask = batch(ids)
    logits, value = cache(obs, mask, net)  # ten times more positions than entries
    want_logits, want_value = CountingNet()(obs, mask)
    assert np.array_equal(logits, want_logits) and np.array_equal(value, want_value)
    assert net.rows == 40 and 1 <= len(cache) <= 4
    for _ in range(3):  # whatever stayed, the answers do not change
        logits, value = cache(obs, mask, net)
        assert np.array_equal(logits, want_logits) and np.array_equal(value, want_value)
    assert net.rows < 40 * 4  # the entries kept were hits
    cache.clear()
    assert len(cache) == 0
    rows = net.rows
    cache(*batch([7]), net)
    assert net.rows == rows + 1  # cleared: asked again


def test_bad_capacity_is_a_one_line_error():
    with pytest.raises(ValueError, match="capacity must be an integer >= 1"):
        EvaluationCache(0)
    with pytest.raises(ConfigError, match="cache_positions must be >= 0"):
        SelfPlayConfig(cache_positions=-1)


def _self_play(cache_positions: int):
    search = SearchConfig(num_simulations=16, root_policy="gumbel", reuse_tree=True)
    config = SelfPlayConfig(games_per_actor=8, cache_positions=cache_positions, random_opening_moves=2,
                            fast_simulations=4, full_search_prob=0.5)
    actor = Actor(ActorSpec("connect4", {}, search, config, seed=11))
    net = CountingNet()
    actor.set_evaluator(0, net)
    positions, stats = actor.play(300)
    actor.set_evaluator(1, net)  # a new network: the cache starts empty
    more, more_stats = actor.play(100)
    return positions, more, stats, more_stats, net


def test_within_gives_the_largest_power_of_two_that_fits_the_bytes():
    # an entry: 8 bytes of key, 4 per move, 4 of value (Connect Four: 40 bytes)
    assert EvaluationCache.within(64 << 20, 7).capacity == 1 << 20  # 1.68M fit; the cap is 2**20
    assert EvaluationCache.within(64 << 20, 36).capacity == 1 << 18  # 6x6 Othello: 156 bytes, 430k fit
    assert EvaluationCache.within(40 * 1000, 7, max_capacity=1 << 20).capacity == 512
    assert EvaluationCache.within(10, 7).capacity == 1  # not even one fits: one entry
    big = EvaluationCache.within(64 << 20, 65)  # 8x8 Othello
    assert big.capacity * (8 + 4 * 65 + 4) <= 64 << 20 < 2 * big.capacity * (8 + 4 * 65 + 4)


def test_self_play_through_the_cache_plays_the_same_games_with_fewer_evaluations():
    plain, plain_more, plain_stats, plain_more_stats, plain_net = _self_play(0)
    cached, cached_more, stats, more_stats, net = _self_play(10_000)
    for a, b in ((plain, cached), (plain_more, cached_more)):
        assert np.array_equal(a.obs, b.obs) and np.array_equal(a.policy, b.policy) and np.array_equal(a.value, b.value)
    assert plain_stats.cache_hits == 0 and plain_stats.evaluations == plain_net.rows - plain_more_stats.evaluations
    assert stats.cache_hits > 0 and more_stats.cache_hits > 0
    # every position the search asked for was either evaluated or answered from the cache
    assert stats.evaluations + stats.cache_hits == plain_stats.evaluations
    assert net.rows == stats.evaluations + more_stats.evaluations < plain_net.rows
