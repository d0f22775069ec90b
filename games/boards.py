"""Helpers shared by the grid games: bit tricks, board-point notation and text boards.

Cells are row-major, ``cell = row * width + col``, row 0 at the top. Point notation is a column
letter and a 1-based row counted from the top, as in Othello: ``a1`` is the top-left cell.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .core import GameError

__all__ = ["popcount", "permute_bits", "point_to_text", "text_to_point", "render_grid"]

_COLUMNS = "abcdefghijklmnopqrstuvwxyz"


@njit(cache=True, inline="always")
def popcount(x: np.int64) -> np.int64:
    """Number of set bits in a 64-bit integer (SWAR; numba has no popcount intrinsic)."""
    x = np.uint64(x)
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return np.int64((x * np.uint64(0x0101010101010101)) >> np.uint64(56))


@njit(cache=True)
def permute_bits(bits: np.int64, perm: np.ndarray) -> np.int64:
    """Bitboard with bit ``j`` set iff bit ``perm[j]`` of ``bits`` is set (``perm``: int64[n])."""
    out = np.int64(0)
    for j in range(perm.shape[0]):
        if (bits >> perm[j]) & 1:
            out |= np.int64(1) << j
    return out


def point_to_text(width: int, cell: int) -> str:
    row, col = divmod(int(cell), width)
    return f"{_COLUMNS[col]}{row + 1}"


def text_to_point(width: int, height: int, text: str) -> int:
    """``"c3"`` -> cell index; raises :class:`GameError` naming the problem."""
    t = text.strip().lower()
    if len(t) < 2 or t[0] not in _COLUMNS[:width] or not t[1:].isdigit():
        raise GameError(
            f"cannot read move {text!r}: expected a point like a1..{_COLUMNS[width - 1]}{height}"
        )
    col, row = _COLUMNS.index(t[0]), int(t[1:]) - 1
    if not 0 <= row < height:
        raise GameError(f"move {text!r} is off the board (rows 1..{height})")
    return row * width + col


def render_grid(cells: list[str], width: int, height: int, header: str = "") -> str:
    """A text board with column letters and row numbers; ``cells``: one char per cell."""
    lines = [header] if header else []
    lines.append("   " + " ".join(_COLUMNS[:width]))
    for r in range(height):
        lines.append(f"{r + 1:>2} " + " ".join(cells[r * width : (r + 1) * width]))
    return "\n".join(lines)
