"""``selfplay bench net``: network evaluations per second, by batch size and inference path.

A search meets its network through one evaluator call (``float32[N, C, H, W]`` observations and
``bool[N, A]`` masks in, ``float32[N, A]`` logits and ``float32[N]`` values out, as numpy). This
times that call as the search makes it, host-to-device copies included, for each path a run can
take on its device:

* CPU: ``torch`` (eager float32), ``onnx`` (onnxruntime, what CPU actors run) and ``int8``
  (onnxruntime with the network quantized as ``run.inference int8`` does, calibrated here on
  random planes: faster than float32 only where the CPU has 8-bit dot products,
  :func:`selfplay.model.inference.int8_is_fast`), each with ``--threads`` intra-op threads;
* CUDA: ``fp32`` (eager float32), ``bf16`` (channels-last, bf16 autocast: what CUDA actors run)
  and ``bf16-compiled`` (the same under ``torch.compile``, compiled once per batch size; the
  compile time is reported apart, never in the rate).

The network is a fresh one of the size asked for (``128x10``: 128 channels, 10 residual blocks;
weights do not change the speed) or a checkpoint's. ``selfplay bench search --net`` times the
whole search with such a network instead.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import games
from search.config import SearchError

__all__ = ["PATHS", "bench_net", "network_evaluator", "parse_net"]

#: Inference paths by device type.
PATHS = {"cpu": ("torch", "onnx", "int8"), "cuda": ("fp32", "bf16", "bf16-compiled")}


def parse_net(spec: str, game: games.Game, device: str):
    """``spec`` -> a network in eval mode on the CPU: ``CxB`` (a fresh ResNet, C channels, B
    blocks), ``mlp`` (the 2 x 64 NPC brain), ``default`` (the size :func:`default_net_config`
    picks for ``device``) or a checkpoint (run directory, ``ckpt-*.json``)."""
    import torch

    from ..model.checkpoint import load_checkpoint
    from ..model.network import NetConfig, build_network, default_net_config

    torch.manual_seed(0)
    if spec == "default":
        config = default_net_config(device)
    elif spec == "mlp":
        config = default_net_config(device, kind="mlp")
    elif match := re.fullmatch(r"(\d+)x(\d+)", spec):
        config = NetConfig(channels=int(match[1]), blocks=int(match[2]), hidden=min(int(match[1]), 256))
    elif Path(spec).exists():
        return load_checkpoint(spec, expect_game=game).build_model().eval()
    else:
        raise SearchError(f"--net {spec!r}: expected CHANNELSxBLOCKS (128x10), mlp, default or a checkpoint path")
    return build_network(config, game.obs_shape, game.num_actions).eval()


def network_evaluator(model, game: games.Game, device: str, path: str, threads: int = 1):
    """The search evaluator for ``model`` along inference ``path`` (see :data:`PATHS`). A copy
    of the model is moved, so one model can feed several paths."""
    import copy

    import torch

    from search import TorchEvaluator

    from ..model.inference import evaluator_for
    from ..model.network import prepare_for_device

    kind = torch.device(device).type
    if path not in PATHS.get(kind, ()):
        raise SearchError(f"inference path {path!r} does not run on {device}; choose from {', '.join(PATHS.get(kind, ()))}")
    model = copy.deepcopy(model)
    if path in ("fp32", "bf16-compiled"):  # the variants runs do not take
        prepare_for_device(model, device, compile=path == "bf16-compiled", channels_last=path != "fp32")
        evaluator = TorchEvaluator(model, device=device, autocast=None if path == "fp32" else "bfloat16")
    elif path == "int8":  # the actors' network with run.inference int8
        from search import OnnxEvaluator

        from ..model.inference import int8_onnx, onnx_bytes

        calibration, _ = _random_inputs(game, 256, np.random.default_rng(1))
        evaluator = OnnxEvaluator(int8_onnx(onnx_bytes(model, game.obs_shape), calibration), threads=threads)
    else:  # what a run takes: onnxruntime or torch on the CPU, channels-last bf16 on CUDA
        if path == "torch":
            torch.set_num_threads(threads)
        evaluator = evaluator_for(model, game.obs_shape, device, "onnx" if path == "onnx" else "torch", threads)
    evaluator.label = f"{path} on {device}"
    return evaluator


def _random_inputs(game: games.Game, batch: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Observations of random 0/1 planes and all-legal masks: the network's cost does not depend
    on what the planes hold."""
    obs = (rng.random((batch, *game.obs_shape)) < 0.3).astype(np.float32)
    return obs, np.ones((batch, game.num_actions), dtype=bool)


def _time_calls(evaluator, obs: np.ndarray, mask: np.ndarray, seconds: float) -> dict[str, float]:
    began = time.perf_counter()
    evaluator(obs, mask)  # first call at this size: allocations, cuDNN's choice, a compile
    first_call = time.perf_counter() - began
    evaluator(obs, mask)
    calls, spent = 0, 0.0
    while spent < seconds or calls < 3:
        began = time.perf_counter()
        evaluator(obs, mask)
        spent += time.perf_counter() - began
        calls += 1
    return {
        "evals_per_second": calls * len(obs) / spent,
        "ms_per_call": 1000 * spent / calls,
        "first_call_seconds": first_call,
    }


def bench_net(
    game_name: str = "connect4",
    net: str = "default",
    device: str = "cpu",
    batches: Sequence[int] = (1, 64, 256, 1024),
    paths: Sequence[str] | None = None,
    seconds: float = 1.0,
    threads: int = 1,
    progress: bool = True,
    **options: Any,
) -> dict[str, Any]:
    """Evaluations/s of ``net`` for ``game_name`` on ``device``, for every batch size and path
    (default: every path of the device, :data:`PATHS`); a JSON-ready dict. ``rows`` holds one
    entry per (path, batch)."""
    import sys

    import torch

    from ..model.network import count_parameters

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise SearchError("bench net: --device cuda, but torch sees no CUDA device")
    if not batches or min(batches) < 1 or seconds <= 0:
        raise SearchError(f"bench net: batch sizes and seconds must be positive, got {list(batches)} and {seconds}")
    game = games.make(game_name, **options)
    model = parse_net(net, game, device)
    kind = torch.device(device).type
    paths = list(paths or PATHS[kind])
    rng = np.random.default_rng(0)
    report: dict[str, Any] = {
        "game": game.version_tag,
        "net": model.config.describe() if hasattr(model, "config") else net,
        "parameters": count_parameters(model),
        "device": torch.cuda.get_device_name(device) if kind == "cuda" else f"cpu, {threads} thread(s)",
        "torch": torch.__version__,
        "rows": [],
    }
    for path in paths:
        evaluator = network_evaluator(model, game, device, path, threads)
        for batch in batches:
            row = {"path": path, "batch": batch, **_time_calls(evaluator, *_random_inputs(game, batch, rng), seconds)}
            report["rows"].append(row)
            if progress:
                print(f"  {path:>14} batch {batch:>6}: {row['evals_per_second']:>12,.0f} evals/s", file=sys.stderr, flush=True)
    return report


def format_report(report: dict[str, Any]) -> str:
    """The report as a table: one row per batch size, one column per path."""
    paths = list(dict.fromkeys(row["path"] for row in report["rows"]))
    batches = list(dict.fromkeys(row["batch"] for row in report["rows"]))
    rate = {(row["path"], row["batch"]): row["evals_per_second"] for row in report["rows"]}
    lines = [
        f"{report['game']}: network {report['net']} ({report['parameters']:,} parameters) on {report['device']}, "
        f"torch {report['torch']}; evaluations/s through the search's evaluator call",
        f"{'batch':>8} " + " ".join(f"{path:>14}" for path in paths),
    ]
    for batch in batches:
        lines.append(f"{batch:>8} " + " ".join(f"{rate[path, batch]:>14,.0f}" for path in paths))
    return "\n".join(lines)
