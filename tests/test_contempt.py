"""Contempt: a draw is worth -contempt to the root's player and +contempt to the other, at
terminal draws the search reaches and, through a W/D/L network's P(draw), at every leaf."""

from __future__ import annotations

import numpy as np
import pytest

import games
import search
from search import OnnxEvaluator, SearchConfig, SearchError, TorchEvaluator, UniformEvaluator
from search.evaluators import predicts_draws

C = 0.4  # the contempt of every search here


@pytest.fixture(scope="module")
def ttt():
    return games.make("tictactoe")


class DrawishEvaluator:
    """Uniform logits, value 0 and P(draw) = ``draw`` at every leaf; counts its calls."""

    predicts_draws = True

    def __init__(self, draw: float) -> None:
        self.draw = draw
        self.calls = {"plain": 0, "draws": 0}

    def __call__(self, obs, mask):
        self.calls["plain"] += 1
        return np.zeros(mask.shape, np.float32), np.zeros(mask.shape[0], np.float32)

    def evaluate_with_draws(self, obs, mask):
        self.calls["draws"] += 1
        return (*self(obs, mask), np.full(mask.shape[0], self.draw, np.float32))


def test_a_terminal_draw_is_worth_minus_contempt_to_the_roots_player(ttt):
    # X O X / X O O / O X .: X's last move (c3) draws
    last = ttt.play([0, 1, 2, 4, 3, 5, 7, 6])
    plain = search.run(ttt, last, UniformEvaluator(), SearchConfig(num_simulations=8), seed=0)
    contempt = search.run(ttt, last, UniformEvaluator(), SearchConfig(num_simulations=8, contempt=C), seed=0)
    assert plain.q_values[0, 8] == 0.0
    assert contempt.q_values[0, 8] == pytest.approx(-C)


def test_leaf_draw_probability_and_the_other_sides_draws_carry_contempt(ttt):
    # X O X / X O O / . X .: O to move. a3 (6): X's c3 draws; c3 (8): X's a3 wins (column a).
    position = ttt.play([0, 1, 2, 4, 3, 5, 7])
    config = SearchConfig(num_simulations=40, contempt=C)
    evaluator = DrawishEvaluator(draw=1.0)
    result = search.run(ttt, position, evaluator, config, seed=0)
    # The leaves after O's moves have X to move (not the root's side): a certain draw is +C for X,
    # so -C for O; the draw X then makes is X's choice, the same -C for O. Every visit of a3 is -C.
    assert result.q_values[0, 6] == pytest.approx(-C)
    assert -1.0 < result.q_values[0, 8] < -C  # a -C first look, then the loss
    assert result.actions[0] == 6
    assert evaluator.calls["draws"] > 0 and evaluator.calls["plain"] == evaluator.calls["draws"]

    half = search.run(ttt, position, DrawishEvaluator(draw=0.5), config, seed=0)
    visits = half.visit_counts[0, 6]  # one leaf look at -C/2, the rest terminal draws at -C
    assert half.q_values[0, 6] == pytest.approx((-C / 2 - C * (visits - 1)) / visits)

    untouched = DrawishEvaluator(draw=1.0)  # no contempt: P(draw) is never asked for
    plain = search.run(ttt, position, untouched, SearchConfig(num_simulations=40), seed=0)
    assert plain.q_values[0, 6] == 0.0 and untouched.calls["draws"] == 0


def test_a_bad_draw_probability_is_one_line(ttt):
    class Broken(DrawishEvaluator):
        def evaluate_with_draws(self, obs, mask):
            return (*self(obs, mask), np.full(mask.shape[0], 1.5, np.float32))

    with pytest.raises(SearchError, match="draw probabilities"):
        search.run(ttt, ttt.initial_state(), Broken(0.0), SearchConfig(num_simulations=4, contempt=C))


def test_contempt_settings():
    with pytest.raises(SearchError, match=r"contempt must be in \[0, 1\]"):
        SearchConfig(contempt=1.5)
    with pytest.raises(SearchError, match="contempt and solver"):
        SearchConfig(contempt=0.2, solver=True)
    config = SearchConfig(num_simulations=50, contempt=0.2)
    assert config.reuse_tree and not config.reuses_tree  # a reused tree holds the old root's view
    assert config.node_capacity == 51
    from selfplay.evaluation.agents import trained_search_config

    played = trained_search_config(200, SearchConfig(root_policy="gumbel", contempt=0.3))
    assert (played.num_simulations, played.root_policy, played.contempt, played.gumbel_scale) == (200, "gumbel", 0.3, 0.0)


def test_wdl_networks_tell_the_draw_probability_through_torch_and_onnx(ttt):
    torch = pytest.importorskip("torch")
    from export.graph import evaluator_onnx
    from selfplay.model.network import NetConfig, build_network
    from selfplay.training.actor import _RoutedEvaluator

    torch.manual_seed(0)
    wdl = build_network(NetConfig(kind="mlp", layers=1, hidden=16, value_head="wdl"), ttt.obs_shape, ttt.num_actions).eval()
    scalar = build_network(NetConfig(kind="mlp", layers=1, hidden=16), ttt.obs_shape, ttt.num_actions).eval()
    states = [ttt.play(m) for m in ([], [4], [0, 4, 8])]
    obs = np.stack([ttt.encode(s) for s in states])
    mask = np.stack([ttt.legal_mask(s) for s in states])
    with torch.no_grad():
        out = wdl.forward_heads(torch.from_numpy(obs))
    want_draw = torch.softmax(out.wdl_logits, -1)[:, 1].numpy()

    torch_eval = TorchEvaluator(wdl)
    onnx_eval = OnnxEvaluator(evaluator_onnx(wdl, ttt.obs_shape))
    for evaluator in (torch_eval, onnx_eval):
        assert predicts_draws(evaluator)
        logits, value, draw = evaluator.evaluate_with_draws(obs, mask)
        np.testing.assert_allclose(draw, want_draw, atol=1e-5)
        np.testing.assert_allclose(value, out.value.numpy(), atol=1e-5)
        np.testing.assert_allclose(logits, out.policy_logits.numpy(), atol=1e-5)
    for evaluator in (TorchEvaluator(scalar), OnnxEvaluator(evaluator_onnx(scalar, ttt.obs_shape))):
        assert not predicts_draws(evaluator)
        with pytest.raises(SearchError, match="cannot tell P\\(draw\\)"):
            evaluator.evaluate_with_draws(obs, mask)

    routed = _RoutedEvaluator([torch_eval, onnx_eval], np.array([0, 1, 0]))
    assert routed.predicts_draws
    _, _, draw = routed.evaluate_with_draws(obs, mask, np.arange(3))
    np.testing.assert_allclose(draw, want_draw, atol=1e-5)
    assert not _RoutedEvaluator([torch_eval, TorchEvaluator(scalar)], np.zeros(3, np.int64)).predicts_draws
