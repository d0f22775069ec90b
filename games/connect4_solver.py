"""A perfect Connect Four solver after Pascal Pons' (http://blog.gamesolver.org), for any board
with ``(height + 1) * width <= 64``: numba kernels for the search and a :class:`Solver` that owns
their tables. One cohesive module: the bitboard helpers, the transposition table and the negamax
are one algorithm, tuned together. The strength benchmark's positions are drawn and answered by
:mod:`games.connect4_benchmark`.

Positions are bitboards, column-major with a sentinel bit above each column (the layout of
``games.connect4``): cell (column c, row r from the bottom) is bit ``c * (height + 1) + r``. A
position is ``(current, mask, num_moves)``: ``current`` the stones of the player to move,
``mask`` all stones. The public API takes the simplest common currency, the 0-based columns
played from the empty board; :func:`outcomes_from_state` takes a ``games.connect4`` state.

Scores (Pons' convention) are from the point of view of the player to move: 0 for a draw; a
player who wins with the k-th stone they play scores ``W*H // 2 + 1 - k``, the loser the
opposite. So winning with the next stone scores ``(W*H + 1 - num_moves) // 2``, and the empty
7x6 board scores +1 (the first player wins with their 21st and last stone).

The search is negamax with alpha-beta on null windows: the exact score by bisection, probing
near 0 first, or only its sign (win/draw/loss: at most two searches). It prunes moves that let
the opponent win at once, orders moves centre first and then by the winning cells they make,
and keeps a transposition table of lower and upper bounds in one 64-bit word per entry, two
entries a bucket (one kept for the shallowest position, one always replaced: fewer nodes than
one always-replaced entry). Mirror images do not share entries: past the opening that saves
almost no nodes and costs time per node. The search runs on an explicit stack (one
preallocated row per depth), not by recursion. The tables are numpy arrays held by a
:class:`Solver` and reused across calls; the kernels are ``@njit(cache=True)``.

Outcomes (:data:`WIN`, :data:`DRAW`, :data:`LOSS`; :data:`ILLEGAL` for a full column) are the
game-theoretic results of a move for the player who makes it. A move is an *error* when another
legal move has a strictly better outcome (:func:`outcome_is_error`). Late positions solve in
milliseconds; those near the empty 7x6 board take seconds, the empty board itself minutes.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import numpy as np
from numba import njit

from .boards import popcount
from .core import Game, GameError, IllegalMoveError

__all__ = [
    "WIN",
    "DRAW",
    "LOSS",
    "ILLEGAL",
    "Solver",
    "get_solver",
    "has_four",
    "is_error",
    "move_outcomes",
    "outcome_is_error",
    "outcomes_from_state",
    "solve",
]

#: Game-theoretic outcome of a move for the player who makes it (``int8``).
WIN, DRAW, LOSS = 1, 0, -1
#: :func:`move_outcomes` entry for a column that cannot be played (full, or the game is over).
ILLEGAL = -2

# Geometry array int64[4], passed to every kernel.
G_WIDTH, G_HEIGHT, G_BOTTOM, G_BOARD = 0, 1, 2, 3
# Transposition table: uint64[2**bits], one word per entry, two entries per bucket, so a probe
# costs one cache miss. The key is scrambled by an odd multiplier (a bijection of 64-bit words):
# the top bits - 1 bits of the result pick the bucket and an entry keeps the other 65 - bits as
# its tag, so bucket and tag give back the key exactly. Above the tag: 7 bits of lower bound -
# NO_LOWER, 7 bits of NO_UPPER - upper bound (an all-zero entry says nothing, so a fresh table
# is all zeros) and 6 bits of depth (stones on the board). The bucket's first entry keeps the
# shallowest position stored there (the biggest search saved), the second the latest.
HASH_MULTIPLIER = 0x9E3779B97F4A7C15
NO_LOWER, NO_UPPER = -64, 63  # |score| <= 28 on any board that fits
BOUND_BITS = 7
MIN_TABLE_BITS, MAX_TABLE_BITS = 21, 32  # tag, bounds and depth: (65 - bits) + 7 + 7 + 6 <= 64
# Status codes of _play_sequence.
_OK, _BAD_COLUMN, _FULL_COLUMN, _GAME_OVER = 0, 1, 2, 3


# --------------------------------------------------------------------------- bitboard kernels
@njit(cache=True, inline="always")
def _column_mask(height, col):
    return ((np.int64(1) << height) - 1) << (col * (height + 1))


@njit(cache=True, inline="always")
def _winning_cells(position, mask, height, board):
    """Empty cells (not necessarily playable now) that would complete four for ``position``."""
    h1, h2 = height + 1, height + 2
    # vertical: three stones right below
    r = (position << 1) & (position << 2) & (position << 3)
    # horizontal, then the two diagonals: shift steps h1, height, h2
    p = (position << h1) & (position << 2 * h1)
    r |= p & (position << 3 * h1)
    r |= p & (position >> h1)
    p = (position >> h1) & (position >> 2 * h1)
    r |= p & (position << h1)
    r |= p & (position >> 3 * h1)
    p = (position << height) & (position << 2 * height)
    r |= p & (position << 3 * height)
    r |= p & (position >> height)
    p = (position >> height) & (position >> 2 * height)
    r |= p & (position << height)
    r |= p & (position >> 3 * height)
    p = (position << h2) & (position << 2 * h2)
    r |= p & (position << 3 * h2)
    r |= p & (position >> h2)
    p = (position >> h2) & (position >> 2 * h2)
    r |= p & (position << h2)
    r |= p & (position >> 3 * h2)
    return r & (board ^ mask)


@njit(cache=True, inline="always")
def has_four(position, height):
    """Whether ``position`` (one player's stones) holds four in a line."""
    for step in (1, height, height + 1, height + 2):
        m = position & (position >> step)
        if m & (m >> (2 * step)):
            return True
    return False


@njit(cache=True, inline="always")
def _possible(mask, bottom, board):
    """The playable cell of every column that is not full."""
    return (mask + bottom) & board


@njit(cache=True, inline="always")
def _can_win_next(current, mask, height, bottom, board):
    return (_winning_cells(current, mask, height, board) & _possible(mask, bottom, board)) != 0


@njit(cache=True, inline="always")
def _non_losing_moves(current, mask, height, bottom, board):
    """Playable cells after which the opponent cannot win at once (the mover cannot win now).

    If the opponent has two immediate wins, none; if one, blocking it is the only candidate.
    Never a cell right below an opponent's winning cell.
    """
    possible = _possible(mask, bottom, board)
    opponent_win = _winning_cells(current ^ mask, mask, height, board)
    forced = possible & opponent_win
    if forced:
        if forced & (forced - 1):
            return np.int64(0)
        possible = forced
    return possible & ~(opponent_win >> 1)


@njit(cache=True, inline="always")
def _probe(table, bits, key):
    """``(bucket, tag, low, high)``: where ``key`` lives, and the bounds the table holds on its
    score (NO_LOWER, NO_UPPER when it holds none)."""
    scrambled = np.uint64(key) * np.uint64(HASH_MULTIPLIER)
    shift = np.uint64(65 - bits)
    bucket = np.int64(scrambled >> shift) * 2
    tag = scrambled & ((np.uint64(1) << shift) - np.uint64(1))
    for slot in (bucket, bucket + 1):
        entry = table[slot]
        if entry & ((np.uint64(1) << shift) - np.uint64(1)) == tag:
            return bucket, tag, _low(entry, shift), _high(entry, shift)
    return bucket, tag, np.int64(NO_LOWER), np.int64(NO_UPPER)


@njit(cache=True, inline="always")
def _low(entry, shift):
    return np.int64((entry >> shift) & np.uint64((1 << BOUND_BITS) - 1)) + NO_LOWER


@njit(cache=True, inline="always")
def _high(entry, shift):
    bound = (entry >> (shift + np.uint64(BOUND_BITS))) & np.uint64((1 << BOUND_BITS) - 1)
    return NO_UPPER - np.int64(bound)


@njit(cache=True, inline="always")
def _depth(entry, shift):
    return np.int64(entry >> (shift + np.uint64(2 * BOUND_BITS)))


@njit(cache=True, inline="always")
def _store(table, bits, bucket, tag, low, high, depth):
    """Record ``low <= score <= high`` for the key of ``(bucket, tag)`` at ``depth`` stones,
    keeping what the table knew of the same key."""
    shift = np.uint64(65 - bits)
    tag_mask = (np.uint64(1) << shift) - np.uint64(1)
    first, second = table[bucket], table[bucket + 1]
    if first & tag_mask == tag:
        slot = bucket
        low, high = max(low, _low(first, shift)), min(high, _high(first, shift))
    elif second & tag_mask == tag:
        slot = bucket + 1
        low, high = max(low, _low(second, shift)), min(high, _high(second, shift))
    elif first == 0 or depth <= _depth(first, shift):
        slot = bucket
        table[bucket + 1] = first
    else:
        slot = bucket + 1
    table[slot] = (
        tag
        | (np.uint64(low - NO_LOWER) << shift)
        | (np.uint64(NO_UPPER - high) << (shift + np.uint64(BOUND_BITS)))
        | (np.uint64(depth) << (shift + np.uint64(2 * BOUND_BITS)))
    )


# --------------------------------------------------------------------------- search kernels
# One frame per depth of the search stack, a row of int64[W*H + 1, F_MOVES + W]: the position,
# its window, its table slot, and its moves (sorted, tried from the end) with the next to try.
F_CURRENT, F_MASK, F_ALPHA, F_BETA, F_TAG, F_SLOT, F_NEXT, F_MOVES = 0, 1, 2, 3, 4, 5, 6, 7


@njit(cache=True)
def _negamax(current, mask, moves, alpha, beta, geometry, order, table, bits, frames, scores, nodes):
    """Score of a position whose mover cannot win at once, searched within ``alpha < beta``.

    A returned ``v >= beta`` is a lower bound of the score, ``v <= alpha`` an upper bound, and
    anything between is exact (from the point of view of the mover of this position).
    ``geometry``: int64[4] (G_*). ``order``: int64[W] columns, centre first. ``table``:
    uint64[2**bits] transposition table. ``frames``: int64[W*H + 1, F_MOVES + W] search stack,
    one row per number of moves played. ``scores``: int64[W] scratch. ``nodes``: int64[1],
    counts the positions searched.
    """
    width, height = geometry[G_WIDTH], geometry[G_HEIGHT]
    bottom, board = geometry[G_BOTTOM], geometry[G_BOARD]
    cells = width * height
    root = moves
    count = nodes[0]
    value = np.int64(0)
    entering = True  # False: `value` is the score of the node at depth `moves`, to hand up
    while True:
        if entering:
            # ---- a new node (current, mask) at depth `moves`, window (alpha, beta)
            count += 1
            entering = False
            possible = _non_losing_moves(current, mask, height, bottom, board)
            if possible == 0:  # the opponent wins with their next stone
                value = -((cells - moves) // 2)
                continue
            if moves >= cells - 2:  # neither side can win with the last two stones
                value = np.int64(0)
                continue
            low = -((cells - 2 - moves) // 2)  # the opponent cannot win with their next stone
            high = (cells - 1 - moves) // 2  # the mover cannot win with this stone
            # current + mask is unique: 2**k - 1 + the mover's stones, in a column of k stones
            slot, tag, table_low, table_high = _probe(table, bits, current + mask)
            low, high = max(low, table_low), min(high, table_high)
            if alpha < low:
                alpha = low
                if alpha >= beta:
                    value = alpha
                    continue
            if beta > high:
                beta = high
                if alpha >= beta:
                    value = beta
                    continue
            # Moves sorted by how many winning cells they make; ties keep centre first.
            n = 0
            for i in range(width - 1, -1, -1):
                move = possible & _column_mask(height, order[i])
                if move:
                    score = popcount(_winning_cells(current | move, mask, height, board))
                    pos = n
                    while pos > 0 and scores[pos - 1] > score:
                        frames[moves, F_MOVES + pos] = frames[moves, F_MOVES + pos - 1]
                        scores[pos] = scores[pos - 1]
                        pos -= 1
                    frames[moves, F_MOVES + pos] = move
                    scores[pos] = score
                    n += 1
            frames[moves, F_CURRENT] = current
            frames[moves, F_MASK] = mask
            frames[moves, F_ALPHA] = alpha
            frames[moves, F_BETA] = beta
            frames[moves, F_TAG] = np.int64(tag)
            frames[moves, F_SLOT] = slot
            frames[moves, F_NEXT] = n - 2
            move = frames[moves, F_MOVES + n - 1]
        else:
            # ---- `value` is final for the node at depth `moves`: hand it to its parent
            if moves == root:
                nodes[0] = count
                return value
            moves -= 1
            score = -value
            alpha, beta = frames[moves, F_ALPHA], frames[moves, F_BETA]
            slot, tag = frames[moves, F_SLOT], np.uint64(frames[moves, F_TAG])
            if score >= beta:  # cut: the score is at least `score`
                _store(table, bits, slot, tag, score, np.int64(NO_UPPER), moves)
                value = score
                continue
            if score > alpha:
                alpha = score
                frames[moves, F_ALPHA] = alpha
            j = frames[moves, F_NEXT]
            if j < 0:  # every move fails low: the score is at most alpha
                _store(table, bits, slot, tag, np.int64(NO_LOWER), alpha, moves)
                value = alpha
                continue
            frames[moves, F_NEXT] = j - 1
            move = frames[moves, F_MOVES + j]
            current, mask = frames[moves, F_CURRENT], frames[moves, F_MASK]
        # ---- descend into `move`
        current, mask = current ^ mask, mask | move
        alpha, beta = -beta, -alpha
        moves += 1
        entering = True


@njit(cache=True)
def _solve(current, mask, moves, weak, geometry, order, table, bits, frames, scores, nodes):
    """Exact score of a position that is not over (``weak``: only its sign, as -1, 0 or +1)."""
    width, height = geometry[G_WIDTH], geometry[G_HEIGHT]
    bottom, board = geometry[G_BOTTOM], geometry[G_BOARD]
    cells = width * height
    if _can_win_next(current, mask, height, bottom, board):
        score = (cells + 1 - moves) // 2
        return np.int64(1) if weak else score
    if moves == cells:
        return np.int64(0)
    low, high = -((cells - moves) // 2), (cells + 1 - moves) // 2
    if weak:
        low, high = np.int64(-1), np.int64(1)
    while low < high:  # bisect with null windows, probing near 0 first (cheap, decisive)
        med = low + (high - low) // 2
        if med <= 0 and _half(low) < med:
            med = _half(low)
        elif med >= 0 and _half(high) > med:
            med = _half(high)
        r = _negamax(
            current, mask, moves, med, med + 1, geometry, order, table, bits, frames, scores, nodes
        )
        if r <= med:
            high = r if r > low else low
        else:
            low = r if r < high else high
    return low


@njit(cache=True, inline="always")
def _half(x):
    """x / 2 rounded toward zero (C division, as in Pons' solver)."""
    return x // 2 if x >= 0 else -((-x) // 2)


@njit(cache=True)
def _move_outcomes(current, mask, moves, out, geometry, order, table, bits, frames, scores, nodes):
    """Writes ``out`` (int8[W]): WIN/DRAW/LOSS of each column for the mover, ILLEGAL if full."""
    width, height = geometry[G_WIDTH], geometry[G_HEIGHT]
    bottom, board = geometry[G_BOTTOM], geometry[G_BOARD]
    possible = _possible(mask, bottom, board)
    winning = _winning_cells(current, mask, height, board)
    for col in range(width):
        move = possible & _column_mask(height, col)
        if move == 0:
            out[col] = ILLEGAL
        elif move & winning:
            out[col] = WIN
        else:
            r = _solve(
                current ^ mask, mask | move, moves + 1, True,
                geometry, order, table, bits, frames, scores, nodes,
            )
            out[col] = -r  # the child's score is the opponent's


@njit(cache=True)
def _play_sequence(columns, height, width):
    """Plays ``columns`` (int64[n]) from the empty board: (current, mask, status, index).

    ``status`` is _OK, or the reason ``columns[index]`` cannot be played.
    """
    current, mask = np.int64(0), np.int64(0)
    for i in range(columns.shape[0]):
        col = columns[i]
        if col < 0 or col >= width:
            return current, mask, _BAD_COLUMN, i
        if mask & (np.int64(1) << (col * (height + 1) + height - 1)):
            return current, mask, _FULL_COLUMN, i
        if has_four(current ^ mask, height):  # the previous move won
            return current, mask, _GAME_OVER, i
        current ^= mask
        mask |= mask + (np.int64(1) << (col * (height + 1)))
    return current, mask, _OK, columns.shape[0]


# --------------------------------------------------------------------------- Python API
class Solver:
    """A Connect Four solver for one board size, owning its transposition table.

    The table (``2**table_bits`` words: 64 MiB at the default 23 bits for 7x6, 16 MiB for
    boards of up to 21 cells) survives across calls, so solving the positions of one game in
    turn gets cheaper; results never depend on what it holds. :attr:`nodes` counts the
    positions searched by the last call. Not thread-safe: one Solver per thread.
    """

    def __init__(self, width: int = 7, height: int = 6, table_bits: int | None = None):
        width, height = int(width), int(height)
        if width < 4 or height < 4 or (height + 1) * width > 64:
            raise GameError(
                f"connect4 solver: no {width}x{height} board; width and height must be >= 4 and "
                f"(height + 1) * width at most 64 (a 64-bit bitboard)"
            )
        if table_bits is None:
            table_bits = min(23, max(MIN_TABLE_BITS, width * height))
        if not MIN_TABLE_BITS <= table_bits <= MAX_TABLE_BITS:
            raise GameError(
                f"connect4 solver: table_bits={table_bits} is out of range "
                f"{MIN_TABLE_BITS}..{MAX_TABLE_BITS}"
            )
        self.width, self.height, self.table_bits = width, height, int(table_bits)
        bottom = sum(1 << (c * (height + 1)) for c in range(width))
        self.geometry = np.array(  # int64[4], indexed by G_*
            [width, height, bottom, bottom * ((1 << height) - 1)], dtype=np.int64
        )
        self.order = np.array(  # int64[W]: columns, centre first
            [width // 2 + (1 - 2 * (i % 2)) * ((i + 1) // 2) for i in range(width)], dtype=np.int64
        )
        self.table = np.zeros(1 << self.table_bits, dtype=np.uint64)  # uint64[T], see _probe
        self.frames = np.zeros((width * height + 1, F_MOVES + width), dtype=np.int64)  # [W*H+1, F]
        self.scores = np.zeros(width, dtype=np.int64)  # int64[W], move-ordering scratch
        self._nodes = np.zeros(1, dtype=np.int64)  # int64[1]

    @property
    def nodes(self) -> int:
        """Positions searched by the last call."""
        return int(self._nodes[0])

    def clear(self) -> None:
        """Forget the transposition table (only speed changes)."""
        self.table.fill(0)

    # ----------------------------------------------------------------- by moves played
    def position(self, moves: Sequence[int]) -> tuple[int, int, int]:
        """``(current, mask, num_moves)`` after ``moves`` (0-based columns from the empty board).

        Raises :class:`IllegalMoveError` naming the first move that cannot be played.
        """
        columns = np.asarray(moves, dtype=np.int64).reshape(-1)
        current, mask, status, index = _play_sequence(columns, self.height, self.width)
        if status != _OK:
            col = int(columns[index])
            reason = {
                _BAD_COLUMN: f"column {col} is off the board (0..{self.width - 1})",
                _FULL_COLUMN: f"column {col} is full",
                _GAME_OVER: "the game was already won",
            }[status]
            raise IllegalMoveError(f"connect4 solver: move {index + 1} ({col}) is illegal: {reason}")
        return int(current), int(mask), len(columns)

    def solve(self, moves: Sequence[int]) -> int:
        """Exact score (see the module docstring) after ``moves``, for the player to move."""
        return self.solve_at(*self.position(moves))

    def outcome(self, moves: Sequence[int]) -> int:
        """WIN, DRAW or LOSS after ``moves`` for the player to move: the sign of :meth:`solve`,
        found with at most two null-window searches."""
        return self.outcome_at(*self.position(moves))

    def move_outcomes(self, moves: Sequence[int]) -> np.ndarray:
        """``int8[W]``: WIN, DRAW or LOSS of each column for the player to move, ILLEGAL if full."""
        return self.move_outcomes_at(*self.position(moves))

    def is_error(self, moves: Sequence[int], action: int) -> bool:
        """Whether ``action`` after ``moves`` is an error: a legal move does strictly better."""
        return outcome_is_error(self.move_outcomes(moves), action)

    # ----------------------------------------------------------------- by bitboards
    def solve_at(self, current: int, mask: int, num_moves: int) -> int:
        """:meth:`solve` of a position given as bitboards."""
        self._check_open(current, mask)
        args = (np.int64(current), np.int64(mask), int(num_moves), False)
        return int(_solve(*args, *self._kernel_args()))

    def outcome_at(self, current: int, mask: int, num_moves: int) -> int:
        """:meth:`outcome` of a position given as bitboards."""
        self._check_open(current, mask)
        args = (np.int64(current), np.int64(mask), int(num_moves), True)
        return int(_solve(*args, *self._kernel_args()))

    def move_outcomes_at(self, current: int, mask: int, num_moves: int) -> np.ndarray:
        """:meth:`move_outcomes` of a position given as bitboards."""
        self._check_open(current, mask)
        out = np.empty(self.width, dtype=np.int8)
        _move_outcomes(np.int64(current), np.int64(mask), int(num_moves), out, *self._kernel_args())
        return out

    def _check_open(self, current: int, mask: int) -> None:
        if has_four(np.int64(current ^ mask), self.height):
            raise GameError("connect4 solver: the game is already won; there is nothing to solve")
        self._nodes[0] = 0

    def _kernel_args(self) -> tuple:
        return (
            self.geometry, self.order, self.table, np.int64(self.table_bits),
            self.frames, self.scores, self._nodes,
        )

    def _legal_columns(self, mask: int) -> np.ndarray:
        """``int64[L]``: the columns that are not full, ascending."""
        top = self.height - 1
        return np.array(
            [c for c in range(self.width) if not (mask >> (c * (self.height + 1) + top)) & 1],
            dtype=np.int64,
        )

    def _can_win_now(self, current: int, mask: int) -> bool:
        g = self.geometry
        current, mask = np.int64(current), np.int64(mask)
        return bool(_can_win_next(current, mask, g[G_HEIGHT], g[G_BOTTOM], g[G_BOARD]))

    def _sensible_columns(self, current: int, mask: int) -> np.ndarray:
        """``int64[L]``: the winning columns if any; else those after which the opponent cannot
        win at once; else (every move loses at once) the legal columns. No search."""
        g = self.geometry
        current, mask = np.int64(current), np.int64(mask)
        height, bottom, board = g[G_HEIGHT], g[G_BOTTOM], g[G_BOARD]
        cells = _possible(mask, bottom, board)
        good = cells & _winning_cells(current, mask, height, board)
        if not good:
            good = _non_losing_moves(current, mask, height, bottom, board)
        if good:
            cells = good
        columns = [c for c in range(self.width) if cells & _column_mask(height, c)]
        return np.array(columns, dtype=np.int64)


def outcome_is_error(outcomes: np.ndarray, action: int) -> bool:
    """Whether ``action`` is an error in a position whose :func:`move_outcomes` are ``outcomes``."""
    action = int(action)
    if not 0 <= action < len(outcomes) or outcomes[action] == ILLEGAL:
        legal = ", ".join(str(c) for c in np.flatnonzero(outcomes != ILLEGAL)) or "none"
        raise IllegalMoveError(f"connect4 solver: action {action} is not legal here; legal: {legal}")
    return bool(outcomes[action] < outcomes.max())


def get_solver(width: int = 7, height: int = 6) -> Solver:
    """The shared :class:`Solver` of a board size: its table is allocated once, then reused."""
    return _shared_solver(int(width), int(height))


@lru_cache(maxsize=4)
def _shared_solver(width: int, height: int) -> Solver:
    return Solver(width, height)


def solve(moves: Sequence[int], width: int = 7, height: int = 6) -> int:
    """Exact score after ``moves`` (0-based columns) for the player to move (module docstring)."""
    return get_solver(width, height).solve(moves)


def move_outcomes(moves: Sequence[int], width: int = 7, height: int = 6) -> np.ndarray:
    """``int8[W]``: WIN (+1), DRAW (0) or LOSS (-1) of each column after ``moves``, for the
    player to move; ILLEGAL (-2) for a full column."""
    return get_solver(width, height).move_outcomes(moves)


def is_error(moves: Sequence[int], action: int, width: int = 7, height: int = 6) -> bool:
    """Whether ``action`` after ``moves`` is an error: another legal move has a better outcome."""
    return get_solver(width, height).is_error(moves, action)


def outcomes_from_state(game: Game, state: np.ndarray) -> np.ndarray:
    """:func:`move_outcomes` of a ``games.connect4`` state (``int64[3]``: player_0's stones,
    all stones, ply: the solver's own bitboard layout), for the player to move.

    At a terminal state: all ILLEGAL after a draw; a won game raises :class:`GameError`.
    """
    if game.name != "connect4":
        raise GameError(f"connect4 solver: cannot solve {game.name}, only connect4")
    width, height = int(game.options["width"]), int(game.options["height"])
    p0_stones, mask, ply = int(state[0]), int(state[1]), int(state[2])
    current = p0_stones if ply % 2 == 0 else p0_stones ^ mask
    return get_solver(width, height).move_outcomes_at(current, mask, ply)
