"""Verification of a brain: run on every export, and on demand (``selfplay export --verify DIR``).

:func:`verify_model` checks a model's bytes against its manifest; :func:`verify_brain` a brain
on disk (the file's sha256 and size first). Each check has a name; the first that fails raises
:class:`export.contract.BrainError` with one line: ``<where>: check '<name>' failed: <why>``.
A check that cannot be made is never reported as passed: the report's ``not_done`` says why.

=================  ===========================================================================
check              what it asserts
=================  ===========================================================================
file               the model file's size and sha256 are the manifest's
onnx checker       ``onnx.checker.check_model(full_check=True)`` (types and shapes inferred)
opset              the standard-domain opset and the IR version are the manifest's; no other
                   domain is imported
operators          every node, subgraphs included, is a standard-domain operator of
                   :data:`export.contract.ALLOWED_OPS` (plus ArgMax for the ML-Agents shape);
                   every Reshape's shape is a constant; the set used is the manifest's list
interface          inputs and outputs have the contract's names, dtypes and shapes, only the
                   batch axis is dynamic, and the manifest says the same
metadata           ``metadata_props["selfplay.manifest"]`` is the manifest (less hash and size)
masks              on real positions with their real masks: illegal actions get exactly 0
                   probability and exactly the manifest's ``masked_logit``, every row sums to
                   1 (within 1e-5), nothing is NaN (ML-Agents: the actions chosen are legal).
                   Not done when no position has an illegal action
optimizations      onnxruntime with graph optimisations off and on agree (max abs error on
                   probs <= tolerance; ML-Agents: the same actions), at every batch size
reference          with a reference (the torch network), onnxruntime's probs, logits on legal
                   actions (when the reference gives logits) and value equal it, max abs
                   error <= tolerance (1e-4; for logits relative to their largest magnitude,
                   if above 1), at every batch size (ML-Agents: the actions are its most
                   probable)
=================  ===========================================================================
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import onnx

from .contract import (
    ALLOWED_OPS,
    MLAGENTS_EXTRA_OPS,
    BrainError,
    Manifest,
    brain_paths,
    game_of,
    read_manifest,
    sha256_hex,
)
from .positions import Positions, sample_positions

__all__ = ["BATCHES", "METADATA_KEY", "Reference", "VerificationReport", "model_operators", "verify_brain", "verify_model"]

BATCHES = (1, 2, 7, 64)
TOLERANCE = 1e-4
METADATA_KEY = "selfplay.manifest"
_ONNX_DTYPES = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.INT64: "int64", onnx.TensorProto.DOUBLE: "float64"}

#: ``reference(obs float32[N, D], mask float32[N, A]) -> (probs float32[N, A], value float32[N] or
#: None[, logits float32[N, A]])``: what the model must compute, e.g. the torch network it was
#: exported from. ``logits`` (optional) are the network's own, compared on legal actions only; a
#: reference without them leaves the model's legal logits unchecked (the report says so).
Reference = Callable[[np.ndarray, np.ndarray], tuple[Any, ...]]


@dataclass(frozen=True)
class VerificationReport:
    """What :func:`verify_model` checked and the largest errors it saw."""

    model: str  # where: a file name, or "<name> (in memory)"
    checks: tuple[str, ...]  # names of the checks that passed, in order
    positions: int  # real positions run through onnxruntime
    batches: tuple[int, ...]
    max_error_optimizations: float | None  # max |probs(optimised) - probs(unoptimised)|; None for
    # the ML-Agents shape, which outputs actions (compared for equality instead)
    max_error_reference: float | None  # max |probs - reference probs|, None without a reference
    max_error_value: float | None  # max |value - reference value|, when both have one
    max_error_logits: float | None = None  # max |logits - reference logits| on legal actions, when both have them
    not_done: tuple[str, ...] = ()  # "<check>: why" for each check (or part) not made

    def summary(self) -> str:
        if self.max_error_reference is not None:
            ref = f"max error vs reference {self.max_error_reference:.1e}"
            if self.max_error_logits is not None:
                ref += f" (legal logits {self.max_error_logits:.1e})"
        else:  # the ML-Agents shape outputs actions: they are checked to be the reference's best
            ref = "actions are the reference's most probable" if "reference" in self.checks else "no reference"
        if self.max_error_optimizations is not None:
            optimised = f"optimised vs not {self.max_error_optimizations:.1e}"
        else:
            optimised = "optimised and not choose the same actions" if "optimizations" in self.checks else "optimised vs not unchecked"
        not_done = f"; NOT DONE: {'; '.join(self.not_done)}" if self.not_done else ""
        return (
            f"{self.model}: verified ({', '.join(self.checks)}); {self.positions} positions at batches "
            f"{', '.join(map(str, self.batches))}; {ref}; {optimised}{not_done}"
        )


class _Failure(Exception):
    def __init__(self, why: str, check: str | None) -> None:
        super().__init__(why)
        self.check = check


def _fail(why: str, check: str | None = None) -> None:
    """Fail the check under way (or the one named ``check``) because of ``why``."""
    raise _Failure(why, check)


# ----------------------------------------------------------------------------- structure


def _subgraphs(node: onnx.NodeProto) -> Iterator[onnx.GraphProto]:
    for attribute in node.attribute:
        if attribute.type == onnx.AttributeProto.GRAPH:
            yield attribute.g
        elif attribute.type == onnx.AttributeProto.GRAPHS:
            yield from attribute.graphs


def _nodes(graph: onnx.GraphProto) -> Iterator[tuple[onnx.GraphProto, onnx.NodeProto]]:
    """Every node of ``graph`` and of its subgraphs, with the graph holding it."""
    for node in graph.node:
        yield graph, node
        for sub in _subgraphs(node):
            yield from _nodes(sub)


def model_operators(model: onnx.ModelProto) -> list[str]:
    """The sorted operator types ``model`` uses, subgraphs included (``domain:Op`` outside the
    standard domain)."""
    return sorted({n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}:{n.op_type}" for _, n in _nodes(model.graph)})


def _check_operators(model: onnx.ModelProto, manifest: Manifest) -> None:
    allowed = ALLOWED_OPS | (MLAGENTS_EXTRA_OPS if manifest.kind == "mlagents" else frozenset())
    for graph, node in _nodes(model.graph):
        if node.domain not in ("", "ai.onnx"):
            _fail(f"node {node.name or node.op_type!r} is {node.domain}:{node.op_type}, outside the standard domain")
        if node.op_type not in allowed:
            _fail(f"node {node.name or node.op_type!r} is a {node.op_type}, not an allowed operator ({', '.join(sorted(allowed))})")
        if node.op_type == "Reshape":
            constants = {i.name for i in graph.initializer} | {o for n in graph.node if n.op_type == "Constant" for o in n.output}
            if len(node.input) < 2 or node.input[1] not in constants:
                _fail(f"Reshape {node.name!r} takes its shape from a computed tensor; the contract allows constant shapes only")
    used = model_operators(model)
    if used != sorted(manifest.onnx.get("operators", [])):
        _fail(f"the model uses {used}; the manifest lists {sorted(manifest.onnx.get('operators', []))}")


def _shape(value: onnx.ValueInfoProto) -> tuple[Any, ...]:
    return tuple(d.dim_param if d.HasField("dim_param") else (d.dim_value if d.HasField("dim_value") else "?")
                 for d in value.type.tensor_type.shape.dim)  # fmt: skip


def _contract_interface(manifest: Manifest) -> tuple[list[tuple[str, str, tuple]], list[tuple[str, str, tuple]]]:
    """The (name, dtype, shape) of the inputs and outputs the contract promises for ``manifest``'s
    kind, game size and value output."""
    d, a = manifest.obs_size, manifest.num_actions
    if manifest.kind == "mlagents":
        inputs = [("obs_0", "float32", ("batch", d)), ("action_masks", "float32", ("batch", a))]
        outputs = [
            ("version_number", "float32", (1,)),
            ("memory_size", "float32", (1,)),
            ("discrete_actions", "int64", ("batch", 1)),
            ("discrete_action_output_shape", "float32", (1, 1)),
            ("deterministic_discrete_actions", "int64", ("batch", 1)),
        ]
        return inputs, outputs
    inputs = [("obs", "float32", ("batch", d)), ("action_mask", "float32", ("batch", a))]
    outputs = [("logits", "float32", ("batch", a)), ("probs", "float32", ("batch", a))]
    if manifest.has_value:
        outputs.append(("value", "float32", ("batch", 1)))
    return inputs, outputs


def _check_interface(model: onnx.ModelProto, manifest: Manifest) -> None:
    if manifest.kind not in ("brain", "mlagents"):
        _fail(f"the manifest's kind is {manifest.kind!r}, not 'brain' or 'mlagents'")
    obs_shape = manifest.obs_shape
    if int(np.prod(obs_shape)) != manifest.obs_size:
        _fail(f"the manifest's observation shape {list(obs_shape)} does not hold {manifest.obs_size} features")
    if len(manifest.actions.get("table", [])) != manifest.num_actions:
        _fail(f"the manifest's action table has {len(manifest.actions.get('table', []))} entries for {manifest.num_actions} actions")
    want_in, want_out = _contract_interface(manifest)
    for side, found, want, declared in (
        ("input", model.graph.input, want_in, manifest.inputs),
        ("output", model.graph.output, want_out, manifest.outputs),
    ):
        initializers = {i.name for i in model.graph.initializer}
        got = [(v.name, _ONNX_DTYPES.get(v.type.tensor_type.elem_type, str(v.type.tensor_type.elem_type)), _shape(v))
               for v in found if v.name not in initializers]  # fmt: skip
        names = [g[0] for g in got]
        if names != [w[0] for w in want]:
            _fail(f"the model's {side}s are {names}; the contract says {[w[0] for w in want]}")
        for (name, dtype, shape), (_, want_dtype, want_shape) in zip(got, want):
            if dtype != want_dtype or shape != want_shape:
                _fail(f"{side} {name!r} is {dtype}{list(shape)}; the contract says {want_dtype}{list(want_shape)}")
        listed = [(t.name, t.dtype, tuple(t.shape)) for t in declared]
        if listed != want:
            _fail(f"the manifest's {side}s {listed} are not the model's {want}")


def _check_metadata(model: onnx.ModelProto, manifest: Manifest) -> None:
    props = {p.key: p.value for p in model.metadata_props}
    if METADATA_KEY not in props:
        _fail(f"the model has no metadata_props[{METADATA_KEY!r}]")
    try:
        embedded = json.loads(props[METADATA_KEY])
    except ValueError:
        _fail(f"metadata_props[{METADATA_KEY!r}] is not JSON")
    expected = json.loads(json.dumps(manifest.metadata_dict()))
    if embedded != expected:
        keys = sorted(k for k in set(embedded) | set(expected) if embedded.get(k) != expected.get(k))
        _fail(f"metadata_props differ from the manifest in {', '.join(keys)}")


# ----------------------------------------------------------------------------- numbers


def _sessions(data: bytes) -> tuple[Any, Any]:
    import onnxruntime as ort

    sessions = []
    for level in (ort.GraphOptimizationLevel.ORT_DISABLE_ALL, ort.GraphOptimizationLevel.ORT_ENABLE_ALL):
        options = ort.SessionOptions()
        options.graph_optimization_level = level
        options.intra_op_num_threads = 1
        sessions.append(ort.InferenceSession(data, options, providers=["CPUExecutionProvider"]))
    return sessions[0], sessions[1]


def _run_batched(session: Any, manifest: Manifest, obs: np.ndarray, mask: np.ndarray, batch: int) -> list[np.ndarray]:
    """Every output of ``session`` over all positions, fed ``batch`` at a time (the last chunk
    smaller), concatenated along the batch axis where the output has one."""
    names = [i.name for i in session.get_inputs()]
    chunks: list[list[np.ndarray]] = []
    for start in range(0, obs.shape[0], batch):
        chunks.append(session.run(None, {names[0]: obs[start : start + batch], names[1]: mask[start : start + batch]}))
    outputs = []
    for k, spec in enumerate(manifest.outputs):
        outputs.append(np.concatenate([c[k] for c in chunks]) if spec.shape[0] == "batch" else chunks[0][k])
    return outputs


@dataclass
class _Numbers:
    """What :func:`_check_numbers` measured, and the checks (or parts) it could not make."""

    error_optimizations: float | None = None
    error_reference: float | None = None
    error_value: float | None = None
    error_logits: float | None = None
    not_done: list[str] = field(default_factory=list)  # "<check>: why", for the report
    unmade: set[str] = field(default_factory=set)  # checks not made at all: never reported as passed


def _max_error(errors: float | None, error: float) -> float:
    return max(errors or 0.0, error)


def _check_numbers(
    data: bytes, manifest: Manifest, positions: Positions, reference: Reference | None, batches: Sequence[int], tolerance: float
) -> _Numbers:
    obs, mask = positions.obs, positions.mask
    if obs.shape[1] != manifest.obs_size or mask.shape[1] != manifest.num_actions:
        _fail(f"positions are [{obs.shape[1]}] / [{mask.shape[1]}], the brain takes [{manifest.obs_size}] / [{manifest.num_actions}]", "positions")
    try:
        plain, optimised = _sessions(data)
    except Exception as e:  # noqa: BLE001 - onnxruntime raises its own types
        _fail(f"onnxruntime cannot load the model: {' '.join(str(e).split())[:300]}", "onnxruntime")
    ref_probs = ref_value = ref_logits = None
    if reference is not None:
        ref_probs, ref_value, *rest = reference(obs, mask)
        ref_logits = rest[0] if rest else None
    numbers = _Numbers()
    legal = mask > 0
    if legal.all():  # every check of masked actions would pass whatever the model does with them
        numbers.unmade.add("masks")
        numbers.not_done.append(f"masks: none of the {len(positions)} positions has an illegal action, so masked actions went unchecked")
    if reference is not None and ref_logits is None and manifest.kind != "mlagents":
        numbers.not_done.append("reference: logits on legal actions (the reference gives no logits)")
    names = [s.name for s in manifest.outputs]
    for batch in batches:
        runs = [_run_batched(s, manifest, obs, mask, batch) for s in (plain, optimised)]
        for level, outputs in zip(("unoptimised", "optimised"), runs):
            named = dict(zip(names, outputs))
            if manifest.kind == "mlagents":
                _check_mlagents(named, manifest, legal, ref_probs, batch, level)
                continue
            _check_masks(named, manifest, legal, batch, level)
            if ref_probs is not None:
                _check_reference(named, legal, ref_probs, ref_value, ref_logits, numbers, batch, level, tolerance)
        if manifest.kind == "mlagents":
            _compare_mlagents_actions(runs, names.index("discrete_actions"), ref_probs, batch, tolerance)
        else:
            k = names.index("probs")
            error = float(np.abs(runs[0][k] - runs[1][k]).max())
            numbers.error_optimizations = _max_error(numbers.error_optimizations, error)
            if error > tolerance:
                _fail(f"probs with graph optimisations on and off differ by {error:.2e} > {tolerance:g} (batch {batch})", "optimizations")
    return numbers


def _check_masks(named: dict[str, np.ndarray], manifest: Manifest, legal: np.ndarray, batch: int, level: str) -> None:
    """Probs exactly 0 and logits exactly the manifest's ``masked_logit`` on illegal actions, rows
    summing to 1, nothing NaN or infinite."""
    probs, logits = named["probs"], named["logits"]
    if not np.isfinite(probs).all() or not np.isfinite(logits).all():
        _fail(f"NaN or infinite outputs at batch {batch} ({level})", "masks")
    if (probs[~legal] != 0.0).any():
        _fail(f"an illegal action has probability {probs[~legal].max():.3g}, not exactly 0 (batch {batch}, {level})", "masks")
    masked = logits[~legal]
    if (masked != np.float32(manifest.masked_logit)).any():
        wrong = masked[masked != np.float32(manifest.masked_logit)][0]
        _fail(f"an illegal action has logit {wrong:.6g}, not the masked_logit {manifest.masked_logit:g} (batch {batch}, {level})", "masks")
    if (probs < 0).any() or np.abs(probs.sum(axis=1) - 1.0).max() > 1e-5:
        _fail(f"a row of probs sums to {probs.sum(axis=1)[np.abs(probs.sum(axis=1) - 1).argmax()]:.6f}, not 1 (batch {batch}, {level})", "masks")


def _check_reference(
    named: dict[str, np.ndarray],
    legal: np.ndarray,
    ref_probs: np.ndarray,
    ref_value: np.ndarray | None,
    ref_logits: np.ndarray | None,
    numbers: _Numbers,
    batch: int,
    level: str,
    tolerance: float,
) -> None:
    """Probs, logits on legal actions and value equal the reference's."""
    error = float(np.abs(named["probs"] - ref_probs).max())
    numbers.error_reference = _max_error(numbers.error_reference, error)
    if error > tolerance:
        _fail(f"onnxruntime's probs differ from the reference by {error:.2e} > {tolerance:g} (batch {batch}, {level})", "reference")
    if ref_logits is not None:
        want = np.asarray(ref_logits, dtype=np.float64)[legal]
        error = float(np.abs(named["logits"][legal] - want).max())
        numbers.error_logits = _max_error(numbers.error_logits, error)
        bound = tolerance * max(1.0, float(np.abs(want).max()))  # float32 logits carry relative error
        if error > bound:
            _fail(f"onnxruntime's logits on legal actions differ from the reference by {error:.2e} > {bound:.2g} (batch {batch}, {level})", "reference")
    if ref_value is not None and "value" in named:
        error = float(np.abs(named["value"].reshape(-1) - ref_value.reshape(-1)).max())
        numbers.error_value = _max_error(numbers.error_value, error)
        if error > tolerance:
            _fail(f"onnxruntime's value differs from the reference by {error:.2e} > {tolerance:g} (batch {batch}, {level})", "reference")


def _check_mlagents(
    named: dict[str, np.ndarray], manifest: Manifest, legal: np.ndarray, ref_probs: np.ndarray | None, batch: int, level: str
) -> None:
    constants = {
        "version_number": [3.0],
        "memory_size": [0.0],
        "discrete_action_output_shape": [[float(manifest.num_actions)]],
    }
    for name, want in constants.items():
        if named[name].tolist() != want:
            _fail(f"{name} is {named[name].tolist()}, ML-Agents expects {want}")
    actions = named["discrete_actions"].reshape(-1)
    if not (actions == named["deterministic_discrete_actions"].reshape(-1)).all():
        _fail(f"discrete_actions and deterministic_discrete_actions differ (batch {batch}, {level})")
    rows = np.arange(actions.shape[0])
    if not legal[rows, actions].all():
        _fail(f"discrete_actions chose an illegal action (batch {batch}, {level})")
    if ref_probs is not None and (ref_probs[rows, actions] < ref_probs.max(axis=1) - TOLERANCE).any():
        _fail(f"discrete_actions is not the reference's most probable action (batch {batch}, {level})", "reference")


def _compare_mlagents_actions(runs: list[list[np.ndarray]], k: int, ref_probs: np.ndarray | None, batch: int, tolerance: float) -> None:
    """The ML-Agents shape's optimisations check: graph optimisations on and off choose the same
    actions, but where the reference shows both within ``tolerance`` of the most probable (a
    near tie, which rounding may break either way)."""
    plain, optimised = runs[0][k].reshape(-1), runs[1][k].reshape(-1)
    differ = plain != optimised
    if ref_probs is not None and differ.any():
        rows = np.flatnonzero(differ)
        best = ref_probs[rows].max(axis=1) - tolerance
        differ[rows] = (ref_probs[rows, plain[rows]] < best) | (ref_probs[rows, optimised[rows]] < best)
    if differ.any():
        _fail(f"discrete_actions with graph optimisations on and off differ at {int(differ.sum())} of {differ.size} positions (batch {batch})", "optimizations")


# ----------------------------------------------------------------------------- entry points


def verify_model(
    data: bytes,
    manifest: Manifest,
    positions: Positions,
    reference: Reference | None = None,
    batches: Sequence[int] = BATCHES,
    tolerance: float = TOLERANCE,
    where: str = "brain",
) -> VerificationReport:
    """Check the serialized model ``data`` against ``manifest`` (every check of the module
    docstring but ``file``), running it on ``positions``. Raises :class:`BrainError`, one line
    naming ``where`` and the failed check."""
    passed: list[str] = []
    check = "onnx checker"
    try:
        try:
            model = onnx.load_from_string(data)
        except Exception as e:  # noqa: BLE001 - protobuf's DecodeError and friends
            _fail(f"not an ONNX model ({type(e).__name__})")
        try:
            onnx.checker.check_model(model, full_check=True)
        except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
            _fail(" ".join(str(e).split())[:300])
        passed.append(check)

        check = "opset"
        domains = {o.domain or "ai.onnx": o.version for o in model.opset_import}
        if set(domains) != {"ai.onnx"}:
            _fail(f"the model imports domains {sorted(domains)}; only the standard domain is allowed")
        if domains["ai.onnx"] != manifest.onnx.get("opset"):
            _fail(f"the model is opset {domains['ai.onnx']}; the manifest says {manifest.onnx.get('opset')}")
        if model.ir_version != manifest.onnx.get("ir_version"):
            _fail(f"the model is IR version {model.ir_version}; the manifest says {manifest.onnx.get('ir_version')}")
        passed.append(check)

        for check, step in (("operators", _check_operators), ("interface", _check_interface), ("metadata", _check_metadata)):
            step(model, manifest)
            passed.append(check)

        check = "masks"
        numbers = _check_numbers(data, manifest, positions, reference, batches, tolerance)
        passed += [c for c in ("masks", "optimizations") if c not in numbers.unmade] + (["reference"] if reference is not None else [])
    except _Failure as failure:
        raise BrainError(f"{where}: check '{failure.check or check}' failed: {failure}") from None
    return VerificationReport(
        where,
        tuple(passed),
        len(positions),
        tuple(batches),
        numbers.error_optimizations,
        numbers.error_reference,
        numbers.error_value,
        numbers.error_logits,
        tuple(numbers.not_done),
    )


def verify_brain(
    path: str | Path,
    reference: Reference | None = None,
    positions: Positions | None = None,
    count: int = 1000,
    seed: int = 0,
    batches: Sequence[int] = BATCHES,
) -> VerificationReport:
    """Verify the brain at ``path`` (a brain directory or a model file with its manifest
    beside): the file's sha256 and size, then :func:`verify_model` on ``positions`` (default:
    ``count`` positions of random games of the manifest's game, which must be one ``games``
    knows). Raises :class:`BrainError`."""
    model_path, _ = brain_paths(path)
    manifest = read_manifest(path)
    if manifest.model_file != model_path.name:
        model_path = model_path.with_name(manifest.model_file)
    try:
        data = model_path.read_bytes()
    except OSError as e:
        raise BrainError(f"{model_path}: check 'file' failed: cannot read the model ({e.strerror or e})") from None
    if len(data) != manifest.bytes or sha256_hex(data) != manifest.sha256:
        raise BrainError(
            f"{model_path}: check 'file' failed: the model's sha256 or size ({len(data)} bytes) is not the manifest's "
            f"({manifest.bytes} bytes): the file was changed after export"
        )
    if positions is None:
        positions = sample_positions(game_of(manifest, str(model_path)), count, seed)
    report = verify_model(data, manifest, positions, reference, batches, where=str(model_path))
    return replace(report, checks=("file", *report.checks))

