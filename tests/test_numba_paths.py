"""The search's two private numba fast paths are in use, and their fallbacks are loud and right.

The search relies on ``_nrt=False`` (search/kernels.py) and on
``numba.experimental.function_type._get_wrapper_address`` (games/core.py). A numba release may
drop either; the code then falls back (slower, with a RuntimeWarning) instead of breaking. These
tests fail when that happens, so an upgrade cannot lose the speed silently: docs/search.md
(numba versions) gives the measured cost of the fallback.
"""

from __future__ import annotations

import re
import subprocess
import sys
import warnings
from pathlib import Path

import numba
import numpy as np
import pytest

import games
import search
from games import core
from search import kernels

ROOT = Path(__file__).resolve().parents[1]


def test_search_runs_on_both_fast_paths_without_a_warning():
    game = games.make("connect4")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        result = search.run(game, game.play([3, 3]), search.UniformEvaluator(), search.SearchConfig(num_simulations=64))
    assert result.simulations[0] == 64
    assert all(isinstance(rule, core._Rule) for rule in game.kernels), "rules reach search as dispatchers"
    assert kernels.fast_path() == {"numba": numba.__version__, "function_pointers": True, "refcount_free": True}


def test_installed_numba_is_in_the_supported_range():
    spec = re.search(r'"(numba>=([\d.]+),<([\d.]+))"', (ROOT / "pyproject.toml").read_text())
    spec, low, high = spec.groups()
    version = tuple(int(x) for x in re.findall(r"\d+", numba.__version__)[:2])
    assert tuple(map(int, low.split("."))) <= version < tuple(map(int, high.split("."))), (
        f"numba {numba.__version__} is outside the tested range {spec}: run this file and "
        "`selfplay bench search` on it, then move the bound"
    )


def test_without_function_pointers_rules_go_as_dispatchers_with_a_warning(monkeypatch):
    monkeypatch.setattr(core, "_wrapper_address_helper", lambda: None)
    monkeypatch.setattr(core, "_FALLBACK_WARNED", [])
    game = games.make("tictactoe")
    with pytest.warns(RuntimeWarning, match="typed function pointers are unavailable"):
        rules = game.kernels
    assert rules == (game.legal_mask_fn, game.apply_action_fn, game.is_terminal_fn, game.outcome_fn,
                     game.to_play_fn, game.encode_fn)
    # the search still runs on them, and plays the same
    fast = search.run(games.make("tictactoe"), game.initial_state(), search.RolloutEvaluator(), seed=3)
    slow = search.run(game, game.initial_state(), search.RolloutEvaluator(), seed=3)
    np.testing.assert_array_equal(fast.visit_counts, slow.visit_counts)


@pytest.mark.slow
def test_forced_fallback_searches_the_same_tree():
    """Both fallbacks at once (reference counting on, dispatchers) in a fresh process: compiles
    every kernel afresh (~20 s), so slow."""
    code = (
        "import numpy as np, games, search\n"
        "from search import kernels\n"
        "kernels.force_fallback()\n"
        "game = games.make('connect4')\n"
        "r = search.run(game, game.play([3]), search.RolloutEvaluator(), search.SearchConfig(num_simulations=300), seed=5)\n"
        "print(kernels.fast_path()['refcount_free'], r.visit_counts.tolist())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    game = games.make("connect4")
    fast = search.run(game, game.play([3]), search.RolloutEvaluator(), search.SearchConfig(num_simulations=300), seed=5)
    assert out.split(" ", 1) == ["False", f"{fast.visit_counts.tolist()}\n"]


def test_warmup_compiles_every_part_and_startup_measures_a_fresh_process():
    from search.startup import measure_startup
    from selfplay.tools.warmup import warm

    assert warm(processes=1, progress=False) > 0  # every part, in this process (cached: seconds)
    report = measure_startup("tictactoe")
    assert report["cache"] == "as installed" and report["game"] == "tictactoe"
    assert all(report[k] > 0 for k in ("import_seconds", "first_rollout_search_seconds",
                                        "first_network_search_seconds", "process_seconds"))
