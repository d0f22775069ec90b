"""How long a new process takes to its first search: ``selfplay bench startup``.

numba compiles kernels at first use and caches them on disk (``selfplay warmup``, run by
``make venv``, fills the cache at install). This runs a fresh Python process that imports
``games`` and ``search`` and searches once with the rollout evaluator (the in-numba path:
``mcts:N`` agents, ``selfplay bench search``) and once with an outside evaluator (the network
path: training, ``analyze``, checkpoint agents), and times each step. ``cold=True`` gives the
process an empty numba cache (``NUMBA_CACHE_DIR``), as on an install that never warmed up.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

__all__ = ["measure_startup"]

_CHILD = r"""
import json, sys, time
began = time.perf_counter()
import numpy as np
import games, search
imported = time.perf_counter()
game = games.make(sys.argv[1])
state = game.initial_state()
config = search.SearchConfig(num_simulations=200)
search.run(game, state, search.RolloutEvaluator(), config)
rollout = time.perf_counter()
uniform = lambda obs, mask: (np.zeros(mask.shape, np.float32), np.zeros(len(mask), np.float32))
search.run(game, state, uniform, config)
network = time.perf_counter()
print(json.dumps({"import_seconds": imported - began, "first_rollout_search_seconds": rollout - imported,
                  "first_network_search_seconds": network - rollout}))
"""


def measure_startup(game: str = "connect4", cold: bool = False) -> dict[str, Any]:
    """Times (seconds) of a fresh process: ``import_seconds`` (games and search),
    ``first_rollout_search_seconds`` (``games.make`` and a 200-simulation rollout search),
    ``first_network_search_seconds`` (then one with an outside evaluator), and
    ``process_seconds``, from start to exit, Python's own start included."""
    env = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="selfplay-numba-cache-") as empty:
        if cold:
            env["NUMBA_CACHE_DIR"] = empty
        began = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", _CHILD, game], env=env, capture_output=True, text=True)
        elapsed = time.perf_counter() - began
    if done.returncode != 0:
        raise RuntimeError(f"the startup process failed: {done.stderr.strip().splitlines()[-1:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return {"game": game, "cache": "empty" if cold else "as installed", **report, "process_seconds": elapsed}
