"""Pictures of any game with pygame: the PettingZoo ``render_mode``\\s and the CLI's window.

``draw(game, state, surface)`` paints a position: the board fills the surface above a caption
strip of :data:`CAPTION_HEIGHT` pixels that says whose turn it is or how the game ended. A game
with its own picture (the arena) sets ``game.draw_fn`` and paints the board area itself; every
other game gives ``game.cells_fn`` (``int8[H, W]``: 0 empty, 1 a piece of player 0, 2 a piece of
player 1, -1 a wall; row 0 on top), drawn in ``game.board_style``:

* ``"stones"``: black and white stones on a green grid (Othello, Gomoku);
* ``"discs"``: a blue Connect Four board with red and yellow discs in its holes; pieces drop, so
  a click anywhere in a column means the move into that column (:func:`action_at`);
* ``"marks"``: tic-tac-toe's X and O.

Either way the board is a grid of square cells (:func:`grid_shape`: ``cells_fn``'s shape, or the
observation's ``(H, W)`` for a ``draw_fn`` game), as large as fits and centred
(:class:`BoardGeometry`). Moves meet the grid through :func:`action_cells`: the cell each legal
move acts on, which is what a click means (:func:`action_at`) and where marks go
(:func:`draw_last_move`, :func:`draw_preview`).

pygame is imported on first use, so ``import games`` stays fast without it. Everything works
headless with ``SDL_VIDEODRIVER=dummy``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from .core import Game, GameError

__all__ = [
    "CAPTION_HEIGHT",
    "NO_CELL",
    "STYLES",
    "BoardGeometry",
    "Window",
    "action_at",
    "action_cells",
    "board_geometry",
    "caption",
    "cell_at",
    "default_size",
    "draw",
    "draw_last_move",
    "draw_preview",
    "grid_shape",
    "player_colours",
    "player_name",
    "render_rgb",
]

CAPTION_HEIGHT = 36  # pixels of the caption strip under the board

# style -> (board colour, line colour, colour of player 0's pieces, of player 1's, their names)
STYLES: dict[str, tuple] = {
    "stones": ((0, 122, 62), (0, 70, 34), (22, 22, 22), (238, 238, 232), ("black", "white")),
    "discs": ((28, 78, 196), (16, 48, 130), (214, 40, 40), (246, 204, 32), ("red", "yellow")),
    "marks": ((248, 246, 238), (40, 40, 40), (36, 70, 168), (200, 48, 48), ("X", "O")),
}
_WALL = (92, 92, 92)
_HOLE = (232, 238, 248)  # an empty hole of the "discs" board
_CAPTION_BACK, _CAPTION_TEXT = (28, 28, 28), (240, 240, 240)
_LAST_MOVE = {"stones": (232, 52, 52), "discs": (255, 255, 255), "marks": (240, 170, 0), None: (255, 255, 255)}
_PREVIEW_ALPHA = 110  # 0..255: how solid a hover preview is
NO_CELL = (-1, -1)  # action_cells' entry for an action that acts on no cell


@dataclass(frozen=True)
class BoardGeometry:
    """Where a picture puts the board's ``rows x cols`` square cells of ``cell`` pixels, the top
    left one at pixel ``(left, top)``. Row 0 is on top."""

    left: int
    top: int
    cell: int
    rows: int
    cols: int

    def cell_box(self, row: int, col: int) -> tuple[int, int, int, int]:
        """``(x, y, width, height)`` of cell ``(row, col)`` in pixels."""
        return self.left + col * self.cell, self.top + row * self.cell, self.cell, self.cell

    def centre(self, row: int, col: int) -> tuple[int, int]:
        """The pixel at the middle of cell ``(row, col)``."""
        return self.left + col * self.cell + self.cell // 2, self.top + row * self.cell + self.cell // 2

    def cell_at(self, pos: tuple[int, int]) -> tuple[int, int] | None:
        """The ``(row, col)`` under pixel ``pos``, ``None`` off the board."""
        col, row = (pos[0] - self.left) // self.cell, (pos[1] - self.top) // self.cell
        return (int(row), int(col)) if 0 <= row < self.rows and 0 <= col < self.cols else None


def grid_shape(game: Game, state: np.ndarray) -> tuple[int, int]:
    """``(rows, cols)`` of the board a picture of ``game`` shows: ``cells_fn``'s grid, or for a
    game that draws itself (``draw_fn``) the observation's ``(H, W)``."""
    if game.draw_fn is None and game.cells_fn is not None:
        rows, cols = game.cells_fn(game.params, state).shape
        return int(rows), int(cols)
    return int(game.obs_shape[1]), int(game.obs_shape[2])


def board_geometry(game: Game, state: np.ndarray, size: tuple[int, int]) -> BoardGeometry:
    """The cells of a picture of ``size`` (``(width, height)`` as :func:`draw` paints it, caption
    included): square cells as large as fit, centred above the caption."""
    width, height = size
    return _fit(0, 0, width, max(height - CAPTION_HEIGHT, 1), *grid_shape(game, state))


def _fit(x: int, y: int, width: int, height: int, rows: int, cols: int) -> BoardGeometry:
    """Square cells for ``rows x cols`` as large as fit in the ``(x, y, width, height)`` box, centred."""
    cell = max(min(width // cols, height // rows), 1)
    left = x + (width - cols * cell) // 2
    top = y + (height - rows * cell) // 2
    return BoardGeometry(left, top, cell, rows, cols)


def action_cells(game: Game, state: np.ndarray) -> np.ndarray:
    """``int64[A, 2]``: the ``(row, col)`` each legal action acts on, :data:`NO_CELL` for an
    illegal action or one with no cell (a pass, a wait). A game that draws itself says
    (``game.action_cells_fn``: the arena gives the cell a unit steps to, or the enemy it
    attacks); for a ``cells_fn`` game it is the one empty cell the move fills."""
    if game.action_cells_fn is not None:
        return np.asarray(game.action_cells_fn(game.params, state), dtype=np.int64).reshape(game.num_actions, 2)
    cells = np.full((game.num_actions, 2), NO_CELL, dtype=np.int64)
    if game.cells_fn is None:
        return cells
    before = game.cells_fn(game.params, state)
    for action in game.legal_actions(state):
        after = game.cells_fn(game.params, game.next_state(state, action))
        placed = np.argwhere((before == 0) & (after > 0))  # int64[k, 2]: cells this move fills
        if len(placed) == 1:
            cells[action] = placed[0]
    return cells


def action_at(game: Game, state: np.ndarray, row: int, col: int, cells: np.ndarray | None = None) -> int | None:
    """The legal move a click on cell ``(row, col)`` means: the move that acts on that cell or,
    on a ``"discs"`` board (pieces drop), the one move into that column. ``None`` off the board
    or when no move is meant. ``cells``: ``action_cells(game, state)``, if at hand."""
    rows, cols = grid_shape(game, state)
    if not (0 <= row < rows and 0 <= col < cols):
        return None
    cells = action_cells(game, state) if cells is None else cells
    here = np.flatnonzero((cells[:, 0] == row) & (cells[:, 1] == col))
    if len(here) == 1:
        return int(here[0])
    if game.draw_fn is None and game.board_style == "discs":
        column = np.flatnonzero((cells[:, 1] == col) & (cells[:, 0] >= 0))
        if len(column) == 1:
            return int(column[0])
    return None


def player_name(game: Game, player: int) -> str:
    """A player as people call it: by its pieces (``"red"``, ``"X"``, ``"black"``), or for a game
    that draws itself by ``game.extra["player_names"]`` (the arena's ``"red"`` and ``"blue"``)."""
    if game.draw_fn is not None:
        return str(game.extra.get("player_names", [f"player {p}" for p in range(game.num_players)])[player])
    return _piece_name(game, player)


def player_colours(game: Game) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """The colours of player 0's and player 1's pieces (a game that draws itself may name them in
    ``game.extra["player_colours"]``)."""
    if game.draw_fn is not None:
        return tuple(game.extra.get("player_colours", ((200, 200, 200), (60, 60, 60))))  # type: ignore[return-value]
    return _style(game)[2], _style(game)[3]


def default_size(game: Game) -> tuple[int, int]:
    """``(width, height)`` in pixels: square cells, about 480 pixels across, plus the caption."""
    _, rows, cols = game.obs_shape
    cell = int(np.clip(480 // max(rows, cols), 28, 96))
    return cols * cell, rows * cell + CAPTION_HEIGHT


def caption(game: Game, state: np.ndarray) -> str:
    """One line for people: ``"player_1 (O) to move"``, ``"player_0 (X) wins"``, ``"draw"``."""
    if not game.is_terminal(state):
        return f"{_agent_label(game, game.agent_to_move(state))} to move"
    returns = game.returns(state)  # float64[N]
    if (returns == returns.max()).all():
        return "draw"
    winners = [_player_label(game, p) for p in np.flatnonzero(returns == returns.max())]
    return " and ".join(winners) + " wins"


def draw(game: Game, state: np.ndarray, surface) -> None:
    """Paint ``state`` (``int64[S]``) onto a pygame ``surface``, board above and caption below."""
    import pygame

    width, height = surface.get_size()
    board = pygame.Rect(0, 0, width, max(height - CAPTION_HEIGHT, 1))
    if game.draw_fn is not None:
        game.draw_fn(game, state, surface.subsurface(board))
    elif game.cells_fn is not None:
        _draw_cells(game, game.cells_fn(game.params, state), surface, board)
    else:
        raise GameError(f"{game.name}: cannot be drawn (the game sets neither cells_fn nor draw_fn)")
    strip = pygame.Rect(0, board.bottom, width, height - board.bottom)
    surface.fill(_CAPTION_BACK, strip)
    text = _font(CAPTION_HEIGHT * 2 // 3).render(caption(game, state), True, _CAPTION_TEXT)
    surface.blit(text, text.get_rect(center=strip.center))


def render_rgb(game: Game, state: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
    """``uint8[height, width, 3]`` picture of ``state``; ``size`` is ``(width, height)`` in pixels."""
    import pygame

    surface = pygame.Surface(size or default_size(game))
    draw(game, state, surface)
    return np.ascontiguousarray(pygame.surfarray.array3d(surface).transpose(1, 0, 2))


def cell_at(game: Game, state: np.ndarray, size: tuple[int, int], pos: tuple[int, int]) -> tuple[int, int] | None:
    """The ``(row, col)`` of the board's grid under pixel ``pos`` of a picture of ``size``
    (``(width, height)``, as :func:`draw` paints it); ``None`` off the board."""
    return board_geometry(game, state, size).cell_at(pos)


def draw_last_move(game: Game, state: np.ndarray, surface, cell: tuple[int, int]) -> None:
    """Mark ``cell`` (the one the last move acted on) in a picture of ``state`` on ``surface``,
    as :func:`draw` painted it: a small ring on the piece, or an outline around the cell."""
    import pygame

    if cell[0] < 0:
        return
    geometry = board_geometry(game, state, surface.get_size())
    style = None if game.draw_fn is not None else game.board_style
    colour, width = _LAST_MOVE[style], max(geometry.cell // 16, 2)
    if style in ("stones", "discs"):
        pygame.draw.circle(surface, colour, geometry.centre(*cell), geometry.cell * 0.16, width)
    else:
        pygame.draw.rect(surface, colour, pygame.Rect(geometry.cell_box(*cell)).inflate(-width * 2, -width * 2), width)


def draw_preview(game: Game, state: np.ndarray, surface, cell: tuple[int, int]) -> None:
    """A see-through piece of the player to move on ``cell`` (where a click would play), or for
    a game that draws itself a light square over it; ``state`` as painted on ``surface``."""
    import pygame

    if cell[0] < 0 or game.is_terminal(state):
        return
    geometry = board_geometry(game, state, surface.get_size())
    box = pygame.Rect(geometry.cell_box(*cell))
    ghost = pygame.Surface(box.size, pygame.SRCALPHA)
    if game.draw_fn is not None:
        ghost.fill((255, 255, 255, 90))
    else:
        _draw_piece(game, ghost, ghost.get_rect(), game.to_play(state) + 1, empty_hole=False)
        ghost.set_alpha(_PREVIEW_ALPHA)  # with a per-pixel alpha surface: multiplies it
    surface.blit(ghost, box)


class Window:
    """A window on the screen showing one game (PettingZoo's ``render_mode="human"``)."""

    def __init__(self, game: Game, size: tuple[int, int] | None = None, fps: float = 4):
        import pygame

        self.game, self.fps = game, fps
        pygame.display.init()
        pygame.display.set_caption(game.version_tag)
        self.screen = pygame.display.set_mode(size or default_size(game))
        self.clock = pygame.time.Clock()

    def show(self, state: np.ndarray) -> None:
        """Draw ``state``, handle pending window events, and wait to keep to ``fps`` frames a second."""
        import pygame

        draw(self.game, state, self.screen)
        pygame.event.pump()
        pygame.display.flip()
        self.clock.tick(self.fps)

    def close(self) -> None:
        import pygame

        pygame.display.quit()


# --------------------------------------------------------------------------- internals
def _player_label(game: Game, player: int) -> str:
    if len(game.agent_names) != game.num_players:  # agents are units of teams (the arena)
        return f"team {player}"
    name = game.agent_names[game.agent_players.index(player)]
    return f"{name} ({_piece_name(game, player)})" if game.draw_fn is None else name


def _agent_label(game: Game, agent: int) -> str:
    if len(game.agent_names) != game.num_players:
        return f"{game.agent_names[agent]} of team {game.agent_players[agent]}"
    return _player_label(game, game.agent_players[agent])


def _piece_name(game: Game, player: int) -> str:
    return _style(game)[4][player]


def _style(game: Game) -> tuple:
    try:
        return STYLES[game.board_style]
    except KeyError:
        raise GameError(
            f"{game.name}: unknown board_style {game.board_style!r}; known: {', '.join(STYLES)}"
        ) from None


@functools.lru_cache(maxsize=None)
def _font(pixels: int):
    import pygame

    pygame.font.init()
    return pygame.font.Font(None, pixels)  # pygame's bundled default font


def board_rect(area, rows: int, cols: int):
    """The board's ``pygame.Rect``: ``rows x cols`` square cells, as large as fit, centred in the
    rectangle ``area`` (what :class:`BoardGeometry` describes; games that draw themselves use it)."""
    import pygame

    fit = _fit(area.x, area.y, area.width, area.height, rows, cols)
    return pygame.Rect(fit.left, fit.top, cols * fit.cell, rows * fit.cell)


def _draw_cells(game: Game, cells: np.ndarray, surface, area) -> None:
    """Draw ``cells`` (``int8[H, W]``) as square cells centred in the rectangle ``area``."""
    import pygame

    back, line, *_ = _style(game)
    rows, cols = cells.shape
    board = board_rect(area, rows, cols)
    cell = board.width // cols
    surface.fill(_CAPTION_BACK, area)  # margins, when the area is not the board's shape
    surface.fill(back, board)
    thin = max(cell // 24, 1)
    for r in range(rows):
        for c in range(cols):
            box = pygame.Rect(board.left + c * cell, board.top + r * cell, cell, cell)
            if cells[r, c] == -1:
                surface.fill(_WALL, box)
                continue
            if game.board_style != "discs":
                pygame.draw.rect(surface, line, box, thin)
            _draw_piece(game, surface, box, int(cells[r, c]))


def _draw_piece(game: Game, surface, box, value: int, empty_hole: bool = True) -> None:
    """The piece ``value`` (0 none, 1 player 0's, 2 player 1's) in the cell ``box``; on a
    ``"discs"`` board an empty cell is a hole (unless ``empty_hole`` is false)."""
    import pygame

    _, line, piece0, piece1, _ = _style(game)
    cell, centre = box.width, box.center
    thin = max(cell // 24, 1)
    if game.board_style == "discs":
        if value or empty_hole:
            pygame.draw.circle(surface, (_HOLE, piece0, piece1)[value], centre, cell * 0.42)
            pygame.draw.circle(surface, line, centre, cell * 0.42, thin)
    elif game.board_style == "stones":
        if value:
            pygame.draw.circle(surface, (piece0, piece1)[value - 1], centre, cell * 0.42)
            pygame.draw.circle(surface, line, centre, cell * 0.42, thin)
    else:  # marks
        pad, width = cell // 4, max(cell // 10, 2)
        inner = box.inflate(-2 * pad, -2 * pad)
        if value == 1:
            pygame.draw.line(surface, piece0, inner.topleft, inner.bottomright, width)
            pygame.draw.line(surface, piece0, inner.topright, inner.bottomleft, width)
        elif value == 2:
            pygame.draw.circle(surface, piece1, centre, inner.width / 2, width)
