"""Run an exported brain with onnxruntime and numpy only: no torch, no training code.

::

    from export.runtime import Brain
    brain = Brain.load("brains/connect4")            # a brain directory, or brain.onnx
    probs, value = brain.evaluate(obs, mask)          # float32[N, A], float32[N] (None without a value)
    action = brain.act(obs, mask)                     # the most probable legal move
    action = brain.act(obs, mask, temperature=1.0, rng=np.random.default_rng(0))   # sampled

``obs`` is the game's planes from the player to move (``game.encode(state)``, or built by hand
from the manifest), one position (``[D]`` or ``[C, H, W]``) or a batch (``[N, D]`` or
``[N, C, H, W]``); ``mask`` the legal actions (``[A]`` or ``[N, A]``, bool or 0/1). One position
gives one answer (``probs [A]``, a float value, an int action); a batch gives arrays.

For stronger play, :meth:`Brain.search` runs the ``search`` package's batched MCTS with the
brain as its evaluator (needs a brain exported ``--with-value``, and the ``games`` package for
the rules; both are imported only when asked for). Importing this module imports neither torch
nor ``selfplay`` (a test checks it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .contract import BrainError, Manifest, brain_paths, game_of, read_manifest, sha256_hex

__all__ = ["Brain", "BrainEvaluator"]


@dataclass
class Brain:
    """A loaded brain: its onnxruntime session and its manifest."""

    path: Path  # the model file
    manifest: Manifest
    session: Any  # onnxruntime.InferenceSession

    @classmethod
    def load(cls, path: str | os.PathLike, threads: int | None = 1, optimize: bool = True) -> "Brain":
        """The brain at ``path``: a brain directory (``brain.onnx`` and ``brain.json``) or a model
        file with its manifest beside it. The file must be the one the manifest describes
        (sha256). ``threads``: onnxruntime intra-op threads (1 suits one decision at a time;
        None lets onnxruntime choose); ``optimize``: graph optimisations (on by default)."""
        model_path, _ = brain_paths(path)
        manifest = read_manifest(path)
        if manifest.kind != "brain":
            raise BrainError(f"{model_path}: a {manifest.kind} model (for its own runtime); load brain.onnx instead")
        model_path = model_path.with_name(manifest.model_file)
        try:
            data = model_path.read_bytes()
        except OSError as e:
            raise BrainError(f"{model_path}: cannot read the model ({e.strerror or e})") from None
        return cls.from_bytes(data, manifest, model_path, threads, optimize)

    @classmethod
    def from_bytes(cls, data: bytes, manifest: Manifest, path: str | os.PathLike = "brain.onnx",
                   threads: int | None = 1, optimize: bool = True) -> "Brain":
        """The brain whose model file holds ``data`` and whose manifest is ``manifest`` (a brain
        sent to another process whole); ``path`` only names it in messages. Checked as
        :meth:`load` checks a file."""
        import onnxruntime as ort

        model_path = Path(path)
        if sha256_hex(data) != manifest.sha256:
            raise BrainError(f"{model_path}: the model's sha256 is not the manifest's: the file was changed after export")
        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = int(threads)
        if not optimize:
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        names = [o.name for o in session.get_outputs()]
        if names != [t.name for t in manifest.outputs]:
            raise BrainError(f"{model_path}: the model's outputs {names} are not the manifest's")
        return cls(model_path, manifest, session)

    # ------------------------------------------------------------------ facts
    @property
    def num_actions(self) -> int:
        return self.manifest.num_actions

    @property
    def obs_size(self) -> int:
        return self.manifest.obs_size

    @property
    def has_value(self) -> bool:
        return self.manifest.has_value

    def game(self) -> Any:
        """The ``games.Game`` this brain plays (imports ``games``)."""
        return game_of(self.manifest, str(self.path))

    # ------------------------------------------------------------------ inference
    def _inputs(self, obs: Any, mask: Any) -> tuple[np.ndarray, np.ndarray, bool]:
        obs = np.asarray(obs, dtype=np.float32)
        single = obs.ndim in (1, 3)
        if obs.ndim not in (1, 2, 3, 4) or obs.size % self.obs_size or (obs.ndim in (2, 4) and obs[0].size != self.obs_size):
            raise BrainError(f"{self.path.name}: observations must be [{self.obs_size}] or [N, {self.obs_size}] (or planes), got {list(obs.shape)}")
        flat = np.ascontiguousarray(obs.reshape(-1, self.obs_size))
        mask = np.asarray(mask)
        masks = np.ascontiguousarray(mask.reshape(-1, self.num_actions) if mask.size == flat.shape[0] * self.num_actions else mask, dtype=np.float32)
        if masks.shape != (flat.shape[0], self.num_actions):
            raise BrainError(f"{self.path.name}: masks must be [{flat.shape[0]}, {self.num_actions}] for these observations, got {list(mask.shape)}")
        if not (masks > 0).any(axis=1).all():
            raise BrainError(f"{self.path.name}: a mask allows no action (a finished position has no move to choose)")
        return flat, masks, single

    def run(self, obs: np.ndarray, mask: np.ndarray) -> dict[str, np.ndarray]:
        """Every output by name, for ``obs float32[N, D]`` and ``mask float32[N, A]`` as they are."""
        outputs = self.session.run(None, {"obs": obs, "action_mask": mask})
        return {spec.name: out for spec, out in zip(self.manifest.outputs, outputs)}

    def evaluate(self, obs: Any, mask: Any) -> tuple[np.ndarray, Any]:
        """``(probs, value)``: probs float32[N, A] (exactly 0 on illegal actions), value
        float32[N] in [-1, 1] for the player to move, or None for a brain exported without one.
        One position: probs [A] and a float."""
        flat, masks, single = self._inputs(obs, mask)
        out = self.run(flat, masks)
        value = out["value"].reshape(-1) if "value" in out else None
        if single:
            return out["probs"][0], (None if value is None else float(value[0]))
        return out["probs"], value

    def act(self, obs: Any, mask: Any, temperature: float = 0.0, rng: np.random.Generator | None = None) -> Any:
        """The move for each position: with ``temperature`` 0 the most probable legal action
        (ties: the lowest index), else one drawn from ``probs ** (1 / temperature)`` with
        ``rng`` (required: no hidden random state). One position gives an int."""
        flat, masks, single = self._inputs(obs, mask)
        probs = self.run(flat, masks)["probs"].astype(np.float64)
        if temperature < 0:
            raise BrainError(f"temperature must be >= 0, got {temperature}")
        if temperature == 0:
            actions = probs.argmax(axis=1)
        else:
            if rng is None:
                raise BrainError("act with temperature > 0 draws moves: pass rng=np.random.default_rng(seed)")
            # In log space, less each row's maximum before dividing by T: exp(log p / T) alone
            # underflows to an all-zero row for a small T (NaN weights, and rng.choice raises);
            # shifted, the most probable action's weight is exactly 1 for any T > 0.
            log_probs = np.where(masks > 0, np.log(np.maximum(probs, 1e-300)), -np.inf)
            with np.errstate(over="ignore"):  # a tiny T sends the others to -inf: weight 0
                weights = np.exp((log_probs - log_probs.max(axis=1, keepdims=True)) / temperature)
            weights /= weights.sum(axis=1, keepdims=True)
            actions = np.array([rng.choice(self.num_actions, p=w) for w in weights])
        actions = actions.astype(np.int64)
        return int(actions[0]) if single else actions

    def evaluator(self, require_value: bool = True) -> "BrainEvaluator":
        """This brain as a ``search`` evaluator (see :class:`BrainEvaluator`)."""
        return BrainEvaluator(self, require_value)

    def search(self, game: Any, states: Any, visits: int, seed: int = 0) -> np.ndarray:
        """int64[G]: the move a PUCT search of ``visits`` simulations per position (no noise,
        the most visited move) chooses in each of ``states`` (int64[G, S], or one int64[S]
        giving an int) of ``game``, the brain as evaluator. Imports ``search``."""
        from search import Search, SearchConfig

        if game.version_tag != self.manifest.game["tag"] or game.num_actions != self.num_actions:
            raise BrainError(f"{self.path.name}: the brain plays {self.manifest.game['tag']}, not {game!r}")
        states = np.asarray(states, dtype=np.int64)
        single = states.ndim == 1
        states = np.ascontiguousarray(states.reshape(-1, game.state_size))
        config = SearchConfig(num_simulations=int(visits), dirichlet_fraction=0.0, temperature_moves=0, reuse_tree=False)
        result = Search(game, states, config, seed=seed).run(self.evaluator())
        return int(result.actions[0]) if single else result.actions


class BrainEvaluator:
    """A brain as the search's evaluator: ``(obs float32[N, C, H, W], mask bool[N, A]) ->
    (logits float32[N, A], value float32[N])``, value from the player to move. The logits are
    the brain's masked logits (the search masks illegal actions itself).

    A search needs values: a brain without one is refused, unless ``require_value`` is False
    (the raw policy needs logits only), and its values are then NaN.
    """

    def __init__(self, brain: Brain, require_value: bool = True) -> None:
        if require_value and not brain.has_value:
            raise BrainError(
                f"{brain.path.name}: exported without a value output; a search needs one "
                f"(export with --with-value, or play the raw policy: 0 visits)"
            )
        self.brain = brain

    def __call__(self, obs: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        flat = np.ascontiguousarray(obs.reshape(obs.shape[0], -1), dtype=np.float32)
        out = self.brain.run(flat, np.ascontiguousarray(mask, dtype=np.float32))
        value = out["value"].reshape(-1) if "value" in out else np.full(flat.shape[0], np.nan, np.float32)
        return out["logits"], value
