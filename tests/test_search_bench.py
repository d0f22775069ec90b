"""The search benchmark: its report, the OpenSpiel side-by-side, the command line."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from search import SearchError
from search.bench import bench_search


def test_rollout_bench_runs_openspiel_beside_ours():
    pytest.importorskip("pyspiel")
    report = bench_search("tictactoe", "rollout", batch=1, simulations=50, seconds=0.05)
    assert report["game"] == "tictactoe_v1" and report["moves"] >= 1
    assert report["total_simulations"] <= report["moves"] * 50 and report["sims_per_second"] > 0
    theirs = report["openspiel"]
    assert theirs["name"] == "tic_tac_toe" and theirs["total_simulations"] == theirs["moves"] * 50
    assert report["ratio"] == pytest.approx(report["sims_per_second"] / theirs["sims_per_second"])


def test_uniform_bench_has_no_openspiel_side():
    report = bench_search("connect4", "uniform", batch=4, simulations=20, seconds=0.02)
    assert report["openspiel"] is None and report["ratio"] is None
    assert report["total_simulations"] == report["moves"] * 4 * 20  # no game ends within 20 sims


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
    assert report["evaluator"] == "uniform" and report["simulations"] == 20
    bad = subprocess.run([sys.executable, "-m", "search.bench", "--game", "chess"], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "unknown game" in bad.stderr
