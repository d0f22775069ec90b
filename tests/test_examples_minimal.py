"""examples/minimal_alphazero.py: the one-file AlphaZero loop learns tic-tac-toe well enough to
beat a random player, which the same search with an untrained network does not."""

import importlib.util
from dataclasses import replace
from pathlib import Path

import pytest
import torch

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "minimal_alphazero.py"
MATCH_GAMES = 100
#: What "wins against random" means: a score (win 1, draw 1/2) of at least 90% and at most
#: 2 losses in 100 games, half with each colour. Perfect play scores about 95% and never loses.
MIN_SCORE, MAX_LOSSES = 0.9, 2


@pytest.fixture(scope="module")
def example():
    spec = importlib.util.spec_from_file_location("minimal_alphazero", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # defines functions only: main runs under __main__
    threads = torch.get_num_threads()
    yield module
    torch.set_num_threads(threads)  # main sets one thread for itself; later tests get theirs back


def passes(wins: int, draws: int, losses: int) -> bool:
    assert wins + draws + losses == MATCH_GAMES
    return (wins + 0.5 * draws) / MATCH_GAMES >= MIN_SCORE and losses <= MAX_LOSSES


def test_trained_agent_beats_random_and_untrained_does_not(example, capsys):
    args = replace(example.Args(seed=0), match_games=MATCH_GAMES)  # the default iterations
    untrained = example.main(replace(args, iterations=0))
    trained = example.main(args)
    out = capsys.readouterr().out
    assert f"iteration {args.iterations:3d}:" in out and out.count("against random") == 2
    assert not passes(*untrained), f"the untrained agent already passes the bar: {untrained} (W, D, L)"
    assert passes(*trained), f"after {args.iterations} iterations: {trained} (W, D, L)"


def test_same_seed_same_games(example):
    args = example.Args(seed=3, iterations=2, match_games=20)
    assert example.main(args) == example.main(args)
