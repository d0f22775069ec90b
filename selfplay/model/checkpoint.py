"""Checkpoints: weights and optimizer state as safetensors, everything else in a JSON sidecar.

A checkpoint of step 123 in a run directory is two files::

    ckpt-000123.json          the sidecar: game, network, step, metrics, and the name, size and
                              sha256 of its tensor file
    ckpt-000123.safetensors   tensors "model/<state_dict key>" and "optimizer/<path>"

The sidecar is the checkpoint: a checkpoint exists exactly when its sidecar does, and it is
named by it (:func:`list_checkpoints` returns sidecar paths). Writing is crash-safe. Every file
is written to a temporary name in the same directory, flushed, fsynced and renamed over its final
name, and the directory is fsynced (:func:`atomic_write`). The tensors go first and the sidecar
last; saving a step again writes the new tensors beside the old ones (``ckpt-000123.b.safetensors``,
the names alternate) and the sidecar's rename switches from old to new in one step. Older
checkpoints are deleted sidecar first. So a crash at any moment leaves every checkpoint intact,
at worst with an unreferenced tensor file or a temporary file beside them, which the next save
removes. One process writes to a run directory at a time.

The replay buffer can be saved alongside (``save_checkpoint(..., replay=buffer)``) as
``replay.npz``, one file per run directory that each save replaces, written before the weights:
after a crash it holds at least the data of the newest checkpoint, and perhaps more, when the crash
came between the buffer and the sidecar. The file records the step it was written for and how many
rows were ever added (``ReplayBuffer.total_added``); a caller that records the same count with the
checkpoint can cut a buffer that is ahead back to it (``ReplayBuffer.rewind``; selfplay.training.resume does).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import torch
from safetensors import SafetensorError
from safetensors.torch import load as safetensors_load
from safetensors.torch import save as safetensors_save

from export.contract import atomic_write, fsync_dir  # the one implementation of the write protocol

from .network import NetConfig, NetConfigError, PolicyValueNet, build_network

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "REPLAY_FILE",
    "atomic_write",
    "best_checkpoint",
    "checkpoints_by_step",
    "checkpoint_sidecar",
    "delete_checkpoint",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "save_checkpoint",
]

FORMAT = "selfplay-checkpoint"
FORMAT_VERSION = 1
REPLAY_FILE = "replay.npz"
_SIDECAR = re.compile(r"^ckpt-(\d{6,})\.json$")
_DATA = re.compile(r"^ckpt-(\d{6,})(\.b)?\.safetensors$")
_TEMP = re.compile(r"^\.(ckpt-\d{6,}(\.b)?\.(safetensors|json)|replay\.npz)\.tmp-")
MODEL_PREFIX = "model/"
OPTIMIZER_PREFIX = "optimizer/"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: missing, truncated, corrupt, or for another game/network."""


# --------------------------------------------------------------------------- durable files


def _json_scalar(obj: Any) -> Any:
    """numpy and torch scalars (a loss tensor, an np.float32) as Python numbers, for json.dumps."""
    if hasattr(obj, "item") and getattr(obj, "ndim", None) == 0:
        return obj.item()
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _sidecar_name(step: int) -> str:
    return f"ckpt-{step:06d}.json"


def _data_names(step: int) -> tuple[str, str]:
    """The two names a step's tensor file alternates between when the step is saved again."""
    return f"ckpt-{step:06d}.safetensors", f"ckpt-{step:06d}.b.safetensors"


# --------------------------------------------------------------------------- optimizer state codec
# A torch optimizer state_dict is nested dicts (some with int keys), lists, tuples, numbers and
# tensors. Tensors go to safetensors under their path; the rest becomes JSON, with tuples and
# int-keyed dicts tagged so that decoding gives back exactly what torch produced.


def _encode(obj: Any, path: str, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, torch.Tensor):
        tensors[path] = obj.detach().cpu().contiguous()
        return {"__tensor__": path}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {k: _encode(v, f"{path}/{k}", tensors) for k, v in obj.items()}
        if all(isinstance(k, int) and not isinstance(k, bool) for k in obj):
            return {"__int_keys__": {str(k): _encode(v, f"{path}/{k}", tensors) for k, v in obj.items()}}
        raise CheckpointError(f"optimizer state at {path!r} has keys that are neither all str nor all int")
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, f"{path}/{i}", tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, list):
        return [_encode(v, f"{path}/{i}", tensors) for i, v in enumerate(obj)]
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else {"__float__": repr(obj)}
    raise CheckpointError(f"optimizer state at {path!r} holds a {type(obj).__name__}, which cannot be saved")


def _decode(obj: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    if isinstance(obj, list):
        return [_decode(v, tensors) for v in obj]
    if not isinstance(obj, dict):
        return obj
    if set(obj) == {"__tensor__"}:
        return tensors[obj["__tensor__"]]
    if set(obj) == {"__tuple__"}:
        return tuple(_decode(v, tensors) for v in obj["__tuple__"])
    if set(obj) == {"__int_keys__"}:
        return {int(k): _decode(v, tensors) for k, v in obj["__int_keys__"].items()}
    if set(obj) == {"__float__"}:
        return float(obj["__float__"])
    return {k: _decode(v, tensors) for k, v in obj.items()}


# --------------------------------------------------------------------------- listing


def _sidecars(directory: Path) -> dict[int, Path]:
    """``{step: sidecar path}`` of the checkpoints in ``directory``."""
    if not directory.is_dir():
        return {}
    return {int(m.group(1)): e for e in directory.iterdir() if (m := _SIDECAR.match(e.name))}


def _read_sidecar(sidecar: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(sidecar.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _data_name(record: dict[str, Any] | None, step: int) -> str | None:
    """The tensor file a sidecar names, if it is one of the step's two names."""
    name = record.get("file") if record else None
    return name if name in _data_names(step) else None


def checkpoints_by_step(directory: str | os.PathLike) -> dict[int, Path]:
    """``{step: sidecar}`` of the checkpoints in ``directory``, oldest first."""
    sidecars = _sidecars(Path(directory))
    return {step: sidecars[step] for step in sorted(sidecars)}


def list_checkpoints(directory: str | os.PathLike) -> list[Path]:
    """Sidecars of the checkpoints in ``directory``, oldest first (any of them can be passed to
    :func:`load_checkpoint`)."""
    return list(checkpoints_by_step(directory).values())


def latest_checkpoint(directory: str | os.PathLike) -> Path | None:
    """The sidecar of the highest-step checkpoint in ``directory``, or None."""
    found = list_checkpoints(directory)
    return found[-1] if found else None


def _metric_of(sidecar: Path, metric: str) -> float | None:
    record = _read_sidecar(sidecar)
    value = record.get("metrics", {}).get(metric) if record else None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def best_checkpoint(directory: str | os.PathLike, metric: str, higher_is_better: bool = True) -> Path | None:
    """The sidecar of the checkpoint with the best ``metrics[metric]`` (ties: the newest), or
    None if no checkpoint records that metric."""
    sidecars = _sidecars(Path(directory))
    scored = [(v, step) for step, car in sidecars.items() if (v := _metric_of(car, metric)) is not None]
    if not scored:
        return None
    _, step = max(scored) if higher_is_better else min(scored, key=lambda vs: (vs[0], -vs[1]))
    return sidecars[step]


# --------------------------------------------------------------------------- saving


def _remove_debris(directory: Path) -> None:
    """Temporary files, and tensor files no sidecar names, left by a crash mid-save. The tensor
    files of a step whose sidecar cannot be read are left alone."""
    sidecars = _sidecars(directory)
    records = {step: _read_sidecar(path) for step, path in sidecars.items()}
    for entry in directory.iterdir():
        if _TEMP.match(entry.name):
            entry.unlink(missing_ok=True)
        elif match := _DATA.match(entry.name):
            step = int(match.group(1))
            if step not in sidecars or (records[step] is not None and _data_name(records[step], step) != entry.name):
                entry.unlink(missing_ok=True)


def _delete(sidecar: Path, step: int) -> None:
    """Delete one checkpoint: its sidecar first (from then on it does not exist), then its tensors."""
    name = _data_name(_read_sidecar(sidecar), step)
    sidecar.unlink(missing_ok=True)
    if name is not None:
        (sidecar.parent / name).unlink(missing_ok=True)


def delete_checkpoint(sidecar: str | os.PathLike) -> None:
    """Delete the checkpoint whose sidecar is ``sidecar`` (as :func:`list_checkpoints` names it):
    the sidecar first, so that from then on it does not exist, then its tensors."""
    sidecar = Path(sidecar)
    match = _SIDECAR.match(sidecar.name)
    if match is None:
        raise CheckpointError(f"{sidecar}: not a checkpoint sidecar (ckpt-NNNNNN.json)")
    _delete(sidecar, int(match.group(1)))


def _prune(directory: Path, keep_last: int, best_metric: str | None, higher_is_better: bool,
           keep_steps: set[int] = frozenset()) -> None:
    sidecars = _sidecars(directory)
    keep = set(sorted(sidecars)[-keep_last:]) | keep_steps
    if best_metric is not None and (best := best_checkpoint(directory, best_metric, higher_is_better)):
        keep.add(int(_SIDECAR.match(best.name).group(1)))
    for step in sorted(set(sidecars) - keep):
        _delete(sidecars[step], step)
    fsync_dir(directory)


def _game_record(game: Any) -> dict[str, Any]:
    """``{"game": tag, "game_options": {...} or None}`` from a ``games.Game`` or a version tag."""
    if isinstance(game, str):
        return {"game": game, "game_options": None}
    if hasattr(game, "version_tag") and hasattr(game, "options"):
        return {"game": game.version_tag, "game_options": json.loads(json.dumps(dict(game.options), default=str))}
    raise CheckpointError(f"game must be a games.Game or a version tag such as 'connect4_v1', got {game!r}")


def save_checkpoint(
    directory: str | os.PathLike,
    step: int,
    model: PolicyValueNet,
    optimizer_state: Mapping[str, Any] | None = None,
    meta: Mapping[str, Any] | None = None,
    *,
    game: Any,
    metrics: Mapping[str, float] | None = None,
    replay: Any = None,
    keep_last: int = 3,
    best_metric: str | None = None,
    higher_is_better: bool = True,
    keep_steps: Iterable[int] = (),
) -> Path:
    """Write checkpoint ``step`` into ``directory`` (created if needed) and prune older ones.

    ``model`` is a network from :func:`selfplay.model.network.build_network`; its config, observation
    shape and action count are recorded, so :meth:`Checkpoint.build_model` can rebuild it.
    ``optimizer_state`` is ``optimizer.state_dict()``; ``game`` a ``games.Game`` (tag and options
    recorded) or its version tag; ``metrics`` numbers such as loss or Elo; ``meta`` any other
    JSON-ready facts (the run's config). ``replay`` (anything with ``save(path, step=step)``, e.g.
    a :class:`selfplay.training.replay.ReplayBuffer`) is saved to ``directory / "replay.npz"`` first.

    Retention: the ``keep_last`` newest checkpoints stay, the steps in ``keep_steps``, and, with
    ``best_metric``, the one with the best ``metrics[best_metric]`` (highest, or lowest if not
    ``higher_is_better``). Returns the checkpoint's sidecar path.
    """
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise CheckpointError(f"checkpoint step must be a non-negative integer, got {step!r}")
    if keep_last < 1:
        raise CheckpointError(f"keep_last must be at least 1, got {keep_last}")
    if not isinstance(model, PolicyValueNet):
        raise CheckpointError(f"can only checkpoint networks from build_network, got {type(model).__name__}")
    record = _game_record(game)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    _remove_debris(directory)

    tensors = {MODEL_PREFIX + k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    optimizer_json = None
    if optimizer_state is not None:
        optimizer_json = _encode(dict(optimizer_state), OPTIMIZER_PREFIX.rstrip("/"), tensors)
    data = safetensors_save(tensors)
    # Saving a step again: the new tensors go beside the old ones, under the other name, and the
    # sidecar's rename switches from old to new.
    sidecar_path = directory / _sidecar_name(step)
    previous = _data_name(_read_sidecar(sidecar_path), step) if sidecar_path.exists() else None
    data_name = _data_names(step)[1] if previous == _data_names(step)[0] else _data_names(step)[0]
    sidecar = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "step": step,
        **record,
        "net": model.config.to_dict(),
        "obs_shape": list(model.obs_shape),
        "num_actions": model.num_actions,
        "metrics": dict(metrics or {}),
        "meta": dict(meta or {}),
        "optimizer": optimizer_json,
        "file": data_name,
        "bytes": len(data),
        "sha256": _sha256(data),
        "saved_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "torch_version": torch.__version__,
    }
    try:
        sidecar_text = json.dumps(sidecar, indent=1, allow_nan=False, default=_json_scalar)
    except (TypeError, ValueError) as e:
        problem = f"checkpoint metrics/meta must be finite numbers, strings, lists and dicts: {e}"
        raise CheckpointError(problem) from None

    if replay is not None:
        replay.save(directory / REPLAY_FILE, step=step)
    with atomic_write(directory / data_name) as f:
        f.write(data)
    with atomic_write(sidecar_path) as f:  # the commit
        f.write(sidecar_text.encode())
    if previous is not None and previous != data_name:
        (directory / previous).unlink(missing_ok=True)
    _prune(directory, keep_last, best_metric, higher_is_better, set(keep_steps))
    return sidecar_path


# --------------------------------------------------------------------------- loading


@dataclass(frozen=True)
class Checkpoint:
    """A loaded, verified checkpoint. Tensors are on the CPU."""

    path: Path  # the sidecar, ckpt-000123.json: what names the checkpoint
    tensor_path: Path  # the safetensors file it names
    step: int
    game: str  # version tag, e.g. "connect4_v1"
    game_options: dict[str, Any] | None  # the game's options, when saved from a games.Game
    net: NetConfig
    obs_shape: tuple[int, int, int]  # (C, H, W)
    num_actions: int  # A
    metrics: dict[str, Any]
    meta: dict[str, Any]
    model_state: dict[str, torch.Tensor] = field(repr=False)  # the network's state_dict
    optimizer_state: dict[str, Any] | None = field(repr=False)  # for optimizer.load_state_dict

    def build_model(self) -> PolicyValueNet:
        """The network with these weights, on the CPU, in eval mode (call ``.train()`` to train)."""
        model = build_network(self.net, self.obs_shape, self.num_actions)
        try:
            model.load_state_dict(self.model_state)
        except RuntimeError as e:
            detail = " ".join(str(e).split())
            problem = f"weights do not fit {self.net.describe()}: {detail[:300]}"
            raise CheckpointError(f"{self.path.name}: {problem}") from None
        return model.eval()

    @property
    def replay_path(self) -> Path | None:
        """The run directory's replay buffer (saved with its newest checkpoint), if any."""
        path = self.path.parent / REPLAY_FILE
        return path if path.exists() else None


def _resolve(path: Path) -> tuple[Path, str | None]:
    """(sidecar, tensor file name asked for or None) for a run directory (its latest checkpoint),
    a sidecar, or a tensor file."""
    if path.is_dir():
        latest = latest_checkpoint(path)
        if latest is None:
            raise CheckpointError(f"{path}: no checkpoint in this directory")
        return latest, None
    if _SIDECAR.match(path.name):
        return path, None
    if match := _DATA.match(path.name):
        return path.with_name(_sidecar_name(int(match.group(1)))), path.name
    raise CheckpointError(f"{path}: not a checkpoint (expected a run directory, ckpt-*.json or ckpt-*.safetensors)")


def checkpoint_sidecar(path: str | os.PathLike) -> Path:
    """The sidecar (``ckpt-*.json``) naming the checkpoint at ``path``: a run directory's latest, a
    sidecar, or a tensor file's. Reading it costs no tensor load; :func:`load_checkpoint` verifies."""
    return _resolve(Path(path))[0]


def _differences(found: Mapping[str, Any], expected: Mapping[str, Any]) -> str:
    keys = [k for k in expected if found.get(k) != expected[k]]
    return ", ".join(f"{k}={found.get(k)!r} (expected {expected[k]!r})" for k in keys)


def _check_game(name: str, tag: str, options: Any, obs_shape: tuple, num_actions: int, expect_game: Any) -> None:
    want = _game_record(expect_game)
    if tag != want["game"]:
        raise CheckpointError(f"{name}: checkpoint is for game {tag}, expected {want['game']}")
    if want["game_options"] is not None and options is not None and options != want["game_options"]:
        raise CheckpointError(
            f"{name}: checkpoint is for {tag} with different options: {_differences(options, want['game_options'])}"
        )
    if hasattr(expect_game, "obs_shape") and (
        obs_shape != tuple(expect_game.obs_shape) or num_actions != expect_game.num_actions
    ):
        raise CheckpointError(
            f"{name}: checkpoint has observations {obs_shape} and {num_actions} actions; "
            f"{want['game']} has {tuple(expect_game.obs_shape)} and {expect_game.num_actions}"
        )


def load_checkpoint(
    path: str | os.PathLike, expect_game: Any = None, expect_net: NetConfig | None = None, verify: bool = True
) -> Checkpoint:
    """Load the checkpoint at ``path``: a run directory (its latest checkpoint), a sidecar or a
    tensor file.

    ``expect_game``: a ``games.Game`` (version tag, options, observation shape and action count
    must match) or a version tag. ``expect_net``: the :class:`NetConfig` the caller will use.
    ``verify`` checks the tensor file's size and sha256 against the sidecar. Raises
    :class:`CheckpointError` with one line naming the file and the problem.
    """
    sidecar_path, asked = _resolve(Path(path))
    if not sidecar_path.exists():
        problem = f"no sidecar {sidecar_path.name} (incomplete or not a checkpoint)"
        raise CheckpointError(f"{asked or sidecar_path.name}: {problem}")
    name = sidecar_path.name
    try:
        sidecar = json.loads(sidecar_path.read_text())
        if sidecar.get("format") != FORMAT:
            raise CheckpointError(f"{name}: not a {FORMAT} sidecar")
        if sidecar.get("format_version") != FORMAT_VERSION:
            version = sidecar.get("format_version")
            raise CheckpointError(f"{name}: format version {version!r}, this code reads {FORMAT_VERSION}")
        step, tag, options = int(sidecar["step"]), str(sidecar["game"]), sidecar["game_options"]
        net = NetConfig.from_dict(sidecar["net"])
        obs_shape, num_actions = tuple(int(d) for d in sidecar["obs_shape"]), int(sidecar["num_actions"])
        size, digest, data_name = int(sidecar["bytes"]), str(sidecar["sha256"]), _data_name(sidecar, step)
    except CheckpointError:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError, NetConfigError) as e:
        raise CheckpointError(f"{name}: unreadable sidecar ({type(e).__name__}: {e})") from None
    if data_name is None:
        raise CheckpointError(f"{name}: unreadable sidecar (names no tensor file of step {step})")
    if asked is not None and asked != data_name:
        raise CheckpointError(f"{asked}: stale tensor file; checkpoint {name} is {data_name}")

    if expect_game is not None:
        _check_game(name, tag, options, obs_shape, num_actions, expect_game)
    if expect_net is not None and net != expect_net:
        raise CheckpointError(f"{name}: network config differs: {_differences(net.to_dict(), expect_net.to_dict())}")

    data_path = sidecar_path.with_name(data_name)
    try:
        data = data_path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"{data_name}: cannot read tensor file ({e.strerror or e})") from None
    if verify:
        if len(data) != size:
            raise CheckpointError(f"{data_name}: truncated or overwritten: {len(data)} bytes, sidecar says {size}")
        if _sha256(data) != digest:
            raise CheckpointError(f"{data_name}: corrupt: sha256 does not match the sidecar")
    try:
        tensors = safetensors_load(data)
    except (SafetensorError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{data_name}: unreadable safetensors data ({e})") from None

    model_state = {k[len(MODEL_PREFIX) :]: v for k, v in tensors.items() if k.startswith(MODEL_PREFIX)}
    optimizer_state = None
    if sidecar.get("optimizer") is not None:
        try:
            optimizer_state = _decode(sidecar["optimizer"], tensors)
        except KeyError as e:
            raise CheckpointError(f"{data_name}: optimizer tensor {e} missing from the tensor file") from None
    return Checkpoint(
        path=sidecar_path,
        tensor_path=data_path,
        step=step,
        game=tag,
        game_options=options,
        net=net,
        obs_shape=obs_shape,
        num_actions=num_actions,
        metrics=dict(sidecar.get("metrics") or {}),
        meta=dict(sidecar.get("meta") or {}),
        model_state=model_state,
        optimizer_state=optimizer_state,
    )
