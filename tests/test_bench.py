"""``selfplay bench games``, ``bench net`` and ``bench search --net``: what they time is what they
name (the game with its options; the network the search would call, every inference path computing
the same outputs), and bad input is one line."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import games
from search import SearchError
from search.bench import bench_search
from selfplay.config import available_cores
from selfplay.presets import preset
from selfplay.evaluation.bench import bench_games
from selfplay.evaluation.bench_net import PATHS, bench_net, network_evaluator, parse_net
from selfplay.model.checkpoint import save_checkpoint
from selfplay.training.pool import CUDA_ACTORS
from selfplay.training.trainer import Trainer

C4 = games.make("connect4")


def test_bench_games_runs_the_game_with_its_options():
    report = bench_games(seconds=0.01, names=["connect4"], progress=False)["connect4"]
    assert report["openspiel"]["game"] == "connect_four" and set(report["ratio_native_to"]) == {"pettingzoo", "openspiel"}
    assert all(0 < report[side]["steps_per_s"] < math.inf for side in ("native", "pettingzoo", "openspiel"))
    wide = bench_games(seconds=0.01, names=["connect4"], progress=False, width=9)["connect4"]
    assert wide["options"] == {"width": 9, "height": 6} and "openspiel" not in wide and set(wide["ratio_native_to"]) == {"pettingzoo"}  # other rules: no yardstick
    with pytest.raises(games.GameError, match="width"):
        bench_games(seconds=0.01, names=["connect4"], progress=False, width=0)


def test_parse_net_builds_the_size_asked_for():
    net = parse_net("16x2", C4, "cpu")
    assert (net.config.kind, net.config.channels, net.config.blocks) == ("resnet", 16, 2)
    assert net.obs_shape == tuple(C4.obs_shape) and net.num_actions == C4.num_actions
    assert parse_net("mlp", C4, "cpu").config.kind == "mlp"
    assert (parse_net("default", C4, "cpu").config.channels, parse_net("default", C4, "cuda").config.channels) == (32, 128)
    with pytest.raises(SearchError, match="expected CHANNELSxBLOCKS"):
        parse_net("16by2", C4, "cpu")


def test_parse_net_loads_a_checkpoint(tmp_path):
    model = parse_net("8x1", C4, "cpu")
    path = save_checkpoint(tmp_path, 3, model, game=C4)
    loaded = parse_net(str(path), C4, "cpu")
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values()):
        torch.testing.assert_close(a, b)


def test_every_cpu_path_computes_the_same_network():
    model = parse_net("8x1", C4, "cpu")
    rng = np.random.default_rng(1)
    obs = (rng.random((5, *C4.obs_shape)) < 0.3).astype(np.float32)
    mask = np.ones((5, C4.num_actions), dtype=bool)
    with torch.no_grad():
        want_logits, want_value = model(torch.from_numpy(obs))
    for path in PATHS["cpu"]:
        evaluator = network_evaluator(model, C4, "cpu", path)
        logits, value = evaluator(obs, mask)
        assert logits.shape == (5, C4.num_actions) and value.shape == (5,), path
        tolerance = (0.25, 0.05) if path == "int8" else (1e-4, 1e-4)  # int8: quantized weights and activations
        np.testing.assert_allclose(logits, want_logits.numpy(), atol=tolerance[0], err_msg=path)
        np.testing.assert_allclose(value, want_value.reshape(-1).numpy(), atol=tolerance[1], err_msg=path)
        assert evaluator.label == f"{path} on cpu"
    with pytest.raises(SearchError, match="does not run on cpu"):
        network_evaluator(model, C4, "cpu", "bf16")


def test_bench_net_reports_every_path_and_batch():
    report = bench_net("connect4", "8x1", "cpu", batches=(1, 4), seconds=0.01, progress=False)
    assert json.loads(json.dumps(report)) == report
    assert report["net"] == "resnet 8x1 scalar" and report["parameters"] > 0
    assert [(row["path"], row["batch"]) for row in report["rows"]] == [("torch", 1), ("torch", 4), ("onnx", 1), ("onnx", 4),
                                                                         ("int8", 1), ("int8", 4)]
    assert all(0 < row["evals_per_second"] < math.inf and row["ms_per_call"] > 0 for row in report["rows"])
    with pytest.raises(SearchError, match="must be positive"):
        bench_net("connect4", "8x1", "cpu", batches=(0,), progress=False)
    if not torch.cuda.is_available():
        with pytest.raises(SearchError, match="sees no CUDA device"):
            bench_net("connect4", "8x1", "cuda", progress=False)


def test_bench_search_takes_a_network_evaluator():
    evaluator = network_evaluator(parse_net("8x1", C4, "cpu"), C4, "cpu", "onnx")
    report = bench_search("connect4", evaluator, batch=3, simulations=8, seconds=0.01, openspiel=True)
    assert report["evaluator"] == "onnx on cpu" and report["openspiel"] is None and report["ratio"] is None
    assert report["total_simulations"] == report["moves"] * 3 * 8  # no Connect Four game ends in 8 sims


def test_the_command_line_offers_every_inference_path():
    from selfplay.tools.cli import _NET_PATHS

    assert _NET_PATHS == tuple(dict.fromkeys(path for paths in PATHS.values() for path in paths))


@pytest.fixture
def torch_threads():
    """Restores torch's thread count, which a benchmark run in this process sets."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_command_lines_print_json(capsys, torch_threads):
    """In this process: `selfplay bench ... --json` prints one JSON document; a bad size is one
    line (test_bench_cache_times_the_same_actor_with_and_without_its_cache runs the command's own
    process)."""
    from selfplay.tools.cli import main

    def printed(*argv: str) -> dict:
        assert main(["bench", *argv, "--json"]) == 0
        return json.loads(capsys.readouterr().out)

    arena = printed("games", "--games", "arena", "-o", "map=bridge", "--seconds", "0.01")["arena"]
    assert arena["options"]["map"] == "bridge" and arena["native"]["steps_per_s"] > 0
    net = printed("net", "--net", "8x1", "--batches", "2", "--seconds", "0.01")
    assert [row["path"] for row in net["rows"]] == ["torch", "onnx", "int8"]
    search = printed("search", "--net", "8x1", "--path", "torch", "--batch", "2", "--simulations", "4", "--seconds", "0.01")
    assert search["evaluator"] == "torch on cpu"
    assert main(["bench", "net", "--net", "huge"]) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "--net 'huge'" in err


def test_actor_count_on_cuda_is_capped():
    """-1 is one actor per core; on CUDA at most CUDA_ACTORS, each evaluating on the GPU."""
    config = preset("connect4", "small")
    for device, num_actors, want in (
        ("cpu", -1, available_cores()),
        ("cuda", -1, min(available_cores(), CUDA_ACTORS)),
        ("cuda", 0, 0),
        ("cuda", 12, 12),
    ):
        run = SimpleNamespace(config=config.replace(selfplay=replace(config.selfplay, num_actors=num_actors)), device=device)
        assert Trainer.num_actors(run) == want, (device, num_actors)


def test_bench_cache_times_the_same_actor_with_and_without_its_cache(tmp_path):
    from selfplay.evaluation.bench_cache import BenchCacheError, bench_cache, format_report

    path = save_checkpoint(tmp_path, 1, parse_net("8x1", C4, "cpu"), game=C4)
    report = bench_cache(path, "small", positions=60, rounds=2, capacity=4096, inference="int8")
    plain, cached = report["rows"]
    assert (plain["cache_positions"], cached["cache_positions"]) == (0, 4096)
    assert plain["hit_rate"] == 0 < cached["hit_rate"] < 1  # the same games: only the cache answers repeats
    assert plain["positions"] >= 120 and cached["positions"] >= 120
    assert report["ratio"] == pytest.approx(cached["positions_per_s"] / plain["positions_per_s"])
    assert "x" in format_report(report).splitlines()[-1]
    with pytest.raises(BenchCacheError, match="capacity must be >= 1"):
        bench_cache(path, capacity=0)
    out = subprocess.run([sys.executable, "-m", "selfplay", "bench", "cache", str(path), "--inference", "fp16"],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "invalid choice" in out.stderr
