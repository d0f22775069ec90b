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
from selfplay.tools.cli import main

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
    from selfplay.model.checkpoint import load_checkpoint

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


# ----------------------------------------------------------------------------- strength (slow)

#: PettingZoo numbers tic-tac-toe squares down the columns, ours along the rows (test_external.py).
TTT_TO_NATIVE = np.array([3 * (a % 3) + a // 3 for a in range(9)])
TEN_MINUTES = ["--preset", "tiny", "--minutes", "10", "--selfplay.num-actors", "2", "--net.kind", "mlp",
               "--net.layers", "2", "--net.hidden", "128", "--search.num-simulations", "16",
               "--search.gumbel-considered", "9", "--search.solver", "true", "--selfplay.games-per-actor", "64",
               "--selfplay.random-opening-moves", "5", "--selfplay.positions-per-generation", "2000",
               "--learner.lr", "3e-3", "--learner.batch-size", "128", "--learner.samples-per-position", "8",
               "--learner.buffer-capacity", "20000", "--learner.min-positions", "1000", "--learner.warmup-steps", "50",
               "--eval.every", "10", "--eval.games", "20", "--eval.visits", "16", "--eval.opponents", "random,greedy",
               "--run.progress", "false", "--no-final"]


def strength(run: Path, games_against_random: int = 200) -> dict:
    """How a run on tictactoe_v3 plays, as its trainer rates it (eval.visits simulations, its
    search settings): wrong moves over every reachable position against minimax (each position
    once, reached by its first history), the raw policy's, and a match against random."""
    from dataclasses import replace

    from selfplay.evaluation.agents import NetworkAgent, load_agent, network_search_config
    from selfplay.evaluation.matches import play_match
    from selfplay.model.inference import load_evaluator
    from selfplay.training.resume import load_config

    config = load_config(run)
    game = games.make(config.game, **config.game_options)
    native = games.make("tictactoe")
    values: dict[tuple, float] = {}

    def value(position: np.ndarray) -> float:  # minimax, for the player to move in a native position
        key = tuple(int(x) for x in position)
        if key not in values:
            values[key] = max(child_value(position, a) for a in native.legal_actions(position))
        return values[key]

    def child_value(position: np.ndarray, action: int) -> float:
        child = native.next_state(position, action)
        if native.is_terminal(child):
            return float(native.returns(child)[native.to_play(position)])
        return -value(child)

    histories: dict[tuple, np.ndarray] = {}  # native position -> one external state reaching it

    def walk(state: np.ndarray) -> None:
        position = native.play(TTT_TO_NATIVE[state[1:1 + state[0]]])
        key = tuple(int(x) for x in position)
        if game.is_terminal(state) or key in histories:
            return
        histories[key] = state
        for a in game.legal_actions(state):
            walk(game.next_state(state, a))

    walk(game.initial_state())
    keys = list(histories)
    states = np.stack([histories[k] for k in keys])
    evaluator = load_evaluator(run, game)
    visits = config.eval.visits
    search = replace(network_search_config(visits, config.search.root_policy), solver=config.search.solver)

    def wrong(agent) -> int:
        actions = agent.act(states, states[:, 0], 0)
        return sum(child_value(np.array(k), int(TTT_TO_NATIVE[a])) != value(np.array(k)) for k, a in zip(keys, actions))

    agent = NetworkAgent(game, evaluator, visits, config=search)
    match = play_match(game, agent, load_agent("random", game), games_against_random, seed=0, progress=False,
                       stop_when_decided=False)
    return {"positions": len(keys), "wrong": wrong(agent), "raw_wrong": wrong(NetworkAgent(game, evaluator, 0)),
            "vs_random": (match.wins, match.draws, match.losses)}


@pytest.mark.slow
def test_tictactoe_v3_through_its_spec_after_ten_minutes(tmp_path):
    """The command docs/external.md reports: 10 minutes, 2 actor processes, the tic-tac-toe tiny
    preset's settings given as flags. Prints the strength; asserts it never loses to random."""
    run = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "selfplay", "train", SPEC, "-o", "max_length=9", "--run-dir", str(run),
                           *TEN_MINUTES], capture_output=True, text=True, cwd=tmp_path, timeout=20 * 60,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-3000:]
    report = strength(run)
    print(report)
    assert report["positions"] == 4520 and report["vs_random"][2] == 0
