"""A network as a :class:`~selfplay.training.messages.Weights` message, and back: what the driver
sends its actors (:func:`export_weights`: ONNX for onnxruntime on the CPU, safetensors for torch),
the fixed opponents a league or an exploiter plays (:func:`checkpoint_weights`,
:func:`agent_weights`), and the evaluator an actor or an inference server builds from a message
(:func:`evaluator_from_weights`).

This module does not import torch unless it is given a torch model or torch weights.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Callable

from games.core import Game
from search import OnnxEvaluator

from .messages import Weights

__all__ = ["agent_weights", "checkpoint_weights", "evaluator_from_weights", "export_weights"]


def export_weights(model, game: Game, device: str, inference: str):
    """``model`` as a :class:`Weights` message for actors: ONNX on the CPU (unless ``inference`` is
    ``torch``), safetensors for torch otherwise."""
    if device == "cpu" and inference in ("auto", "onnx", "int8"):
        from ..model.inference import onnx_bytes

        with warnings.catch_warnings():  # the tracer's notes on shape checks, every export
            warnings.simplefilter("ignore")
            return Weights("onnx", onnx_bytes(model, game.obs_shape))
    from safetensors.torch import save as save_tensors

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    return Weights("safetensors", save_tensors(state), model.config.to_dict())


def checkpoint_weights(checkpoint, game: Game):
    """A loaded :class:`selfplay.model.checkpoint.Checkpoint`'s network as ONNX weights on the CPU:
    what an actor plays a fixed opponent with, and what :func:`evaluator_from_weights` runs."""
    return export_weights(checkpoint.build_model(), game, "cpu", "onnx")


def agent_weights(spec: str | Path, game: Game):
    """The network that the agent spec ``spec`` names, as :class:`Weights` an actor plays a fixed
    opponent with: whatever ``selfplay arena`` loads as a network (a run
    directory or checkpoint, an exported brain directory or its ``.onnx``, a bare evaluator
    ``.onnx``, ``pretrained``), after checking that it plays ``game``. A brain must have its
    value output (the actors search with it). One-line errors for anything else."""
    from export.contract import brain_paths, is_brain, read_manifest

    from ..evaluation.agents import pretrained_path
    from ..model.checkpoint import load_checkpoint
    from ..model.inference import load_brain_evaluator, load_evaluator

    text = str(spec).strip()
    path = pretrained_path(game) if text == "pretrained" else Path(os.path.expanduser(text))
    if is_brain(path):
        load_brain_evaluator(path, game)  # its game, sizes and value output, checked
        manifest = read_manifest(path)
        return Weights("brain", brain_paths(path)[0].with_name(manifest.model_file).read_bytes(), manifest.to_dict())
    if path.suffix == ".onnx":
        load_evaluator(path, game)  # an evaluator model (obs -> logits, value) of the game's shape
        return Weights("onnx", path.read_bytes())
    return checkpoint_weights(load_checkpoint(path, expect_game=game), game)


def evaluator_from_weights(weights: Weights, game: Game, device: str = "cpu", threads: int = 1) -> Callable:
    """A search evaluator running ``weights``: onnxruntime with ``threads`` intra-op threads for
    ONNX and brains, torch on ``device`` for safetensors."""
    if weights.format == "onnx":
        return OnnxEvaluator(weights.data, threads=threads)
    if weights.format == "brain":
        from export.contract import Manifest
        from export.runtime import Brain

        return Brain.from_bytes(weights.data, Manifest.from_dict(weights.net), threads=threads).evaluator()
    if weights.format == "safetensors":
        from safetensors.torch import load as load_tensors

        from ..model.inference import evaluator_for
        from ..model.network import NetConfig, build_network

        model = build_network(NetConfig.from_dict(weights.net), game.obs_shape, game.num_actions)
        model.load_state_dict(load_tensors(weights.data))
        if device == "cpu":
            import torch

            torch.set_num_threads(threads)
        return evaluator_for(model, game.obs_shape, device, backend="torch")
    raise ValueError(f"unknown weights format {weights.format!r}; expected 'onnx', 'safetensors' or 'brain'")
