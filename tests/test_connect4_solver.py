"""The Connect Four solver against a plain negamax on small boards, and known 7x6 facts."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

import games
from games import GameError, IllegalMoveError
from games.connect4_benchmark import STAGES, benchmark_positions, stage_of
from games.connect4_solver import (
    DRAW,
    ILLEGAL,
    LOSS,
    WIN,
    Solver,
    is_error,
    move_outcomes,
    outcome_is_error,
    outcomes_from_state,
    solve,
)


# ----------------------------------------------------------------------------- the oracle
# A plain negamax over a 2-D board, written apart from the solver: no bitboards, no pruning,
# no table. board int8[H, W] (row 0 at the bottom): 0 empty, 1 or 2 a player's stone.
@njit(cache=True)
def _four_through(board, row, col, player):
    height, width = board.shape
    for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
        count = 1
        for sign in (1, -1):
            r, c = row + sign * dr, col + sign * dc
            while 0 <= r < height and 0 <= c < width and board[r, c] == player:
                count += 1
                r += sign * dr
                c += sign * dc
        if count >= 4:
            return True
    return False


@njit(cache=True)
def _brute_score(board, heights, moves, player):
    """Pons' score of the position for ``player`` (to move): win with the k-th own stone scores
    W*H//2 + 1 - k, a draw 0."""
    height, width = board.shape
    cells = width * height
    if moves == cells:
        return 0
    best = -cells
    for col in range(width):
        row = heights[col]
        if row == height:
            continue
        board[row, col] = player
        heights[col] += 1
        if _four_through(board, row, col, player):
            score = (cells + 1 - moves) // 2
        else:
            score = -_brute_score(board, heights, moves + 1, 3 - player)
        heights[col] -= 1
        board[row, col] = 0
        best = max(best, score)
    return best


def _board(moves, width, height):
    board = np.zeros((height, width), dtype=np.int8)
    heights = np.zeros(width, dtype=np.int64)
    for i, col in enumerate(moves):
        board[heights[col], col] = 1 + i % 2
        heights[col] += 1
    return board, heights


def brute_score(moves, width, height):
    board, heights = _board(moves, width, height)
    return int(_brute_score(board, heights, len(moves), 1 + len(moves) % 2))


def brute_outcomes(moves, width, height):
    """int8[W] W/D/L of each column for the mover by the oracle, ILLEGAL where full."""
    board, heights = _board(moves, width, height)
    player = 1 + len(moves) % 2
    out = np.full(width, ILLEGAL, dtype=np.int8)
    for col in range(width):
        if heights[col] < height:
            row = heights[col]
            board[row, col] = player
            if _four_through(board, row, col, player):
                out[col] = WIN
            else:
                heights[col] += 1
                out[col] = -np.sign(_brute_score(board, heights, len(moves) + 1, 3 - player))
                heights[col] -= 1
            board[row, col] = 0
    return out


def random_open_position(rng, width, height, num_moves):
    """Columns of a uniformly random game of ``num_moves`` moves that nobody has won yet
    (a move that would win is never chosen), or None if every continuation wins."""
    board, heights = _board([], width, height)
    moves = []
    for i in range(num_moves):
        cols = []
        for col in range(width):
            if heights[col] < height:
                board[heights[col], col] = 1 + i % 2
                if not _four_through(board, heights[col], col, 1 + i % 2):
                    cols.append(col)
                board[heights[col], col] = 0
        if not cols:
            return None
        col = int(rng.choice(cols))
        board[heights[col], col] = 1 + i % 2
        heights[col] += 1
        moves.append(col)
    return moves


def random_positions(seed, count, width, height, min_moves, max_moves):
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < count:
        moves = random_open_position(rng, width, height, int(rng.integers(min_moves, max_moves + 1)))
        if moves is not None:
            out.append(moves)
    return out


# ----------------------------------------------------------------------------- exact scores
@pytest.mark.parametrize(
    "width, height, min_moves, count",
    [(4, 4, 3, 50), (5, 4, 8, 50), (4, 5, 7, 40), (6, 5, 17, 30), (8, 7, 43, 20), (9, 6, 40, 20)],
)
def test_exact_scores_and_outcomes_match_plain_negamax(width, height, min_moves, count):
    # 8x7 fills all 64 bits (the last column's sentinel is the sign bit); 9x6 uses 63.
    solver = Solver(width, height)
    cells = width * height
    for moves in random_positions(width * 10 + height, count, width, height, min_moves, cells - 1):
        assert solver.solve(moves) == brute_score(moves, width, height), moves
        np.testing.assert_array_equal(solver.move_outcomes(moves), brute_outcomes(moves, width, height))


@pytest.mark.slow
def test_the_empty_4x4_board_agrees_with_plain_negamax():
    solver = Solver(4, 4)
    assert solver.solve([]) == brute_score([], 4, 4)
    np.testing.assert_array_equal(solver.move_outcomes([]), brute_outcomes([], 4, 4))


def test_a_crowded_table_changes_no_result():
    # One small table through many positions in turn: buckets overflow, and bounds of earlier
    # positions stay behind.
    solver = Solver(6, 5, table_bits=21)
    for moves in random_positions(11, 30, 6, 5, 17, 24):
        assert solver.solve(moves) == brute_score(moves, 6, 5), moves


# ----------------------------------------------------------------------------- 7x6
def test_scores_from_pons_test_protocol():
    # Examples of http://blog.gamesolver.org/solving-connect-four/02-test-protocol/ (1-based
    # columns there): "4455" scores 18, the mover wins with their 4th stone; "44455554221"
    # scores -15, the opponent wins next move with their 7th stone.
    assert solve([3, 3, 4, 4]) == 18
    assert solve([3, 3, 3, 4, 4, 4, 4, 3, 1, 1, 0]) == -15


def test_win_in_one_from_either_side():
    # First player to move with three on the bottom row (columns 0-2): 3 wins now.
    moves = [0, 6, 1, 6, 2, 6]
    assert solve(moves) == (42 + 1 - 6) // 2
    assert move_outcomes(moves)[3] == WIN and not is_error(moves, 3)
    # Second player to move with three stacked in column 1: the score is theirs.
    moves = [0, 1, 0, 1, 0, 1, 6]
    assert solve(moves) == (42 + 1 - 7) // 2
    assert move_outcomes(moves)[1] == WIN


def test_must_block():
    # The first player has three stacked in column 0, the second two in the centre: blocking
    # wins for the second player, anything else loses to the next stone.
    moves = [0, 3, 0, 3, 0]
    np.testing.assert_array_equal(move_outcomes(moves), [WIN, LOSS, LOSS, LOSS, LOSS, LOSS, LOSS])
    for col in range(1, 7):
        assert solve(moves + [col]) == (42 + 1 - 6) // 2  # the first player wins with the next stone
        assert is_error(moves, col)
    assert not is_error(moves, 0)


def _outcomes_by_exact_solves(solver, moves):
    expected = np.full(7, ILLEGAL, dtype=np.int8)
    for col in range(7):
        if moves.count(col) == 6:
            continue
        child = moves + [col]
        try:
            expected[col] = -np.sign(solver.solve(child))
        except GameError:  # the move won: nothing left to solve
            expected[col] = WIN
    return expected


def test_outcomes_are_the_signs_of_exact_scores():
    # 7x6 positions with 16 to 34 moves (random play that never completes four).
    solver = Solver(7, 6)
    for moves in random_positions(3, 40, 7, 6, 16, 34):
        expected = _outcomes_by_exact_solves(solver, moves)
        np.testing.assert_array_equal(solver.move_outcomes(moves), expected)


@pytest.mark.slow
def test_the_empty_board_is_won_by_the_centre_only():
    # About 10 minutes: the first player wins with their last stone, by the centre alone.
    np.testing.assert_array_equal(move_outcomes([]), [LOSS, LOSS, DRAW, WIN, DRAW, LOSS, LOSS])
    assert solve([]) == 1


# ----------------------------------------------------------------------------- API
def test_bad_input_is_refused_with_a_reason():
    with pytest.raises(IllegalMoveError, match="off the board"):
        solve([7])
    with pytest.raises(IllegalMoveError, match="full"):
        solve([0] * 7)
    with pytest.raises(IllegalMoveError, match="already won"):
        solve([0, 1, 0, 1, 0, 1, 0, 1])
    with pytest.raises(GameError, match="already won"):
        move_outcomes([0, 1, 0, 1, 0, 1, 0])
    with pytest.raises(GameError, match="64-bit"):
        Solver(9, 7)
    with pytest.raises(GameError, match="table_bits"):
        Solver(7, 6, table_bits=8)
    with pytest.raises(IllegalMoveError, match="not legal"):
        is_error([0] * 4, 0, width=4, height=4)


def test_an_error_is_a_strictly_worse_outcome():
    outcomes = np.array([LOSS, DRAW, DRAW, ILLEGAL, LOSS], dtype=np.int8)
    assert [outcome_is_error(outcomes, a) for a in (0, 1, 2, 4)] == [True, False, False, True]
    with pytest.raises(IllegalMoveError, match="legal: 0, 1, 2, 4"):
        outcome_is_error(outcomes, 3)


def test_a_full_board_is_a_draw_without_legal_moves():
    # 4x4 filled in pairs of columns so that nobody ever has four.
    moves = [0, 1, 0, 1, 1, 0, 1, 0, 2, 3, 2, 3, 3, 2, 3, 2]
    solver = Solver(4, 4)
    assert solver.solve(moves) == 0
    assert (solver.move_outcomes(moves) == ILLEGAL).all()


def test_outcomes_from_a_connect4_state():
    game = games.make("connect4", width=5, height=4)
    for moves in random_positions(5, 10, 5, 4, 8, 19):
        state = game.play(moves)
        np.testing.assert_array_equal(outcomes_from_state(game, state), brute_outcomes(moves, 5, 4))
    with pytest.raises(GameError, match="only connect4"):
        outcomes_from_state(games.make("tictactoe"), np.zeros(3, dtype=np.int64))


# ----------------------------------------------------------------------------- benchmark positions
def test_benchmark_positions_are_new_open_and_answered():
    solver = Solver(6, 6)
    kwargs = dict(seed=1, width=6, height=6, min_moves=6, solver_from=8, solver=solver)
    stages = benchmark_positions(6, **kwargs)
    assert list(stages) == list(STAGES)
    keys = set()
    for name, positions in stages.items():
        assert len(positions) == 6
        for p in positions:
            moves = list(p.moves)
            assert p.stage == name == stage_of(len(moves)) and len(moves) >= 6
            # The answer key belongs to these moves (the oracle is too slow before move 24).
            if len(moves) >= 24:
                np.testing.assert_array_equal(p.outcomes, brute_outcomes(moves, 6, 6))
            else:
                np.testing.assert_array_equal(p.outcomes, Solver(6, 6).move_outcomes(moves))
            legal = p.outcomes[p.outcomes != ILLEGAL]
            assert legal.min() < legal.max()  # some legal move is an error
            current, mask, _ = solver.position(moves)
            assert not solver._can_win_now(current, mask)
            mirror_current, mirror_mask, _ = solver.position([5 - c for c in moves])
            assert current + mask not in keys and mirror_current + mirror_mask not in keys
            keys.add(current + mask)
    again = benchmark_positions(6, **kwargs)
    assert [[p.moves for p in ps] for ps in again.values()] == [
        [p.moves for p in ps] for ps in stages.values()
    ]


def test_a_board_too_small_for_a_stage_leaves_it_out():
    # 5x4: 20 cells, so no "end" position (29 moves or more).
    stages = benchmark_positions(
        3, seed=0, width=5, height=4, min_moves=4, solver_from=4, solver=Solver(5, 4)
    )
    assert list(stages) == ["beginning", "middle"] and all(len(ps) == 3 for ps in stages.values())


def test_benchmark_stages_follow_the_number_of_moves():
    assert [stage_of(n) for n in (0, 14, 15, 28, 29, 41)] == [
        "beginning", "beginning", "middle", "middle", "end", "end"
    ]
