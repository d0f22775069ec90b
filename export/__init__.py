"""export: trained agents as ONNX "brains" that game engines run without Python.

A brain is an ONNX model with a stable contract (flat ``obs`` and ``action_mask`` in; masked
``logits``, ``probs`` and optionally ``value`` out) and a JSON manifest beside it that says what
every input feature and every action means. ``docs/export.md`` is the guide.

* :mod:`export.contract`: tensor names, the allowed operators, the :class:`Manifest` (pure Python).
* :mod:`export.runtime`: :class:`Brain`, onnxruntime and numpy only (no torch).
* :mod:`export.graph`: the one place a network becomes ONNX (torch): the actors' in-memory
  evaluator model, the brain, and the brain under ML-Agents' tensor names.
* :mod:`export.exporter`: :func:`export_brain`, which builds, verifies and writes a brain.
* :mod:`export.verify`: :func:`verify_brain` / :func:`verify_model`, the checks run on every export.
* :mod:`export.encoding`, :mod:`export.positions`: a game described for the manifest; real
  positions to verify on.

Dependencies point one way: ``selfplay`` imports ``export``; ``export`` imports ``games`` (and
``search`` for the runtime's optional search), never ``selfplay``. Names are imported lazily, so
``import export.runtime`` loads neither torch nor onnx.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["Brain", "BrainError", "Manifest", "export_brain", "verify_brain", "verify_model"]

_WHERE = {
    "Brain": "export.runtime",
    "BrainError": "export.contract",
    "Manifest": "export.contract",
    "export_brain": "export.exporter",
    "verify_brain": "export.verify",
    "verify_model": "export.verify",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'export' has no attribute {name!r}")
