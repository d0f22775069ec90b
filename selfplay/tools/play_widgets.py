"""What the play window draws beside the board's own picture (``games.render``): the analysis
overlay on the board, a refused click, the win-probability bar and the side panel's text.

Each function paints onto a pygame surface from plain data: a :class:`games.render.BoardGeometry`
for the board, an analysis response of :class:`selfplay.evaluation.analysis.AnalysisEngine` (values
from the point of view of its ``to_play``), strings for text. None of them keeps state.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Sequence

from games.core import Game
from games.render import BoardGeometry, player_colours, player_name

__all__ = [
    "PanelLine",
    "draw_analysis",
    "draw_lines",
    "draw_refusal",
    "draw_top_moves",
    "draw_win_bar",
    "font",
    "player_zero_win",
    "top_moves",
]

TEXT, DIM, ERROR, GOOD = (236, 236, 236), (150, 150, 150), (255, 96, 96), (120, 220, 140)
BEST, OTHER = (40, 200, 235), (170, 230, 150)  # overlay discs: the best move, the others
WIN, LOSS, DRAW = (40, 200, 90), (230, 50, 50), (200, 200, 200)  # rings of proven moves
OVERLAY_MOVES = 5  # top moves shown on the board and in the panel


@functools.lru_cache(maxsize=None)
def font(pixels: int, bold: bool = False):
    """pygame's bundled font at ``pixels`` height."""
    import pygame

    pygame.font.init()
    face = pygame.font.Font(None, pixels)
    face.set_bold(bold)
    return face


# ------------------------------------------------------------------------------ the analysis


def top_moves(response: dict[str, Any], count: int = OVERLAY_MOVES) -> list[dict[str, Any]]:
    """The response's ``moves`` (best first) worth showing: the first ``count`` that the search
    visited, and every move it proved; each with ``share`` added, its fraction of the visits."""
    total = max(int(response.get("visits") or 0), 1)
    visited = [m for m in response.get("moves", []) if m["visits"] > 0 or m["proven"]]
    return [{**m, "share": m["visits"] / total} for i, m in enumerate(visited) if i < count or m["proven"]]


def proven_word(move: dict[str, Any]) -> str | None:
    """``"win"``, ``"loss"`` or ``"draw"`` for a move the solver proved (for the side to move)."""
    if not move["proven"]:
        return None
    return "win" if move["q"] > 0 else "loss" if move["q"] < 0 else "draw"


def player_zero_win(response: dict[str, Any]) -> float | None:
    """Player 0's win probability, ``(1 + v) / 2`` with ``v`` the value for player 0 (a draw or
    an even game is 0.5); the final score at the end of a game; ``None`` without a value."""
    if response.get("terminal"):
        return (1 + response["returns"][0]) / 2
    if response.get("value") is None:
        return None
    value = response["value"] if response["to_play"] == 0 else -response["value"]
    return (1 + value) / 2


def draw_top_moves(surface, geometry: BoardGeometry, game: Game, cells, response: dict[str, Any]) -> None:
    """The overlay: on the cell of each top move (``cells``: ``int64[A, 2]``, the position's
    ``action_cells``), its share of the visits and its value for the side to move, or
    ``win``/``loss``/``draw`` in a green, red or grey ring once the solver proved it; cyan for the
    move the search plays. On a board of pieces the label is a disc on the empty cell; in a game
    that draws itself (units stand on the cells a move acts on) a badge along the cell's top."""
    size = geometry.cell
    for rank, move in enumerate(top_moves(response)):
        row, col = cells[move["move"]]
        if row < 0:
            continue  # a pass or a wait: the panel lists it
        word = proven_word(move)
        value = word if word is not None else ("" if move["q"] is None else f"{move['q']:+.2f}")
        colour = BEST if rank == 0 else OTHER
        ring = None if word is None else {"win": WIN, "loss": LOSS, "draw": DRAW}[word]
        box = geometry.cell_box(int(row), int(col))
        if game.draw_fn is None:
            _disc_label(surface, box, colour, ring, f"{100 * move['share']:.0f}%", value)
        else:
            _badge_label(surface, box, colour, ring, f"{100 * move['share']:.0f}% {value}")


def _disc_label(surface, box, colour, ring, top: str, bottom: str) -> None:
    """A see-through disc filling the cell ``box``, ``top`` over ``bottom``, in ``ring`` if any."""
    import pygame

    size = box[2]
    centre = (box[0] + size // 2, box[1] + size // 2)
    disc = pygame.Surface((size, size), pygame.SRCALPHA)
    pygame.draw.circle(disc, (*colour, 215), (size // 2, size // 2), size * 0.4)
    surface.blit(disc, box[:2])
    if ring is not None:
        pygame.draw.circle(surface, ring, centre, size * 0.42, max(size // 14, 2))
    upper = font(max(size * 3 // 10, 11), bold=True).render(top, True, (10, 10, 10))
    lower = font(max(size * 9 // 40, 10)).render(bottom, True, (10, 10, 10))
    surface.blit(upper, upper.get_rect(midbottom=(centre[0], centre[1] + 1)))
    surface.blit(lower, lower.get_rect(midtop=(centre[0], centre[1] + 1)))


def _badge_label(surface, box, colour, ring, text: str) -> None:
    """``text`` on a strip along the top of the cell ``box``, framed in ``ring`` if any."""
    import pygame

    x, y, size, _ = box
    strip = pygame.Rect(x + 2, y + 2, size - 4, max(size // 4, 12))
    pygame.draw.rect(surface, colour, strip, border_radius=3)
    label = font(max(size // 5, 10), bold=True).render(text, True, (10, 10, 10))
    surface.blit(label, label.get_rect(center=strip.center))
    if ring is not None:
        pygame.draw.rect(surface, ring, pygame.Rect(box).inflate(-2, -2), max(size // 14, 2))


def draw_refusal(surface, geometry: BoardGeometry, cell: tuple[int, int]) -> None:
    """A red cross and frame over ``cell``: a click there was refused."""
    import pygame

    box = pygame.Rect(geometry.cell_box(*cell)).inflate(-4, -4)
    width = max(geometry.cell // 14, 2)
    pygame.draw.rect(surface, LOSS, box, width)
    inner = box.inflate(-box.width // 3, -box.height // 3)
    pygame.draw.line(surface, LOSS, inner.topleft, inner.bottomright, width)
    pygame.draw.line(surface, LOSS, inner.topright, inner.bottomleft, width)


def draw_win_bar(surface, rect, game: Game, win: float, label: str) -> None:
    """A bar across ``rect`` split at player 0's win probability ``win`` (player 0's colour on
    the left, player 1's on the right) with ``label`` under it."""
    import pygame

    left, right = player_colours(game)
    bar = pygame.Rect(rect.x, rect.y, rect.width, 14)
    split = round(bar.width * min(max(win, 0.0), 1.0))
    surface.fill(right, bar)
    surface.fill(left, pygame.Rect(bar.x, bar.y, split, bar.height))
    pygame.draw.rect(surface, DIM, bar, 1)
    pygame.draw.line(surface, TEXT, (bar.centerx, bar.top - 2), (bar.centerx, bar.bottom + 1))  # even
    text = font(18).render(label, True, TEXT)
    surface.blit(text, (rect.x, bar.bottom + 3))


# ------------------------------------------------------------------------------ text


@dataclass(frozen=True)
class PanelLine:
    """One line of the side panel: ``text`` in ``colour`` at ``size`` pixels (``bold``), or a
    gap of ``size`` pixels when ``text`` is empty."""

    text: str = ""
    colour: tuple[int, int, int] = TEXT
    size: int = 20
    bold: bool = False


def draw_lines(surface, rect, lines: Sequence[PanelLine]) -> int:
    """``lines`` top to bottom in ``rect``, each cut to fit its width (with ``...``); returns the
    y just below the last line drawn. Lines that would leave ``rect`` are not drawn."""
    y = rect.y
    for line in lines:
        if not line.text:
            y += line.size
            continue
        face = font(line.size, line.bold)
        text = line.text
        while face.size(text)[0] > rect.width and len(text) > 4:
            text = text[:-4] + "..."
        if y + face.get_linesize() > rect.bottom:
            break
        surface.blit(face.render(text, True, line.colour), (rect.x, y))
        y += face.get_linesize()
    return y


def draw_analysis(surface, rect, game: Game, analysis: dict[str, Any] | None, visits: int,
                  agent: tuple[int, str] | None) -> int:
    """The overlay's part of the side panel: the search size, the win bar and the top moves;
    returns the y below. ``visits``: what the analysis asked for (shown while it runs);
    ``agent``: (its player, its name) for the bar's label, None when the person moves for both
    sides."""
    import pygame

    if analysis is None:
        line = PanelLine(f"analysis: {visits} visits...", (250, 210, 90), 20)
        return draw_lines(surface, rect, [line, PanelLine(size=8)])
    head = f"analysis: {analysis['visits']} visits" + (", solved" if analysis["solved"] else "")
    y = draw_lines(surface, rect, [PanelLine(head, TEXT, 20, True)])
    win = player_zero_win(analysis)
    if win is not None:
        if agent is None:
            label = f"{player_name(game, 0)} {100 * win:.0f}% : {100 * (1 - win):.0f}% {player_name(game, 1)}"
        else:
            seat, name = agent
            mine = win if seat == 0 else 1 - win
            label = f"{name} ({player_name(game, seat)}) wins {100 * mine:.0f}%"
        draw_win_bar(surface, pygame.Rect(rect.x, y + 4, rect.width, 34), game, win, label)
        y += 40
    lines = [PanelLine(size=4)]
    for rank, move in enumerate(top_moves(analysis)):
        value = proven_word(move) or ("" if move["q"] is None else f"{move['q']:+.2f}")
        lines.append(PanelLine(f"{rank + 1}. {move['move_text']:<8} {100 * move['share']:3.0f}%  {value}",
                               (120, 220, 245) if rank == 0 else TEXT, 19))
    if not analysis["terminal"]:
        lines.append(PanelLine("values for the side to move", DIM, 16))
    lines.append(PanelLine(size=8))
    return draw_lines(surface, pygame.Rect(rect.x, y, rect.width, rect.bottom - y), lines)
