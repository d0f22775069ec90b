"""``selfplay bench curve``: which checkpoint stands for each minute mark, matches measured at
full strength and written as they finish, a rerun that keeps what was measured, bad marks."""

from __future__ import annotations

import json

import pytest
import torch

import games
from selfplay.evaluation import curve as curve_module
from selfplay.evaluation.agents import load_agent
from selfplay.evaluation.curve import CurveError, checkpoints_at, measure_curve
from selfplay.evaluation.matches import play_match
from selfplay.model.checkpoint import save_checkpoint
from selfplay.model.network import NetConfig, build_network

#: generation -> seconds when it ended; checkpoints of generations 0, 2, 4, 5 are kept (and 9,
#: which has no metrics row: a half-written generation, never picked).
ENDED = {1: 60.0, 2: 120.0, 3: 180.0, 4: 240.0, 5: 300.0}
SAVED = (0, 2, 4, 5, 9)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    game = games.make("tictactoe")
    root = tmp_path_factory.mktemp("curve") / "run"
    for step in SAVED:
        torch.manual_seed(step)
        model = build_network(NetConfig(kind="mlp", layers=1, hidden=16), game.obs_shape, game.num_actions).eval()
        save_checkpoint(root, step, model, game=game, keep_last=10)
    rows = "".join(f"{g},{s},0.5\n" for g, s in ENDED.items())
    (root / "metrics.csv").write_text("generation,elapsed_s,loss\n" + rows)
    return root


def test_each_mark_gets_the_latest_checkpoint_trained_by_then(run):
    picked = checkpoints_at(run, [1, 2.5, 4.9, 5])
    assert [(p["mark"], p["generation"], p["minutes"], p["checkpoint"]) for p in picked] == [
        (1, 0, 0.0, "ckpt-000000.json"),  # generation 1 ended at minute 1 but was not kept
        (2.5, 2, 2.0, "ckpt-000002.json"),
        (4.9, 4, 4.0, "ckpt-000004.json"),
        (5, 5, 5.0, "ckpt-000005.json"),
    ]
    assert [p["mark"] for p in checkpoints_at(run, None, points=5)] == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_a_mark_past_the_run_or_a_directory_that_is_no_run_is_refused(run, tmp_path):
    with pytest.raises(CurveError, match="minute mark 7 is past the run's end"):
        checkpoints_at(run, [7])
    with pytest.raises(CurveError, match="not a training run"):
        checkpoints_at(tmp_path, [1])


def test_the_curve_holds_real_matches_and_a_rerun_keeps_them(run, tmp_path, monkeypatch):
    game = games.make("tictactoe")
    out = tmp_path / "out"
    curve = measure_curve(run, [2, 5], ["random"], games_=6, raw_games=2, visits=4, solver_positions=0, out=out,
                          progress=False)  # fmt: skip
    assert [p["generation"] for p in curve["points"]] == [2, 5]
    row = curve["points"][1]["matches"][0]
    direct = play_match(game, load_agent(str(run / "ckpt-000005.json"), game, visits=4), load_agent("random", game), 6,
                        opening_moves=2, stop_when_decided=False)  # fmt: skip
    assert (row["wins"], row["draws"], row["losses"], row["visits"]) == (direct.wins, direct.draws, direct.losses, 4)
    assert row["ci95"][0] <= row["score"] <= row["ci95"][1]
    assert [m["visits"] for m in curve["points"][0]["matches"]] == [4, 0]
    assert json.loads((out / "curve.json").read_text()) == curve
    assert (out / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    calls = []
    real = curve_module.measure
    monkeypatch.setattr(curve_module, "measure", lambda *a, **k: calls.append(a) or real(*a, **k))
    again = measure_curve(run, [2, 4, 5], ["random"], games_=6, raw_games=2, visits=4, solver_positions=0, out=out,
                          progress=False)  # fmt: skip
    assert [a[0].name for a in calls] == ["ckpt-000004.json"]  # only the new mark is measured
    assert again["points"][0] == curve["points"][0] and again["points"][2] == curve["points"][1]
    measure_curve(run, [2], ["random"], games_=4, raw_games=2, visits=4, solver_positions=0, out=out, progress=False)
    assert len(calls) == 2  # other settings: measured afresh


def test_the_command_prints_the_table_and_names_a_bad_mark(run, tmp_path, capsys):
    from selfplay.tools.cli import main  # in this process: the command's own would import torch again

    base = ["bench", "curve", str(run), "--opponents", "random", "--games", "2", "--visits", "2", "--solver-positions", "0",
            "--out", str(tmp_path)]  # fmt: skip
    assert main([*base, "--minutes", "5"]) == 0
    out = capsys.readouterr().out
    assert "gen     5" in out and "random" in out and (tmp_path / "curve.png").exists()
    assert main([*base, "--minutes", "2,x"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "--minutes '2,x'" in err
