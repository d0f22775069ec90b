"""Connect Four: conformance, textbook position counts, hand-made endings, notation, random play.

Hand-made positions are built from move strings in human notation (1-based columns) and judged
against a plain numpy reference (:func:`fours`) that knows nothing of the bitboards.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import games
from games import GameError, IllegalMoveError
from games.perft import distinct_positions
from games.testing import check_game

DIRECTIONS = {"horizontal": (0, 1), "vertical": (1, 0), "diagonal /": (-1, 1), "diagonal \\": (1, 1)}


def fours(board: np.ndarray, piece: int) -> set[str]:
    """Directions in which ``piece`` (1 or 2) has four in a row on ``board`` (int8[H, W], row 0 on top)."""
    height, width = board.shape
    found = set()
    for name, (dr, dc) in DIRECTIONS.items():
        for r in range(height):
            for c in range(width):
                cells = [(r + i * dr, c + i * dc) for i in range(4)]
                if all(0 <= rr < height and 0 <= cc < width and board[rr, cc] == piece for rr, cc in cells):
                    found.add(name)
    return found


def play(game, moves: str) -> np.ndarray:
    """The state after ``moves``, one column digit per move ("4455"), each checked legal."""
    return game.play([game.parse_action(m) for m in moves])


def assert_ends_with_last_move(game, moves: str) -> np.ndarray:
    """The game is over after ``moves`` and not one move earlier; returns the final state."""
    assert not game.is_terminal(play(game, moves[:-1])), f"{moves[:-1]} already ended the game"
    state = play(game, moves)
    assert game.is_terminal(state)
    assert not game.legal_mask(state).any()
    return state


@pytest.fixture(scope="module")
def c4():
    return games.make("connect4")


@pytest.mark.parametrize("width,height", [(7, 6), (5, 4), (9, 6), (8, 7)])
def test_conformance(width, height):
    # 8x7 fills all 64 bits of the bitboard, the last column's sentinel being the sign bit.
    game = games.make("connect4", width=width, height=height)
    check_game(game, num_games=20)
    assert game.obs_shape == (2, height, width) and game.num_actions == width


def test_boards_beyond_the_bitboard_are_refused():
    with pytest.raises(GameError, match=r"needs \(height\+1\)\*width = 90 bits"):
        games.make("connect4", width=9, height=9)
    with pytest.raises(GameError, match="too small"):
        games.connect4.make(width=3, height=6)


def test_distinct_positions_match_the_textbook_counts(c4):
    # OEIS A212693: distinct Connect Four positions after n plies on 7x6.
    assert distinct_positions(c4, 8) == [1, 7, 49, 238, 1120, 4263, 16422, 54859, 184275]


@pytest.mark.parametrize(
    "moves,direction,where",
    [
        ("1122334", "horizontal", "bottom row, left edge"),
        ("7766554", "horizontal", "bottom row, right edge"),
        ("5675554456137451614462477667217", "horizontal", "top row, right edge"),
        ("1212121", "vertical", "bottom-left corner"),
        ("17277171727", "vertical", "top-right corner"),
        ("12233434464", "diagonal /", "from the bottom-left corner"),
        ("76655454424", "diagonal \\", "from the bottom-right corner"),
        ("7425426754445546665665377737", "diagonal /", "up to the top-right corner"),
    ],
)
def test_wins_in_every_direction_and_at_the_edges(c4, moves, direction, where):
    state = assert_ends_with_last_move(c4, moves)
    winner = (len(moves) - 1) % 2
    board = c4.cells_fn(c4.params, state)
    expected_line = f"expected a {direction} four {where}:\n{c4.render_text(state)}"
    assert direction in fours(board, winner + 1), expected_line
    assert not fours(board, 2 - winner)
    expected = np.array([1.0, -1.0]) if winner == 0 else np.array([-1.0, 1.0])
    assert (c4.returns(state) == expected).all()


def test_second_player_win_scores_from_both_points_of_view(c4):
    state = assert_ends_with_last_move(c4, "12121272")  # O (player_1) stacks four in column 2
    assert c4.outcome_fn(c4.params, state, 1) == 1.0
    assert c4.outcome_fn(c4.params, state, 0) == -1.0


@pytest.mark.parametrize(
    "moves,cells_in_line",
    [
        # X on the top three cells of column 1 and the bottom cell of column 2: consecutive bits
        # in a layout without the sentinel row.
        ("211113131", "col 1 rows 4-6 + col 2 row 1"),
        # X on the last two cells of the bottom row and the first two of the second row: a
        # horizontal line through the row wrap of a row-major layout.
        ("6172152", "row 1 cols 6-7 + row 2 cols 1-2"),
    ],
)
def test_no_false_four_across_the_wrap(c4, moves, cells_in_line):
    state = play(c4, moves)
    assert not c4.is_terminal(state), f"false win ({cells_in_line}):\n{c4.render_text(state)}"
    assert c4.legal_mask(state).any()


def test_full_board_without_four_is_a_draw(c4):
    moves = "446323116125713546635334125521577677446722"  # found by random play, checked below
    state = assert_ends_with_last_move(c4, moves)
    board = c4.cells_fn(c4.params, state)
    assert (board != 0).all() and not fours(board, 1) and not fours(board, 2)
    assert (c4.returns(state) == 0.0).all()


def test_encoding_is_from_the_viewer_with_row_zero_on_top(c4):
    state = play(c4, "4")  # X drops into column 4, bottom row; O to move
    obs = c4.encode(state)
    assert obs[0].sum() == 0, "O has no discs yet"
    assert obs[1, c4.obs_shape[1] - 1, 3] == 1 and obs[1].sum() == 1, "X's disc is bottom (last) row"
    x_view = c4.encode_agent(state, 0)
    assert (x_view[0] == obs[1]).all() and (x_view[1] == obs[0]).all()


def test_mirror_symmetry_swaps_columns(c4):
    mirrored = c4.transform_state(play(c4, "1123"), 1)
    assert (mirrored == play(c4, "7765")).all()


def test_notation_round_trip_and_errors(c4):
    for action in range(c4.num_actions):
        assert c4.action_to_text(action) == str(action + 1)
        assert c4.parse_action(c4.action_to_text(action)) == action
    assert c4.parse_action(" 4 ") == 3
    with pytest.raises(GameError, match=r"column 0 is off the board \(columns 1\.\.7\)"):
        c4.parse_action("0")
    with pytest.raises(GameError, match=r"column 8 is off the board \(columns 1\.\.7\)"):
        c4.parse_action("8")
    for nonsense in ("x", "", "-1", "4.0", "d"):
        with pytest.raises(GameError, match=r"cannot read move .*expected a column number 1\.\.7"):
            c4.parse_action(nonsense)


def test_full_column_is_an_illegal_move(c4):
    state = play(c4, "111111")  # alternating discs: no four
    assert not c4.legal_mask(state)[0] and c4.legal_mask(state)[1:].all()
    with pytest.raises(IllegalMoveError, match="illegal move '1'"):
        c4.parse_action("1", state)


@settings(max_examples=60, deadline=None)
@given(
    size=st.sampled_from([(7, 6), (5, 4), (9, 6), (4, 9)]),
    choices=st.lists(st.integers(0, 10**6), max_size=81),
)
def test_random_play_keeps_the_position_consistent(size, choices):
    width, height = size
    game = games.make("connect4", width=width, height=height)
    state = game.initial_state()
    for ply, choice in enumerate(choices):
        board = game.cells_fn(game.params, state)
        assert (board == 1).sum() == (ply + 1) // 2 and (board == 2).sum() == ply // 2
        assert state[2] == ply
        x_four, o_four = bool(fours(board, 1)), bool(fours(board, 2))
        assert not (x_four and o_four)
        ended = x_four or o_four or ply == width * height
        assert game.is_terminal(state) == ended
        mask = game.legal_mask(state)
        assert (mask == ((board[0] == 0) & (not ended))).all(), "legal = columns with room, until the end"
        if ended:
            expected = 1.0 if x_four else -1.0 if o_four else 0.0
            assert game.outcome_fn(game.params, state, 0) == expected
            break
        assert game.to_play(state) == ply % 2
        legal = np.flatnonzero(mask)
        column = legal[choice % len(legal)]
        state = game.next_state(state, column)
        landed = game.cells_fn(game.params, state)[:, column]
        assert landed[np.argmax(landed != 0)] == ply % 2 + 1, "the disc lands on top of its column"
