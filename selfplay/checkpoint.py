"""Checkpoints: weights and optimizer state as safetensors, everything else in a JSON sidecar.

A checkpoint of step 123 in a run directory is two files::

    ckpt-000123.safetensors   tensors "model/<state_dict key>" and "optimizer/<path>"
    ckpt-000123.json          the sidecar: game, network, step, metrics, sha256 of the tensors...

Writing is crash-safe. Every file is written to a temporary name in the same directory, flushed,
fsynced and renamed over its final name, and the directory is fsynced (:func:`atomic_write`).
The tensors go first and the sidecar last, so a checkpoint exists exactly when its sidecar does:
a crash at any moment leaves the previous checkpoints intact and at worst an orphan tensor file
or a temporary file, which the next save removes. Older checkpoints are deleted sidecar first,
for the same reason. One process writes to a run directory at a time.

Loading verifies the tensor file against the sidecar's size and sha256 and refuses, with a
one-line :class:`CheckpointError`, a truncated or corrupt file, a missing sidecar, or a checkpoint
of another game or network configuration. Nothing here uses pickle: the optimizer state's
non-tensor parts (step counts, hyperparameters) go into the sidecar as JSON.

The replay buffer can be saved alongside (``save_checkpoint(..., replay=buffer)``) as
``replay.npz``, one file per run directory that each save replaces, written before the weights:
after a crash it holds at least the data of the newest checkpoint.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import math
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Iterator, Mapping

import torch
from safetensors import SafetensorError
from safetensors.torch import load as safetensors_load
from safetensors.torch import save as safetensors_save

from .network import NetConfig, NetConfigError, PolicyValueNet, build_network

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "REPLAY_FILE",
    "atomic_write",
    "best_checkpoint",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "save_checkpoint",
]

FORMAT = "selfplay-checkpoint"
FORMAT_VERSION = 1
REPLAY_FILE = "replay.npz"
_NAME = re.compile(r"^ckpt-(\d{6,})\.(safetensors|json)$")
_TEMP = re.compile(r"^\.(ckpt-\d{6,}\.(safetensors|json)|replay\.npz)\.tmp-")
MODEL_PREFIX = "model/"
OPTIMIZER_PREFIX = "optimizer/"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: missing, truncated, corrupt, or for another game/network."""


# --------------------------------------------------------------------------- durable files


def _fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (no-op where directories cannot be opened)."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """``with atomic_write(path) as f: f.write(...)``: ``path`` holds either its old content or
    all of the new, whatever happens. Writes ``.<name>.tmp-<pid>-<random>`` in the same
    directory, then flush, fsync, rename over ``path``, fsync the directory. On an exception the
    temporary file is removed and ``path`` is untouched."""
    path = Path(path)
    temp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
    f = open(temp, "xb")
    try:
        yield f
        f.flush()
        os.fsync(f.fileno())
        f.close()
        os.replace(temp, path)
    except BaseException:
        f.close()
        temp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_name(step: int, suffix: str) -> str:
    return f"ckpt-{step:06d}.{suffix}"


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


def _scan(directory: Path) -> tuple[dict[int, Path], dict[int, Path]]:
    """({step: sidecar}, {step: tensor file}) of the files in ``directory``."""
    sidecars: dict[int, Path] = {}
    data: dict[int, Path] = {}
    if not directory.is_dir():
        return sidecars, data
    for entry in directory.iterdir():
        match = _NAME.match(entry.name)
        if match:
            (sidecars if match.group(2) == "json" else data)[int(match.group(1))] = entry
    return sidecars, data


def list_checkpoints(directory: str | os.PathLike) -> list[Path]:
    """Tensor files of the complete checkpoints (sidecar written) in ``directory``, oldest first."""
    sidecars, _ = _scan(Path(directory))
    return [sidecars[s].with_suffix(".safetensors") for s in sorted(sidecars)]


def latest_checkpoint(directory: str | os.PathLike) -> Path | None:
    """The tensor file of the highest-step complete checkpoint in ``directory``, or None."""
    found = list_checkpoints(directory)
    return found[-1] if found else None


def _metric_of(sidecar: Path, metric: str) -> float | None:
    try:
        value = json.loads(sidecar.read_text())["metrics"][metric]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def best_checkpoint(directory: str | os.PathLike, metric: str, higher_is_better: bool = True) -> Path | None:
    """The tensor file of the complete checkpoint with the best ``metrics[metric]`` (ties: the
    newest), or None if no checkpoint records that metric."""
    sidecars, _ = _scan(Path(directory))
    scored = [(v, step) for step, car in sidecars.items() if (v := _metric_of(car, metric)) is not None]
    if not scored:
        return None
    _, step = max(scored) if higher_is_better else min(scored, key=lambda vs: (vs[0], -vs[1]))
    return sidecars[step].with_suffix(".safetensors")


# --------------------------------------------------------------------------- saving


def _remove_debris(directory: Path) -> None:
    """Temporary files and tensor files without a sidecar, left by a crash mid-save."""
    sidecars, data = _scan(directory)
    for step, path in data.items():
        if step not in sidecars:
            path.unlink(missing_ok=True)
    for entry in directory.iterdir():
        if _TEMP.match(entry.name):
            entry.unlink(missing_ok=True)


def _prune(directory: Path, keep_last: int, best_metric: str | None, higher_is_better: bool) -> None:
    sidecars, _ = _scan(directory)
    keep = set(sorted(sidecars)[-keep_last:])
    if best_metric is not None and (best := best_checkpoint(directory, best_metric, higher_is_better)):
        keep.add(int(_NAME.match(best.name).group(1)))
    for step in sorted(set(sidecars) - keep):
        sidecars[step].unlink(missing_ok=True)  # the checkpoint is gone from here on
        sidecars[step].with_suffix(".safetensors").unlink(missing_ok=True)
    _fsync_dir(directory)


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
) -> Path:
    """Write checkpoint ``step`` into ``directory`` (created if needed) and prune older ones.

    ``model`` is a network from :func:`selfplay.network.build_network`; its config, observation
    shape and action count are recorded, so :meth:`Checkpoint.build_model` can rebuild it.
    ``optimizer_state`` is ``optimizer.state_dict()``; ``game`` a ``games.Game`` (tag and options
    recorded) or its version tag; ``metrics`` numbers such as loss or Elo; ``meta`` any other
    JSON-ready facts (the run's config). ``replay`` (anything with ``save(path)``, e.g. a
    :class:`selfplay.replay.ReplayBuffer`) is saved to ``directory / "replay.npz"`` first.

    Retention: the ``keep_last`` newest checkpoints stay, and, with ``best_metric``, the one with
    the best ``metrics[best_metric]`` (highest, or lowest if not ``higher_is_better``). Returns
    the path of the tensor file.
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
        "file": _file_name(step, "safetensors"),
        "bytes": len(data),
        "sha256": _sha256(data),
        "saved_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "torch_version": torch.__version__,
    }
    try:
        sidecar_text = json.dumps(sidecar, indent=1, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise CheckpointError(f"checkpoint metrics/meta must be JSON numbers, strings, lists and dicts: {e}") from None

    if replay is not None:
        replay.save(directory / REPLAY_FILE)
    sidecar_path = directory / _file_name(step, "json")
    sidecar_path.unlink(missing_ok=True)  # re-saving a step: the old pair stops being a checkpoint first
    data_path = directory / _file_name(step, "safetensors")
    with atomic_write(data_path) as f:
        f.write(data)
    with atomic_write(sidecar_path) as f:
        f.write(sidecar_text.encode())
    _prune(directory, keep_last, best_metric, higher_is_better)
    return data_path


# --------------------------------------------------------------------------- loading


@dataclass(frozen=True)
class Checkpoint:
    """A loaded, verified checkpoint. Tensors are on the CPU."""

    path: Path  # the .safetensors file
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
            raise CheckpointError(f"{self.path.name}: weights do not fit {self.net.describe()}: {detail[:300]}") from None
        return model.eval()

    @property
    def replay_path(self) -> Path | None:
        """The run directory's replay buffer (saved with its newest checkpoint), if any."""
        path = self.path.parent / REPLAY_FILE
        return path if path.exists() else None


def _resolve(path: Path) -> tuple[Path, Path]:
    """(tensor file, sidecar) for a directory (its latest), a .safetensors or a .json path."""
    if path.is_dir():
        latest = latest_checkpoint(path)
        if latest is None:
            raise CheckpointError(f"{path}: no checkpoint in this directory")
        path = latest
    if path.suffix not in (".safetensors", ".json"):
        raise CheckpointError(f"{path}: not a checkpoint (expected a directory, .safetensors or .json)")
    return path.with_suffix(".safetensors"), path.with_suffix(".json")


def _differences(found: Mapping[str, Any], expected: Mapping[str, Any]) -> str:
    keys = [k for k in expected if found.get(k) != expected[k]]
    return ", ".join(f"{k}={found.get(k)!r} (expected {expected[k]!r})" for k in keys)


def load_checkpoint(
    path: str | os.PathLike, expect_game: Any = None, expect_net: NetConfig | None = None, verify: bool = True
) -> Checkpoint:
    """Load the checkpoint at ``path``: a run directory (its latest checkpoint), or either file.

    ``expect_game``: a ``games.Game`` (version tag, options, observation shape and action count
    must match) or a version tag. ``expect_net``: the :class:`NetConfig` the caller will use.
    ``verify`` checks the tensor file's size and sha256 against the sidecar. Raises
    :class:`CheckpointError` with one line naming the file and the problem.
    """
    data_path, sidecar_path = _resolve(Path(path))
    name = data_path.name
    if not sidecar_path.exists():
        raise CheckpointError(f"{name}: no sidecar {sidecar_path.name} (incomplete or not a checkpoint)")
    try:
        sidecar = json.loads(sidecar_path.read_text())
        if sidecar.get("format") != FORMAT:
            raise CheckpointError(f"{sidecar_path.name}: not a {FORMAT} sidecar")
        if sidecar.get("format_version") != FORMAT_VERSION:
            raise CheckpointError(
                f"{sidecar_path.name}: format version {sidecar.get('format_version')!r}, this code reads {FORMAT_VERSION}"
            )
        step, tag, options = int(sidecar["step"]), str(sidecar["game"]), sidecar["game_options"]
        net = NetConfig.from_dict(sidecar["net"])
        obs_shape, num_actions = tuple(int(d) for d in sidecar["obs_shape"]), int(sidecar["num_actions"])
        size, digest = int(sidecar["bytes"]), str(sidecar["sha256"])
    except (OSError, ValueError, KeyError, TypeError, NetConfigError) as e:
        if isinstance(e, CheckpointError):
            raise
        raise CheckpointError(f"{sidecar_path.name}: unreadable sidecar ({type(e).__name__}: {e})") from None

    if expect_game is not None:
        want = _game_record(expect_game)
        if tag != want["game"]:
            raise CheckpointError(f"{name}: checkpoint is for game {tag}, expected {want['game']}")
        if want["game_options"] is not None and options is not None and options != want["game_options"]:
            diff = _differences(options, want["game_options"])
            raise CheckpointError(f"{name}: checkpoint is for {tag} with different options: {diff}")
        if hasattr(expect_game, "obs_shape") and (
            obs_shape != tuple(expect_game.obs_shape) or num_actions != expect_game.num_actions
        ):
            raise CheckpointError(
                f"{name}: checkpoint has observations {obs_shape} and {num_actions} actions; "
                f"{want['game']} has {tuple(expect_game.obs_shape)} and {expect_game.num_actions}"
            )
    if expect_net is not None and net != expect_net:
        diff = _differences(net.to_dict(), expect_net.to_dict())
        raise CheckpointError(f"{name}: network config differs: {diff}")

    try:
        data = data_path.read_bytes()
    except OSError as e:
        raise CheckpointError(f"{name}: cannot read tensor file ({e.strerror or e})") from None
    if verify:
        if len(data) != size:
            raise CheckpointError(f"{name}: truncated or overwritten: {len(data)} bytes, sidecar says {size}")
        if _sha256(data) != digest:
            raise CheckpointError(f"{name}: corrupt: sha256 does not match the sidecar")
    try:
        tensors = safetensors_load(data)
    except (SafetensorError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{name}: unreadable safetensors data ({e})") from None

    model_state = {k[len(MODEL_PREFIX) :]: v for k, v in tensors.items() if k.startswith(MODEL_PREFIX)}
    optimizer_state = None
    if sidecar.get("optimizer") is not None:
        try:
            optimizer_state = _decode(sidecar["optimizer"], tensors)
        except KeyError as e:
            raise CheckpointError(f"{name}: optimizer tensor {e} missing from the tensor file") from None
    return Checkpoint(
        path=data_path,
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
