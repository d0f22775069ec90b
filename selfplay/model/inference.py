"""From a network to a search evaluator, picking the fastest inference path for the device.

On the CPU a small policy-value network is the bottleneck of self-play. onnxruntime evaluates it
faster than eager torch at every batch size: about 1.4x at batch 64-256, and 3-6x at batch 1.
So CPU evaluators run the network through onnxruntime, converted in memory. On CUDA the torch
evaluator runs it (bf16 autocast), because batches there are large.

* :func:`onnx_bytes`: a network as an ONNX model (input ``obs`` float32[N, C, H, W], outputs
  ``logits`` float32[N, A] and ``value`` float32[N], with a dynamic batch).
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

import torch

from export.contract import is_brain
from export.graph import EVALUATOR_OPSET, evaluator_onnx
from search import OnnxEvaluator, TorchEvaluator
from search.config import SearchError

from .checkpoint import load_checkpoint
from .network import prepare_for_device

__all__ = ["BACKENDS", "onnx_bytes", "evaluator_for", "load_brain_evaluator", "load_evaluator"]

BACKENDS = ("auto", "onnx", "torch")
OPSET = EVALUATOR_OPSET


def onnx_bytes(model: torch.nn.Module, obs_shape: tuple[int, int, int], opset: int = OPSET) -> bytes:
    """``model`` (float32[N, C, H, W] -> logits, value) as a serialized ONNX model, for search
    evaluators. ``export.graph`` is the one place networks become ONNX; this is its evaluator
    graph (legacy exporter, which honours ``opset``; the dynamo one silently emits opset 18)."""
    return evaluator_onnx(model, obs_shape, opset)


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
