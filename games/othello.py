"""Othello (Reversi) on an even ``n x n`` board, ``n`` in 4..8 (the registry offers 6 and 8).

Board: cell ``r * n + c`` is row ``r`` (0 on top), column ``c``; notation ``d3`` is column letter
``d``, row 3 counted from the top, so ``a1`` is the top-left corner (as OpenSpiel and the World
Othello Federation write it). Start: the centre four, white on d4 and e5, black on d5 and e4
(on 8x8; the centre four likewise on other sizes). Black (player 0) moves first.

State ``int64[4]``: ``[black_bits, white_bits, to_play, moves_bits]``. Bit ``r * n + c`` of a
bitboard is cell ``(r, c)``; bitboards are read as unsigned 64-bit words (8x8 uses the sign bit).
``state[p]`` holds player ``p``'s discs. ``moves_bits`` is derived from the other three: the
cells where the player to move can play, kept so that ``legal_mask`` and ``is_terminal`` need no
move generation (each ply then costs one move generation, in ``apply_action``). Build states from
a board with :func:`from_bitboards`, which fills it in.

Actions ``int64``: ``0..n*n-1`` place a disc on that cell; ``n*n`` is PASS (notation ``pass``),
legal exactly when the mover has no placement and the game is not over. The game ends when
neither player can place a disc (board full, one colour wiped out, or both blocked); the
outcome is +1/-1/0 by disc count, for the player asked.

Encoding ``float32[3, n, n]`` from the viewer's point of view: plane 0 the viewer's discs, plane 1
the opponent's, plane 2 the cells where a viewer's disc would flip at least one opponent disc
(the viewer's legal placements when the viewer is to move).

Params ``int64[P]``: ``[n, board_mask, shift x4, flank_mask x4, symmetry tables (8 * n * n)]``.
Moves are generated with shifts along the four lines (1, n - 1, n, n + 1 bits, both ways); on
the three lines with a horizontal component only discs off the left and right edge columns can
be flanked, which stops shifts from wrapping a row end onto the next row.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .boards import permute_bits, point_to_text, popcount, render_grid, text_to_point
from .core import Game, GameError, dihedral_perms, integer_option, rules_from, short_repr

__all__ = ["VERSION", "make", "from_bitboards", "BLACK", "WHITE", "TO_PLAY", "MOVES"]

VERSION = 1

# state slots
BLACK, WHITE, TO_PLAY, MOVES = 0, 1, 2, 3
STATE_SIZE = 4
# params slots
SIZE, BOARD_MASK, SHIFTS, FLANK_MASKS, PERMS = 0, 1, 2, 6, 10

_U1 = np.uint64(1)


def _params(size: int) -> np.ndarray:
    """``int64[10 + 8 * size * size]``: the constants every kernel reads (layout: module doc)."""
    cells = size * size
    cols = np.arange(cells) % size
    board = (1 << cells) - 1
    inner = sum(1 << int(j) for j in np.flatnonzero((cols > 0) & (cols < size - 1)))
    shifts = [1, size - 1, size, size + 1]  # east, south-west, south, south-east (and back)
    flank = [inner, inner, board, inner]
    # as uint64 words viewed as int64: a mask of all 64 bits reads -1
    head = np.array([size, board, *shifts, *flank], dtype=np.uint64).view(np.int64)
    return np.concatenate([head, dihedral_perms(size, size).ravel()]).astype(np.int64)


@njit(cache=True)
def _moves(params, me, opp):
    """Bitboard (uint64) of the empty cells where a disc of ``me`` flanks a line of ``opp``.

    ``me``, ``opp``: int64 bitboards of the player to place and the other player.
    """
    n = params[SIZE]
    own = np.uint64(me)
    other = np.uint64(opp)
    empty = ~(own | other) & np.uint64(params[BOARD_MASK])
    moves = np.uint64(0)
    for d in range(4):
        s = np.uint64(params[SHIFTS + d])
        o = other & np.uint64(params[FLANK_MASKS + d])
        up = (own << s) & o
        down = (own >> s) & o
        for _ in range(n - 3):  # a flanked line holds at most n - 2 discs
            up |= (up << s) & o
            down |= (down >> s) & o
        moves |= ((up << s) | (down >> s)) & empty
    return moves


@njit(cache=True)
def _flips(params, me, opp, cell):
    """Bitboard (uint64) of the ``opp`` discs that a disc of ``me`` placed on ``cell`` flips."""
    own = np.uint64(me)
    other = np.uint64(opp)
    placed = _U1 << np.uint64(cell)
    flips = np.uint64(0)
    for d in range(4):
        s = np.uint64(params[SHIFTS + d])
        o = other & np.uint64(params[FLANK_MASKS + d])
        line = np.uint64(0)
        b = placed << s
        while b & o:
            line |= b
            b <<= s
        if b & own:
            flips |= line
        line = np.uint64(0)
        b = placed >> s
        while b & o:
            line |= b
            b >>= s
        if b & own:
            flips |= line
    return flips


@njit(cache=True)
def _refresh(params, state):
    """Recompute ``state[MOVES]`` from the board and the player to move."""
    p = state[TO_PLAY]
    state[MOVES] = np.int64(_moves(params, state[p], state[1 - p]))


@njit(cache=True)
def initial_state(params):
    n = params[SIZE]
    m = n // 2
    state = np.zeros(STATE_SIZE, dtype=np.int64)
    one = np.int64(1)
    state[WHITE] = (one << ((m - 1) * n + m - 1)) | (one << (m * n + m))
    state[BLACK] = (one << ((m - 1) * n + m)) | (one << (m * n + m - 1))
    _refresh(params, state)
    return state


@njit(cache=True)
def is_terminal(params, state):
    if state[MOVES] != 0:
        return False
    p = state[TO_PLAY]
    return _moves(params, state[1 - p], state[p]) == 0


@njit(cache=True)
def legal_mask(params, state, mask):
    cells = params[SIZE] * params[SIZE]
    moves = state[MOVES]
    for a in range(cells):
        mask[a] = (moves >> a) & 1 != 0
    mask[cells] = moves == 0 and not is_terminal(params, state)


@njit(cache=True)
def apply_action(params, state, action):
    p = state[TO_PLAY]
    if action != params[SIZE] * params[SIZE]:
        flips = _flips(params, state[p], state[1 - p], action)
        state[p] = np.int64(np.uint64(state[p]) | flips | (_U1 << np.uint64(action)))
        state[1 - p] = np.int64(np.uint64(state[1 - p]) ^ flips)
    state[TO_PLAY] = 1 - p
    state[MOVES] = np.int64(_moves(params, state[1 - p], state[p]))


@njit(cache=True)
def outcome(params, state, player):
    diff = popcount(state[player]) - popcount(state[1 - player])
    return 1.0 if diff > 0 else -1.0 if diff < 0 else 0.0


@njit(cache=True)
def to_play(params, state):
    return state[TO_PLAY]


@njit(cache=True)
def encode_agent(params, state, agent, out):
    n = params[SIZE]
    me, opp = state[agent], state[1 - agent]
    moves = state[MOVES] if agent == state[TO_PLAY] else np.int64(_moves(params, me, opp))
    for cell in range(n * n):
        r, c = cell // n, cell % n
        out[0, r, c] = (me >> cell) & 1
        out[1, r, c] = (opp >> cell) & 1
        out[2, r, c] = (moves >> cell) & 1


@njit(cache=True)
def encode(params, state, out):
    encode_agent(params, state, state[TO_PLAY], out)


@njit(cache=True)
def transform_state(params, state, k):
    cells = params[SIZE] * params[SIZE]
    perm = params[PERMS + k * cells : PERMS + (k + 1) * cells]
    out = state.copy()
    for slot in (BLACK, WHITE, MOVES):
        out[slot] = permute_bits(state[slot], perm)
    return out


# --------------------------------------------------------------------------- for people


def from_bitboards(params: np.ndarray, black: int, white: int, player: int) -> np.ndarray:
    """``int64[4]`` state with these discs and ``player`` (0 black, 1 white) to move.

    ``black``, ``white``: bitboards (int64 words as in a state, or non-negative ints), bit
    ``r * n + c`` for cell ``(r, c)``. Raises GameError for discs off the board or on both
    colours. Any other board is accepted, reachable or not; ``MOVES`` is computed.
    """
    n = int(params[SIZE])
    board = (1 << (n * n)) - 1
    black, white = int(black) % (1 << 64), int(white) % (1 << 64)  # int64 words read unsigned
    if black & ~board or white & ~board:
        raise GameError(f"othello: discs off the {n}x{n} board (bits {n * n} and up)")
    if black & white:
        raise GameError(f"othello: a cell holds both colours (bits {black & white:#x})")
    if player not in (0, 1):
        raise GameError(f"othello: player to move must be 0 (black) or 1 (white), got {player!r}")
    words = np.array([black, white], dtype=np.uint64).view(np.int64)
    state = np.array([words[0], words[1], player, 0], dtype=np.int64)
    _refresh(params, state)
    return state


def _disc_bits(params, state) -> np.ndarray:
    """``int64[2, n*n]``: 0/1 discs of black and white per cell."""
    n = int(params[SIZE])
    bits = np.arange(n * n, dtype=np.uint64)
    words = state[:2].view(np.uint64)[:, None]
    return ((words >> bits) & np.uint64(1)).astype(np.int64)


def cells(params, state) -> np.ndarray:
    n = int(params[SIZE])
    black, white = _disc_bits(params, state)
    return (black + 2 * white).astype(np.int8).reshape(n, n)


def render_text(params, state) -> str:
    """Board with ``X`` black, ``O`` white, ``*`` the mover's legal cells; counts on top."""
    n = int(params[SIZE])
    black, white = _disc_bits(params, state)
    moves = int(state[MOVES]) % (1 << 64)
    marks = []
    for cell in range(n * n):
        marks.append("X" if black[cell] else "O" if white[cell] else "*" if moves >> cell & 1 else ".")
    counts = f"black (X) {black.sum()}, white (O) {white.sum()}"
    if is_terminal(params, state):
        header = f"game over: {counts}"
    else:
        mover = "black (X)" if state[TO_PLAY] == 0 else "white (O)"
        header = f"{mover} to {'pass' if moves == 0 else 'move'}; {counts}"
    return render_grid(marks, n, n, header)


def action_to_text(params, action: int) -> str:
    n = int(params[SIZE])
    return "pass" if action == n * n else point_to_text(n, action)


def text_to_action(params, text: str) -> int:
    n = int(params[SIZE])
    return n * n if text.strip().lower() == "pass" else text_to_point(n, n, text)


def make(size: int = 8) -> Game:
    size = integer_option(size, "othello size")
    if size not in (4, 6, 8):
        raise GameError(f"othello: board size must be 4, 6 or 8 (even, fitting 64 bits), got {short_repr(size)}")
    cells_count = size * size
    params = _params(size)
    symmetries = dihedral_perms(size, size)  # int64[8, n*n]
    pass_column = np.full((symmetries.shape[0], 1), cells_count, dtype=np.int64)
    return Game(
        name="othello",
        version=VERSION,
        options={"size": size},
        num_players=2,
        num_actions=cells_count + 1,
        obs_shape=(3, size, size),
        state_size=STATE_SIZE,
        # every placement fills a cell, and a pass never follows a pass
        max_length=2 * (cells_count - 4),
        params=params,
        obs_perms=symmetries,
        action_perms=np.concatenate([symmetries, pass_column], axis=1),
        **rules_from(globals()),
        render_text_fn=render_text,
        action_to_text_fn=action_to_text,
        text_to_action_fn=text_to_action,
        description=(
            f"Othello on {size}x{size}; black (player_0) moves first; a player with no move passes; "
            "the game ends when neither can move, and the most discs wins."
        ),
        cells_fn=cells,
        board_style="stones",
    )
