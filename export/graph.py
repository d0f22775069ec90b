"""The one place that turns a policy-value network into ONNX (torch's TorchScript exporter).

Three graphs of the same network:

* :func:`evaluator_onnx`: what self-play actors and search evaluators run in memory:
  ``obs float32[N, C, H, W] -> logits float32[N, A], value float32[N]`` (the network's
  ``forward``), opset 17.
* :func:`brain_onnx`: the shipped brain (``export.contract``): flat ``obs`` and a float
  ``action_mask`` in, masked ``logits`` and ``probs`` (and ``value [N, 1]``) out, built only
  from :data:`export.contract.ALLOWED_OPS`, opset 15 by default.
* :func:`mlagents_onnx`: the same brain under ML-Agents' tensor names (see :class:`MLAgentsBrain`).

A network here is what ``selfplay.model.network.build_network`` makes (this package does not import
selfplay): a ``torch.nn.Module`` with ``obs_shape`` (C, H, W), ``num_actions``,
``config.value_head`` ("scalar" or "wdl"), ``forward(obs) -> (logits [N, A], value [N])``, and
``raw_heads(obs) -> (logits [N, A], value head output [N, 1] or [N, 3])``: the raw heads, which
the brain graphs finish with allowed operators only (``tanh``, or a W/D/L softmax times
``[1, 0, -1]``), where ``forward`` would add Squeeze and Gather.

Every export uses ``dynamo=False``: the dynamo exporter silently emits opset 18 whatever opset
is asked for. The opset of every model made here is checked after export all the same.
"""

from __future__ import annotations

import io
import warnings
from typing import Any, Sequence

import onnx
import torch
from torch import nn

from .contract import DEFAULT_OPSET, MASKED_LOGIT, BrainError

__all__ = [
    "BrainModule",
    "EVALUATOR_OPSET",
    "MLAgentsBrain",
    "MLAGENTS_EXPORT_VERSION",
    "brain_onnx",
    "evaluator_onnx",
    "mlagents_onnx",
    "to_onnx",
]

EVALUATOR_OPSET = 17
#: ML-Agents' ``MODEL_EXPORT_VERSION`` (``ModelApiVersion.MLAgents2_0``) in
#: ml-agents/mlagents/trainers/torch_entities/networks.py, ``SimpleActor``.
MLAGENTS_EXPORT_VERSION = 3


def to_onnx(
    module: nn.Module,
    example_inputs: tuple[torch.Tensor, ...],
    input_names: Sequence[str],
    output_names: Sequence[str],
    batch_outputs: Sequence[str],
    opset: int,
) -> bytes:
    """``module`` as serialized ONNX, with axis 0 of the inputs and of ``batch_outputs`` dynamic
    (named ``batch``) and every other axis fixed. Raises :class:`BrainError` when the model's
    opset is not ``opset``."""
    module = module.eval().to("cpu")
    buffer = io.BytesIO()
    dynamic = {name: {0: "batch"} for name in (*input_names, *batch_outputs)}
    with warnings.catch_warnings():
        # The legacy exporter is chosen on purpose (it honours the opset); torch warns it is old.
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module="torch.onnx")
        torch.onnx.export(
            module,
            example_inputs,
            buffer,
            input_names=list(input_names),
            output_names=list(output_names),
            dynamic_axes=dynamic,
            opset_version=int(opset),
            do_constant_folding=True,
            dynamo=False,
        )
    data = buffer.getvalue()
    got = _standard_opset(onnx.load_from_string(data))
    if got != int(opset):
        raise BrainError(f"the torch exporter wrote opset {got}, not the {opset} asked for")
    return data


def _standard_opset(model: onnx.ModelProto) -> int | None:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)


# ----------------------------------------------------------------------------- evaluator graph


class _Evaluation(nn.Module):
    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.network(obs)


def evaluator_onnx(network: nn.Module, obs_shape: tuple[int, int, int], opset: int = EVALUATOR_OPSET) -> bytes:
    """``network`` (float32[N, C, H, W] -> logits [N, A], value [N]) as the serialized ONNX
    model that search evaluators run (``search.OnnxEvaluator``): input ``obs``, outputs
    ``logits`` and ``value``, dynamic batch. The network's train/eval mode is left as it was."""
    was_training = network.training
    try:
        return to_onnx(
            _Evaluation(network),
            (torch.zeros(1, *obs_shape),),
            ["obs"],
            ["logits", "value"],
            ["logits", "value"],
            opset,
        )
    finally:
        network.train(was_training)


# ----------------------------------------------------------------------------- brain graphs


class BrainModule(nn.Module):
    """``(obs float32[N, D], action_mask float32[N, A]) -> (logits, probs[, value])``.

    ``logits`` are the network's on legal actions and ``MASKED_LOGIT`` on illegal ones
    (``logits * mask + (mask - 1) * 1e9``: exact on legal actions, no -inf); ``probs`` is their
    softmax times the mask, so illegal actions get exactly 0 whatever the logits. ``value``
    (``with_value``) is float32[N, 1] in [-1, 1] for the player to move: ``tanh`` of a scalar
    head, or P(win) - P(loss) from a W/D/L head.
    """

    def __init__(self, network: nn.Module, with_value: bool) -> None:
        super().__init__()
        self.network = network
        self.obs_shape = tuple(int(d) for d in network.obs_shape)
        self.with_value = bool(with_value)
        self.wdl = network.config.value_head == "wdl"
        self.register_buffer("wdl_weights", torch.tensor([[1.0], [0.0], [-1.0]]))  # win, draw, loss

    def heads(self, obs: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        planes = obs.reshape(-1, *self.obs_shape)
        raw_logits, value_out = self.network.raw_heads(planes)
        logits = raw_logits * mask + (mask - 1.0) * -MASKED_LOGIT
        probs = torch.softmax(logits, dim=-1) * mask
        value = torch.softmax(value_out, dim=-1) @ self.wdl_weights if self.wdl else torch.tanh(value_out)
        return logits, probs, value

    def forward(self, obs: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        logits, probs, value = self.heads(obs, mask)
        return (logits, probs, value) if self.with_value else (logits, probs)


class MLAgentsBrain(nn.Module):
    """The brain under ML-Agents' tensor names (model API version 3), discrete actions, one
    branch of ``A`` actions, no memory. Matched against ML-Agents' own exporter
    (Unity-Technologies/ml-agents, ``ml-agents/mlagents/trainers/torch_entities/``):

    * ``model_serialization.py`` ``TensorNames`` / ``ModelSerializer``: inputs ``obs_0``
      (vector observation ``[batch, D]``) and ``action_masks`` ``[batch, sum(branches)]``
      (no ``recurrent_in``: memory size 0); outputs in its order ``version_number``,
      ``memory_size``, ``discrete_actions``, ``discrete_action_output_shape``,
      ``deterministic_discrete_actions``, with ``discrete_actions`` batch-dynamic.
    * ``networks.py`` ``SimpleActor.forward``: ``version_number`` = [3.0] (shape [1]),
      ``memory_size`` = [0.0] (shape [1]), ``discrete_action_output_shape`` =
      ``Tensor([discrete_branches])`` = [[A]] (shape [1, 1]), all float32.
    * ``distributions.py`` ``MultiCategoricalDistribution._mask_branch`` masks with
      ``logits * mask - 1e8 * (1 - mask)``; ``CategoricalDistInstance.deterministic_sample`` is
      ``argmax(probs, dim=1, keepdim=True)``: int64 ``[batch, 1]``.

    One deliberate difference: ML-Agents' ``discrete_actions`` is a multinomial *sample*, a
    random operator our contract forbids, so here it is the argmax too (the same tensor as
    ``deterministic_discrete_actions``). An engine that wants sampling reads ``brain.onnx``'s
    ``probs``.
    """

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.brain = BrainModule(network, with_value=False)
        actions = int(network.num_actions)
        self.version_number = nn.Parameter(torch.tensor([float(MLAGENTS_EXPORT_VERSION)]), requires_grad=False)
        self.memory_size_vector = nn.Parameter(torch.tensor([0.0]), requires_grad=False)
        self.discrete_act_size_vector = nn.Parameter(torch.tensor([[float(actions)]]), requires_grad=False)

    def forward(self, obs: torch.Tensor, action_masks: torch.Tensor) -> tuple[torch.Tensor, ...]:
        _, probs, _ = self.brain.heads(obs, action_masks)
        action = torch.argmax(probs, dim=1, keepdim=True)
        return self.version_number, self.memory_size_vector, action, self.discrete_act_size_vector, action


MLAGENTS_OUTPUTS = (
    "version_number",
    "memory_size",
    "discrete_actions",
    "discrete_action_output_shape",
    "deterministic_discrete_actions",
)


def _examples(network: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    c, h, w = (int(d) for d in network.obs_shape)
    return torch.zeros(1, c * h * w), torch.ones(1, int(network.num_actions))


def _frozen(network: nn.Module, build: Any, *args: Any) -> bytes:
    """Export with the network in eval mode (batch norm folded), leaving its mode as it was."""
    was_training = network.training
    network.eval()
    try:
        return build(*args)
    finally:
        network.train(was_training)


def brain_onnx(network: nn.Module, with_value: bool = False, opset: int = DEFAULT_OPSET) -> bytes:
    """``network`` as a brain model (``export.contract``), serialized, without metadata."""
    outputs = ["logits", "probs"] + (["value"] if with_value else [])
    module = BrainModule(network, with_value)
    return _frozen(network, to_onnx, module, _examples(network), ["obs", "action_mask"], outputs, outputs, opset)


def mlagents_onnx(network: nn.Module, opset: int = DEFAULT_OPSET) -> bytes:
    """``network`` under ML-Agents' tensor names (:class:`MLAgentsBrain`), serialized."""
    module = MLAgentsBrain(network)
    batch_outputs = ["discrete_actions", "deterministic_discrete_actions"]
    names = ["obs_0", "action_masks"]
    return _frozen(network, to_onnx, module, _examples(network), names, list(MLAGENTS_OUTPUTS), batch_outputs, opset)
