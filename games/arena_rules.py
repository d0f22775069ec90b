"""Arena rules: units, maps, the state and params layouts, and the numba rules kernels.

The arena is turn-based tactics for two teams of units on a small grid, the NPC showcase
(:func:`games.arena.make` builds its :class:`~games.core.Game`). Every unit is its own agent and
one network plays them all, from each unit's own point of view. ``docs/arena.md`` is the guide
for game developers; this docstring is the reference.

Rules
-----
* Board ``H x W`` (8 x 8 by default) with walls. Team 0 (**red**, agents ``red_0..``) starts on
  the second row from the bottom, team 1 (**blue**, ``blue_0..``) on the second from the top,
  units two columns apart. Every map is left-right and up-down symmetric, and blue's start is
  red's turned by a half turn, so the two sides are equal (red acts first).
* A team is a *lineup* of ``N`` units (option ``lineup``, default ``"FAF"``); slot ``k`` of both
  teams is the same kind. Kinds (deterministic damage; ranges are Manhattan distances)::

      kind      letter  HP  damage  range
      fighter   F       10  3       1      melee: strong and tough
      archer    A        6  2       3      shoots over walls and units (no line of sight)

* Turn order is fixed: ``red_0, blue_0, red_1, blue_1, ..., red_{N-1}, blue_{N-1}``, then again,
  skipping dead units. After a death the same team can act twice in a row.
* On its turn a unit does exactly one thing: **wait**; **step** one cell forward, right, back or
  left (into an empty, non-wall cell on the board; units of both teams block); or **attack** a
  living enemy within its range, which loses ``damage`` HP. A unit at 0 HP dies and leaves the
  board. Waiting is always legal, so a living unit always has a move.
* The game ends when a team is wiped out, or after ``turn_limit`` unit-turns (default 60). The
  team with more total remaining HP wins (+1, the other -1); equal totals are a draw (0). (A
  wiped-out team has 0 HP, so this one rule also scores wipe-outs.)

Egocentric frame: actions and encodings are seen from the acting unit's own side. Red looks
"up" the board: forward is north (row - 1), right is east. Blue's frame is turned by a half
turn: forward is south, right is west. So one network serves every unit of both teams.

Actions (``A = 5 + N``)::

    0 wait   1 forward   2 right   3 back   4 left   5 + k: attack enemy slot k (0 <= k < N)

Notation: ``wait``/``w``, ``forward``/``f``, ``right``/``r``, ``back``/``b``, ``left``/``l``,
``attack 1``/``a1``. Enemy slot ``k`` is agent ``blue_k`` for a red unit and ``red_k`` for blue.

State ``int64[S]``, ``S = 2 + 4N``: agent ``i = team * N + slot``::

    [0]              turn: unit-turns played, 0..turn_limit
    [1]              cursor: position 0..2N-1 in the turn order of the unit to act
                     (position p is team p % 2, slot p // 2)
    [2 + i]          hp of agent i (0 = dead)
    [2 + 2N + i]     cell (row * W + col, row 0 on top) of agent i, -1 when dead

Encoding ``float32[C, H, W]``, ``C = 9 + N``, from viewing agent ``v`` (of team ``t``), in ``t``'s
frame: cell ``(r, c)`` of the board is drawn at ``(r, c)`` for red and at ``(H-1-r, W-1-c)`` for
blue, so every unit sees its own team starting at the bottom. ``HP_SCALE`` is 10::

    0         walls          1 on wall cells
    1         self           1 on the viewer's cell (all 0 once it is dead)
    2         turn_order     (2N - d) / 2N on each living unit, d = unit-turns until it acts
                             (the acting unit 1, the next one (2N-1)/2N, ...)
    3         allies_hp      hp / HP_SCALE on the viewer and each living teammate
    4+k       enemy_k_hp     hp / HP_SCALE on enemy slot k (grounds action 5 + k), k < N
    4+N       fighters       1 on every living fighter, both teams
    5+N       archers        1 on every living archer, both teams
    6+N       enemy_reach    min(1, sum of damage / HP_SCALE of the living enemies that can hit
                             the cell from where they stand)
    7+N       ally_reach     the same for the viewer's team, the viewer included
    8+N       turns_left     (turn_limit - turn) / turn_limit everywhere

Symmetries (``K = 2``): the identity and the left-right mirror, which swaps actions right and
left for both teams (a half turn commutes with the mirror) and fixes the others.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# --------------------------------------------------------------------------- units and maps
#: kind letter -> (name, max HP, damage, range). The order fixes the kind planes of the encoding.
KINDS: dict[str, tuple[str, int, int, int]] = {
    "F": ("fighter", 10, 3, 1),
    "A": ("archer", 6, 2, 3),
}
HP_SCALE = max(hp for _, hp, _, _ in KINDS.values())  # HP planes are hp / HP_SCALE
NUM_KINDS = len(KINDS)
MAX_UNITS = 4  # per team
START_ROW = 1  # teams start on the second row from their edge: room to fall back behind

#: Maps, row 0 on top ("#" a wall). Each is left-right and up-down symmetric.
MAPS: dict[str, tuple[str, ...]] = {
    "pillars": (  # a central block and four pillars: paths to guard, lanes to flank through
        "........",
        "........",
        ".#....#.",
        "...##...",
        "...##...",
        ".#....#.",
        "........",
        "........",
    ),
    "bridge": (  # one 2-wide crossing: two fighters can hold it; archers shoot over the wall
        "........",
        "........",
        "........",
        "###..###",
        "###..###",
        "........",
        "........",
        "........",
    ),
    "open": ("........",) * 8,
    "small": (  # 6x6, for quick experiments
        "......",
        "......",
        ".#..#.",
        ".#..#.",
        "......",
        "......",
    ),
}

TEAM_NAMES = ("red", "blue")
WAIT, FORWARD, RIGHT, BACK, LEFT, ATTACK = 0, 1, 2, 3, 4, 5  # ATTACK + k targets enemy slot k
MOVE_NAMES = ("wait", "forward", "right", "back", "left")
# Row and column steps of forward, right, back, left in red's frame; blue's are the negatives.
DROW = np.array([-1, 0, 1, 0], dtype=np.int64)
DCOL = np.array([0, 1, 0, -1], dtype=np.int64)

# State layout (see the module docstring); agent i = team * N + slot.
TURN, CURSOR, HP = 0, 1, 2  # hp of agent i at HP + i, its cell at HP + 2N + i

# Params, int64[P]: a header, then blocks of constants whose offsets the header holds, so the hot
# kernels read tables instead of dividing by W or N:
#   kind, max_hp, damage, range, start cell:  [2N] each, per agent
#   wall, row, col:                           [H*W] each, per cell
#   step:                                     [4 * H*W]: step[d * H*W + cell] is the cell one
#                                             step from `cell` in red's direction d (0 north,
#                                             1 east, 2 south, 3 west), -1 off the board or a wall
P_H, P_W, P_N, P_LIMIT = 0, 1, 2, 3
O_KIND, O_MAX_HP, O_DAMAGE, O_RANGE, O_START, O_WALL, O_ROW, O_COL, O_STEP = range(4, 13)
_HEADER = 13


# --------------------------------------------------------------------------- small kernels
@njit(cache=True, inline="always")
def _agent_at(n, position):
    """Agent at turn-order position ``position`` (team ``position % 2``, slot ``position // 2``)."""
    return (position & 1) * n + (position >> 1)


@njit(cache=True, inline="always")
def _acting(params, state):
    return _agent_at(params[P_N], state[CURSOR])


@njit(cache=True, inline="always")
def team_hp(params, state, team):
    n = params[P_N]
    total = 0
    for i in range(team * n, team * n + n):
        total += state[HP + i]
    return total


@njit(cache=True, inline="always")
def _stat(params, block, agent):
    """Constant of ``agent`` from ``block`` (O_KIND, O_MAX_HP, O_DAMAGE, O_RANGE or O_START)."""
    return params[params[block] + agent]


@njit(cache=True, inline="always")
def _is_wall(params, cell):
    return params[params[O_WALL] + cell] != 0


@njit(cache=True, inline="always")
def _distance(params, a, b):
    rows, cols = params[O_ROW], params[O_COL]
    return abs(params[rows + a] - params[rows + b]) + abs(params[cols + a] - params[cols + b])


@njit(cache=True, inline="always")
def step_target(params, state, agent, direction):
    """Cell that ``agent`` reaches by stepping in ``direction`` (0..3, its own frame), or -1."""
    n = params[P_N]
    pos = HP + 2 * n
    if agent >= n:  # blue's frame is red's turned by a half turn
        direction = (direction + 2) & 3
    target = params[params[O_STEP] + direction * params[P_H] * params[P_W] + state[pos + agent]]
    if target >= 0:
        for i in range(2 * n):
            if state[pos + i] == target:  # dead units hold -1, never a cell
                return -1
    return target


# --------------------------------------------------------------------------- rules kernels
@njit(cache=True)
def initial_state(params):
    n = params[P_N]
    state = np.zeros(2 + 4 * n, dtype=np.int64)
    for i in range(2 * n):
        state[HP + i] = _stat(params, O_MAX_HP, i)
        state[HP + 2 * n + i] = _stat(params, O_START, i)
    return state


@njit(cache=True)
def is_terminal(params, state):
    return (
        state[TURN] >= params[P_LIMIT]
        or team_hp(params, state, 0) == 0
        or team_hp(params, state, 1) == 0
    )


@njit(cache=True)
def legal_mask(params, state, mask):
    mask[:] = False
    if is_terminal(params, state):
        return
    n = params[P_N]
    pos = HP + 2 * n
    agent = _acting(params, state)
    mask[WAIT] = True
    for direction in range(4):
        mask[FORWARD + direction] = step_target(params, state, agent, direction) >= 0
    reach = _stat(params, O_RANGE, agent)
    enemies = n if agent < n else 0
    for k in range(n):
        target = enemies + k
        mask[ATTACK + k] = (
            state[HP + target] > 0 and _distance(params, state[pos + agent], state[pos + target]) <= reach
        )


@njit(cache=True)
def apply_action(params, state, action):
    n = params[P_N]
    agent = _acting(params, state)
    if FORWARD <= action <= LEFT:
        state[HP + 2 * n + agent] = step_target(params, state, agent, action - FORWARD)
    elif action >= ATTACK:
        target = (n if agent < n else 0) + action - ATTACK
        hp = max(state[HP + target] - _stat(params, O_DAMAGE, agent), 0)
        state[HP + target] = hp
        if hp == 0:
            state[HP + 2 * n + target] = -1
    state[TURN] += 1
    position = state[CURSOR]
    for _ in range(2 * n):  # on to the next living unit in turn order (maybe the same one)
        position = position + 1 if position + 1 < 2 * n else 0
        if state[HP + _agent_at(n, position)] > 0:
            break
    state[CURSOR] = position


@njit(cache=True)
def outcome(params, state, player):
    margin = team_hp(params, state, player) - team_hp(params, state, 1 - player)
    return 1.0 if margin > 0 else -1.0 if margin < 0 else 0.0


@njit(cache=True)
def to_play(params, state):
    return state[CURSOR] & 1


@njit(cache=True)
def agent_to_move(params, state):
    return _acting(params, state)


@njit(cache=True, inline="always")
def _view(params, cell, flip):
    """(row, col) where board cell ``cell`` appears in the viewer's frame."""
    row, col = params[params[O_ROW] + cell], params[params[O_COL] + cell]
    if flip:
        return params[P_H] - 1 - row, params[P_W] - 1 - col
    return row, col


@njit(cache=True)
def _add_reach(params, state, team, plane, flip, out):
    """Adds damage / HP_SCALE of each living unit of ``team`` on the cells it can attack."""
    h, w, n = params[P_H], params[P_W], params[P_N]
    for i in range(team * n, team * n + n):
        if state[HP + i] == 0:
            continue
        cell = state[HP + 2 * n + i]
        reach = _stat(params, O_RANGE, i)
        damage = _stat(params, O_DAMAGE, i) / HP_SCALE
        row, col = params[params[O_ROW] + cell], params[params[O_COL] + cell]
        for r in range(max(row - reach, 0), min(row + reach, h - 1) + 1):
            spare = reach - abs(r - row)
            for c in range(max(col - spare, 0), min(col + spare, w - 1) + 1):
                if r != row or c != col:
                    vr, vc = _view(params, r * w + c, flip)
                    out[plane, vr, vc] = min(out[plane, vr, vc] + damage, 1.0)


@njit(cache=True)
def encode_agent(params, state, agent, out):
    h, w, n = params[P_H], params[P_W], params[P_N]
    out[:, :, :] = 0.0
    team = 1 if agent >= n else 0
    flip = team == 1
    for cell in range(h * w):
        if _is_wall(params, cell):
            r, c = _view(params, cell, flip)
            out[0, r, c] = 1.0
    order = 0  # unit-turns until the unit at this turn-order position acts
    for step in range(2 * n):
        i = _agent_at(n, (state[CURSOR] + step) % (2 * n))
        if state[HP + i] == 0:
            continue
        r, c = _view(params, state[HP + 2 * n + i], flip)
        out[2, r, c] = (2 * n - order) / (2 * n)
        order += 1
        hp = state[HP + i] / HP_SCALE
        if i == agent:
            out[1, r, c] = 1.0
        if (i >= n) == flip:
            out[3, r, c] = hp
        else:
            out[4 + i % n, r, c] = hp
        out[4 + n + _stat(params, O_KIND, i), r, c] = 1.0
    _add_reach(params, state, 1 - team, 4 + n + NUM_KINDS, flip, out)
    _add_reach(params, state, team, 5 + n + NUM_KINDS, flip, out)
    out[6 + n + NUM_KINDS, :, :] = (params[P_LIMIT] - state[TURN]) / params[P_LIMIT]


@njit(cache=True)
def encode(params, state, out):
    encode_agent(params, state, _acting(params, state), out)


@njit(cache=True)
def transform_state(params, state, k):
    """Symmetry 0: identity; 1: left-right mirror of every unit's cell."""
    out = state.copy()
    if k == 1:
        w, n = params[P_W], params[P_N]
        for i in range(2 * n):
            cell = state[HP + 2 * n + i]
            if cell >= 0:
                out[HP + 2 * n + i] = cell - cell % w + (w - 1 - cell % w)
    return out


# --------------------------------------------------------------------------- for Python callers
def layout(params) -> tuple[int, int, int, int]:
    """``(H, W, N, turn_limit)`` from the params header."""
    return int(params[P_H]), int(params[P_W]), int(params[P_N]), int(params[P_LIMIT])


def unit_stat(params, block: int, agent: int) -> int:
    """Constant of ``agent`` from ``block`` (``O_MAX_HP``, ``O_RANGE``, ...), as a Python int."""
    return int(params[params[block] + agent])


def wall_cells(params) -> np.ndarray:
    """``bool[H*W]``: which cells are walls."""
    return params[params[O_WALL] :][: params[P_H] * params[P_W]] != 0


def lineup_of(params) -> str:
    """The lineup, one kind letter per slot (``"FAF"``)."""
    n = int(params[P_N])
    letters = list(KINDS)
    return "".join(letters[int(k)] for k in params[params[O_KIND] :][:n])


def unit_token(params, agent: int) -> str:
    """``F0`` for red's fighter in slot 0, ``a1`` for blue's archer in slot 1."""
    n = int(params[P_N])
    letter = lineup_of(params)[agent % n]
    return f"{letter if agent < n else letter.lower()}{agent % n}"


def agent_name(params, agent: int) -> str:
    """``red_0``, ``blue_1``: the PettingZoo name of agent ``agent``."""
    n = int(params[P_N])
    return f"{TEAM_NAMES[agent // n]}_{agent % n}"


def make_params(h: int, w: int, limit: int, lineup: str, start: list[int], walls: np.ndarray) -> np.ndarray:
    """``int64[P]`` in the layout described at ``O_KIND`` above, from the map's walls
    (``int64[H*W]``) and the start cells of the ``2N`` agents."""
    per_agent = [
        [list(KINDS).index(letter) for letter in lineup * 2],
        *([KINDS[letter][j] for letter in lineup * 2] for j in (1, 2, 3)),  # max HP, damage, range
        start,
    ]
    rows, cols = np.divmod(np.arange(h * w), w)
    steps = np.full((4, h * w), -1, dtype=np.int64)
    for d in range(4):
        r, c = rows + DROW[d], cols + DCOL[d]
        inside = (r >= 0) & (r < h) & (c >= 0) & (c < w)
        target = np.where(inside, r * w + c, 0)
        steps[d] = np.where(inside & (walls[target] == 0), target, -1)
    blocks = [*per_agent, walls, rows, cols, steps.ravel()]
    offsets = _HEADER + np.cumsum([0, *map(len, blocks[:-1])])
    return np.concatenate([[h, w, len(lineup), limit], offsets, *blocks]).astype(np.int64)

