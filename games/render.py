"""Pictures of any game with pygame: the PettingZoo ``render_mode``\\s and the CLI's window.

``draw(game, state, surface)`` paints a position: the board fills the surface above a caption
strip of :data:`CAPTION_HEIGHT` pixels that says whose turn it is or how the game ended. A game
with its own picture (the arena) sets ``game.draw_fn`` and paints the board area itself; every
other game gives ``game.cells_fn`` (``int8[H, W]``: 0 empty, 1 a piece of player 0, 2 a piece of
player 1, -1 a wall; row 0 on top), drawn in ``game.board_style``:

* ``"stones"``: black and white stones on a green grid (Othello, Gomoku);
* ``"discs"``: a blue Connect Four board with red and yellow discs in its holes;
* ``"marks"``: tic-tac-toe's X and O.

pygame is imported on first use, so ``import games`` stays fast without it. Everything works
headless with ``SDL_VIDEODRIVER=dummy``.
"""

from __future__ import annotations

import functools

import numpy as np

from .core import Game, GameError

__all__ = ["CAPTION_HEIGHT", "STYLES", "Window", "caption", "cell_at", "default_size", "draw", "render_rgb"]

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
    """The ``(row, col)`` of ``game.cells_fn``'s grid under pixel ``pos`` of a picture of ``size``
    (``(width, height)``, as :func:`draw` paints it); ``None`` off the board or for a game
    without cells."""
    if game.draw_fn is not None or game.cells_fn is None:
        return None
    import pygame

    rows, cols = game.cells_fn(game.params, state).shape
    width, height = size
    board = _board_rect(pygame.Rect(0, 0, width, max(height - CAPTION_HEIGHT, 1)), rows, cols)
    if not board.collidepoint(pos):
        return None
    cell = board.width // cols
    return (pos[1] - board.top) // cell, (pos[0] - board.left) // cell


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


def _board_rect(area, rows: int, cols: int):
    """The board's rectangle: square cells, as large as fit, centred in ``area``."""
    import pygame

    cell = max(min(area.width // cols, area.height // rows), 1)
    board = pygame.Rect(0, 0, cols * cell, rows * cell)
    board.center = area.center
    return board


def _draw_cells(game: Game, cells: np.ndarray, surface, area) -> None:
    """Draw ``cells`` (``int8[H, W]``) as square cells centred in the rectangle ``area``."""
    import pygame

    back, line, piece0, piece1, _ = _style(game)
    rows, cols = cells.shape
    board = _board_rect(area, rows, cols)
    cell = board.width // cols
    surface.fill(_CAPTION_BACK, area)  # margins, when the area is not the board's shape
    surface.fill(back, board)
    thin = max(cell // 24, 1)
    for r in range(rows):
        for c in range(cols):
            box = pygame.Rect(board.left + c * cell, board.top + r * cell, cell, cell)
            centre, value = box.center, int(cells[r, c])
            if value == -1:
                surface.fill(_WALL, box)
            elif game.board_style == "discs":
                color = (_HOLE, piece0, piece1)[value]
                pygame.draw.circle(surface, color, centre, cell * 0.42)
                pygame.draw.circle(surface, line, centre, cell * 0.42, thin)
            elif game.board_style == "stones":
                pygame.draw.rect(surface, line, box, thin)
                if value:
                    pygame.draw.circle(surface, (piece0, piece1)[value - 1], centre, cell * 0.42)
                    pygame.draw.circle(surface, line, centre, cell * 0.42, thin)
            else:  # marks
                pygame.draw.rect(surface, line, box, thin)
                pad, width = cell // 4, max(cell // 10, 2)
                inner = box.inflate(-2 * pad, -2 * pad)
                if value == 1:
                    pygame.draw.line(surface, piece0, inner.topleft, inner.bottomright, width)
                    pygame.draw.line(surface, piece0, inner.topright, inner.bottomleft, width)
                elif value == 2:
                    pygame.draw.circle(surface, piece1, centre, inner.width / 2, width)
