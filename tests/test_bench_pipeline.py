"""``selfplay bench pipeline``: each design against a modeled device and a real one, figures that
add up, and a command line that offers every table and design."""

from __future__ import annotations

import math

import pytest

from selfplay.evaluation.bench_pipeline import DESIGNS, bench_pipeline, format_report
from selfplay.evaluation.device_model import TABLES

QUICK = {"game_name": "tictactoe", "preset_name": "tiny", "actors": 1, "games_per_actor": 16, "seconds": 1.0, "warmup": 0.5,
         "generation_positions": 200, "log": lambda text: None}


def test_the_command_line_offers_every_device_model_and_design():
    from selfplay.tools.cli import _DEVICE_MODELS, _PIPELINE_DESIGNS

    assert set(_DEVICE_MODELS) == set(TABLES) and _PIPELINE_DESIGNS == DESIGNS


def test_every_design_runs_against_a_modeled_device_and_reports_its_figures():
    report = bench_pipeline(device_models=("h200-32x3",), designs=DESIGNS, **QUICK)
    rows = {row["design"]: row for row in report["rows"]}
    assert list(rows) == list(DESIGNS) and all(row["device"] == "h200-32x3" for row in rows.values())
    for design, row in rows.items():
        assert row["evals_per_s"] > 0 and row["positions_per_s"] >= 0, design
        assert 0 < row["busy_fraction"] <= 1 and row["train_busy_fraction"] <= row["busy_fraction"]
        assert row["mean_batch"] >= 1 and math.isfinite(row["cpu_us_per_leaf"]) and row["cpu_us_per_leaf"] > 0
        assert row["cores_for_goal"] > 0
    assert rows["actor"]["batch_at_scale"] == rows["actor"]["mean_batch"] and rows["server"]["batch_at_scale"] == 4096
    assert rows["server"]["cpu_s"]["server"] > 0 and rows["threads"]["cpu_s"]["actors"] == 0  # threads: this process
    text = format_report(report)
    assert "h200-32x3 server / actor: evals/s x" in text and "h200-32x3 threads / actor" in text
    with pytest.raises(ValueError, match="unknown design"):
        bench_pipeline(designs=("gpu",), **QUICK)
    with pytest.raises(ValueError, match="unknown device model"):
        bench_pipeline(device_models=("tpu",), **QUICK)


def test_a_real_network_on_the_cpu_through_each_design():
    report = bench_pipeline(device="cpu", net="8x1", designs=("actor", "server"), **QUICK)
    assert report["net"] and [row["design"] for row in report["rows"]] == ["actor", "server"]
    assert all(row["evals_per_s"] > 0 and "busy_fraction" not in row for row in report["rows"])
    assert "cpu server / actor" in format_report(report)
