"""Gomoku: conformance, hand-made fives (edges, word boundaries, overlines), non-wins, a full-board
draw, notation, and random play judged against a plain numpy reference (:func:`fives`)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import games
from games import GameError, IllegalMoveError
from games.testing import check_game

DIRECTIONS = {"horizontal": (0, 1), "vertical": (1, 0), "diagonal \\": (1, 1), "diagonal /": (1, -1)}


def fives(board: np.ndarray, piece: int) -> set[str]:
    """Directions in which ``piece`` (1 black, 2 white) has five or more in a row on ``board``
    (int8[N, N]); knows nothing of bitboards."""
    n = board.shape[0]
    own = np.pad(board == piece, 4)  # [N+8, N+8], an empty margin of 4 around the board
    found = set()
    for name, (dr, dc) in DIRECTIONS.items():
        starts = np.ones((n, n), dtype=bool)  # a five starts at (r, c) along (dr, dc)
        for i in range(5):
            starts &= own[4 + i * dr : 4 + i * dr + n, 4 + i * dc : 4 + i * dc + n]
        if starts.any():
            found.add(name)
    return found


def play(game, black: str, white: str) -> np.ndarray:
    """The state after black and white alternately play the points listed (black first)."""
    b, w = black.split(), white.split()
    assert len(b) - len(w) in (0, 1), "black moves first, then the players alternate"
    order = [m for pair in zip(b, w) for m in pair] + b[len(w) :]
    return game.play([game.parse_action(m) for m in order])


def board(game, state) -> np.ndarray:
    return game.cells_fn(game.params, state)


@pytest.fixture(scope="module")
def g15():
    return games.make("gomoku", size=15)


@pytest.fixture(scope="module")
def g9():
    return games.make("gomoku", size=9)


def test_conformance_9x9(g9):
    check_game(g9, num_games=10)
    assert g9.obs_shape == (2, 9, 9) and g9.num_actions == 81 and g9.num_symmetries == 8


def test_conformance_15x15(g15):
    check_game(g15, num_games=3)
    assert g15.obs_shape == (2, 15, 15) and g15.num_actions == 225 and g15.num_symmetries == 8


def test_board_size_out_of_range_is_refused():
    with pytest.raises(GameError, match="board size 4 is out of range 5..26"):
        games.gomoku.make(size=4)


FILLER_WHITE = "a8 c8 e8 g8"  # four white stones with gaps: no threat
FILLER_BLACK = "a15 c15 e15 g15 i15"


@pytest.mark.parametrize(
    "five,direction,where",
    [
        ("a1 b1 c1 d1 e1", "horizontal", "top edge, from the top-left corner"),
        ("k15 l15 m15 n15 o15", "horizontal", "bottom edge, to the bottom-right corner"),
        ("a5 b5 c5 d5 e5", "horizontal", "across the first 64-bit word boundary (d5 is bit 63)"),
        ("o11 o12 o13 o14 o15", "vertical", "right edge, down to the corner"),
        ("a2 a3 a4 a5 a6", "vertical", "left edge"),
        ("a1 b2 c3 d4 e5", "diagonal \\", "from the top-left corner"),
        ("k11 l12 m13 n14 o15", "diagonal \\", "into the bottom-right corner"),
        ("o1 n2 m3 l4 k5", "diagonal /", "from the top-right corner"),
        ("e11 d12 c13 b14 a15", "diagonal /", "into the bottom-left corner"),
    ],
)
def test_black_five_wins_in_every_direction(g15, five, direction, where):
    moves = five.split()
    # black plays the five in a scrambled order, so the last stone is not always at an end
    black = " ".join(moves[i] for i in (0, 4, 1, 3, 2))
    before = play(g15, " ".join(black.split()[:4]), FILLER_WHITE)
    assert not g15.is_terminal(before)
    state = play(g15, black, FILLER_WHITE)
    assert g15.is_terminal(state) and not g15.legal_mask(state).any(), where
    assert fives(board(g15, state), 1) == {direction} and not fives(board(g15, state), 2)
    assert g15.returns(state).tolist() == [1.0, -1.0]


def test_white_five_scores_from_both_points_of_view(g15):
    state = play(g15, FILLER_BLACK, "d4 e5 f6 g7 h8")
    assert g15.is_terminal(state) and fives(board(g15, state), 2) == {"diagonal \\"}
    assert g15.outcome_fn(g15.params, state, 1) == 1.0
    assert g15.outcome_fn(g15.params, state, 0) == -1.0


@pytest.mark.parametrize(
    "black", ["a8 b8 c8 e8 f8 d8", "h1 h2 h3 h4 h6 h7 h8 h5", "a9 b9 c9 d9 f9 g9 h9 i9 e9"]
)
def test_overlines_win(g9, black):
    # The last stone joins two runs into six, eight or nine in a row: freestyle counts them.
    white = " ".join(["a1", "c1", "e1", "g1", "i1", "a3", "c3", "e3"][: len(black.split()) - 1])
    moves = black.split()
    before = play(g9, " ".join(moves[:-1]), white)
    assert not g9.is_terminal(before) and not fives(board(g9, before), 1)
    state = play(g9, black, white)
    assert g9.is_terminal(state)
    assert g9.returns(state).tolist() == [1.0, -1.0]


@pytest.mark.parametrize(
    "black,white,why",
    [
        ("g8 h8 i8 j8", "a1 c1 e1", "an open four"),
        ("a1 b1 c1 d1 f1", "e1 a3 c3 e3", "five stones broken by an opponent stone"),
        ("a1 b1 c1 d1 f1", "a3 c3 e3 g3", "five stones with a gap"),
        ("l1 m1 n1 o1 a2", "a4 c4 e4 g4", "consecutive cells across the row wrap"),
        ("l4 m3 n2 o1 a1", "a4 c4 e4 g4", "a diagonal that wraps around the edge"),
        ("b2 c3 d4 e5 g7", "f6 a15 c15 e15", "a diagonal cut by the opponent"),
    ],
)
def test_no_false_five(g15, black, white, why):
    state = play(g15, black, white)
    assert not g15.is_terminal(state), why
    assert g15.legal_mask(state).sum() == 225 - len(black.split()) - len(white.split())


def test_full_board_without_five_is_a_draw(g9):
    # Black on the cells where (r + 2c) mod 4 < 2: colours alternate along rows and pair up along
    # columns and both diagonals, so no line is longer than two; 41 black cells, 40 white.
    rows, cols = np.indices((9, 9))
    black_cells = np.flatnonzero((rows + 2 * cols) % 4 < 2)
    white_cells = np.flatnonzero((rows + 2 * cols) % 4 >= 2)
    assert len(black_cells) == 41 and len(white_cells) == 40
    moves = np.empty(81, dtype=np.int64)
    moves[0::2], moves[1::2] = black_cells, white_cells
    assert not g9.is_terminal(g9.play(moves[:-1]))
    state = g9.play(moves)
    final = board(g9, state)
    assert (final != 0).all() and not fives(final, 1) and not fives(final, 2)
    assert g9.is_terminal(state) and g9.returns(state).tolist() == [0.0, 0.0]


def test_encoding_is_from_the_viewer_with_row_zero_on_top(g15):
    state = play(g15, "h8 a2", "b1")  # black h8, white b1, black a2; white to move
    obs = g15.encode(state)
    assert obs[1, 7, 7] == 1 and obs[1, 1, 0] == 1 and obs[1].sum() == 2, "black's stones, as opponent"
    assert obs[0, 0, 1] == 1 and obs[0].sum() == 1, "white's own stone b1 is row 0, column 1"
    black_view = g15.encode_agent(state, 0)
    assert (black_view[0] == obs[1]).all() and (black_view[1] == obs[0]).all()


def test_notation_round_trip_and_errors(g15, g9):
    assert g15.parse_action("a1") == 0 and g15.parse_action("H8") == 112 and g15.parse_action("o15") == 224
    for action in range(225):
        assert g15.parse_action(g15.action_to_text(action)) == action
    with pytest.raises(GameError, match=r"cannot read move 'p1': expected a point like a1\.\.o15"):
        g15.parse_action("p1")
    with pytest.raises(GameError, match=r"cannot read move 'j1': expected a point like a1\.\.i9"):
        g9.parse_action("j1")
    for off in ("a16", "a0"):
        with pytest.raises(GameError, match=rf"move '{off}' is off the board \(rows 1\.\.15\)"):
            g15.parse_action(off)
    for nonsense in ("", "h", "88", "pass", "h-8"):
        with pytest.raises(GameError, match="cannot read move"):
            g15.parse_action(nonsense)


def test_occupied_point_is_an_illegal_move(g15):
    state = play(g15, "h8", "")
    with pytest.raises(IllegalMoveError, match="illegal move 'h8'"):
        g15.parse_action("h8", state)


@settings(max_examples=40, deadline=None)
@given(size=st.sampled_from([9, 15]), choices=st.lists(st.integers(0, 10**6), min_size=1, max_size=120))
def test_random_play_agrees_with_the_reference(size, choices):
    game = games.make("gomoku", size=size)
    state = game.initial_state()
    for ply, choice in enumerate(choices):
        cells = board(game, state)
        assert (cells == 1).sum() == (ply + 1) // 2 and (cells == 2).sum() == ply // 2
        black_five, white_five = bool(fives(cells, 1)), bool(fives(cells, 2))
        assert not (black_five and white_five)
        ended = black_five or white_five or ply == size * size
        assert game.is_terminal(state) == ended
        mask = game.legal_mask(state)
        assert (mask == ((cells.ravel() == 0) & (not ended))).all(), "legal = empty points, until the end"
        if ended:
            assert game.outcome_fn(game.params, state, 0) == (1.0 if black_five else -1.0)
            break
        assert game.to_play(state) == ply % 2
        legal = np.flatnonzero(mask)
        state = game.next_state(state, legal[choice % len(legal)])
