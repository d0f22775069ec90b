"""An external PettingZoo environment named by a spec works in every command: train (with actor
processes, which rebuild the adapter from the spec), --resume, arena, analyze, play-text and
bench, with the spec and its options saved in the run so that nothing needs repeating."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import games
from selfplay.cli import main

ROOT = Path(__file__).resolve().parents[1]
SPEC = "pettingzoo:pettingzoo.classic.tictactoe_v3"
SHORT = ["--minutes", "0", "--selfplay.games-per-actor", "8", "--selfplay.positions-per-generation", "40",
         "--search.num-simulations", "4", "--search.gumbel-considered", "4", "--learner.min-positions", "10",
         "--learner.batch-size", "16", "--eval.every", "1", "--eval.games", "2", "--eval.visits", "2",
         "--eval.opponents", "random", "--run.progress", "false", "--run.checkpoint-seconds", "0"]


def test_the_spec_builds_the_same_game_again_from_its_name_and_options():
    game = games.make(SPEC, max_length="9")
    assert game.name == SPEC and game.version == 3 and dict(game.options) == {"max_length": 9, "seed": 0}
    again = games.make(game.name, **json.loads(json.dumps(dict(game.options))))  # as a checkpoint or an actor does
    assert again.version_tag == game.version_tag and again.num_actions == 9 and again.obs_shape == (2, 3, 3)
    # module:factory, with an option for the env itself (converted from text)
    other = games.make("pettingzoo.classic.connect_four_v3:raw_env", max_length="42")
    assert other.num_actions == 7 and other.name == "pettingzoo.classic.connect_four_v3:raw_env"


@pytest.mark.parametrize(
    "spec, options, message",
    [
        (SPEC, {}, "give the most actions a game can take, e.g. -o max_length=9"),
        ("pettingzoo:not_a_module_anywhere", {"max_length": 9}, "cannot import not_a_module_anywhere: ModuleNotFoundError"),
        ("pettingzoo.classic.tictactoe_v3:nothing", {"max_length": 9}, "has no callable nothing"),
        ("pettingzoo:a:b", {"max_length": 9}, "pettingzoo:MODULE takes no factory"),
        (SPEC, {"max_length": "nine"}, "option 'max_length' of pettingzoo:pettingzoo.classic.tictactoe_v3 takes an integer"),
        (SPEC, {"max_length": 9, "board": 4}, "the env could not be made or read: TypeError"),
        ("os.path:join", {"max_length": 9}, "the env could not be made or read"),
    ],
)
def test_bad_specs_are_one_line(spec, options, message):
    with pytest.raises(games.GameError) as caught:
        games.make(spec, **options)
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_train_with_actor_processes_resume_arena_analyze_play_on_tictactoe_v3(tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    first = subprocess.run(
        [sys.executable, "-m", "selfplay", "train", SPEC, "-o", "max_length=9", "--preset", "tiny", "--run-dir", str(run),
         "--generations", "1", "--selfplay.num-actors", "2", "--no-final", *SHORT],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600,
    )
    assert first.returncode == 0, first.stderr[-3000:]
    config = json.loads((run / "config.json").read_text())
    assert (config["game"], config["game_options"]) == (SPEC, {"max_length": 9, "seed": 0})

    # --resume needs neither the spec nor its options (in this process, to keep the test short)
    assert main(["train", "--resume", str(run), "--generations", "2", "--selfplay.num-actors", "0", "--no-final"]) == 0
    from selfplay.checkpoint import load_checkpoint

    checkpoint = load_checkpoint(run)
    assert checkpoint.step == 2 and checkpoint.game == f"{SPEC}_v3" and checkpoint.game_options == {"max_length": 9, "seed": 0}
    capsys.readouterr()

    # arena and analyze take the game from the checkpoint
    assert main(["arena", str(run), "random", "--games", "4", "--visits", "4", "--no-progress", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["game"] == f"{SPEC}_v3" and result["games"] == 4
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps({"id": "q", "moves": [4, 0], "visits": 8}) + "\n"))
    assert main(["analyze", "--checkpoint", str(run)]) == 0
    answer = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert answer["id"] == "q" and answer["policy"][4] == answer["policy"][0] == 0.0 and np.isclose(sum(answer["policy"]), 1)

    # play-text against the trained run, and against a baseline with the spec named
    monkeypatch.setattr(sys, "stdin", io.StringIO("quit\n"))
    assert main(["play-text", "--opponent", str(run), "--visits", "2", SPEC, "-o", "max_length=9"]) == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO("4\nquit\n"))
    assert main(["play-text", SPEC, "-o", "max_length=9", "--opponent", "mcts:20"]) == 0
    assert "pettingzoo:pettingzoo.classic.tictactoe_v3" in capsys.readouterr().out


def test_bench_search_on_a_spec(capsys):
    assert main(["bench", "search", "--game", SPEC, "-o", "max_length=9", "--simulations", "50", "--seconds", "0.2",
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["game"] == f"{SPEC}_v3" and report["sims_per_second"] > 0 and report["openspiel"] is None
