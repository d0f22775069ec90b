"""search: batched AlphaZero-style MCTS in numba, for many games at once.

Depends on ``games`` only and never imports torch (the torch evaluator imports it when built).

* :class:`SearchConfig`: every setting, typed and validated.
* :func:`run`: one search over a batch of states, for notebooks.
* :class:`Search`: B trees kept alive across moves, for self-play (``run``, ``advance``,
  ``set_roots``).
* Evaluators: :class:`UniformEvaluator`, :class:`RolloutEvaluator` (both run inside numba),
  :class:`TorchEvaluator`, :class:`OnnxEvaluator`, or any callable
  ``(obs float32[N, C, H, W], mask bool[N, A]) -> (logits float32[N, A], value float32[N])``.

See ``docs/search.md``.
"""

from .api import Search, SearchResult, run
from .config import SearchConfig, SearchError
from .evaluators import (
    Evaluator,
    OnnxEvaluator,
    RolloutEvaluator,
    TorchEvaluator,
    UniformEvaluator,
)

__all__ = [
    "Evaluator",
    "OnnxEvaluator",
    "RolloutEvaluator",
    "Search",
    "SearchConfig",
    "SearchError",
    "SearchResult",
    "TorchEvaluator",
    "UniformEvaluator",
    "run",
]
