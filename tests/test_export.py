"""Export: the brain contract, verification that catches a broken model, the torch-free runtime,
and an exported brain playing exactly as the checkpoint it came from."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch

import games
from export.contract import ALLOWED_OPS, BrainError, read_manifest, sha256_hex
from export.encoding import describe_game
from export.exporter import export_brain
from export.positions import Positions, sample_positions
from export.runtime import Brain
from export.verify import verify_brain
from selfplay.model.checkpoint import save_checkpoint
from selfplay.model.network import NetConfig, build_network


def _trained_like(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    """Random weights and batch-norm statistics far from their defaults, so folding BN into the
    convolutions is really exercised."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():  # reproducible whatever ran before on this worker
            parameter.copy_(torch.randn(parameter.shape, generator=gen) * 0.1)
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.copy_(torch.randn(module.num_features, generator=gen) * 0.5)
                module.running_var.copy_(torch.rand(module.num_features, generator=gen) + 0.5)
                module.weight.copy_(torch.rand(module.num_features, generator=gen) + 0.5)
                module.bias.copy_(torch.randn(module.num_features, generator=gen) * 0.2)
    return model.eval()


@pytest.fixture(scope="module")
def c4():
    return games.make("connect4")


@pytest.fixture(scope="module")
def c4_positions(c4):
    return sample_positions(c4, 1000, seed=1)


@pytest.fixture(scope="module")
def c4_run(c4, tmp_path_factory):
    """A Connect Four checkpoint (the small preset's ResNet 32x2, W/D/L head) and its brain,
    exported with a value and the ML-Agents shape."""
    root = tmp_path_factory.mktemp("c4")
    model = _trained_like(build_network(NetConfig(channels=32, blocks=2, value_head="wdl"), c4.obs_shape, c4.num_actions), 0)
    save_checkpoint(root / "run", 7, model, game=c4, metrics={"elo": 812.5})
    from selfplay.tools.export_cmd import export_checkpoint

    written = export_checkpoint(str(root / "run"), root / "brain", with_value=True, mlagents=True)
    return root, model, written


@pytest.fixture(scope="module")
def arena_brain(tmp_path_factory):
    """The arena's tiny-preset network (ResNet 16x2, scalar value head) as a brain."""
    game = games.make("arena")
    model = _trained_like(build_network(NetConfig(channels=16, blocks=2, hidden=32), game.obs_shape, game.num_actions), 1)
    out = tmp_path_factory.mktemp("arena") / "brain"
    written = export_brain(model, game, out, with_value=True, positions=sample_positions(game, 300, seed=2))
    return game, model, out, written


# ------------------------------------------------------------------------------ the contract


def test_connect4_and_arena_exports_pass_verification_and_keep_the_contract(c4_run, arena_brain):
    _, _, written = c4_run
    _, _, _, arena_written = arena_brain
    for exported in (written[0], arena_written[0]):
        report, manifest = exported.report, exported.manifest
        assert report.checks == ("onnx checker", "opset", "operators", "interface", "metadata", "masks", "optimizations", "reference")
        assert report.batches == (1, 2, 7, 64) and report.max_error_reference <= 1e-4 and report.max_error_value <= 1e-4
        assert report.max_error_logits <= 1e-4 and report.not_done == ()
        model = onnx.load(exported.model_path)
        assert [(o.domain, o.version) for o in model.opset_import] == [("", 15)] and manifest.onnx["opset"] == 15
        assert set(manifest.onnx["operators"]) <= ALLOWED_OPS
        d, a = manifest.obs_size, manifest.num_actions
        for value, (name, want) in zip(
            [*model.graph.input, *model.graph.output],
            [("obs", ["batch", d]), ("action_mask", ["batch", a]), ("logits", ["batch", a]), ("probs", ["batch", a]), ("value", ["batch", 1])],
        ):
            dims = [x.dim_param or x.dim_value for x in value.type.tensor_type.shape.dim]
            assert (value.name, dims, value.type.tensor_type.elem_type) == (name, want, onnx.TensorProto.FLOAT)
        assert manifest.sha256 == sha256_hex(exported.model_path.read_bytes())
        embedded = json.loads({p.key: p.value for p in model.metadata_props}["selfplay.manifest"])
        assert embedded["game"] == manifest.game and embedded["actions"] == manifest.actions
    c4_manifest = written[0].manifest
    assert c4_manifest.strength["elo"] == 812.5 and c4_manifest.training["generation"] == 7
    assert [row["text"] for row in c4_manifest.actions["table"]] == ["1", "2", "3", "4", "5", "6", "7"]
    assert set(c4_manifest.toolchain) >= {"torch", "onnx", "onnxruntime", "selfplay"}


def test_the_manifest_is_enough_to_encode_a_connect4_position_by_hand(c4, c4_run):
    """docs/export.md's worked example: the engine knows the board, the manifest says the rest."""
    root, _, _ = c4_run
    manifest = read_manifest(root / "brain")
    channels, height, width = manifest.obs_shape
    state = c4.play([3, 3, 4, 2])  # X: d1 e1; O: d2 c1 -> X to move
    board = {(height - 1, 3): "X", (height - 1, 4): "X", (height - 2, 3): "O", (height - 1, 2): "O"}  # (row from top, col)
    planes = {p["name"]: p["offset"] for p in manifest.observation["planes"]}
    obs = np.zeros(manifest.obs_size, np.float32)
    for (row, col), who in board.items():  # X is to move, so X's discs are "own"
        obs[planes["own_discs" if who == "X" else "opponent_discs"] + row * width + col] = 1.0
    np.testing.assert_array_equal(obs, c4.encode(state).reshape(-1))
    assert np.flatnonzero(obs).tolist() == [38, 39, 73, 79]  # the features docs/export.md works out
    mask = np.array([1.0] * width, np.float32)
    brain = Brain.load(root / "brain")
    np.testing.assert_array_equal(brain.evaluate(obs, mask)[0], brain.evaluate(c4.encode(state), c4.legal_mask(state))[0])


@pytest.mark.parametrize("name", games.list_games())
def test_every_registered_game_is_described_plane_by_plane(name):
    game = games.make(name)
    described = describe_game(game)
    planes = described["observation"]["planes"]
    assert len(planes) == game.obs_shape[0] and all(p["meaning"] for p in planes)
    assert described["observation"]["size"] == int(np.prod(game.obs_shape))
    assert [r["text"] for r in described["actions"]["table"]] == [game.action_to_text(a) for a in range(game.num_actions)]


# ------------------------------------------------------------------------------ the runtime


def test_brain_probs_equal_the_checkpoint_networks_softmax_on_real_positions(c4_run, c4_positions):
    root, model, _ = c4_run
    brain = Brain.load(root / "brain")
    probs, value = brain.evaluate(c4_positions.obs, c4_positions.mask)
    with torch.no_grad():
        logits, want_value = model(torch.from_numpy(c4_positions.obs).reshape(-1, 2, 6, 7))
    logits = logits.double().numpy()
    logits[c4_positions.mask == 0] = -np.inf
    want = np.exp(logits - logits.max(axis=1, keepdims=True))
    want /= want.sum(axis=1, keepdims=True)
    assert np.abs(probs - want).max() <= 1e-4 and np.abs(value - want_value.numpy()).max() <= 1e-4
    assert (probs[c4_positions.mask == 0] == 0.0).all()
    # one position in, one answer out; a sampled move needs an explicit generator
    action = brain.act(c4_positions.obs[5], c4_positions.mask[5])
    assert isinstance(action, int) and action == int(probs[5].argmax())
    drawn = brain.act(c4_positions.obs[:50], c4_positions.mask[:50], temperature=1.0, rng=np.random.default_rng(0))
    assert (c4_positions.mask[np.arange(50), drawn] == 1).all()
    with pytest.raises(BrainError, match="rng"):
        brain.act(c4_positions.obs[:2], c4_positions.mask[:2], temperature=1.0)
    with pytest.raises(BrainError, match="observations must be"):
        brain.evaluate(np.zeros(83, np.float32), c4_positions.mask[0])


def test_act_at_a_low_temperature_draws_the_most_probable_move(c4_run, c4_positions):
    """exp(log p / T) underflows to an all-zero row for a small T; act must stay a valid draw
    down to T = 1e-6 and become the argmax, as T = 0 is."""
    root, _, _ = c4_run
    brain = Brain.load(root / "brain")
    obs, mask = c4_positions.obs[:300], c4_positions.mask[:300]
    probs, _ = brain.evaluate(obs, mask)
    top2 = np.sort(probs, axis=1)[:, -2:]
    clear = top2[:, 1] > top2[:, 0] * 1.01  # a most probable move with no near tie
    best = probs.argmax(axis=1)
    np.testing.assert_array_equal(brain.act(obs, mask, temperature=0.0), best)
    for temperature in (1e-2, 1e-4, 1e-6, 1e-300):
        drawn = brain.act(obs, mask, temperature=temperature, rng=np.random.default_rng(0))
        assert (mask[np.arange(len(drawn)), drawn] == 1).all(), temperature
        if temperature <= 1e-4:
            np.testing.assert_array_equal(drawn[clear], best[clear])
    assert brain.act(obs[0], mask[0], temperature=1e-6, rng=np.random.default_rng(0)) == int(best[0])


def test_arena_between_a_checkpoint_and_its_brain_at_zero_visits_plays_identical_moves(c4, c4_run):
    from selfplay.evaluation.agents import load_agent
    from selfplay.evaluation.matches import play_match

    root, _, _ = c4_run
    brain, checkpoint = load_agent(str(root / "brain"), c4, visits=0), load_agent(str(root / "run"), c4, visits=0)
    states = sample_positions(c4, 400, seed=3).states
    np.testing.assert_array_equal(brain.act(states, np.zeros(400, np.int64), 0), checkpoint.act(states, np.zeros(400, np.int64), 0))
    result = play_match(c4, brain, checkpoint, 24, seed=1, opening_moves=4, stop_when_decided=False)
    # deterministic and identical: each pair of games (same opening, seats swapped) is one game replayed
    pairs = sorted(result.records, key=lambda r: r.index)
    assert all(a.result == -b.result and a.plies == b.plies for a, b in zip(pairs[::2], pairs[1::2]))
    assert result.score == 0.5


def test_a_search_on_top_of_the_brain_needs_its_value(c4, c4_run, tmp_path):
    from selfplay.evaluation.agents import load_agent

    root, model, _ = c4_run
    brain = Brain.load(root / "brain")
    states = sample_positions(c4, 8, seed=4).states
    moves = brain.search(c4, states, visits=16)
    assert all(c4.legal_mask(s)[m] for s, m in zip(states, moves))
    assert load_agent(str(root / "brain"), c4, visits=16).act(states, np.zeros(8, np.int64), 0).shape == (8,)
    export_brain(model, c4, tmp_path / "policy", positions=sample_positions(c4, 64))  # no value output
    assert load_agent(str(tmp_path / "policy"), c4, visits=0).act(states, np.zeros(8, np.int64), 0).shape == (8,)
    with pytest.raises(BrainError, match="without a value output"):
        load_agent(str(tmp_path / "policy"), c4, visits=16)
    from selfplay.tools.play import load_opponent  # the window's loader: the same rule

    assert load_opponent(str(tmp_path / "policy"), None, None, 0)[1].act(states, np.zeros(8, np.int64), 0).shape == (8,)
    with pytest.raises(BrainError, match="without a value output"):
        load_opponent(str(tmp_path / "policy"), None, None, 16)
    with pytest.raises(BrainError, match="connect4_v1"):
        load_agent(str(root / "brain"), games.make("connect4", width=6), visits=0)


def test_importing_the_runtime_loads_neither_torch_nor_selfplay(c4_run):
    root, _, _ = c4_run
    code = (
        "import sys, numpy as np\n"
        "from export.runtime import Brain\n"
        f"brain = Brain.load({str(root / 'brain')!r})\n"
        "probs, value = brain.evaluate(np.zeros(84, np.float32), np.ones(7, np.float32))\n"
        "assert abs(probs.sum() - 1) < 1e-5\n"
        "loaded = [m for m in ('torch', 'selfplay', 'onnx') if m in sys.modules]\n"
        "print(','.join(loaded) or 'clean')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "clean"


def test_mlagents_shape_matches_ml_agents_names_and_the_brains_choice(c4_run, c4_positions):
    import onnxruntime as ort

    root, _, written = c4_run
    manifest = written[1].manifest
    assert manifest.kind == "mlagents" and [t.name for t in manifest.inputs] == ["obs_0", "action_masks"]
    session = ort.InferenceSession(str(root / "brain" / "brain.mlagents.onnx"), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    assert names == ["version_number", "memory_size", "discrete_actions", "discrete_action_output_shape", "deterministic_discrete_actions"]
    version, memory, actions, shape, deterministic = session.run(None, {"obs_0": c4_positions.obs, "action_masks": c4_positions.mask})
    assert version.tolist() == [3.0] and memory.tolist() == [0.0] and shape.tolist() == [[7.0]]
    assert actions.dtype == np.int64 and actions.shape == (1000, 1) and (actions == deterministic).all()
    probs, _ = Brain.load(root / "brain").evaluate(c4_positions.obs, c4_positions.mask)
    np.testing.assert_array_equal(actions[:, 0], probs.argmax(axis=1))
    with pytest.raises(BrainError, match="mlagents"):
        Brain.load(root / "brain" / "brain.mlagents.onnx")


# ------------------------------------------------------------------------------ verification


def _tampered(root, tmp_path, change_model=None, change_manifest=None, rehash=True):
    """A copy of the brain with its model and/or manifest changed; with ``rehash`` the manifest
    records the changed model's sha256, as a buggy exporter would."""
    brain = tmp_path / "tampered"
    shutil.copytree(root / "brain", brain)
    manifest = json.loads((brain / "brain.json").read_text())
    if change_model is not None:
        model = onnx.load(brain / "brain.onnx")
        change_model(model)
        data = model.SerializeToString()
        (brain / "brain.onnx").write_bytes(data)
        if rehash:
            manifest["sha256"], manifest["bytes"] = sha256_hex(data), len(data)
    if change_manifest is not None:
        change_manifest(manifest)
    (brain / "brain.json").write_text(json.dumps(manifest))
    return brain


def _wrong_obs_shape(model):
    model.graph.input[0].type.tensor_type.shape.dim[1].dim_value = 83


def _disallowed_op(model):
    next(n for n in model.graph.node if n.op_type == "Relu").op_type = "Elu"


def _flipped_weight(model):
    """The policy head's weights (the Gemm feeding the logits) with their signs flipped."""
    gemms = [n for n in model.graph.node if n.op_type == "Gemm"]
    weights = {t.name: t for t in model.graph.initializer}
    weight = next(weights[n.input[1]] for n in gemms if weights[n.input[1]].dims[0] == 7)  # [A, features]
    weight.CopyFrom(onnx.numpy_helper.from_array(-onnx.numpy_helper.to_array(weight), weight.name))


def _policy_bias(model):
    """The policy head's bias (the Gemm feeding the logits)."""
    weights = {t.name: t for t in model.graph.initializer}
    gemm = next(n for n in model.graph.node if n.op_type == "Gemm" and weights[n.input[1]].dims[0] == 7)
    return weights[gemm.input[2]]


def _shifted_logits(model):
    """Every legal logit 0.5 higher: probs (a softmax) unchanged, the logits a search reads not."""
    bias = _policy_bias(model)
    bias.CopyFrom(onnx.numpy_helper.from_array(onnx.numpy_helper.to_array(bias) + np.float32(0.5), bias.name))


def _masked_logit_1e8(model):
    """Illegal actions' logit -1e8, not the manifest's -1e9: probs still exactly 0 there."""
    constant = next(n for n in model.graph.node if n.op_type == "Constant" and onnx.numpy_helper.to_array(n.attribute[0].t).tolist() == 1e9)
    constant.attribute[0].t.CopyFrom(onnx.numpy_helper.from_array(np.array(1e8, np.float32)))


def _renamed_action(manifest):
    manifest["actions"]["table"][0]["text"] = "left"


def _wrong_output(manifest):
    manifest["outputs"][1]["shape"] = ["batch", 8]


@pytest.mark.parametrize(
    "change_model, change_manifest, rehash, check, words",
    [
        (_wrong_obs_shape, None, True, "interface", "input 'obs' is float32['batch', 83]"),
        (_disallowed_op, None, True, "operators", "is a Elu, not an allowed operator"),
        (_flipped_weight, None, False, "file", "sha256"),
        (_flipped_weight, None, True, "reference", "from the reference by"),
        (None, _renamed_action, True, "metadata", "differ from the manifest in actions"),
        (None, _wrong_output, True, "interface", "the manifest's outputs"),
        (_masked_logit_1e8, None, True, "masks", "an illegal action has logit -1e+08, not the masked_logit -1e+09"),
        (_shifted_logits, None, True, "reference", "logits on legal actions differ from the reference by 5.00e-01"),
    ],
    ids=["wrong-shape", "disallowed-op", "flipped-weight", "flipped-weight-rehashed", "manifest-actions", "manifest-shape",
         "masked-logit", "shifted-logits"],
)
def test_a_tampered_brain_fails_verification_naming_the_check(c4_run, tmp_path, change_model, change_manifest, rehash, check, words):
    root, model, _ = c4_run
    from export.exporter import torch_reference

    brain = _tampered(root, tmp_path, change_model, change_manifest, rehash)
    positions = sample_positions(games.make("connect4"), 80, seed=5)
    with pytest.raises(BrainError) as failure:
        verify_brain(brain, reference=torch_reference(model), positions=positions)
    message = str(failure.value)
    assert "\n" not in message and f"check '{check}' failed" in message and words in message, message


def _unmasked_probs(model):
    """probs = softmax of the raw logits, the mask ignored: illegal actions get probability."""
    nodes = {n.output[0]: n for n in model.graph.node}
    raw_logits = nodes["/Mul_output_0"].input[0]  # the policy Gemm's output, before masking
    softmax = next(n for n in model.graph.node if n.op_type == "Softmax" and n.input[0] == "logits")
    softmax.input[0] = raw_logits
    model.graph.initializer.append(onnx.numpy_helper.from_array(np.ones(1, np.float32), "ones"))
    nodes["probs"].input[1] = "ones"


def test_sample_positions_hold_an_illegal_action_where_random_play_reaches_one(c4):
    """Connect Four's first moves allow every column: a short sample used to have no illegal
    action at all, and a check of masked actions then passed whatever the model did."""
    for count in (1, 8, 64):
        positions = sample_positions(c4, count, seed=0)
        assert len(positions) == count and (positions.mask == 0).any(), count
        assert all(c4.legal_mask(s).astype(np.float32).tolist() == m.tolist() for s, m in zip(positions.states, positions.mask))
        np.testing.assert_array_equal(positions.obs[-1], c4.encode(positions.states[-1]).reshape(-1))
    # the rest of the sample is as before: the first positions of the same random games
    assert (sample_positions(c4, 8, seed=0).states[:7] == sample_positions(c4, 1000, seed=0).states[:7]).all()


def test_a_brain_ignoring_the_mask_fails_verification_on_a_short_sample(c4_run, tmp_path):
    root, _, _ = c4_run
    brain = _tampered(root, tmp_path, _unmasked_probs)
    with pytest.raises(BrainError) as failure:
        verify_brain(brain, count=8)  # the first 8 positions of a random game allow every move
    message = str(failure.value)
    assert "\n" not in message and "check 'masks' failed: an illegal action has probability" in message, message


def test_verification_without_an_illegal_action_says_the_masks_check_was_not_done(c4_run, c4_positions):
    root, _, _ = c4_run
    every_move = c4_positions.mask.all(axis=1)
    positions = Positions(c4_positions.obs[every_move][:8], c4_positions.mask[every_move][:8], c4_positions.states[every_move][:8])
    report = verify_brain(root / "brain", positions=positions)
    assert "masks" not in report.checks and "optimizations" in report.checks
    assert report.not_done == ("masks: none of the 8 positions has an illegal action, so masked actions went unchecked",)
    assert "NOT DONE: masks: none of the 8 positions" in report.summary()


def test_mlagents_verification_compares_the_actions_with_optimisations_on_and_off(c4_run, monkeypatch):
    """The ML-Agents shape outputs actions, not probs: the optimisations check compares them,
    and fails when the optimised session chooses otherwise (here: the lowest legal action)."""
    import export.verify as verify

    root, _, _ = c4_run
    target = root / "brain" / "brain.mlagents.onnx"
    positions = sample_positions(games.make("connect4"), 80, seed=5)

    class LowestLegal:
        def __init__(self, session):
            self.session = session

        def get_inputs(self):
            return self.session.get_inputs()

        def run(self, names, feeds):
            outputs = self.session.run(names, feeds)
            lowest = (feeds["action_masks"] > 0).argmax(axis=1).astype(np.int64).reshape(-1, 1)
            outputs[2], outputs[4] = lowest, lowest  # discrete_actions, deterministic_discrete_actions
            return outputs

    sessions = verify._sessions
    with monkeypatch.context() as patch:
        patch.setattr(verify, "_sessions", lambda data: (sessions(data)[0], LowestLegal(sessions(data)[1])))
        with pytest.raises(BrainError) as failure:
            verify_brain(target, positions=positions)
    message = str(failure.value)
    assert "\n" not in message and "check 'optimizations' failed: discrete_actions with graph optimisations on and off differ" in message, message
    report = verify_brain(target, positions=positions)
    assert "optimizations" in report.checks and report.max_error_optimizations is None and report.not_done == ()
    assert "optimised and not choose the same actions" in report.summary()


def test_export_and_verify_commands(c4_run, tmp_path, capsys):
    from selfplay.tools.cli import main

    root, _, _ = c4_run
    out = tmp_path / "brains"
    assert main(["export", str(root / "run"), "--out", str(out), "--opset", "17", "--positions", "64"]) == 0
    manifest = read_manifest(out)
    assert manifest.onnx["opset"] == 17 and not manifest.has_value
    assert main(["export", "--verify", str(out), "--against", str(root / "run"), "--positions", "64"]) == 0
    assert "verified (file, onnx checker" in capsys.readouterr().out
    assert main(["arena", str(out), str(root / "run"), "--visits", "0", "--games", "2", "--no-progress"]) == 0
    assert "in 2 games, score 50.0%" in capsys.readouterr().out  # the game comes from the manifest
    from export.bench import bench_brain

    timing = bench_brain(str(out), batches=(1, 64), seconds=0.01)
    assert timing["game"] == "connect4_v1" and set(timing["batches"]) == {"1", "64"}
    (out / "brain.onnx").write_bytes((out / "brain.onnx").read_bytes()[:-1] + b"\0")
    assert main(["export", "--verify", str(out), "--positions", "64"]) == 2
    assert "check 'file' failed" in capsys.readouterr().err


def test_analyze_takes_a_brain_directory(c4_run):
    import argparse

    from selfplay.evaluation.analysis import AnalysisEngine
    from selfplay.evaluation.networks import load_game_and_evaluator

    root, _, _ = c4_run
    args = argparse.Namespace(checkpoint=str(root / "brain"), game=None, option=None, device="cpu", threads=1)
    game, evaluator = load_game_and_evaluator(args)
    assert game.version_tag == "connect4_v1"
    (answer,) = AnalysisEngine(game, evaluator, default_visits=16).analyze([{"id": "q", "moves": [3, 3]}])
    assert answer["id"] == "q" and answer["best_move"] in range(7)
