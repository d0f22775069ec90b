"""From a network to a search evaluator, picking the fastest inference path for the device.

On the CPU a small policy-value network is the bottleneck of self-play, and onnxruntime evaluates
it faster than eager torch at every batch size, most of all at batch 1 (`selfplay bench net`
measures both). So CPU evaluators run the network through onnxruntime, converted in memory. On CUDA the torch
evaluator runs it (bf16 autocast), because batches there are large.

* :func:`onnx_bytes`: a network as an ONNX model (input ``obs`` float32[N, C, H, W], outputs
  ``logits`` float32[N, A] and ``value`` float32[N], with a dynamic batch).
* :func:`int8_onnx`: that model quantized to int8 (calibrated on positions), for self-play actors
  on the CPU (``run.inference int8``).
* :func:`evaluator_for`: a network to an evaluator for ``device``.
* :func:`load_evaluator`: a checkpoint (run directory, ``ckpt-*.json`` or ``.safetensors``), an
  exported brain (``export``: a brain directory, or its ``.onnx`` with the manifest beside) or a
  bare ``.onnx`` evaluator model to an evaluator, after checking it belongs to the game.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from export.contract import is_brain
from export.graph import EVALUATOR_OPSET, evaluator_onnx
from search import OnnxEvaluator, TorchEvaluator
from search.config import SearchError

from .checkpoint import load_checkpoint
from .network import prepare_for_device

__all__ = ["BACKENDS", "evaluator_for", "int8_is_fast", "int8_onnx", "load_brain_evaluator", "load_evaluator", "onnx_bytes"]

BACKENDS = ("auto", "onnx", "torch")
OPSET = EVALUATOR_OPSET


def onnx_bytes(model: torch.nn.Module, obs_shape: tuple[int, int, int], opset: int = OPSET) -> bytes:
    """``model`` (float32[N, C, H, W] -> logits, value) as a serialized ONNX model, for search
    evaluators. ``export.graph`` is the one place networks become ONNX; this is its evaluator
    graph (legacy exporter, which honours ``opset``; the dynamo one silently emits opset 18)."""
    return evaluator_onnx(model, obs_shape, opset)


def int8_onnx(model: bytes, calibration: np.ndarray) -> bytes:
    """The evaluator model ``model`` (ONNX bytes from :func:`onnx_bytes`) quantized to int8 for
    onnxruntime on the CPU: static QDQ quantization, int8 weights per output channel, uint8
    activations whose ranges come from running ``calibration`` (float32[N, C, H, W], positions
    like those it will see: a few hundred from the replay buffer). Faster than float32 on a core
    with VNNI, at a small cost in accuracy (docs/training.md, "int8 inference on the CPU", has both).
    On x86 without VNNI weights keep 7 bits (onnxruntime's advice against integer saturation)."""
    import logging
    import tempfile

    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    obs = np.ascontiguousarray(calibration, dtype=np.float32)
    if obs.ndim != 4 or not len(obs):
        raise ValueError(f"int8 calibration needs positions float32[N, C, H, W] with N >= 1, got shape {list(obs.shape)}")

    class Batches(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter([{"obs": obs[i:i + 64]} for i in range(0, len(obs), 64)])

        def get_next(self):
            return next(self.batches, None)

    class Quiet(logging.Filter):  # the quantizer advises pre-processing on the root logger, every time
        def filter(self, record: logging.LogRecord) -> bool:
            return "pre-processing before quantization" not in record.getMessage()

    root, quiet = logging.getLogger(), Quiet()
    root.addFilter(quiet)
    with tempfile.TemporaryDirectory(prefix="selfplay-int8-") as folder:
        source, target = Path(folder, "fp32.onnx"), Path(folder, "int8.onnx")
        source.write_bytes(model)
        try:
            quantize_static(source, target, Batches(), quant_format=QuantFormat.QDQ, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, reduce_range=not int8_is_fast())
        finally:
            root.removeFilter(quiet)
        return target.read_bytes()


def int8_is_fast() -> bool:
    """Whether int8 evaluates faster than float32 on this CPU. On x86 that takes 8-bit dot products
    (VNNI: AVX512-VNNI or AVX-VNNI): with them a 64x3 Connect Four ResNet runs 3.2x the float32
    evaluations/s; without them (an AVX2 AMD EPYC) at half of it, 2.3k against 4.9k on one core
    (``selfplay bench net --net 64x3 --paths onnx int8``).
    ARM cores are taken to be fast (not measured here)."""
    import platform

    if platform.machine().lower() not in ("x86_64", "amd64", "i386", "i686"):
        return True
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False  # unknown (macOS, Windows): the safe choice
    return "avx512_vnni" in flags or "avx_vnni" in flags


def evaluator_for(
    model: torch.nn.Module,
    obs_shape: tuple[int, int, int],
    device: str = "cpu",
    backend: str = "auto",
    threads: int | None = 1,
) -> Any:
    """An evaluator running ``model`` on ``device``.

    ``backend`` is ``"auto"`` (onnxruntime on the CPU, torch elsewhere), ``"onnx"`` or
    ``"torch"``. ``threads`` sets onnxruntime's intra-op threads. The default of 1 suits one
    actor per core. On CUDA the model turns channels-last (in place) and runs under bf16
    autocast: the one GPU path, for self-play actors and every command alike.
    """
    if backend not in BACKENDS:
        raise SearchError(f"unknown inference backend {backend!r}; choose from {', '.join(BACKENDS)}")
    device = str(device)
    if backend == "onnx" or (backend == "auto" and device == "cpu"):
        return OnnxEvaluator(onnx_bytes(model, obs_shape), threads=threads)
    if device.startswith("cuda"):  # channels-last bf16, as the self-play actors run it
        prepare_for_device(model, device)
        return TorchEvaluator(model, device=device, autocast="bfloat16")
    return TorchEvaluator(model, device=device)


def load_evaluator(
    path: str | os.PathLike, game: Any, device: str = "cpu", backend: str = "auto", threads: int | None = 1
) -> Any:
    """An evaluator from an ``.onnx`` file, a brain or a checkpoint made for ``game``. Raises
    one-line errors (``CheckpointError``, ``SearchError``, ``BrainError``) for a file that is
    missing, corrupt or made for another game. A brain exported without a value output gives NaN
    values (its raw policy still plays; a search refuses it)."""
    path = Path(path)
    if is_brain(path):
        return load_brain_evaluator(path, game, threads=threads, require_value=False)
    if path.suffix == ".onnx":
        if not path.exists():
            raise SearchError(f"{path}: no such ONNX file")
        evaluator = OnnxEvaluator(path, threads=threads)
        _check_onnx_shape(evaluator, path, game)
        return evaluator
    checkpoint = load_checkpoint(path, expect_game=game)
    return evaluator_for(checkpoint.build_model(), game.obs_shape, device, backend, threads)


def load_brain_evaluator(path: str | os.PathLike, game: Any, threads: int | None = 1, require_value: bool = True) -> Any:
    """The search evaluator of the exported brain at ``path``, after checking it plays ``game``
    (version tag, options and sizes)."""
    from export.contract import BrainError
    from export.runtime import Brain

    brain = Brain.load(path, threads=threads)
    recorded = brain.manifest.game
    if recorded["tag"] != game.version_tag or recorded.get("options") != json.loads(json.dumps(dict(game.options), default=str)):
        raise BrainError(f"{path}: the brain plays {recorded['tag']} {recorded.get('options')}, not {game!r}")
    if brain.manifest.obs_shape != tuple(game.obs_shape) or brain.num_actions != game.num_actions:
        raise BrainError(f"{path}: the brain takes {brain.manifest.obs_shape} and {brain.num_actions} actions; {game!r} has {tuple(game.obs_shape)} and {game.num_actions}")
    return brain.evaluator(require_value=require_value)


def _check_onnx_shape(evaluator: OnnxEvaluator, path: Path, game: Any) -> None:
    (obs,) = [i for i in evaluator.session.get_inputs() if i.name == "obs"]
    want = list(game.obs_shape)
    got = [d if isinstance(d, int) else None for d in obs.shape[1:]]
    if len(got) != 3 or any(g is not None and g != w for g, w in zip(got, want)):
        raise SearchError(f"{path}: model input 'obs' has shape {obs.shape}; {game.name} needs [N, {', '.join(map(str, want))}]")
