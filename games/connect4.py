"""Connect Four on a ``W x H`` board (default 7 x 6): drop discs, four in a row wins.

State ``int64[3]``: ``[p0_bits, occupied, ply]``, Pascal Pons bitboards. Bits are column-major
with one sentinel bit on top of each column: bit ``c * (H + 1) + r`` is column ``c``, row ``r``
counted from the BOTTOM. Row ``H`` of every column is always empty, so an alignment shift never
carries a line from the top of one column into the bottom of the next; a board therefore needs
``(H + 1) * W <= 64`` bits (7x6 uses 49). ``p0_bits`` holds player_0's discs, ``occupied`` every
disc, and player_1's discs are ``occupied ^ p0_bits``. player_0 moves on even plies. The state holds
the position and nothing else (no move history): equal positions are equal arrays.

Actions ``0..W-1`` drop a disc into that column; notation is the 1-based column, ``"4"``.

Encoding ``float32[2, H, W]`` from the viewer's point of view: plane 0 the viewer's discs, plane 1
the opponent's; row 0 is the TOP row of the board as displayed, column 0 the leftmost.

Symmetries (``K = 2``): the identity and the left-right mirror.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .core import Game, GameError, dihedral_perms, integer_option, rules_from, short_repr

__all__ = ["make"]

VERSION = 1
P0_BITS, OCCUPIED, PLY = 0, 1, 2
WIDTH, HEIGHT = 0, 1  # indices into params (int64[2])
MAX_BITS = 64
_GLYPHS = ".XO"  # empty, player_0, player_1


@njit(cache=True)
def initial_state(params):
    return np.zeros(3, dtype=np.int64)


@njit(cache=True, inline="always")
def _has_four(bits, h1):
    """Four in a row among ``bits`` (one player's discs); ``h1 = H + 1`` is the column stride.

    Shift 1 is vertical, ``h1`` horizontal, ``h1 - 1`` and ``h1 + 1`` the two diagonals.
    """
    for shift in (1, h1 - 1, h1, h1 + 1):
        pairs = bits & (bits >> shift)
        if pairs & (pairs >> (2 * shift)):
            return True
    return False


@njit(cache=True, inline="always")
def _last_mover_bits(state):
    """Discs of the player who made the last move (none at ply 0). Only that player can have
    four in a row: the game stops at the first four."""
    if state[PLY] & 1:
        return state[P0_BITS]
    return state[P0_BITS] ^ state[OCCUPIED]


@njit(cache=True)
def is_terminal(params, state):
    return (
        _has_four(_last_mover_bits(state), params[HEIGHT] + 1)
        or state[PLY] == params[WIDTH] * params[HEIGHT]
    )


@njit(cache=True)
def legal_mask(params, state, mask):
    terminal = is_terminal(params, state)
    h1 = params[HEIGHT] + 1
    top = params[HEIGHT] - 1
    occupied = state[OCCUPIED]
    for col in range(params[WIDTH]):
        mask[col] = not terminal and (occupied >> (col * h1 + top)) & 1 == 0


@njit(cache=True)
def apply_action(params, state, action):
    occupied = state[OCCUPIED]
    # Adding the column's bottom bit carries into the lowest empty cell of that column.
    filled = occupied | (occupied + (np.int64(1) << (action * (params[HEIGHT] + 1))))
    if state[PLY] & 1 == 0:
        state[P0_BITS] |= filled ^ occupied
    state[OCCUPIED] = filled
    state[PLY] += 1


@njit(cache=True)
def outcome(params, state, player):
    if _has_four(_last_mover_bits(state), params[HEIGHT] + 1):
        return 1.0 if player == (state[PLY] - 1) & 1 else -1.0
    return 0.0


@njit(cache=True)
def to_play(params, state):
    return state[PLY] & 1


@njit(cache=True)
def encode_agent(params, state, agent, out):
    width, height = params[WIDTH], params[HEIGHT]
    h1 = height + 1
    mine = state[P0_BITS] if agent == 0 else state[P0_BITS] ^ state[OCCUPIED]
    theirs = mine ^ state[OCCUPIED]
    for r in range(height):
        for c in range(width):
            bit = c * h1 + height - 1 - r  # display row r is board row H-1-r from the bottom
            out[0, r, c] = (mine >> bit) & 1
            out[1, r, c] = (theirs >> bit) & 1


@njit(cache=True)
def encode(params, state, out):
    encode_agent(params, state, state[PLY] & 1, out)


@njit(cache=True, inline="always")
def _mirror(bits, width, h1):
    """Bitboard with column ``c`` moved to column ``width - 1 - c``."""
    column = (np.int64(1) << h1) - 1
    out = np.int64(0)
    for c in range(width):
        out |= ((bits >> (c * h1)) & column) << ((width - 1 - c) * h1)
    return out


@njit(cache=True)
def transform_state(params, state, k):
    out = state.copy()
    if k == 1:
        width, h1 = params[WIDTH], params[HEIGHT] + 1
        out[P0_BITS] = _mirror(state[P0_BITS], width, h1)
        out[OCCUPIED] = _mirror(state[OCCUPIED], width, h1)
    return out


# --------------------------------------------------------------------------- for people
def cells(params, state) -> np.ndarray:
    """``int8[H, W]``: 0 empty, 1 player_0's disc, 2 player_1's; row 0 is the top row."""
    width, height = int(params[WIDTH]), int(params[HEIGHT])
    h1 = height + 1
    rows = height - 1 - np.arange(height)[:, None]  # [H, 1], board row of each display row
    bits = np.arange(width)[None, :] * h1 + rows  # [H, W]
    p0 = (int(state[P0_BITS]) >> bits) & 1
    p1 = ((int(state[P0_BITS]) ^ int(state[OCCUPIED])) >> bits) & 1
    return (p0 + 2 * p1).astype(np.int8)


def render_text(params, state) -> str:
    board = cells(params, state)
    lines = [" ".join(_GLYPHS[v] for v in row) for row in board]
    lines.append(" ".join(str(c + 1) for c in range(board.shape[1])))
    return "\n".join(lines)


def action_to_text(params, action: int) -> str:
    return str(int(action) + 1)


def text_to_action(params, text: str) -> int:
    """``"4"`` -> action 3; raises :class:`GameError` naming the problem."""
    width = int(params[WIDTH])
    t = text.strip()
    if not (t.isascii() and t.isdigit()):
        raise GameError(f"cannot read move {text!r}: expected a column number 1..{width}")
    column = int(t)
    if not 1 <= column <= width:
        raise GameError(f"column {column} is off the board (columns 1..{width})")
    return column - 1


def make(width: int = 7, height: int = 6) -> Game:
    width, height = integer_option(width, "connect4 width"), integer_option(height, "connect4 height")
    if width < 4 or height < 4:
        raise GameError(
            f"connect4: a {short_repr(width, 20)}x{short_repr(height, 20)} board is too small; "
            "width and height must be >= 4"
        )
    if (height + 1) * width > MAX_BITS:
        raise GameError(
            f"connect4: a {short_repr(width, 20)}x{short_repr(height, 20)} board needs (height+1)*width = "
            f"{short_repr((height + 1) * width, 30)} bits; "
            f"the bitboard holds {MAX_BITS}"
        )
    return Game(
        name="connect4",
        version=VERSION,
        options={"width": width, "height": height},
        num_players=2,
        num_actions=width,
        obs_shape=(2, height, width),
        state_size=3,
        max_length=width * height,
        params=np.array([width, height], dtype=np.int64),
        obs_perms=dihedral_perms(height, width)[:2],  # identity, left-right mirror
        action_perms=np.stack([np.arange(width), np.arange(width)[::-1]]).astype(np.int64),
        **rules_from(globals()),
        render_text_fn=render_text,
        action_to_text_fn=action_to_text,
        text_to_action_fn=text_to_action,
        description=f"Connect Four on {width}x{height}; player_0 (X) drops first, four in a row wins.",
        cells_fn=cells,
        board_style="discs",
    )
