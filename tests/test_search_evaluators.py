"""Network evaluators (torch, onnxruntime) against the model they wrap, and the search's
behaviour when an evaluator fails."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import games
import search
from search import OnnxEvaluator, Search, SearchConfig, SearchError, TorchEvaluator

torch = pytest.importorskip("torch")
# The tiny ONNX files here use the TorchScript exporter (dynamo=False), which torch deprecates.
onnx_export = pytest.mark.filterwarnings("ignore::DeprecationWarning")


class TinyNet(torch.nn.Module):
    """float32[N, C, H, W] -> (logits[N, A], value[N] in [-1, 1])."""

    def __init__(self, obs_shape, num_actions):
        super().__init__()
        c, h, w = obs_shape
        self.body = torch.nn.Sequential(torch.nn.Conv2d(c, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten())
        self.policy = torch.nn.Linear(8 * h * w, num_actions)
        self.value = torch.nn.Linear(8 * h * w, 1)

    def forward(self, x):
        z = self.body(x)
        return self.policy(z), torch.tanh(self.value(z)).squeeze(-1)


@pytest.fixture(scope="module")
def ttt():
    return games.make("tictactoe")


@pytest.fixture(scope="module")
def net(ttt):
    torch.manual_seed(0)
    return TinyNet(ttt.obs_shape, ttt.num_actions).eval()


@pytest.fixture(scope="module")
def batch(ttt):
    states = [ttt.play(m) for m in ([], [4], [0, 4, 8], [0, 3, 1, 4])]
    obs = np.stack([ttt.encode(s) for s in states])
    mask = np.stack([ttt.legal_mask(s) for s in states])
    return states, obs, mask


def reference(net, obs):
    with torch.no_grad():
        logits, value = net(torch.from_numpy(obs))
    return logits.numpy(), value.numpy()


def test_torch_evaluator_returns_the_models_outputs(net, batch):
    _, obs, mask = batch
    logits, value = TorchEvaluator(net, device="cpu")(obs, mask)
    want_logits, want_value = reference(net, obs)
    assert logits.dtype == np.float32 and logits.shape == (4, 9) and value.shape == (4,)
    np.testing.assert_allclose(logits, want_logits, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(value, want_value, rtol=1e-6, atol=1e-6)
    bf16_logits, _ = TorchEvaluator(net, autocast="bfloat16")(obs, mask)
    np.testing.assert_allclose(bf16_logits, want_logits, atol=0.05)
    with pytest.raises(SearchError, match="unknown autocast"):
        TorchEvaluator(net, autocast="float7")


def test_torch_evaluator_in_a_search_equals_the_bare_model(ttt, net, batch):
    states, _, _ = batch
    config = SearchConfig(num_simulations=64, leaves_per_step=4)
    wrapped = search.run(ttt, np.stack(states), TorchEvaluator(net), config, seed=0)
    bare = search.run(ttt, np.stack(states), lambda obs, mask: reference(net, obs), config, seed=0)
    np.testing.assert_array_equal(wrapped.visit_counts, bare.visit_counts)
    np.testing.assert_array_equal(wrapped.actions, bare.actions)
    assert wrapped.priors[0] == pytest.approx(torch.softmax(torch.from_numpy(reference(net, batch[1])[0][0]), 0).numpy(), abs=1e-6)


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory, net, ttt):
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            net,
            (torch.zeros(1, *ttt.obs_shape),),
            str(path),
            input_names=["obs"],
            output_names=["logits", "value"],
            dynamic_axes={"obs": {0: "n"}, "logits": {0: "n"}, "value": {0: "n"}},
            opset_version=17,
            dynamo=False,
        )
    return path


def test_onnx_evaluator_matches_torch(onnx_file, net, batch, ttt):
    _, obs, mask = batch
    want_logits, want_value = reference(net, obs)
    for source in (onnx_file, onnx_file.read_bytes()):
        logits, value = OnnxEvaluator(source, threads=1)(obs, mask)
        np.testing.assert_allclose(logits, want_logits, atol=1e-5)
        np.testing.assert_allclose(value, want_value, atol=1e-5)
    result = search.run(ttt, batch[0][3], OnnxEvaluator(onnx_file), SearchConfig(num_simulations=200), seed=0)
    assert result.actions[0] == 2  # X wins at once, whatever the untrained prior says


@onnx_export
def test_onnx_evaluator_names_missing_inputs_and_outputs(tmp_path, net, ttt):
    path = tmp_path / "renamed.onnx"
    torch.onnx.export(
        net, (torch.zeros(1, *ttt.obs_shape),), str(path), input_names=["x"],
        output_names=["p", "v"], opset_version=17, dynamo=False,
    )
    with pytest.raises(SearchError, match="needs input 'obs' and outputs 'logits', 'value'"):
        OnnxEvaluator(path)


def test_an_evaluator_error_leaves_the_trees_as_they_were(ttt, net):
    tree = Search(ttt, np.stack([ttt.initial_state(), ttt.play([4])]), SearchConfig(num_simulations=30, capacity=200), seed=0)
    evaluator = TorchEvaluator(net)
    tree.run(evaluator)
    count = tree.tree_sizes.copy()
    visits = tree.tree.node_visits.copy()
    calls = []

    def failing(obs, mask):
        calls.append(len(obs))
        if len(calls) == 3:
            raise RuntimeError("the GPU fell over")
        return evaluator(obs, mask)

    with pytest.raises(RuntimeError, match="fell over"):
        tree.run(failing)
    # Completed simulations stay; the two that were in flight left no visit or virtual loss.
    t = tree.tree
    done = t.sims_done.copy()
    assert (done == len(calls) - 1).all()  # every step before the failing one completed
    assert (t.node_visits[:, 0] == visits[:, 0] + done).all()
    for b in range(2):
        new = slice(count[b], t.node_count[b])
        assert (t.node_visits[b, new][t.node_status[b, new] == 0] == 0).all()
        assert (t.node_value_sum[b, new][t.node_status[b, new] == 0] == 0).all()
        old = slice(0, count[b])
        assert (t.node_visits[b, old] >= visits[b, old]).all()
    result = tree.run(evaluator)
    assert (result.simulations == 30).all()
    assert (result.visit_counts.sum(1) == visits[:, 0] - 1 + done + 30).all()
