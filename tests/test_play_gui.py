"""The ``selfplay play`` window played as a person plays it: whole games by posted pygame mouse
clicks and key presses (``SDL_VIDEODRIVER=dummy``, set in conftest), one frame at a time through
``PlayWindow.frame``. The real window under an X server is ``tests/test_play_window.py``.

No test here measures time: the agent's and the analysis's threads are waited for between frames
(:func:`frames_until`), and a fake searching agent (:class:`HeldAgent`) shows when a search is
told to stop and which of its moves the window plays."""

from __future__ import annotations

import functools
import io
import json
import queue
import threading

import numpy as np
import pytest
import torch

import games
from games.render import NO_CELL, action_cells
from selfplay.evaluation.agents import MCTSAgent, RandomAgent, ScriptAgent
from selfplay.model.checkpoint import save_checkpoint
from selfplay.model.network import NetConfig, build_network
from selfplay.tools.cli import main as cli_main
from selfplay.tools.play import load_difficulty
from selfplay.tools.session import PlaySession
from selfplay.tools.play_widgets import BEST, LOSS
from selfplay.tools.job import Job
from selfplay.tools.play_window import INFO_HEIGHT, PANEL_MIN_HEIGHT, PANEL_WIDTH, PlayWindow

pygame = pytest.importorskip("pygame")


# ----------------------------------------------------------------------------- a person's hands
def post(event_type, **fields) -> None:
    pygame.event.post(pygame.event.Event(event_type, **fields))


def click(window: PlayWindow, cell: tuple[int, int]) -> None:
    post(pygame.MOUSEBUTTONDOWN, button=1, pos=window.geometry.centre(*cell))


def press(key: int, ctrl: bool = False, unicode: str = "") -> None:
    post(pygame.KEYDOWN, key=key, mod=pygame.KMOD_LCTRL if ctrl else 0, unicode=unicode)


def finish(*jobs) -> None:
    """Wait for each job's thread (None: none) to end, however long a loaded machine takes."""
    for job in jobs:
        if job is not None:
            assert job.join(threading.TIMEOUT_MAX)


def frames_until(window: PlayWindow, done, frames: int = 20) -> None:
    """Step the open window until ``done()``. The agent and the analysis work on threads; each is
    waited for before the next frame, so the frames it takes do not depend on the machine's speed,
    and running out of ``frames`` means the window never gets there."""
    for _ in range(frames):
        if done():
            return
        assert window.frame(), "the window closed"
        finish(window.thinking, window.analyzing)
    assert done(), f"not there after {frames} frames: {window.note}"


class HeldAgent:
    """A searching agent in the test's hands. Each ``think`` puts its move number on
    ``thinking_on``, then searches until its ``stop`` says so or the test sets ``release``, and
    answers the next of ``answers`` (value 0.25). ``stopped`` records, per search, whether it
    ended because ``stop`` said so."""

    name = "held"

    def __init__(self, answers: list[int]) -> None:
        self.answers = list(answers)
        self.thinking_on: queue.Queue[int] = queue.Queue()
        self.release = threading.Event()
        self.stopped: list[bool] = []

    def act(self, states, move_numbers, rng_seed):
        return self.think(states, move_numbers, rng_seed)[0]

    def think(self, states, move_numbers, rng_seed, stop=None):
        self.thinking_on.put(int(move_numbers[0]))
        told = stop is not None and stop()
        while not told and not self.release.is_set():
            self.release.wait(0.001)  # one search step; a search polls ``stop`` between its steps
            told = stop is not None and stop()
        self.stopped.append(told)
        return np.array([self.answers.pop(0)], np.int64), np.array([0.25], np.float32)


def record_commits(session: PlaySession) -> list[int]:
    """The agent moves the window hands to ``session.commit``, as they come."""
    committed: list[int] = []
    commit = session.commit

    def recording(action: int, value: float) -> None:
        committed.append(action)
        commit(action, value)

    session.commit = recording
    return committed


@pytest.fixture
def opened():
    """Opens windows and closes them after the test, whatever happens."""
    windows: list[PlayWindow] = []

    def open_window(session: PlaySession, **options) -> PlayWindow:
        window = PlayWindow(session, **options)
        window.open()
        windows.append(window)
        return window

    yield open_window
    for window in windows:
        window.close()


def cell_of(session: PlaySession, action: int) -> tuple[int, int]:
    row, col = session.cells()[action]
    assert (row, col) != NO_CELL, f"move {action} has no cell"
    return int(row), int(col)


def perfect_tictactoe(game):
    """The best move for the player to move (minimax, ties to the lowest action)."""

    @functools.lru_cache(maxsize=None)
    def value(key: bytes) -> float:  # a position not over, for the player to move
        state = np.frombuffer(key, np.int64)
        return max(after(state, a) for a in game.legal_actions(state))

    def after(state, action) -> float:
        child = game.next_state(state, action)
        if game.is_terminal(child):
            return float(game.returns(child)[game.to_play(state)])
        return -value(child.tobytes())

    return lambda state: max(game.legal_actions(state), key=lambda a: (after(state, a), -a))


# ----------------------------------------------------------------------------- games by clicks
def test_a_person_beats_random_by_clicks(opened):
    game = games.make("tictactoe")
    best = perfect_tictactoe(game)
    session = PlaySession(game, RandomAgent(game), seed=4)
    window = opened(session, fps=1000)
    while not session.over:
        if session.human_to_move:
            click(window, cell_of(session, best(session.state)))
        assert window.frame()
    assert session.result() == "You win." and window.frame()
    assert window._status() == ("You win.", (120, 220, 140))  # the panel says so, in green
    assert len(session.actions) >= 5 and window.note.startswith("you played")


def test_undo_restores_the_position_and_an_illegal_click_changes_nothing(opened, monkeypatch):
    monkeypatch.setattr("selfplay.tools.play_window.REFUSAL_SECONDS", 3600.0)  # the mark outlasts any pause
    game = games.make("tictactoe")
    session = PlaySession(game, RandomAgent(game), seed=1)
    window = opened(session, fps=1000)
    click(window, (1, 1))
    frames_until(window, lambda: len(session.actions) == 2)
    assert session.actions[0] == 4
    occupied = cell_of_previous(session, 1)
    before = session.state.copy()
    click(window, occupied)  # the agent's piece
    assert window.frame()
    np.testing.assert_array_equal(session.state, before)
    assert len(session.actions) == 2 and window.note.startswith("illegal") and window.note_is_error
    x, y, w, h = window.geometry.cell_box(*occupied)
    pixels = pygame.surfarray.array3d(window.board)[x : x + w, y : y + h]
    assert (pixels == LOSS).all(axis=-1).sum() > 50  # the refusal is drawn over the cell, in red

    press(pygame.K_z, ctrl=True, unicode="\x1a")
    assert window.frame()
    assert session.actions == [] and (session.state == game.initial_state()).all()
    assert window.note == "took back the last move"


def cell_of_previous(session: PlaySession, ply: int) -> tuple[int, int]:
    """The cell that move ``ply`` acted on, from the position before it."""
    row, col = action_cells(session.game, session.states[ply])[session.actions[ply]]
    return int(row), int(col)


def test_a_click_while_the_agent_thinks_is_refused_and_closing_cancels_its_search(opened, monkeypatch):
    """Closing the window in the middle of the agent's search tells the search to stop (by the
    close: its time would never run out), waits for its thread, and plays nothing it found."""
    joins: list[tuple[Job, bool]] = []  # (job, cancelled already) for each wait for a job's thread
    join = Job.join
    monkeypatch.setattr(Job, "join", lambda job, timeout: joins.append((job, job.cancelled)) or join(job, timeout))
    game = games.make("connect4")
    agent = HeldAgent(answers=[3])
    session = PlaySession(game, agent, human=1)
    committed = record_commits(session)
    window = opened(session, fps=100, move_time=3600)
    assert window.frame()
    job = window.thinking
    assert job is not None and agent.thinking_on.get() == 0  # the search is under way
    click(window, (5, 3))
    assert window.frame() and session.actions == [] and "thinking" in window.note and window.note_is_error
    assert window.thinking is job and not job.cancelled  # the refused click left the search alone

    post(pygame.QUIT)
    assert not window.frame()  # the close is seen at the next frame
    window.close()
    assert job.cancelled and job.stop_requested() and joins == [(job, True)]  # told to stop, then waited for
    finish(job)  # close waits a moment only (a long evaluator call is left behind): wait it out here
    assert agent.stopped == [True], "the search never saw the close"
    assert job.result == (3, 0.25)  # the search answered, and the closed window played none of it
    assert committed == [] and session.actions == []


def test_the_agent_moves_when_its_time_is_up(opened):
    """A search that never ends by itself is stopped by ``move_time`` (not by a cancel), and the
    move it has by then is played."""
    game = games.make("connect4")
    agent = HeldAgent(answers=[2])
    session = PlaySession(game, agent, human=1)
    window = opened(session, fps=100, move_time=0.05)
    assert window.frame()
    job = window.thinking
    frames_until(window, lambda: len(session.actions) == 1)
    assert job.done and not job.cancelled and agent.stopped == [True]
    assert session.actions == [2] and session.values == [0.25]
    assert window.note == "held played 3 (value +0.25 for it)"


def test_a_move_found_for_a_position_taken_back_is_dropped_and_the_next_search_plays(opened):
    """Ctrl+Z while the agent searches: that search is told to stop and its move, which arrives
    after the position changed, is never played; the search on the new position plays."""
    game = games.make("connect4")
    agent = HeldAgent(answers=[6, 5])
    session = PlaySession(game, agent)
    committed = record_commits(session)
    window = opened(session, fps=1000, move_time=3600)
    click(window, (5, 3))
    assert window.frame() and session.actions == [3]
    stale = window.thinking
    assert stale is not None and agent.thinking_on.get() == 1

    press(pygame.K_z, ctrl=True, unicode="\x1a")
    assert window.frame() and session.actions == [] and window.thinking is None and stale.stop_requested()
    finish(stale)
    assert stale.result == (6, 0.25) and agent.stopped == [True]  # its move came, after the undo
    for _ in range(3):
        assert window.frame()
    assert session.actions == [] and committed == []

    click(window, (5, 0))
    assert window.frame() and session.actions == [0]
    assert window.thinking is not stale and agent.thinking_on.get() == 1
    agent.release.set()  # this search ends by itself
    frames_until(window, lambda: len(session.actions) == 2)
    assert session.actions == [0, 5] and committed == [5] and agent.stopped == [True, False]


def test_the_arena_is_played_to_the_end_by_clicks(opened):
    """Red, by clicks: attack whatever is in range, else step towards the nearest enemy, else
    wait (Space). Blue is the ``focus`` script."""
    game = games.make("arena", map="small", lineup="FA", turn_limit=40)
    session = PlaySession(game, ScriptAgent(game, "focus"))
    window = opened(session, fps=1000)
    press(pygame.K_SPACE, unicode=" ")  # first, a wait
    assert window.frame() and session.actions == [0]
    kinds = set()
    while not session.over:
        if session.human_to_move:
            move = red_plan(game, session)
            kinds.add(game.action_to_text(move).split()[0])
            if move == 0:
                press(pygame.K_SPACE, unicode=" ")
            else:
                click(window, cell_of(session, move))
        before = len(session.actions)
        assert window.frame()
        assert not window.note_is_error, window.note
        if session.human_to_move and len(session.actions) == before and not session.over:
            pytest.fail(f"a click was not taken: {window.note}")
    assert "attack" in kinds and {"forward", "left", "right", "back"} & kinds
    assert window.frame() and window._status()[0] in ("You win.", "You lose.", "Draw.")


def red_plan(game, session: PlaySession) -> int:
    state, cells = session.state, session.cells()
    legal = game.legal_actions(state)
    attacks = [a for a in legal if game.action_to_text(a).startswith("attack")]
    if attacks:
        return int(attacks[0])
    n = len(game.options["lineup"])
    w = game.obs_shape[2]
    enemies = [divmod(int(c), w) for c in state[2 + 2 * n + n : 2 + 4 * n] if c >= 0]
    me = game.agent_to_move(state)
    here = divmod(int(state[2 + 2 * n + me]), w)

    def distance(cell):
        return min(abs(cell[0] - r) + abs(cell[1] - c) for r, c in enemies)

    steps = [a for a in legal if cells[a, 0] >= 0 and not game.action_to_text(a).startswith("attack")]
    best = min(steps, key=lambda a: distance(tuple(cells[a])), default=None)
    return int(best) if best is not None and distance(tuple(cells[best])) < distance(here) else 0


def test_hovering_previews_where_a_click_lands_and_the_last_move_is_marked(opened):
    game = games.make("connect4")
    session = PlaySession(game, RandomAgent(game), seed=5)
    window = opened(session, fps=1000)
    post(pygame.MOUSEMOTION, pos=window.geometry.centre(0, 3), rel=(0, 0), buttons=(0, 0, 0))
    assert window.frame()
    board = pygame.surfarray.array3d(window.board).astype(int)
    x, y = window.geometry.centre(5, 3)  # the bottom of the column: where the disc would land
    ghost, hole = board[x, y], board[window.geometry.centre(5, 2)]
    assert ghost[0] > ghost[2] + 40 and hole[2] > 200  # reddish see-through disc; an empty hole
    assert (board[window.geometry.centre(0, 3)] == hole).all()  # nothing drawn where the mouse is
    click(window, (0, 3))
    frames_until(window, lambda: len(session.actions) == 2)
    x, y, w, h = window.geometry.cell_box(*cell_of_previous(session, 1))  # the agent's reply
    reply = pygame.surfarray.array3d(window.board)[x : x + w, y : y + h]
    assert (reply == (255, 255, 255)).all(axis=-1).sum() > 30  # the last move's white ring


def test_analysis_only_lets_the_person_move_for_both_sides(opened):
    game = games.make("connect4")
    session = PlaySession(game, RandomAgent(game))
    window = opened(session, fps=1000)
    press(pygame.K_a, ctrl=True, unicode="\x01")
    for column in (3, 3, 4):
        click(window, (0, column))  # anywhere in the column drops a disc
        assert window.frame()
    assert session.actions == [3, 3, 4] and window.thinking is None
    press(pygame.K_z, ctrl=True, unicode="\x1a")
    assert window.frame() and session.actions == [3, 3]  # one move back
    press(pygame.K_a, ctrl=True, unicode="\x01")  # back to playing: red (you) to move
    click(window, (5, 0))
    frames_until(window, lambda: len(session.actions) == 4)  # the agent answered


def test_an_agent_that_fails_is_reported_not_retried_and_the_window_lives_on(opened):
    class Broken:
        name = "broken"

        def act(self, states, move_numbers, rng_seed):
            calls.append(1)
            raise RuntimeError("out of cheese")

    calls: list[int] = []
    game = games.make("tictactoe")
    session = PlaySession(game, Broken(), human=1)
    window = opened(session, fps=1000)
    frames_until(window, lambda: window.note_is_error)
    for _ in range(5):
        assert window.frame()
    assert window.note == "broken failed to move: out of cheese" and window._status()[0] == "broken failed"
    assert calls == [1] and session.actions == []


# ----------------------------------------------------------------------------- the overlay
@pytest.fixture(scope="module")
def c4_checkpoint(tmp_path_factory):
    directory = tmp_path_factory.mktemp("c4_gui")
    game = games.make("connect4")
    torch.manual_seed(3)
    model = build_network(NetConfig(kind="resnet", channels=8, blocks=1, hidden=8), game.obs_shape, game.num_actions)
    save_checkpoint(directory, 1, model.eval(), game=game)
    return directory


def analyze_command(monkeypatch, capsys, checkpoint, query: dict, visits: int) -> dict:
    """What ``selfplay analyze --checkpoint ... --visits V`` answers to ``query``."""
    stdin = io.TextIOWrapper(io.BytesIO((json.dumps(query) + "\n").encode()), encoding="utf-8")
    monkeypatch.setattr("sys.stdin", stdin)
    capsys.readouterr()
    assert cli_main(["analyze", "--checkpoint", str(checkpoint), "--visits", str(visits)]) == 0
    return json.loads(capsys.readouterr().out)


def test_the_overlay_shows_the_top_move_of_selfplay_analyze(opened, c4_checkpoint, monkeypatch, capsys):
    game, difficulty = load_difficulty(str(c4_checkpoint), None, None, visits=8)
    session = PlaySession(game, difficulty.agent)
    session.play_line(["4", "4", "3", "5"])
    window = opened(session, difficulty=difficulty, analysis_visits=64, fps=1000)
    press(pygame.K_TAB, unicode="\t")
    frames_until(window, lambda: window.shown_analysis() is not None)
    shown = window.shown_analysis()
    answer = analyze_command(monkeypatch, capsys, c4_checkpoint, {"id": 0, "moves": [3, 3, 2, 4]}, visits=64)
    assert shown["best_move"] == answer["best_move"] and shown["moves"] == answer["moves"]
    assert shown["visits"] == answer["visits"] > 0
    assert window.frame()
    row, col = cell_of(session, shown["best_move"])
    x, y = window.geometry.centre(row, col)
    spot = pygame.surfarray.array3d(window.board)[x - window.geometry.cell // 4, y].astype(int)
    assert np.abs(spot - BEST).max() < 40  # the best move's cell wears the overlay's cyan

    press(pygame.K_TAB, unicode="\t")
    assert window.frame() and not window.overlay and window.analyzing is None


def test_the_overlay_marks_a_proven_win_in_connect4(opened):
    """Red 3 and 4 on the bottom row, yellow on top: column 2 (or 5) makes an open three, a
    forced win that the MCTS-Solver proves."""
    game = games.make("connect4")
    session = PlaySession(game, MCTSAgent(game, 100))
    session.play_line(["4", "4", "3", "3"])
    window = opened(session, overlay=True, analysis_visits=3000, fps=1000)
    frames_until(window, lambda: window.shown_analysis() is not None)
    shown = window.shown_analysis()
    assert shown["solved"] and shown["value"] == 1.0
    assert shown["moves"][0]["proven"] and shown["moves"][0]["move"] in (1, 4)


# ----------------------------------------------------------------------------- difficulty
def test_up_and_down_change_the_agents_strength(opened):
    game, difficulty = load_difficulty("mcts:100", "tictactoe", None, visits=None)
    session = PlaySession(game, difficulty.agent)
    window = opened(session, difficulty=difficulty, fps=1000)
    press(pygame.K_UP)
    assert window.frame() and session.agent.rollouts == 300 and window.note == "agent: mcts:300"
    for _ in range(4):  # 100, 30, 10, and no further
        press(pygame.K_DOWN)
    assert window.frame() and session.agent.rollouts == 10 and window.note_is_error  # the weakest


def test_with_no_agent_the_window_opens_at_the_shipped_ladders_start_level_and_up_and_down_change_it(
        opened, tmp_path, monkeypatch):
    """What `selfplay play GAME` does when a ladder ships for the game: three tic-tac-toe levels
    shipped by `selfplay pretrained make-ladder` (start level 2), stepped with the keys."""
    import selfplay.pretrained

    ladder = tmp_path / "league" / "ladder"
    game = games.make("tictactoe")
    entries = []
    for level in (1, 2, 3):
        torch.manual_seed(level)
        model = build_network(NetConfig(kind="mlp", layers=1, hidden=8), game.obs_shape, game.num_actions).eval()
        sidecar = save_checkpoint(ladder / f"level-{level}", level, model, game=game)
        entries.append({"level": level, "player": f"main0/g{level}", "elo": 10.0 * level, "checkpoint": f"level-{level}/{sidecar.name}"})
    (ladder / "ladder.json").write_text(json.dumps({"game": "tictactoe", "game_options": {}, "visits": 0, "levels": entries}))
    root = tmp_path / "pretrained"
    assert cli_main(["pretrained", "make-ladder", "ttt_ladder", str(ladder), "--root", str(root), "--reproduce", "x",
                     "--visits", "0,2,8", "--games", "2", "--opponents", "none", "--start-level", "2"]) == 0
    monkeypatch.setattr(selfplay.pretrained, "HERE", root)  # as if the package shipped it
    game, difficulty = load_difficulty(None, "tictactoe", None, visits=None)
    session = PlaySession(game, difficulty.agent)
    window = opened(session, difficulty=difficulty, fps=1000)
    assert session.agent.name == "level 2@2" and session.agent.visits == 2
    press(pygame.K_UP)
    assert window.frame() and session.agent.name == "level 3@8" and window.note.startswith("agent: level 3 (Elo ")
    press(pygame.K_UP)  # the strongest already
    assert window.frame() and session.agent.name == "level 3@8" and window.note_is_error
    press(pygame.K_DOWN)
    press(pygame.K_DOWN)
    assert window.frame() and session.agent.name == "level 1@0" and session.agent.visits == 0


# ----------------------------------------------------------------------------- screenshots
def test_a_screenshot_is_the_window_after_the_moves(tmp_path):
    game = games.make("connect4")
    session = PlaySession(game, RandomAgent(game), human=1, seed=2)
    path = tmp_path / "shot.png"
    window = PlayWindow(session, fps=1000)
    step = window.frame

    def frame() -> bool:  # the agent's move is in before the next frame: max_frames counts steps, not speed
        shown = step()
        finish(window.thinking, window.analyzing)
        return shown

    window.frame = frame
    window.run(screenshot=path, after_moves=1, max_frames=10)
    assert len(session.actions) == 1 and path.is_file()
    picture = pygame.image.load(str(path))
    width, height = window.board_size
    assert picture.get_size() == (width + PANEL_WIDTH, max(height, PANEL_MIN_HEIGHT) + INFO_HEIGHT)
    assert picture.get_at((width // 2, height - 10))[:3] == (28, 28, 28)  # the caption strip

    assert cli_main(["play", "connect4", "--agent", "random", "--moves", "4,4,3", "--screenshot",
                     str(tmp_path / "cli.png"), "--after-moves", "4"]) == 0
    assert (tmp_path / "cli.png").is_file()
