"""Hex on an n x n rhombus: Red (player 0) joins top and bottom, Blue (player 1) left and right.

A game plugin for selfplay, in one module (docs/plugins.md walks through it). There are no
draws: a full board always has exactly one winning chain.

State ``int64[3]``: ``[red_bits, blue_bits, ply]``; bit ``r * n + c`` is cell (row r, column c),
row 0 on top; red moves on even plies. Cell (r, c) touches (r, c +- 1), (r +- 1, c),
(r - 1, c + 1) and (r + 1, c - 1). Actions ``0 .. n*n - 1`` are cells; notation ``c3``.
Encoding ``float32[3, n, n]``: the mover's stones, the opponent's, and a plane of ones when the
mover is red (the two colours join different sides). Symmetry: the half turn, which keeps
every side where it was.

Params ``int64[8]``: ``[n, full board, column 0, column n-1, row 0, row n-1, 0, 0]`` as bit
masks, so the kernels shift bitboards without a loop over cells.
"""

from __future__ import annotations

import numpy as np
from numba import njit

import games
from games.boards import point_to_text, text_to_point

VERSION = 1
RED, BLUE, PLY = 0, 1, 2
N, FULL, LEFT, RIGHT, TOP, BOTTOM = 0, 1, 2, 3, 4, 5

DESCRIPTION = "Hex: join your two sides of the rhombus (a selfplay plugin example)."
OPTIONS = {"size": games.Option(5, "board side", tuple(range(3, 8)))}


@njit(cache=True)
def initial_state(params):
    return np.zeros(3, dtype=np.int64)


@njit(cache=True)
def _joins(params, stones, start, goal):
    """Whether ``stones`` hold a chain from the cells of ``start`` to those of ``goal``: grow the
    stones reached from ``start`` by one step to every neighbour until nothing changes."""
    n = params[N]
    reach = stones & start
    while reach:
        grown = reach | (reach << 1) & ~params[LEFT] | (reach >> 1) & ~params[RIGHT]
        grown |= (reach << n) | (reach >> n)
        grown |= (reach >> (n - 1)) & ~params[LEFT] | (reach << (n - 1)) & ~params[RIGHT]
        grown &= stones
        if grown == reach:
            break
        reach = grown
    return reach & goal != 0


@njit(cache=True)
def _winner(params, state):
    """0 (red) or 1 (blue) when that side is joined, else -1."""
    if _joins(params, state[RED], params[TOP], params[BOTTOM]):
        return 0
    if _joins(params, state[BLUE], params[LEFT], params[RIGHT]):
        return 1
    return -1


@njit(cache=True)
def is_terminal(params, state):
    return _winner(params, state) >= 0


@njit(cache=True)
def legal_mask(params, state, mask):
    over = is_terminal(params, state)
    taken = state[RED] | state[BLUE]
    for a in range(params[N] * params[N]):
        mask[a] = not over and (taken >> a) & 1 == 0


@njit(cache=True)
def apply_action(params, state, action):
    state[state[PLY] & 1] |= np.int64(1) << action
    state[PLY] += 1


@njit(cache=True)
def outcome(params, state, player):
    winner = _winner(params, state)
    if winner < 0:
        return 0.0
    return 1.0 if winner == player else -1.0


@njit(cache=True)
def to_play(params, state):
    return state[PLY] & 1


@njit(cache=True)
def encode_agent(params, state, agent, out):
    n = params[N]
    mine, theirs = state[agent], state[1 - agent]
    for cell in range(n * n):
        r, c = cell // n, cell % n
        out[0, r, c] = (mine >> cell) & 1
        out[1, r, c] = (theirs >> cell) & 1
        out[2, r, c] = 1.0 if agent == RED else 0.0


@njit(cache=True)
def encode(params, state, out):
    encode_agent(params, state, state[PLY] & 1, out)


@njit(cache=True)
def transform_state(params, state, k):
    out = state.copy()
    if k == 1:  # the half turn: cell i <-> cell n*n - 1 - i
        last = params[N] * params[N] - 1
        for colour in (RED, BLUE):
            bits = np.int64(0)
            for cell in range(last + 1):
                if (state[colour] >> cell) & 1:
                    bits |= np.int64(1) << (last - cell)
            out[colour] = bits
    return out


def render_text(params, state) -> str:
    """The rhombus, each row shifted right by one more space; X red, O blue."""
    n = int(params[N])
    lines = ["  " + " ".join("abcdefg"[:n]) + "   (X joins top-bottom, O left-right)"]
    for r in range(n):
        row = ("X" if (state[RED] >> (r * n + c)) & 1 else "O" if (state[BLUE] >> (r * n + c)) & 1 else "." for c in range(n))
        lines.append(f"{' ' * r}{r + 1:>2} " + " ".join(row))
    return "\n".join(lines)


def cells(params, state) -> np.ndarray:
    n = int(params[N])
    bits = np.arange(n * n)
    board = ((state[RED] >> bits) & 1) + 2 * ((state[BLUE] >> bits) & 1)
    return board.astype(np.int8).reshape(n, n)


def make(size: int = 5) -> games.Game:
    n = size
    cell = np.arange(n * n, dtype=np.int64)
    mask = lambda chosen: int(np.bitwise_or.reduce(np.int64(1) << cell[chosen]))  # noqa: E731
    params = np.array(
        [n, mask(cell >= 0), mask(cell % n == 0), mask(cell % n == n - 1), mask(cell < n), mask(cell >= n * (n - 1)), 0, 0],
        dtype=np.int64,
    )
    half_turn = np.stack([cell, cell[::-1]])
    return games.Game(
        name="hex",  # the entry point's name: checkpoints and actor processes find the game by it
        version=VERSION,
        options={"size": n},
        num_players=2,
        num_actions=n * n,
        obs_shape=(3, n, n),
        state_size=3,
        max_length=n * n,
        params=params,
        obs_perms=half_turn,
        action_perms=half_turn,
        **games.rules_from(globals()),
        render_text_fn=render_text,
        action_to_text_fn=lambda params, a: point_to_text(n, a),
        text_to_action_fn=lambda params, text: text_to_point(n, n, text),
        description=f"Hex on {n}x{n}; X (player_0, red) joins top and bottom and moves first.",
        cells_fn=cells,
        board_style="stones",
    )
