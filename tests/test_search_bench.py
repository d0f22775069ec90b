"""The search benchmark: its report, the OpenSpiel side-by-side, the command line."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from search import SearchError
from search.bench import OPENSPIEL_NAMES, bench_search

#: What a report holds (the CLI's text and --json print these).
REPORT_FIELDS = {
    "game", "options", "evaluator", "batch", "simulations", "seed", "moves", "total_simulations",
    "seconds", "sims_per_second", "first_call_seconds", "openspiel", "ratio", "fast_path",
}


def _is_rate(x) -> bool:
    return isinstance(x, float) and 0 < x < math.inf


def test_rollout_bench_runs_openspiel_beside_ours():
    pytest.importorskip("pyspiel")
    report = bench_search("tictactoe", "rollout", batch=1, simulations=50, seconds=0.05)
    theirs = report["openspiel"]
    assert set(report) == REPORT_FIELDS and json.loads(json.dumps(report)) == report
    # the same game, from its start, the same simulations per move, one rollout per leaf
    assert report["game"] == "tictactoe_v1" and theirs["name"] == OPENSPIEL_NAMES["tictactoe"] == "tic_tac_toe"
    assert report["options"] == {} and report["simulations"] == 50
    assert "RandomRolloutEvaluator(n_rollouts=1)" in theirs["bot"] and "solve=False" in theirs["bot"]
    # every move of ours ran its 50 simulations (a fresh tree each, no early stop), as MCTSBot does
    assert report["moves"] >= 1 and report["total_simulations"] == report["moves"] * 50
    assert theirs["moves"] >= 1
    assert _is_rate(report["sims_per_second"]) and _is_rate(theirs["sims_per_second"]) and _is_rate(report["ratio"])
    assert report["first_call_seconds"] > 0 and report["seconds"] > 0  # compiling is timed apart


def test_uniform_bench_has_no_openspiel_side():
    report = bench_search("connect4", "uniform", batch=4, simulations=20, seconds=0.02)
    assert set(report) == REPORT_FIELDS and report["openspiel"] is None and report["ratio"] is None
    assert report["total_simulations"] == report["moves"] * 4 * 20  # no game ends within 20 sims
    assert _is_rate(report["sims_per_second"])
    no_yardstick = bench_search("connect4", "rollout", batch=1, simulations=20, seconds=0.02, width=8)
    assert no_yardstick["options"] == {"width": 8, "height": 6} and no_yardstick["openspiel"] is None  # other rules


def test_bad_bench_arguments():
    with pytest.raises(SearchError, match="evaluator must be one of"):
        bench_search("connect4", "network")
    with pytest.raises(SearchError, match="must be positive"):
        bench_search("connect4", "uniform", batch=0)


def test_command_line_prints_json():
    done = subprocess.run(
        [sys.executable, "-m", "search.bench", "--game", "tictactoe", "--evaluator", "uniform",
         "--simulations", "20", "--seconds", "0.02", "--json"],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert set(report) == REPORT_FIELDS and report["evaluator"] == "uniform" and report["simulations"] == 20
    assert report["game"] == "tictactoe_v1" and _is_rate(report["sims_per_second"])
    bad = subprocess.run([sys.executable, "-m", "search.bench", "--game", "chess"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "unknown game" in bad.stderr
