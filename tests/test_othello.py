"""Othello: perft, passes, game end, flips along every line and edge, notation, encoding.

Positions are drawn as pictures (``X`` black, ``O`` white, ``.`` empty, row 1 on top) and the
rules are also checked against two independent implementations: a cell-by-cell reference in
this file (every size) and OpenSpiel's ``othello`` (8x8).
"""

from __future__ import annotations

import numpy as np
import pytest

import games
from games import GameError, IllegalMoveError
from games.othello import MOVES, TO_PLAY, from_bitboards, make
from games.perft import perft
from games.testing import check_game, random_states

BLACK, WHITE = 0, 1
LINES = [(dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1) if (dr, dc) != (0, 0)]


@pytest.fixture(scope="module", params=[8, 6, 4], ids=["8x8", "6x6", "4x4"])
def game(request):
    return make(request.param)


@pytest.fixture(scope="module")
def game8():
    return make(8)


def position(game, picture: str, player: int) -> np.ndarray:
    """State from a picture, one row of ``X``/``O``/``.`` per line, and the player to move."""
    rows = [row.split() for row in picture.strip().splitlines()]
    n = game.options["size"]
    assert len(rows) == n and all(len(row) == n for row in rows), "picture must be n x n"
    flat = [mark for row in rows for mark in row]
    black = sum(1 << j for j, mark in enumerate(flat) if mark == "X")
    white = sum(1 << j for j, mark in enumerate(flat) if mark == "O")
    return from_bitboards(game.params, black, white, player)


def picture(game, state) -> str:
    """Inverse of :func:`position` (the board only)."""
    marks = np.array([".", "X", "O"])[game.cells_fn(game.params, state)]
    return "\n".join(" ".join(row) for row in marks)


def same_picture(a: str, b: str) -> bool:
    return [r.split() for r in a.strip().splitlines()] == [r.split() for r in b.strip().splitlines()]


def moves(game, state) -> list[str]:
    return [game.action_to_text(a) for a in game.legal_actions(state)]


# ------------------------------------------------------------------ a reference, cell by cell


def reference_flips(board: np.ndarray, color: int, r: int, c: int) -> list[tuple[int, int]]:
    """Cells flipped by a disc of ``color`` (1 black, 2 white) on empty ``(r, c)`` of ``board``."""
    n = board.shape[0]
    flipped = []
    for dr, dc in LINES:
        line, rr, cc = [], r + dr, c + dc
        while 0 <= rr < n and 0 <= cc < n and board[rr, cc] == 3 - color:
            line.append((rr, cc))
            rr, cc = rr + dr, cc + dc
        if line and 0 <= rr < n and 0 <= cc < n and board[rr, cc] == color:
            flipped += line
    return flipped


def reference_moves(board: np.ndarray, color: int) -> list[int]:
    n = board.shape[0]
    empty = [(r, c) for r in range(n) for c in range(n) if board[r, c] == 0]
    return [r * n + c for r, c in empty if reference_flips(board, color, r, c)]


# ------------------------------------------------------------------ conformance and counts


def test_conformance(game):
    check_game(game, num_games=12)


def test_registry_builds_both_sizes():
    for size in (6, 8):
        g = games.make("othello", size=size)
        assert g.num_actions == size * size + 1 and g.obs_shape == (3, size, size)
        assert (g.action_perms[:, size * size] == size * size).all(), "pass maps to itself"
    with pytest.raises(GameError, match="size"):
        make(5)


@pytest.mark.parametrize(
    "depth, count", list(enumerate([4, 12, 56, 244, 1396, 8200, 55092, 390216], start=1))
)
def test_perft_8x8(game8, depth, count):
    assert perft(game8, depth) == count


def test_start(game):
    n = game.options["size"]
    m = n // 2
    state = game.initial_state()
    board = game.cells_fn(game.params, state)
    assert board[m - 1, m - 1] == board[m, m] == 2 and board[m - 1, m] == board[m, m - 1] == 1
    assert np.count_nonzero(board) == 4
    assert game.to_play(state) == BLACK
    assert moves(game, state) == [game.action_to_text(a) for a in reference_moves(board, 1)]
    if n == 8:
        assert moves(game, state) == ["d3", "c4", "f5", "e6"]


# ------------------------------------------------------------------ against independent rules


def test_random_games_match_reference(game):
    """Every move list, board after each move, pass, game end and result, cell by cell."""
    n = game.options["size"]
    pass_action = n * n
    for state in random_states(game, num_games=15, seed=3):
        board = game.cells_fn(game.params, state)
        black, white = reference_moves(board, 1), reference_moves(board, 2)
        assert int(state[MOVES]) % (1 << 64) >> (n * n) == 0, "move bits off the board"
        if not black and not white:
            assert game.is_terminal(state)
            diff = np.sum(board == 1) - np.sum(board == 2)
            assert game.returns(state).tolist() == [np.sign(diff), -np.sign(diff)]
            continue
        mover = game.to_play(state)
        expected = black if mover == BLACK else white
        assert game.legal_actions(state).tolist() == (expected or [pass_action])
        for a in expected:
            r, c = divmod(a, n)
            after = board.copy()
            after[r, c] = mover + 1
            for fr, fc in reference_flips(board, mover + 1, r, c):
                after[fr, fc] = mover + 1
            assert (game.cells_fn(game.params, game.next_state(state, a)) == after).all()


def test_random_games_match_openspiel(game8):
    pyspiel = pytest.importorskip("pyspiel")
    spiel = pyspiel.load_game("othello")
    rng = np.random.default_rng(7)
    for _ in range(10):
        ours, theirs = game8.initial_state(), spiel.new_initial_state()
        while not theirs.is_terminal():
            assert not game8.is_terminal(ours)
            assert game8.to_play(ours) == theirs.current_player()
            assert game8.legal_actions(ours).tolist() == theirs.legal_actions()
            action = int(rng.choice(theirs.legal_actions()))
            assert game8.action_to_text(action) == theirs.action_to_string(action)
            ours = game8.next_state(ours, action)
            theirs.apply_action(action)
        assert game8.is_terminal(ours)
        assert game8.returns(ours).tolist() == theirs.returns()
        rows = str(theirs).splitlines()[2:10]  # "1 x - o ... 1" under a header and column letters
        board = "\n".join(" ".join(row.split()[1:9]) for row in rows)
        assert same_picture(picture(game8, ours), board.replace("x", "X").replace("o", "O").replace("-", "."))


# ------------------------------------------------------------------ flips


def test_flips_along_all_eight_lines(game8):
    """d4 flanks white runs of 1-3 discs on each line, to the top edge, side edges and corner;
    white discs beyond a flanking black disc or on a run ending empty stay white."""
    before = position(
        game8,
        """
        O . . . . . X .
        . X . X . O . .
        . . O O O . . .
        X O O . O O O X
        . . O O O . . .
        . X . O . O . .
        . . . X . . O .
        O . . O . . . X
        """,
        BLACK,
    )
    after = game8.next_state(before, game8.parse_action("d4"))
    assert same_picture(
        picture(game8, after),
        """
        O . . . . . X .
        . X . X . X . .
        . . X X X . . .
        X X X X X X X X
        . . X X X . . .
        . X . X . X . .
        . . . X . . X .
        O . . O . . . X
        """,
    )
    assert game8.to_play(after) == WHITE


@pytest.mark.parametrize("bottom, right", [(0, 0), (0, 1), (1, 0), (1, 1)])
def test_corner_move_flips_longest_lines(game, bottom, right):
    """A corner move flanks n - 2 discs along an edge row, an edge column and the diagonal."""
    n = game.options["size"]
    r0, c0 = bottom * (n - 1), right * (n - 1)
    dr, dc = 1 - 2 * bottom, 1 - 2 * right
    board = np.full((n, n), ".")
    for lr, lc in [(0, dc), (dr, 0), (dr, dc)]:
        for k in range(1, n - 1):
            board[r0 + k * lr, c0 + k * lc] = "O"
        board[r0 + (n - 1) * lr, c0 + (n - 1) * lc] = "X"
    state = position(game, "\n".join(" ".join(row) for row in board), BLACK)
    assert game.legal_actions(state).tolist() == [r0 * n + c0], "only the corner flanks"
    after = game.cells_fn(game.params, game.next_state(state, r0 * n + c0))
    assert np.count_nonzero(after == 2) == 0 and np.count_nonzero(after == 1) == 3 * (n - 1) + 1


def test_lines_do_not_wrap_around_edges(game):
    """Every one-disc flank that exists only in the flat cell order (a shift by 1, n - 1, n or
    n + 1 that crosses a row end or leaves the board) is refused: the move is not legal."""
    n = game.options["size"]
    traps = 0
    for move in range(n * n):
        r, c = divmod(move, n)
        for dr, dc in LINES:
            step = dr * n + dc
            o, x = move + step, move + 2 * step
            if not (0 <= o < n * n and 0 <= x < n * n):
                continue
            if divmod(o, n) == (r + dr, c + dc) and divmod(x, n) == (r + 2 * dr, c + 2 * dc):
                continue  # a real line on the board
            state = from_bitboards(game.params, 1 << x, 1 << o, BLACK)
            board = game.cells_fn(game.params, state)
            assert move not in game.legal_actions(state), f"{game.action_to_text(move)} wraps"
            assert [a for a in game.legal_actions(state) if a < n * n] == reference_moves(board, 1)
            traps += 1
    assert traps >= 6 * (n - 2), "every row end gives traps on the six lines with a sideways step"


# ------------------------------------------------------------------ passes and the end


def test_forced_pass_by_move_sequence(game8):
    state = game8.play([game8.parse_action(m) for m in "d3 c3 b3 b2 f5 a3 a1 c1".split()])
    assert game8.to_play(state) == BLACK and not game8.is_terminal(state)
    assert moves(game8, state) == ["pass"]
    after = game8.next_state(state, game8.parse_action("pass"))
    assert (after[:2] == state[:2]).all(), "a pass leaves the board as it is"
    assert game8.to_play(after) == WHITE and "pass" not in moves(game8, after)
    assert (game8.encode(after)[:2] == game8.encode(state)[1::-1]).all(), "encoding follows the mover"
    for k in range(game8.num_symmetries):
        assert moves(game8, game8.transform_state(state, k)) == ["pass"]


def test_pass_then_wipeout_ends_the_game_before_the_board_is_full(game):
    n = game.options["size"]
    rows = [". " * n] * n
    rows[0] = "X O " + ". " * (n - 2)
    state = position(game, "\n".join(rows), WHITE)
    assert moves(game, state) == ["pass"], "white cannot flank a disc on the edge"
    state = game.next_state(state, n * n)
    assert game.to_play(state) == BLACK and moves(game, state) == ["c1"]
    state = game.next_state(state, game.parse_action("c1"))
    assert game.is_terminal(state) and not game.legal_mask(state).any()
    assert game.returns(state).tolist() == [1.0, -1.0]
    with pytest.raises(IllegalMoveError, match="over"):
        game.next_state(state, n * n)


def test_shortest_game_is_a_wipeout(game8):
    """The 9-move game (the shortest possible) ends with 13 black discs and no white ones."""
    state = game8.play([game8.parse_action(m) for m in "d3 c3 b3 d2 e1 d6 d7 e3 f4".split()])
    assert game8.is_terminal(state)
    assert np.count_nonzero(game8.cells_fn(game8.params, state) == 1) == 13
    assert game8.returns(state).tolist() == [1.0, -1.0]


def test_blocked_board_ends_game_scored_by_discs(game8):
    """Neither side can move with empty cells left: the disc count decides, draws score 0."""
    white_wins = position(game8, "O O . . . . . X\n" + ". . . . . . . .\n" * 7, BLACK)
    draw = position(game8, "O . . . . . . X\n" + ". . . . . . . .\n" * 7, WHITE)
    assert game8.is_terminal(white_wins) and game8.is_terminal(draw)
    assert game8.returns(white_wins).tolist() == [-1.0, 1.0]
    assert game8.returns(draw).tolist() == [0.0, 0.0]


def test_full_board_ends_game(game):
    n = game.options["size"]
    rows = ["X " * n] * (n - 1) + ["O " * n]
    state = position(game, "\n".join(rows), WHITE)
    assert game.is_terminal(state) and game.returns(state).tolist() == [1.0, -1.0]


# ------------------------------------------------------------------ encoding


def test_encoding_is_from_the_viewer(game8):
    state = game8.initial_state()
    black = game8.encode_agent(state, BLACK)
    white = game8.encode_agent(state, WHITE)
    assert (game8.encode(state) == black).all()
    assert (black[0] == white[1]).all() and (black[1] == white[0]).all()
    cells = lambda plane: sorted(game8.action_to_text(j) for j in np.flatnonzero(plane.ravel()))  # noqa: E731
    assert cells(black[0]) == ["d5", "e4"] and cells(black[1]) == ["d4", "e5"]
    assert cells(black[2]) == ["c4", "d3", "e6", "f5"], "plane 2: the mover's legal cells"
    assert cells(white[2]) == ["c5", "d6", "e3", "f4"], "plane 2: where white's disc would flip"


# ------------------------------------------------------------------ notation and bad input


def test_notation(game):
    n = game.options["size"]
    assert [game.action_to_text(a) for a in (0, n - 1, n * n - 1, n * n)] == [
        "a1",
        f"{'abcdefgh'[n - 1]}1",
        f"{'abcdefgh'[n - 1]}{n}",
        "pass",
    ]
    for a in range(game.num_actions):
        assert game.parse_action(game.action_to_text(a)) == a
    assert game.parse_action(" PASS ") == n * n and game.parse_action("D3") == 2 * n + 3
    for bad in ("z9", "k1", f"{'abcdefghi'[n]}1", f"a{n + 1}", "a0", "pas", ""):
        with pytest.raises(GameError):
            game.parse_action(bad)


def test_parse_action_checks_legality(game):
    state = game.initial_state()
    for illegal in ("a1", "pass"):
        with pytest.raises(IllegalMoveError, match="illegal move"):
            game.parse_action(illegal, state)
    for legal in game.legal_actions(state):
        assert game.parse_action(game.action_to_text(legal), state) == legal


def test_from_bitboards_rejects_bad_boards(game8):
    with pytest.raises(GameError, match="both colours"):
        from_bitboards(game8.params, 0b11, 0b10, BLACK)
    with pytest.raises(GameError, match="player"):
        from_bitboards(game8.params, 1, 2, 2)
    with pytest.raises(GameError, match="off the"):
        from_bitboards(make(6).params, 1 << 36, 0, BLACK)
    state = from_bitboards(game8.params, -(1 << 63), 1, WHITE)  # h8 given as an int64 word
    assert game8.cells_fn(game8.params, state)[7, 7] == 1 and state[TO_PLAY] == WHITE


def test_render_text(game8):
    text = game8.render_text(game8.initial_state())
    assert text.splitlines()[0].startswith("black (X) to move") and "*" in text
