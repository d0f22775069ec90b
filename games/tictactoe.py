"""Tic-tac-toe: the reference implementation of the game interface (see ``games.core``).

State ``int64[3]``: ``[x_bits, o_bits, ply]``; bit ``r * 3 + c`` is cell (row r, column c),
row 0 on top. X (player 0) moves on even plies. Actions 0..8 are cells; notation ``b2``.
Encoding ``float32[2, 3, 3]``: plane 0 the mover's marks, plane 1 the opponent's.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .boards import permute_bits, point_to_text, render_grid, text_to_point
from .core import Game, dihedral_perms, rules_from

VERSION = 1
X_BITS, O_BITS, PLY = 0, 1, 2
FULL = 0x1FF
LINES = np.array([0x7, 0x38, 0x1C0, 0x49, 0x92, 0x124, 0x111, 0x54], dtype=np.int64)
SYMMETRIES = dihedral_perms(3, 3)  # int64[8, 9]


@njit(cache=True)
def initial_state(params):
    return np.zeros(3, dtype=np.int64)


@njit(cache=True)
def _has_line(bits):
    for line in LINES:
        if bits & line == line:
            return True
    return False


@njit(cache=True)
def is_terminal(params, state):
    return (
        _has_line(state[X_BITS]) or _has_line(state[O_BITS]) or (state[X_BITS] | state[O_BITS]) == FULL
    )


@njit(cache=True)
def legal_mask(params, state, mask):
    terminal = is_terminal(params, state)
    taken = state[X_BITS] | state[O_BITS]
    for a in range(9):
        mask[a] = not terminal and (taken >> a) & 1 == 0


@njit(cache=True)
def apply_action(params, state, action):
    state[state[PLY] & 1] |= np.int64(1) << action
    state[PLY] += 1


@njit(cache=True)
def outcome(params, state, player):
    if _has_line(state[player]):
        return 1.0
    if _has_line(state[1 - player]):
        return -1.0
    return 0.0


@njit(cache=True)
def to_play(params, state):
    return state[PLY] & 1


@njit(cache=True)
def encode_agent(params, state, agent, out):
    me, them = state[agent], state[1 - agent]
    for cell in range(9):
        r, c = cell // 3, cell % 3
        out[0, r, c] = (me >> cell) & 1
        out[1, r, c] = (them >> cell) & 1


@njit(cache=True)
def encode(params, state, out):
    encode_agent(params, state, state[PLY] & 1, out)


@njit(cache=True)
def transform_state(params, state, k):
    out = state.copy()
    out[X_BITS] = permute_bits(state[X_BITS], SYMMETRIES[k])
    out[O_BITS] = permute_bits(state[O_BITS], SYMMETRIES[k])
    return out


def render_text(params, state) -> str:
    cells = []
    for cell in range(9):
        cells.append("X" if (state[X_BITS] >> cell) & 1 else "O" if (state[O_BITS] >> cell) & 1 else ".")
    return render_grid(cells, 3, 3)


def cells(params, state) -> np.ndarray:
    bits = np.arange(9)
    board = ((state[X_BITS] >> bits) & 1) + 2 * ((state[O_BITS] >> bits) & 1)
    return board.astype(np.int8).reshape(3, 3)


def make() -> Game:
    return Game(
        name="tictactoe",
        version=VERSION,
        options={},
        num_players=2,
        num_actions=9,
        obs_shape=(2, 3, 3),
        state_size=3,
        max_length=9,
        params=np.zeros(1, dtype=np.int64),
        obs_perms=SYMMETRIES,
        action_perms=SYMMETRIES,
        **rules_from(globals()),
        render_text_fn=render_text,
        action_to_text_fn=lambda params, a: point_to_text(3, a),
        text_to_action_fn=lambda params, text: text_to_point(3, 3, text),
        description="Tic-tac-toe on 3x3; X (player_0) moves first.",
        cells_fn=cells,
        board_style="marks",
    )
