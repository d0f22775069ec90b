"""Networks: shapes and ranges for any game's observation shape, both trunks and value heads,
learning on a fixed batch, config validation, and the device helpers.

Observation shapes are written by hand (tic-tac-toe ``(2, 3, 3)`` -> 9 actions, Connect Four
``(2, 6, 7)`` -> 7), so these tests need no game code.
"""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch

from selfplay.model.network import (
    NetConfig,
    NetConfigError,
    autocast,
    build_network,
    count_parameters,
    default_net_config,
    policy_value_loss,
    prepare_for_device,
    wdl_target,
)

SHAPES = {"tictactoe": ((2, 3, 3), 9), "connect4": ((2, 6, 7), 7)}
CONFIGS = {
    "resnet-scalar": NetConfig(kind="resnet", channels=8, blocks=2, hidden=16),
    "resnet-wdl": NetConfig(kind="resnet", channels=8, blocks=2, hidden=16, value_head="wdl"),
    "resnet-planes": NetConfig(kind="resnet", channels=8, blocks=2, hidden=16, value_planes=3),
    "mlp-scalar": NetConfig(kind="mlp", layers=2, hidden=32),
    "mlp-wdl": NetConfig(kind="mlp", layers=1, hidden=32, value_head="wdl"),
}


def random_batch(obs_shape, num_actions, n=16, seed=0):
    """Binary planes, one-hot policy targets and +-1/0 outcomes: a batch a network can memorise."""
    g = torch.Generator().manual_seed(seed)
    obs = (torch.rand((n, *obs_shape), generator=g) < 0.3).float()
    policy = torch.nn.functional.one_hot(torch.randint(num_actions, (n,), generator=g), num_actions).float()
    value = torch.randint(-1, 2, (n,), generator=g).float()
    return obs, policy, value


@pytest.fixture(autouse=True)
def seeded():
    torch.manual_seed(0)


def value_layer(model) -> torch.nn.Linear:
    """The value head's last layer (raw value or W/D/L logits)."""
    return model.value_fc[-1] if isinstance(model.value_fc, torch.nn.Sequential) else model.value_fc


@pytest.mark.parametrize("game", SHAPES)
@pytest.mark.parametrize("name", CONFIGS)
def test_outputs_have_the_game_shapes_and_values_stay_in_range(game, name):
    obs_shape, num_actions = SHAPES[game]
    model = build_network(CONFIGS[name], obs_shape, num_actions).eval()
    obs, _, _ = random_batch(obs_shape, num_actions, n=5)
    with torch.no_grad():
        logits, value = model(obs)
        heads = model.forward_heads(obs)
    assert logits.shape == (5, num_actions) and logits.dtype == torch.float32
    assert value.shape == (5,) and value.dtype == torch.float32
    assert torch.equal(heads.policy_logits, logits) and torch.equal(heads.value, value)
    assert (heads.wdl_logits is None) == (CONFIGS[name].value_head == "scalar")
    # Positions differ, so outputs must too (the trunk sees the input).
    assert not torch.allclose(logits[0], logits[1])
    # Even with raw value outputs far out of range, values are finite and in [-1, 1].
    last = value_layer(model)
    with torch.no_grad():
        last.weight.mul_(1e4)
        _, value = model(obs)
        assert torch.isfinite(value).all() and (value.abs() <= 1).all()
        # A head certain of a win (scalar: large raw value; W/D/L: large W logit) gives +1.
        last.weight.zero_()
        last.bias.copy_(torch.tensor([50.0, 0.0, -50.0][: last.bias.numel()]))
        _, value = model(obs)
    torch.testing.assert_close(value, torch.ones(5))


def test_wdl_value_is_win_minus_loss_probability():
    model = build_network(CONFIGS["resnet-wdl"], (2, 6, 7), 7).eval()
    obs, _, _ = random_batch((2, 6, 7), 7, n=8)
    with torch.no_grad():
        out = model.forward_heads(obs)
    probs = torch.softmax(out.wdl_logits, dim=-1)
    assert out.wdl_logits.shape == (8, 3)
    torch.testing.assert_close(out.value, probs[:, 0] - probs[:, 2])


def test_wdl_target_is_a_distribution_with_the_outcome_as_expectation():
    z = torch.tensor([1.0, 0.0, -1.0, 0.5, -0.25])
    target = wdl_target(z)
    torch.testing.assert_close(target[:3], torch.eye(3))
    assert (target >= 0).all()
    torch.testing.assert_close(target.sum(-1), torch.ones(5))
    torch.testing.assert_close(target[:, 0] - target[:, 2], z)


@pytest.mark.parametrize("name", CONFIGS)
def test_a_few_optimizer_steps_fit_a_fixed_batch(name):
    model = build_network(CONFIGS[name], (2, 3, 3), 9)
    obs, policy, value = random_batch((2, 3, 3), 9)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        loss, parts = policy_value_loss(model.forward_heads(obs), policy, value)
        torch.testing.assert_close(loss.detach(), parts["policy"] + parts["value"])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.3 * losses[0], losses[::6]


def test_scalar_value_loss_is_mean_squared_error():
    model = build_network(CONFIGS["mlp-scalar"], (2, 3, 3), 9)
    obs, policy, value = random_batch((2, 3, 3), 9, n=6)
    out = model.forward_heads(obs)
    _, parts = policy_value_loss(out, policy, value)
    torch.testing.assert_close(parts["value"], ((out.value - value) ** 2).mean().detach())
    expected_ce = -torch.log_softmax(out.policy_logits, -1)[policy.bool()].mean()
    torch.testing.assert_close(parts["policy"], expected_ce.detach())


def test_mlp_flattens_the_planes_and_is_small():
    mlp = build_network(NetConfig(kind="mlp", layers=2, hidden=32), (2, 6, 7), 7)
    # 84 inputs -> 32 -> 32, heads to 7 and 1.
    assert count_parameters(mlp) == (84 * 32 + 32) + (32 * 32 + 32) + (32 * 7 + 7) + (32 + 1)
    assert count_parameters(mlp) < count_parameters(build_network(default_net_config("cpu"), (2, 6, 7), 7))


def test_resnet_parameter_count_grows_with_blocks_by_one_block():
    base = dict(kind="resnet", channels=16, hidden=8)
    one, two = (count_parameters(build_network(NetConfig(blocks=b, **base), (2, 6, 7), 7)) for b in (1, 2))
    # A block: two bias-free 3x3 convs and two batch norms (scale and shift).
    assert two - one == 2 * (16 * 16 * 9) + 2 * (2 * 16)


def test_each_value_plane_adds_its_convolution_and_its_linear_inputs():
    base = dict(kind="resnet", channels=16, blocks=1, hidden=8)
    one, four = (count_parameters(build_network(NetConfig(value_planes=p, **base), (2, 6, 7), 7)) for p in (1, 4))
    # A plane: a 1x1 conv from 16 channels, its batch norm (scale, shift), and 42 cells x 8 weights.
    assert four - one == 3 * (16 + 2 + 42 * 8)


def test_default_sizes():
    assert default_net_config("cpu") == NetConfig(channels=32, blocks=3)
    gpu = default_net_config("cuda")
    assert gpu.channels > 32 and gpu.blocks > 3
    assert default_net_config("cpu", kind="mlp").kind == "mlp"


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"kind": "transformer"}, "network kind 'transformer'"),
        ({"value_head": "categorical"}, "value head 'categorical'"),
        ({"channels": 0}, "channels must be an integer >= 1"),
        ({"blocks": -1}, "blocks must be an integer >= 0"),
        ({"hidden": 2.5}, "hidden must be an integer"),
        ({"layers": True}, "layers must be an integer"),
        ({"value_planes": 0}, "value_planes must be an integer >= 1"),
    ],
)
def test_bad_configs_are_refused_with_the_field_named(changes, message):
    with pytest.raises(NetConfigError, match=message):
        NetConfig(**changes)


def test_bad_shapes_are_refused():
    with pytest.raises(NetConfigError, match="observation shape"):
        build_network(NetConfig(), (6, 7), 7)
    with pytest.raises(NetConfigError, match="number of actions"):
        build_network(NetConfig(), (2, 6, 7), 0)
    model = build_network(NetConfig(channels=4, blocks=1), (2, 6, 7), 7)
    with pytest.raises(ValueError, match=r"observations must be \[N, 2, 6, 7\], got \[3, 2, 7, 6\]"):
        model(torch.zeros(3, 2, 7, 6))


def test_config_round_trips_through_a_dict_and_documents_every_field():
    cfg = NetConfig(kind="mlp", layers=3, hidden=48, value_head="wdl")
    assert NetConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(NetConfigError, match="unknown network setting.*depth"):
        NetConfig.from_dict({**cfg.to_dict(), "depth": 3})
    for f in dataclasses.fields(NetConfig):
        assert f.metadata.get("help"), f.name


def test_prepare_for_cpu_keeps_outputs_and_state_dict_keys():
    model = build_network(CONFIGS["resnet-scalar"], (2, 6, 7), 7).eval()
    obs, _, _ = random_batch((2, 6, 7), 7, n=4)
    keys = list(model.state_dict())
    with torch.no_grad():
        before = model(obs)
        prepared = prepare_for_device(model, "cpu")
        with autocast("cpu"):
            after = prepared(obs)
    assert prepared is model and list(model.state_dict()) == keys
    torch.testing.assert_close(after, before)


@pytest.mark.slow
def test_compiled_model_matches_and_a_deepcopy_uses_its_own_weights():
    model = build_network(CONFIGS["mlp-scalar"], (2, 3, 3), 9).eval()
    obs, _, _ = random_batch((2, 3, 3), 9, n=4)
    with torch.no_grad():
        reference = model(obs)
        prepare_for_device(model, "cpu", compile=True)
        torch.testing.assert_close(model(obs), reference)
        clone = copy.deepcopy(model)
        for p in clone.parameters():
            p.add_(1.0)
        assert not torch.allclose(clone(obs)[0], reference[0])
        torch.testing.assert_close(model(obs), reference)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("compile", [False, True])
def test_cuda_channels_last_bf16_matches_float32(compile):
    model = build_network(NetConfig(channels=32, blocks=2, value_head="wdl"), (2, 6, 7), 7).eval()
    obs, _, _ = random_batch((2, 6, 7), 7, n=64)
    with torch.no_grad():
        reference = model.forward_heads(obs)
        prepare_for_device(model, "cuda", compile=compile)
        with autocast("cuda"):
            out = model.forward_heads(obs.cuda())
    assert model.channels_last
    assert out.policy_logits.dtype == torch.float32 and out.value.dtype == torch.float32
    torch.testing.assert_close(out.policy_logits.cpu(), reference.policy_logits, atol=0.05, rtol=0.05)
    torch.testing.assert_close(out.value.cpu(), reference.value, atol=0.05, rtol=0.05)


def test_an_int8_network_answers_close_to_float32_and_only_the_actors_get_it(tmp_path):
    """run.inference int8: the actors' network is quantized (QDQ int8, calibrated on replay
    positions) and stays within a few hundredths of float32 on positions like those; ratings keep
    float32."""
    import numpy as np
    import onnx

    import games
    from search import OnnxEvaluator
    from selfplay.config import with_overrides
    from selfplay.presets import preset
    from selfplay.model.inference import int8_onnx, onnx_bytes
    from selfplay.training.trainer import Trainer

    game = games.make("connect4")
    torch.manual_seed(0)
    model = build_network(NetConfig(channels=16, blocks=2, hidden=32), game.obs_shape, game.num_actions).eval()
    rng = np.random.default_rng(0)
    states = [game.initial_state()]
    for _ in range(300):  # positions from random play, as the replay buffer would hold
        state = states[-1] if not game.is_terminal(states[-1]) else game.initial_state()
        states.append(game.next_state(state, int(rng.choice(game.legal_actions(state)))))
    obs = np.stack([game.encode(s) for s in states if not game.is_terminal(s)]).astype(np.float32)
    fp32 = onnx_bytes(model, game.obs_shape)
    int8 = int8_onnx(fp32, obs[:128])
    assert {"QuantizeLinear", "DequantizeLinear"} <= {node.op_type for node in onnx.load_from_string(int8).graph.node}
    mask = np.ones((len(obs) - 128, game.num_actions), bool)
    (logits, value), (logits8, value8) = (OnnxEvaluator(m)(obs[128:], mask) for m in (fp32, int8))
    assert np.abs(value8 - value).mean() < 0.02 and np.abs(logits8 - logits).max() < 0.2
    with pytest.raises(ValueError, match="int8 calibration needs positions"):
        int8_onnx(fp32, obs[0])
    # the trainer: float32 until the buffer can calibrate, then int8 for the actors only
    config = with_overrides(preset("connect4", "tiny"), {"run.inference": "int8", "selfplay.num_actors": 0,
                                                          "run.generations": 1, "run.minutes": 0.0})
    (tmp_path / "run").mkdir()
    trainer = Trainer(config, tmp_path / "run")
    assert trainer._actor_weights() is trainer._weights()
    trainer.buffer.add(obs[:256], np.full((256, game.num_actions), 1 / game.num_actions, np.float32), np.zeros(256, np.float32))
    quantized = trainer._actor_weights()
    assert quantized.format == "onnx" and quantized.data != trainer._weights().data
    assert "QuantizeLinear" in {node.op_type for node in onnx.load_from_string(quantized.data).graph.node}
    assert trainer._actor_weights() is quantized  # once per generation
