"""Evaluators: what the search asks at each new leaf.

The protocol is one callable::

    evaluate(obs: float32[N, C, H, W], mask: bool[N, A]) -> (logits: float32[N, A], value: float32[N])

``obs`` is each leaf encoded from its player to move (``Game.encode``); ``mask`` its legal
actions. ``logits`` need only be meaningful on legal actions (the search masks the rest);
``value`` is in [-1, 1], from the point of view of the player to move at each leaf. Any
callable with that signature works (a lambda, a network server's client). The arrays passed in
are the search's reusable buffers: copy them to keep them past the call.

Two evaluators run *inside* the numba search loop instead, with no Python call per leaf:
:class:`UniformEvaluator` and :class:`RolloutEvaluator`. A random rollout needs the game state,
not the observation, and a Python call per simulation would cost more than the simulation.

:class:`TorchEvaluator` and :class:`OnnxEvaluator` import torch / onnxruntime when constructed,
never at import time: ``import search`` stays free of both.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from .config import SearchError
from .kernels import ROLLOUT, UNIFORM

__all__ = ["Evaluator", "UniformEvaluator", "RolloutEvaluator", "TorchEvaluator", "OnnxEvaluator"]


class Evaluator(Protocol):
    def __call__(self, obs: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass(frozen=True)
class UniformEvaluator:
    """Uniform prior over the legal actions and value 0 at every leaf: the cost of the tree
    alone, and (with the solver) a pure proof search. Runs inside the numba loop."""

    native_kind = UNIFORM
    native_rollouts = 0

    def __call__(self, obs: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = mask.shape[0]
        return np.zeros(mask.shape, np.float32), np.zeros(n, np.float32)


@dataclass(frozen=True)
class RolloutEvaluator:
    """Pure MCTS: uniform prior, and as value the mean outcome of ``num_rollouts`` uniformly
    random playouts from the leaf (each game's own generator). Runs inside the numba loop."""

    num_rollouts: int = 1

    native_kind = ROLLOUT

    def __post_init__(self) -> None:
        if not (isinstance(self.num_rollouts, int) and self.num_rollouts >= 1):
            raise SearchError(f"RolloutEvaluator: num_rollouts must be an int >= 1, got {self.num_rollouts!r}")

    @property
    def native_rollouts(self) -> int:
        return self.num_rollouts


class TorchEvaluator:
    """A torch policy-value network as an evaluator: one batched forward pass per call.

    ``model`` maps float32[N, C, H, W] to ``(logits[N, A], value[N] or [N, 1])``, value in
    [-1, 1] from the player to move. ``device``: where it runs ("cpu", "cuda", "cuda:1", "mps");
    ``autocast``: optional reduced-precision dtype for the forward pass (``torch.bfloat16``,
    ``torch.float16`` or their names). The model is put in eval mode on ``device``.
    """

    def __init__(self, model: Any, device: str = "cpu", autocast: Any = None) -> None:
        import torch  # lazily: the search itself never imports torch

        self._torch = torch
        self.device = torch.device(device)
        if isinstance(autocast, str):
            if not hasattr(torch, autocast):
                raise SearchError(f"TorchEvaluator: unknown autocast dtype {autocast!r}")
            autocast = getattr(torch, autocast)
        self.autocast = autocast
        self.model = model.to(self.device).eval()

    def __call__(self, obs: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        torch = self._torch
        with torch.inference_mode():
            x = torch.from_numpy(obs).to(self.device)
            context = (
                torch.autocast(self.device.type, dtype=self.autocast)
                if self.autocast is not None
                else contextlib.nullcontext()
            )
            with context:
                logits, value = self.model(x)
            logits = logits.float().cpu().numpy()
            value = value.float().reshape(-1).cpu().numpy()
        return logits, value


class OnnxEvaluator:
    """An ONNX policy-value model through onnxruntime: input ``obs`` float32[N, C, H, W],
    outputs ``logits`` float32[N, A] and ``value`` float32[N] (or [N, 1]).

    ``model``: a path or the serialized bytes. ``providers``: onnxruntime execution providers
    (default: CPU only). ``threads``: intra-op threads (default: onnxruntime's choice).
    """

    def __init__(
        self, model: str | os.PathLike | bytes, providers: list[str] | None = None, threads: int | None = None
    ) -> None:
        import onnxruntime as ort  # lazily

        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = int(threads)
        source = model if isinstance(model, bytes) else os.fspath(model)
        self.session = ort.InferenceSession(source, options, providers=providers or ["CPUExecutionProvider"])
        inputs = {i.name for i in self.session.get_inputs()}
        outputs = {o.name for o in self.session.get_outputs()}
        if "obs" not in inputs or not {"logits", "value"} <= outputs:
            raise SearchError(
                f"OnnxEvaluator: the model needs input 'obs' and outputs 'logits', 'value'; "
                f"it has inputs {sorted(inputs)} and outputs {sorted(outputs)}"
            )

    def __call__(self, obs: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        logits, value = self.session.run(["logits", "value"], {"obs": obs})
        return logits, value.reshape(-1)


def is_native(evaluator: Any) -> bool:
    """Whether ``evaluator`` runs inside the numba search loop."""
    return isinstance(evaluator, (UniformEvaluator, RolloutEvaluator))
