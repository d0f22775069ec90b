"""``selfplay play``: the session a person plays (clicks, typed moves, undo, sides) and the pygame
window around it, driven headless with posted events."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

import games
from games.core import GameError
from games.render import CAPTION_HEIGHT, cell_at, default_size
from selfplay.evaluation.agents import GreedyAgent, MCTSAgent, NetworkAgent, RandomAgent
from selfplay.model.checkpoint import save_checkpoint
from selfplay.tools.cli import main as cli_main
from selfplay.model.network import NetConfig, build_network
from selfplay.tools.play import load_difficulty, load_opponent, run_window
from selfplay.tools.session import PlayError, PlaySession


def test_a_click_anywhere_in_a_connect4_column_drops_a_disc_there():
    game = games.make("connect4")
    session = PlaySession(game, GreedyAgent(game))
    assert [session.action_at(row, 2) for row in range(6)] == [2] * 6
    assert session.action_at(6, 2) is None and session.action_at(0, 7) is None  # off the grid
    session.play(2)
    assert session.action_at(0, 2) is None  # the agent's turn: clicks mean nothing


def test_a_click_places_a_piece_on_that_cell_and_nowhere_else():
    ttt = games.make("tictactoe")
    session = PlaySession(ttt, RandomAgent(ttt))
    assert session.action_at(1, 1) == 4 and session.action_at(2, 0) == 6
    session.play(4)
    session.agent_move()
    assert session.action_at(1, 1) is None  # occupied
    othello = games.make("othello")
    session = PlaySession(othello, RandomAgent(othello))
    legal = set(othello.legal_actions(session.state).tolist())
    clicked = {session.action_at(r, c) for r in range(8) for c in range(8)} - {None}
    assert clicked == legal  # every legal move has its cell, and no other cell moves


def test_moves_out_of_turn_or_illegal_are_refused_and_change_nothing():
    game = games.make("connect4")
    session = PlaySession(game, GreedyAgent(game), human=1)
    with pytest.raises(PlayError, match="not your turn"):
        session.play(3)
    session.agent_move()
    with pytest.raises(PlayError, match="not the agent's turn"):
        session.agent_move()
    with pytest.raises(GameError, match="cannot read move"):
        session.play_text("zz")
    ttt = games.make("tictactoe")
    session = PlaySession(ttt, RandomAgent(ttt))
    session.play(4)
    session.agent_move()
    with pytest.raises(GameError, match="illegal move"):
        session.play(4)
    assert session.actions[0] == 4 and len(session.actions) == 2 and len(session.states) == 3


def test_undo_takes_back_the_persons_move_and_the_reply():
    game = games.make("tictactoe")
    session = PlaySession(game, RandomAgent(game), human=1, seed=3)
    session.agent_move()
    assert not session.undo()  # the person has not moved: the agent's first move stays
    first = session.actions[:]
    session.play(session.game.legal_actions(session.state)[0])
    session.agent_move()
    assert session.undo()
    assert session.actions == first and session.human_to_move and len(session.states) == 2
    session.restart(swap=True)
    assert session.human == 0 and session.actions == [] and session.human_to_move


def test_search_agents_say_what_they_think_of_their_move():
    game = games.make("connect4")
    session = PlaySession(game, MCTSAgent(game, 64))
    session.play(3)
    action, value = session.agent_move()
    assert game.legal_mask(session.states[-2])[action] and -1.0 <= value <= 1.0
    assert session.describe_last("mcts:64").startswith(f"mcts:64 played {action + 1} (value ")
    greedy = PlaySession(game, GreedyAgent(game))
    greedy.play(3)
    assert math.isnan(greedy.agent_move()[1])  # a baseline gives no value
    assert "value" not in greedy.describe_last("greedy")


@pytest.fixture(scope="module")
def c4_checkpoint(tmp_path_factory):
    directory = tmp_path_factory.mktemp("c4_play")
    game = games.make("connect4")
    torch.manual_seed(0)
    model = build_network(NetConfig(kind="resnet", channels=8, blocks=1, hidden=8), game.obs_shape, game.num_actions)
    save_checkpoint(directory, 1, model.eval(), game=game)
    return directory


def test_a_checkpoint_names_its_own_game(c4_checkpoint):
    game, agent = load_opponent(str(c4_checkpoint), None, None, visits=8)
    assert game.name == "connect4" and isinstance(agent, NetworkAgent) and agent.visits == 8
    session = PlaySession(game, agent, human=1)
    action, value = session.agent_move()
    assert game.legal_mask(session.states[0])[action] and -1.0 <= value <= 1.0
    with pytest.raises(ValueError, match="checkpoint is for"):
        load_opponent(str(c4_checkpoint), "tictactoe", None, visits=8)
    with pytest.raises(PlayError, match="name the game"):
        load_opponent("mcts:10", None, None, visits=8)


@pytest.fixture(scope="module")
def c4_ladder(tmp_path_factory):
    """A league directory whose ``ladder/`` has three levels (tiny untrained networks), as
    ``selfplay league ladder`` writes it."""
    league = tmp_path_factory.mktemp("league")
    game = games.make("connect4")
    entries = []
    for level in (1, 2, 3):
        torch.manual_seed(level)
        model = build_network(NetConfig(kind="resnet", channels=8, blocks=1, hidden=8), game.obs_shape, game.num_actions)
        sidecar = save_checkpoint(league / "ladder" / f"level-{level}", level, model.eval(), game=game)
        entries.append({"level": level, "player": f"main0/g{level}", "elo": 100.0 * level,
                        "checkpoint": f"level-{level}/{sidecar.name}"})
    index = {"game": "connect4", "game_options": {}, "games_per_pair": 40, "visits": 0, "levels": entries}
    (league / "ladder" / "ladder.json").write_text(json.dumps(index))
    return league


def test_a_ladder_gives_its_levels_as_the_difficulty(c4_ladder):
    game, difficulty = load_difficulty(str(c4_ladder), None, None, visits=None, level=2)
    assert game.name == "connect4" and difficulty.labels == ("level 1 (Elo 100.0)", "level 2 (Elo 200.0)", "level 3 (Elo 300.0)")
    agent = difficulty.agent
    assert isinstance(agent, NetworkAgent) and agent.name == "level 2@0" and agent.visits == 0  # the ladder's visits
    assert difficulty.step(1) and difficulty.agent.name == "level 3@0" and not difficulty.step(1)
    _, searching = load_opponent(str(c4_ladder / "ladder"), "connect4", None, visits=16, level=1)
    assert searching.name == "level 1@16" and searching.visits == 16
    with pytest.raises(PlayError, match="levels 1..3, not 4"):
        load_difficulty(str(c4_ladder), None, None, visits=None, level=4)
    with pytest.raises(PlayError, match="not one"):
        load_difficulty("mcts:10", "connect4", None, visits=None, level=2)


def test_a_broken_ladder_is_one_line(c4_ladder, tmp_path):
    broken = tmp_path / "ladder"
    broken.mkdir()
    (broken / "ladder.json").write_text(json.dumps({"levels": [{"level": 1, "checkpoint": "level-1/gone.json"}]}))
    with pytest.raises(ValueError, match="not a ladder written by selfplay league ladder"):
        load_difficulty(str(tmp_path), None, None, visits=None)


def test_the_command_reports_bad_input_in_one_line(capsys, tmp_path):
    assert cli_main(["play", "--agent", "mcts:10"]) == 2
    assert cli_main(["play", "chess"]) == 2
    assert cli_main(["play", "--agent", str(tmp_path / "nothing.json")]) == 2
    assert cli_main(["play", "connect4", "--after-moves", "3"]) == 2
    assert cli_main(["play", "connect4", "--moves", "4,4,9"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 5 and "name the game" in lines[0] and "unknown game 'chess'" in lines[1]
    assert "give --screenshot FILE too" in lines[3] and "move 3 of the line ('9')" in lines[4]


@pytest.mark.parametrize(
    "args, yours",
    [
        ([], 1),  # the command: you move first, and nobody clicks
        (["--agent", "random", "--moves", "4,4"], 3),  # the line ends on your move
        (["--agent", "random", "--analysis-only", "--moves", "4"], 2),  # the agent never moves
    ],
)
def test_a_screenshot_that_needs_your_moves_is_refused_before_the_window_opens(args, yours, monkeypatch, tmp_path, capsys):
    """`selfplay play connect4 --screenshot F --after-moves 6` waited forever for a click."""
    import selfplay.tools.play as play

    opened = []

    def a_few_frames(session, agent_name=None, **options):  # the window, but never forever
        opened.append(len(session.actions))
        run_window(session, agent_name, max_frames=5, **options)

    monkeypatch.setattr(play, "run_window", a_few_frames)
    shot = tmp_path / "shot.png"
    assert cli_main(["play", "connect4", *args, "--screenshot", str(shot), "--after-moves", "6"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and f"--after-moves 6 needs your moves (move {yours} is yours)" in lines[0]
    assert opened == [] and not shot.exists()


def test_the_window_refuses_a_screenshot_once_it_would_wait_for_your_click(tmp_path):
    """The library's window too: the count cannot come without the person, so it says so rather
    than wait (the agent's own moves may hand the turn over before the count, so it checks as it plays)."""
    from selfplay.tools.play_window import PlayWindow

    game = games.make("connect4")
    session = PlaySession(game, RandomAgent(game))
    session.play_line(["4", "4"])
    with pytest.raises(PlayError, match=r"--after-moves 4 needs your moves \(move 3 is yours\)"):
        PlayWindow(session, fps=1000).run(screenshot=tmp_path / "shot.png", after_moves=4, max_frames=5)
    assert not (tmp_path / "shot.png").exists()
    PlayWindow(session, fps=1000).run(screenshot=tmp_path / "shot.png", after_moves=2, max_frames=5)
    assert (tmp_path / "shot.png").is_file()  # a count already reached: the picture, at once

# ----------------------------------------------------------------------------- the window
def _post(event_type, **fields):
    import pygame

    pygame.event.post(pygame.event.Event(event_type, **fields))


def _centre_of(game, state, row, col):
    width, height = default_size(game)
    cols = game.cells_fn(game.params, state).shape[1]
    rows = game.cells_fn(game.params, state).shape[0]
    cell = min(width // cols, (height - CAPTION_HEIGHT) // rows)
    left = (width - cols * cell) // 2
    top = (height - CAPTION_HEIGHT - rows * cell) // 2
    pos = (left + col * cell + cell // 2, top + row * cell + cell // 2)
    assert cell_at(game, state, (width, height), pos) == (row, col)
    return pos


def _run_until(session, done, frames=400):
    """Run the window a few frames at a time until ``done()`` (the agent thinks on a thread)."""
    for _ in range(frames // 20):
        run_window(session, fps=200, max_frames=20)
        if done():
            return
    raise AssertionError("the window never got there")


def test_the_window_plays_clicks_typed_moves_and_undo():
    import pygame

    game = games.make("connect4")
    session = PlaySession(game, GreedyAgent(game), seed=1)
    pygame.display.init()  # posting needs the event queue
    _post(pygame.MOUSEBUTTONDOWN, button=1, pos=_centre_of(game, session.state, 0, 3))
    _run_until(session, lambda: len(session.actions) == 2)
    assert session.actions[0] == 3 and session.human_to_move

    pygame.display.init()
    _post(pygame.KEYDOWN, key=pygame.K_z, mod=pygame.KMOD_LCTRL, unicode="\x1a")
    for ch, key in (("5", pygame.K_5), ("\r", pygame.K_RETURN)):
        _post(pygame.KEYDOWN, key=key, mod=0, unicode=ch)
    _run_until(session, lambda: len(session.actions) == 2)
    assert session.actions[0] == 4  # the undone move is gone; "5" is column 5

    pygame.display.init()
    _post(pygame.KEYDOWN, key=pygame.K_s, mod=pygame.KMOD_LCTRL, unicode="\x13")
    _run_until(session, lambda: session.human == 1 and len(session.actions) == 1)  # the agent opened


@pytest.fixture
def frames(monkeypatch):
    """The frames the window draws (one ``pygame.display.flip`` each), counted."""
    import pygame

    drawn: list[int] = []
    flip = pygame.display.flip
    monkeypatch.setattr(pygame.display, "flip", lambda: (drawn.append(1), flip())[1])
    return drawn


def test_closing_the_window_returns_at_once_after_the_events_before_it(frames):
    import pygame

    game = games.make("connect4")
    session = PlaySession(game, GreedyAgent(game), seed=1)
    pygame.display.init()
    _post(pygame.MOUSEBUTTONDOWN, button=1, pos=_centre_of(game, session.state, 0, 5))
    _post(pygame.QUIT)
    run_window(session, fps=200, max_frames=1000)
    assert frames == []  # it returned inside its first frame, before drawing anything
    assert session.actions == [5] and not session.human_to_move  # the click was played, the reply never started
    assert not pygame.display.get_init()  # the window is closed


def test_escape_clears_what_was_typed_then_quits(frames):
    import pygame

    game = games.make("connect4")
    session = PlaySession(game, GreedyAgent(game), seed=1)
    pygame.display.init()
    for key, ch in ((pygame.K_5, "5"), (pygame.K_ESCAPE, "\x1b"), (pygame.K_RETURN, "\r"), (pygame.K_ESCAPE, "\x1b")):
        _post(pygame.KEYDOWN, key=key, mod=0, unicode=ch)
    run_window(session, fps=200, max_frames=1000)
    assert frames == [] and session.actions == []  # the first Esc wiped the "5": Enter played nothing
    assert not pygame.display.get_init()

    pygame.display.init()
    run_window(session, fps=200, max_frames=3)  # no events: it runs its frames and stops
    assert len(frames) == 3 and session.actions == [] and not pygame.display.get_init()


def test_a_forced_pass_is_played_for_the_person():
    """Othello: a position where the person's only move is a pass, which no click can make."""
    game = games.make("othello", size=6)
    rng = np.random.default_rng(0)
    for _ in range(2000):  # find a position (person to move) with pass as the only move
        session = PlaySession(game, RandomAgent(game), seed=int(rng.integers(1 << 30)))
        while not session.over:
            if session.human_to_move:
                legal = game.legal_actions(session.state)
                if len(legal) == 1 and game.action_to_text(legal[0]) == "pass":
                    break
                session.play(rng.choice(legal))
            else:
                session.agent_move()
        if not session.over:
            break
    else:
        pytest.skip("no forced pass found")
    import pygame

    pygame.display.init()
    before = len(session.actions)
    _run_until(session, lambda: len(session.actions) > before)
    assert game.action_to_text(session.actions[before]) == "pass"
