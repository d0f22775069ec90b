"""The brain contract: tensor names, shapes, the operator set, and the manifest beside each model.

Pure Python (json, hashlib): the torch-free runtime, the verifier and the exporter all read it.

A **brain** is one ONNX model plus a JSON manifest beside it (``brain.onnx`` and ``brain.json``
in a brain directory). The model's interface (:data:`BRAIN_INPUTS`, :data:`BRAIN_OUTPUTS`)::

    obs          float32[batch, D]   D = C*H*W, the game's planes flattened row-major:
                                     feature c*H*W + row*W + col (the reshape is in the graph)
    action_mask  float32[batch, A]   1.0 = legal, 0.0 = illegal; at least one 1 per row
    logits       float32[batch, A]   the network's logits on legal actions, MASKED_LOGIT elsewhere
    probs        float32[batch, A]   softmax over the legal actions; exactly 0.0 on illegal ones
    value        float32[batch, 1]   optional (--with-value): expected outcome in [-1, 1]
                                     from the point of view of the player to move

Only the batch axis is dynamic. The manifest is authoritative (some engines cannot read ONNX
``metadata_props``); :class:`Manifest` is its typed form, and ``docs/export.md`` its guide.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Iterator, Mapping

__all__ = [
    "ALLOWED_OPS",
    "BRAIN_FILE",
    "BrainError",
    "DEFAULT_OPSET",
    "FORMAT",
    "FORMAT_VERSION",
    "MANIFEST_FILE",
    "MASKED_LOGIT",
    "MLAGENTS_EXTRA_OPS",
    "MLAGENTS_FILE",
    "Manifest",
    "TensorSpec",
    "atomic_write",
    "brain_paths",
    "game_of",
    "is_brain",
    "read_manifest",
    "sha256_hex",
]

FORMAT = "selfplay-brain"
FORMAT_VERSION = 1
#: Unity Sentis up to 2.4 documents opset 15 as its highest; onnxruntime 1.9 and later run it.
DEFAULT_OPSET = 15
BRAIN_FILE = "brain.onnx"
MANIFEST_FILE = "brain.json"
MLAGENTS_FILE = "brain.mlagents.onnx"  # its manifest: brain.mlagents.json
#: The logit an illegal action gets: finite (engines choke on -inf), and exp(MASKED_LOGIT - max)
#: is exactly 0 in float32, so the softmax gives illegal actions exactly 0.
MASKED_LOGIT = -1e9

#: Every operator a brain may use (standard domain). BatchNormalization is folded into Conv by
#: the exporter, but a model that keeps it in inference mode is still within the contract.
ALLOWED_OPS = frozenset(
    {
        "Conv", "BatchNormalization", "Gemm", "MatMul", "Add", "Mul", "Sub", "Relu", "Tanh", "Softmax",
        "Flatten", "Reshape", "Concat", "GlobalAveragePool", "Constant", "Identity", "Where", "Equal",
    }
)  # fmt: skip
#: The ML-Agents shape needs ArgMax (its ``discrete_actions`` are int64 indices, as ML-Agents'
#: own exporter writes them). Nothing else beyond :data:`ALLOWED_OPS`.
MLAGENTS_EXTRA_OPS = frozenset({"ArgMax"})


class BrainError(ValueError):
    """A brain that cannot be used or trusted: missing files, a manifest that does not match its
    model, a failed verification check. One line that names the file and the problem."""


@dataclass(frozen=True)
class TensorSpec:
    """One model input or output: its name, element type and shape (``"batch"`` for the one
    dynamic axis, integers elsewhere)."""

    name: str
    dtype: str  # "float32" (or "int64" for ML-Agents' discrete_actions)
    shape: tuple[Any, ...]  # e.g. ("batch", 126)
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape), "description": self.description}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TensorSpec":
        return cls(str(data["name"]), str(data["dtype"]), tuple(data["shape"]), str(data.get("description", "")))


@dataclass(frozen=True)
class Manifest:
    """What ``brain.json`` holds: everything an engine needs to run the model without reading it.

    ``observation`` and ``actions`` come from :func:`export.encoding.describe_game`; ``onnx`` is
    ``{"opset", "ir_version", "operators"}``; ``strength`` ``{"elo", "elo_interval", "level"}``
    (null when unknown); ``training`` what the checkpoint records (generation, games...);
    ``toolchain`` the versions that made the file. ``sha256`` and ``bytes`` describe the model
    file, so they are the only fields not also stored in the model's ``metadata_props``.
    """

    kind: str  # "brain" (our contract) or "mlagents" (ML-Agents' tensor names)
    name: str  # a label for people: the run and generation it came from
    model_file: str  # the model's file name, beside the manifest
    game: dict[str, Any]  # {"name", "version", "tag", "options", "description"}
    observation: dict[str, Any]  # shape, size, layout, point of view, planes in order
    actions: dict[str, Any]  # {"count", "table": [{"index", "text"}], "mask"}
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    value: dict[str, Any]  # {"present", "head", "range", "point_of_view"}
    onnx: dict[str, Any]  # {"opset", "ir_version", "operators"}
    network: dict[str, Any] = field(default_factory=dict)  # the architecture (NetConfig as a dict)
    strength: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    toolchain: dict[str, Any] = field(default_factory=dict)
    masked_logit: float = MASKED_LOGIT
    sha256: str = ""  # of the model file
    bytes: int = 0  # size of the model file
    format: str = FORMAT
    format_version: int = FORMAT_VERSION

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["inputs"] = [t.to_dict() for t in self.inputs]
        data["outputs"] = [t.to_dict() for t in self.outputs]
        return data

    def metadata_dict(self) -> dict[str, Any]:
        """The manifest without the model file's own hash and size: what ``metadata_props``
        carries (a file cannot hold its own hash)."""
        data = self.to_dict()
        data.pop("sha256")
        data.pop("bytes")
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "manifest") -> "Manifest":
        if data.get("format") != FORMAT:
            raise BrainError(f"{where}: not a {FORMAT} manifest (format {data.get('format')!r})")
        if data.get("format_version") != FORMAT_VERSION:
            raise BrainError(f"{where}: manifest format version {data.get('format_version')!r}; this code reads {FORMAT_VERSION}")
        try:
            fields = dict(data)
            fields["inputs"] = tuple(TensorSpec.from_dict(t) for t in data["inputs"])
            fields["outputs"] = tuple(TensorSpec.from_dict(t) for t in data["outputs"])
            return cls(**fields)
        except (KeyError, TypeError, ValueError) as e:
            raise BrainError(f"{where}: unreadable manifest ({type(e).__name__}: {e})") from None

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, allow_nan=False)

    # ------------------------------------------------------------------ conveniences
    @property
    def obs_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the game's planes; the model takes them flattened."""
        return tuple(int(d) for d in self.observation["shape"])  # type: ignore[return-value]

    @property
    def obs_size(self) -> int:
        return int(self.observation["size"])

    @property
    def num_actions(self) -> int:
        return int(self.actions["count"])

    @property
    def has_value(self) -> bool:
        return bool(self.value.get("present"))

    def action_text(self, action: int) -> str:
        return str(self.actions["table"][int(action)]["text"])


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def brain_paths(path: str | os.PathLike) -> tuple[Path, Path]:
    """(model file, manifest file) for a brain directory (``brain.onnx``, ``brain.json``) or a
    model file (``x.onnx`` and ``x.json`` beside it)."""
    path = Path(path)
    if path.is_dir():
        return path / BRAIN_FILE, path / MANIFEST_FILE
    return path, path.with_suffix(".json")


def is_brain(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a brain: a directory with ``brain.json``, or an ``.onnx`` file with a
    manifest beside it."""
    path = Path(path)
    if not (path.is_dir() or path.suffix == ".onnx"):
        return False
    return brain_paths(path)[1].is_file()


def read_manifest(path: str | os.PathLike) -> Manifest:
    """The manifest of the brain at ``path`` (a brain directory, a model file or the manifest)."""
    path = Path(path)
    manifest_path = path if path.suffix == ".json" else brain_paths(path)[1]
    try:
        data = json.loads(manifest_path.read_text())
    except FileNotFoundError:
        raise BrainError(f"{path}: no brain manifest ({manifest_path.name} is missing)") from None
    except (OSError, ValueError) as e:
        raise BrainError(f"{manifest_path}: unreadable manifest ({e})") from None
    if not isinstance(data, dict):
        raise BrainError(f"{manifest_path}: unreadable manifest (not a JSON object)")
    return Manifest.from_dict(data, where=str(manifest_path))


def fsync_dir(directory: Path) -> None:
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
    temporary file is removed and ``path`` is untouched. (Checkpoints, replay buffers and league
    state use it too: ``selfplay`` imports ``export``, never the other way.)"""
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
    fsync_dir(path.parent)


def game_of(manifest: Manifest, where: str = "brain") -> Any:
    """The ``games.Game`` a manifest was exported for (its name, options and version)."""
    import games  # lazily: reading a manifest needs no game

    info = manifest.game
    try:
        game = games.make(info["name"], **(info.get("options") or {}))
    except ValueError as e:
        raise BrainError(f"{where}: the brain plays {info.get('tag')!r}, which this version cannot make: {e}") from None
    if game.version_tag != info.get("tag"):
        raise BrainError(f"{where}: the brain is for {info.get('tag')}; this version plays {game.version_tag}")
    return game
