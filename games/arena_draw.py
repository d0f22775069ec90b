"""The arena on screen: the cells actions act on, attack reach, and the pygame picture.

Plain Python over :mod:`games.arena_rules`; pygame is imported only when :func:`draw` runs.
"""

from __future__ import annotations

import functools

import numpy as np

from .arena_rules import (
    ATTACK,
    FORWARD,
    HP,
    LEFT,
    O_MAX_HP,
    O_RANGE,
    P_N,
    agent_to_move,
    is_terminal,
    layout,
    legal_mask,
    step_target,
    unit_stat,
    unit_token,
    wall_cells,
)
from .core import Game

__all__ = ["TEAM_COLOURS", "action_cells", "draw"]


def action_cells(params, state) -> np.ndarray:
    """``int64[A, 2]``: the ``(row, col)`` each legal action acts on: the cell a step goes to,
    the cell of the enemy an attack hits; ``(-1, -1)`` for wait and illegal actions
    (``Game.action_cells_fn``)."""
    h, w, n, _ = layout(params)
    cells = np.full((ATTACK + n, 2), -1, dtype=np.int64)
    if is_terminal(params, state):
        return cells
    mask = np.zeros(ATTACK + n, dtype=np.bool_)
    legal_mask(params, state, mask)
    agent = int(agent_to_move(params, state))
    enemies = n if agent < n else 0
    for action in np.flatnonzero(mask):
        if FORWARD <= action <= LEFT:
            target = step_target(params, state, agent, action - FORWARD)
        elif action >= ATTACK:
            target = state[HP + 2 * n + enemies + action - ATTACK]
        else:
            continue
        cells[action] = divmod(int(target), w)
    return cells


TEAM_COLOURS = ((206, 58, 52), (46, 96, 206))
_GROUND, _GRID, _WALL_FILL, _HIGHLIGHT = (226, 218, 196), (196, 186, 160), (86, 80, 72), (255, 214, 0)
_REACH, _STEP, _TARGET = (240, 200, 120), (60, 150, 70), (230, 30, 30)


@functools.lru_cache(maxsize=None)
def _font(pixels: int):
    import pygame

    pygame.font.init()
    return pygame.font.Font(None, pixels)


def draw(game: Game, state: np.ndarray, surface) -> None:
    """Paints ``state`` on a pygame ``surface`` (``Game.draw_fn``): the grid and walls; the
    acting unit's attack range shaded, the cells it can step to dotted and the enemies it can hit
    ringed in red; units as team-coloured discs labelled with kind letter and slot (``F0``) over
    an HP bar, with a gold ring on the unit to act."""
    import pygame

    from .render import board_rect

    h, w, n, _ = layout(game.params)
    board = board_rect(surface.get_rect(), h, w)
    cell = board.width // w
    surface.fill((28, 28, 28))

    def box(index: int):
        return pygame.Rect(board.left + index % w * cell, board.top + index // w * cell, cell, cell)

    acting = -1 if game.is_terminal(state) else game.agent_to_move(state)
    reach = _reach(game.params, state, acting)
    walls = wall_cells(game.params)
    for index in range(h * w):
        surface.fill(_WALL_FILL if walls[index] else _REACH if reach[index] else _GROUND, box(index))
        pygame.draw.rect(surface, _GRID, box(index), max(cell // 32, 1))
    targets = action_cells(game.params, state)  # int64[A, 2]
    for action, (row, col) in enumerate(targets):
        if row >= 0 and action < ATTACK:
            pygame.draw.circle(surface, _STEP, box(row * w + col).center, max(cell // 9, 2))
    font, small = _font(max(cell * 2 // 5, 8)), _font(max(cell * 3 // 11, 8))
    for i in range(2 * n):
        hp = int(state[HP + i])
        if hp == 0:
            continue
        here = box(int(state[HP + 2 * n + i]))
        centre = (here.centerx, here.top + cell * 0.44)
        radius = cell * 0.34
        if i == acting:
            pygame.draw.circle(surface, _HIGHLIGHT, centre, radius + max(cell // 12, 2))
        pygame.draw.circle(surface, TEAM_COLOURS[i // n], centre, radius)
        label = font.render(unit_token(game.params, i).upper(), True, (255, 255, 255))
        surface.blit(label, label.get_rect(center=centre))
        bar = pygame.Rect(here.left + cell // 10, here.bottom - cell // 7, cell * 11 // 20, max(cell // 12, 2))
        pygame.draw.rect(surface, (60, 20, 20), bar)
        hp_text = small.render(str(hp), True, (40, 40, 40))
        surface.blit(hp_text, hp_text.get_rect(midleft=(bar.right + cell // 20, bar.centery)))
        bar.width = round(bar.width * hp / unit_stat(game.params, O_MAX_HP, i))
        pygame.draw.rect(surface, (60, 190, 80), bar)
    for action in range(ATTACK, ATTACK + n):
        row, col = targets[action]
        if row >= 0:
            pygame.draw.rect(surface, _TARGET, box(row * w + col).inflate(-2, -2), max(cell // 14, 2))


def _reach(params, state, agent: int) -> np.ndarray:
    """``bool[H*W]``: the cells ``agent`` (-1: none) could attack from where it stands (its own
    cell excluded); no line of sight, so walls are in reach too."""
    h, w, _, _ = layout(params)
    reach = np.zeros(h * w, dtype=np.bool_)
    if agent < 0:
        return reach
    cell = int(state[HP + 2 * int(params[P_N]) + agent])
    rows, cols = np.divmod(np.arange(h * w), w)
    distance = np.abs(rows - cell // w) + np.abs(cols - cell % w)
    return (distance >= 1) & (distance <= unit_stat(params, O_RANGE, agent))
