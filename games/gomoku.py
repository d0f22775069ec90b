"""Gomoku, freestyle, on an ``N x N`` board (default 15 x 15): five or more in a row wins.

Black (player_0) moves first; a full board without five in a row is a draw.

State ``int64[2 + 2 * Wd]``, with ``Wd = ceil(N * N / 64)`` words per player (4 for 15x15)::

    [ply, won, black bitboard words (Wd), white bitboard words (Wd)]

Cell ``r * N + c`` (row ``r`` from the top, column ``c`` from the left) is bit ``cell % 64`` of word
``cell // 64`` of a player's bitboard. ``won`` is 1 when the last move made five or more in a row
(``apply_action`` looks along the four lines through the stone it places), so ``is_terminal`` and
``outcome`` are O(1); the winner is the player who made the last move. ``won`` follows from the
stones (play stops at the first five), so the state is still the position and nothing else.

Actions ``0..N*N-1`` are cells; notation is the column letter and the 1-based row counted from the
top, ``"h8"`` (the centre of 15x15; see ``games.boards``).

Encoding ``float32[2, N, N]`` from the viewer's point of view: plane 0 the viewer's stones, plane 1
the opponent's; row 0 on top, as displayed.

Symmetries (``K = 8``): the dihedral group of the square, ``games.core.dihedral_perms(N, N)``, for
both cells and actions.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .boards import point_to_text, render_grid, text_to_point
from .core import Game, GameError, dihedral_perms, integer_option, rules_from, short_repr

__all__ = ["make"]

VERSION = 1
PLY, WON, STONES = 0, 1, 2  # state[STONES + p * Wd + w]: word w of player p's bitboard
SIZE, WORDS = 0, 1  # indices into params (int64[2]): board side N, words per player Wd
WIN_LENGTH = 5
MIN_SIZE, MAX_SIZE = WIN_LENGTH, 26  # five must fit; columns are lettered a..z
_GLYPHS = ".XO"  # empty, black (player_0), white (player_1)


@njit(cache=True)
def initial_state(params):
    return np.zeros(STONES + 2 * params[WORDS], dtype=np.int64)


@njit(cache=True, inline="always")
def _has_stone(state, base, cell):
    """Whether the bitboard starting at ``state[base]`` holds ``cell``."""
    return (state[base + (cell >> 6)] >> (cell & 63)) & 1 == 1


@njit(cache=True, inline="always")
def _run(state, base, n, r, c, dr, dc):
    """Stones of the bitboard at ``base`` in an unbroken line from (r, c), exclusive, along (dr, dc)."""
    count = 0
    r += dr
    c += dc
    while 0 <= r < n and 0 <= c < n and _has_stone(state, base, r * n + c):
        count += 1
        r += dr
        c += dc
    return count


@njit(cache=True)
def is_terminal(params, state):
    return state[WON] != 0 or state[PLY] == params[SIZE] * params[SIZE]


@njit(cache=True)
def legal_mask(params, state, mask):
    terminal = is_terminal(params, state)
    words, num_cells = params[WORDS], params[SIZE] * params[SIZE]
    for w in range(words):
        free = np.int64(0) if terminal else ~(state[STONES + w] | state[STONES + words + w])
        first = w * 64
        for b in range(min(64, num_cells - first)):  # independent bits: LLVM vectorizes this
            mask[first + b] = (free >> b) & 1 == 1


@njit(cache=True)
def apply_action(params, state, action):
    n = params[SIZE]
    base = STONES + (state[PLY] & 1) * params[WORDS]
    state[base + (action >> 6)] |= np.int64(1) << (action & 63)
    state[PLY] += 1
    r, c = action // n, action % n
    for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
        if 1 + _run(state, base, n, r, c, dr, dc) + _run(state, base, n, r, c, -dr, -dc) >= WIN_LENGTH:
            state[WON] = 1
            return


@njit(cache=True)
def outcome(params, state, player):
    if state[WON]:
        return 1.0 if player == (state[PLY] - 1) & 1 else -1.0
    return 0.0


@njit(cache=True)
def to_play(params, state):
    return state[PLY] & 1


@njit(cache=True)
def encode_agent(params, state, agent, out):
    n, words = params[SIZE], params[WORDS]
    mine, theirs = STONES + agent * words, STONES + (1 - agent) * words
    for cell in range(n * n):
        r, c = cell // n, cell % n
        w, b = cell >> 6, cell & 63
        out[0, r, c] = (state[mine + w] >> b) & 1
        out[1, r, c] = (state[theirs + w] >> b) & 1


@njit(cache=True)
def encode(params, state, out):
    encode_agent(params, state, state[PLY] & 1, out)


@njit(cache=True, inline="always")
def _dihedral_source(k, r, c, n):
    """The cell that symmetry ``k`` moves onto (r, c): ``dihedral_perms(n, n)[k, r * n + c]``."""
    if k >= 4:  # the transposed half of the group
        r, c = c, r
    if k & 1:  # then the left-right mirror
        c = n - 1 - c
    if k & 2:  # and the up-down mirror
        r = n - 1 - r
    return r * n + c


@njit(cache=True)
def transform_state(params, state, k):
    out = state.copy()
    if k == 0:
        return out
    n, words = params[SIZE], params[WORDS]
    out[STONES:] = 0
    for cell in range(n * n):
        source = _dihedral_source(k, cell // n, cell % n, n)
        for base in (STONES, STONES + words):
            if _has_stone(state, base, source):
                out[base + (cell >> 6)] |= np.int64(1) << (cell & 63)
    return out


# --------------------------------------------------------------------------- for people
def cells(params, state) -> np.ndarray:
    """``int8[N, N]``: 0 empty, 1 a black stone (player_0), 2 a white one; row 0 on top."""
    n, words = int(params[SIZE]), int(params[WORDS])

    def unpack(first: int) -> np.ndarray:  # bool[N*N] from one player's words
        raw = np.ascontiguousarray(state[first : first + words], dtype="<i8").view(np.uint8)
        return np.unpackbits(raw, bitorder="little")[: n * n]

    board = unpack(STONES) + 2 * unpack(STONES + words)
    return board.astype(np.int8).reshape(n, n)


def render_text(params, state) -> str:
    n = int(params[SIZE])
    return render_grid([_GLYPHS[v] for v in cells(params, state).ravel()], n, n)


def make(size: int = 15) -> Game:
    size = integer_option(size, "gomoku size")
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise GameError(f"gomoku: board size {short_repr(size)} is out of range {MIN_SIZE}..{MAX_SIZE}")
    words = -(-size * size // 64)
    perms = dihedral_perms(size, size)  # int64[8, N*N]
    return Game(
        name="gomoku",
        version=VERSION,
        options={"size": size},
        num_players=2,
        num_actions=size * size,
        obs_shape=(2, size, size),
        state_size=STONES + 2 * words,
        max_length=size * size,
        params=np.array([size, words], dtype=np.int64),
        obs_perms=perms,
        action_perms=perms,
        **rules_from(globals()),
        render_text_fn=render_text,
        action_to_text_fn=lambda params, a: point_to_text(int(params[SIZE]), a),
        text_to_action_fn=lambda params, text: text_to_point(int(params[SIZE]), int(params[SIZE]), text),
        description=(
            f"Gomoku (freestyle) on {size}x{size}; black (player_0, X) moves first, "
            "five or more in a row wins."
        ),
        cells_fn=cells,
        board_style="stones",
    )
