"""Write a verified brain: the ONNX model, its metadata and its manifest, in one directory.

:func:`export_brain` is the whole flow, top to bottom: build the graph (``export.graph``), describe
the game (``export.encoding``), put the manifest into ``metadata_props``, verify the bytes against
the torch network on real positions (``export.verify``), and only then write the model and, last,
the manifest, each atomically. A brain directory therefore holds a manifest only once its model
has passed every check; a failed check writes nothing and raises one line.
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass, replace
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import onnx
import torch

from .contract import (
    BRAIN_FILE,
    DEFAULT_OPSET,
    MLAGENTS_FILE,
    BrainError,
    Manifest,
    TensorSpec,
    atomic_write,
    sha256_hex,
)
from .encoding import describe_game
from .graph import brain_onnx, mlagents_onnx
from .positions import Positions, sample_positions
from .verify import METADATA_KEY, VerificationReport, model_operators, verify_model

__all__ = ["ExportedBrain", "export_brain", "torch_reference", "toolchain_versions"]


@dataclass(frozen=True)
class ExportedBrain:
    """One model written by :func:`export_brain`, and what verified it."""

    model_path: Path
    manifest_path: Path
    manifest: Manifest
    report: VerificationReport


def toolchain_versions() -> dict[str, str]:
    """Versions of what made a brain: torch, onnx, onnxruntime, selfplay (the installed
    distribution; this package does not import it), numpy and Python."""
    import onnxruntime

    try:
        ours = importlib_metadata.version("selfplay")
    except importlib_metadata.PackageNotFoundError:
        ours = "unknown"
    return {
        "selfplay": ours,
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def torch_reference(network: torch.nn.Module):
    """A :data:`export.verify.Reference` from the network itself, through its plain ``forward``
    (not the export wrapper): softmax over the legal actions of its logits, its value, and the
    logits themselves (which the brain's ``logits`` output must equal on legal actions)."""
    shape = tuple(int(d) for d in network.obs_shape)

    def reference(obs: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        was_training = network.training
        network.eval()
        try:
            with torch.inference_mode():
                logits, value = network(torch.from_numpy(obs).reshape(-1, *shape))
                masked = logits.masked_fill(torch.from_numpy(mask) == 0, float("-inf"))
                return torch.softmax(masked, dim=-1).numpy(), value.reshape(-1).numpy(), logits.numpy()
        finally:
            network.train(was_training)

    return reference


_VALUE_POV = "the player to move (in the arena: the acting unit's team)"


def _interface(kind: str, obs_size: int, actions: int, with_value: bool) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    if kind == "mlagents":
        inputs = (
            TensorSpec("obs_0", "float32", ("batch", obs_size), "the observation, flat (a vector observation of D floats)"),
            TensorSpec("action_masks", "float32", ("batch", actions), "1.0 = legal, 0.0 = illegal (one branch)"),
        )
        outputs = (
            TensorSpec("version_number", "float32", (1,), "ML-Agents model API version: 3"),
            TensorSpec("memory_size", "float32", (1,), "0: no recurrent memory"),
            TensorSpec("discrete_actions", "int64", ("batch", 1), "the most probable legal action (no sampling)"),
            TensorSpec("discrete_action_output_shape", "float32", (1, 1), "[[A]]: one branch of A actions"),
            TensorSpec("deterministic_discrete_actions", "int64", ("batch", 1), "the most probable legal action"),
        )
        return inputs, outputs
    inputs = (
        TensorSpec("obs", "float32", ("batch", obs_size), "the observation planes, flat (see observation)"),
        TensorSpec("action_mask", "float32", ("batch", actions), "1.0 = legal, 0.0 = illegal, in action-table order"),
    )
    outputs = (
        TensorSpec("logits", "float32", ("batch", actions), "the network's logits; masked_logit on illegal actions"),
        TensorSpec("probs", "float32", ("batch", actions), "softmax over the legal actions; exactly 0 on illegal ones"),
    )
    if with_value:
        outputs += (TensorSpec("value", "float32", ("batch", 1), f"expected outcome in [-1, 1] for {_VALUE_POV}"),)
    return inputs, outputs


def _package(
    data: bytes, kind: str, model_file: str, network: torch.nn.Module, game: Any, with_value: bool, facts: Mapping[str, Any]
) -> tuple[bytes, Manifest]:
    """The model with the manifest in its ``metadata_props``, and the manifest with its hash."""
    model = onnx.load_from_string(data)
    described = describe_game(game)
    inputs, outputs = _interface(kind, described["observation"]["size"], game.num_actions, with_value)
    value_head = network.config.value_head
    manifest = Manifest(
        kind=kind,
        name=str(facts.get("name") or game.version_tag),
        model_file=model_file,
        game=described["game"],
        observation=described["observation"],
        actions=described["actions"],
        inputs=inputs,
        outputs=outputs,
        value={
            "present": bool(with_value),
            "head": value_head,
            "range": [-1.0, 1.0],
            "point_of_view": _VALUE_POV,
            "meaning": "+1 a win, 0 a draw, -1 a loss" + (": P(win) - P(loss) of the W/D/L head" if value_head == "wdl" else ""),
        },
        onnx={
            "opset": next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
            "ir_version": int(model.ir_version),
            "operators": model_operators(model),
            "domain": "ai.onnx (standard) only",
        },
        network={**network.config.to_dict(), "parameters": int(sum(p.numel() for p in network.parameters()))},
        strength=dict(facts.get("strength") or {"elo": None, "elo_interval": None, "level": None}),
        training=dict(facts.get("training") or {}),
        toolchain=toolchain_versions(),
    )
    model.producer_name = "selfplay"
    model.producer_version = manifest.toolchain["selfplay"]
    model.doc_string = f"{manifest.name}: a {game.version_tag} brain; the manifest ({Path(model_file).with_suffix('.json').name}) describes its contract"
    props = {
        METADATA_KEY: json.dumps(manifest.metadata_dict(), allow_nan=False, separators=(",", ":")),
        "game": game.version_tag,
        "observation_shape": json.dumps(manifest.observation["shape"]),
        "actions": json.dumps([row["text"] for row in manifest.actions["table"]]),
    }
    onnx.helper.set_model_props(model, props)
    packaged = model.SerializeToString()
    return packaged, replace(manifest, sha256=sha256_hex(packaged), bytes=len(packaged))


def export_brain(
    network: torch.nn.Module,
    game: Any,
    out: str | Path,
    *,
    opset: int = DEFAULT_OPSET,
    with_value: bool = False,
    mlagents: bool = False,
    facts: Mapping[str, Any] | None = None,
    positions: Positions | None = None,
    seed: int = 0,
) -> list[ExportedBrain]:
    """Export ``network`` (trained for ``game``, a ``games.Game``) as a brain in directory ``out``
    (created if needed): ``brain.onnx`` and ``brain.json``, and with ``mlagents`` also
    ``brain.mlagents.onnx`` and ``brain.mlagents.json``. Each model is verified against the
    torch network on ``positions`` (default: 1000 from random games, generator ``seed``) before
    anything is written. ``facts``: ``{"name", "strength", "training"}`` for the manifest.
    Returns the brain first, then the ML-Agents model. Raises :class:`BrainError`."""
    if tuple(network.obs_shape) != tuple(game.obs_shape) or int(network.num_actions) != game.num_actions:
        raise BrainError(
            f"the network takes {tuple(network.obs_shape)} with {network.num_actions} actions; "
            f"{game.version_tag} has {tuple(game.obs_shape)} and {game.num_actions}"
        )
    facts = dict(facts or {})  # no export time: the same checkpoint exports to the same bytes
    positions = positions if positions is not None else sample_positions(game, 1000, seed)
    reference = torch_reference(network)
    jobs = [("brain", BRAIN_FILE, lambda: brain_onnx(network, with_value, opset), with_value)]
    if mlagents:
        jobs.append(("mlagents", MLAGENTS_FILE, lambda: mlagents_onnx(network, opset), False))
    built = []
    for kind, model_file, build, value in jobs:
        data, manifest = _package(build(), kind, model_file, network, game, value, facts)
        report = verify_model(data, manifest, positions, reference, where=f"{model_file} (before writing)")
        built.append((model_file, data, manifest, report))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for model_file, data, manifest, report in built:
        model_path = out / model_file
        manifest_path = model_path.with_suffix(".json")
        with atomic_write(model_path) as f:
            f.write(data)
        with atomic_write(manifest_path) as f:  # last: a manifest names a model that passed
            f.write(manifest.to_json().encode())
        written.append(ExportedBrain(model_path, manifest_path, manifest, report))
    return written
