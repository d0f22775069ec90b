"""Scripted arena opponents: the hand-written NPC logic that a game ships today, as yardsticks
for trained brains (``selfplay arena BRAIN nearest --game arena``).

Each script is a function ``(game, state int64[S]) -> action`` for the unit to act, whichever
team it is on, and is deterministic: the same position always gets the same move. Ties are
broken by the lowest enemy slot, then by the order wait, forward, right, back, left.

* ``nearest``: attack the nearest enemy in range; otherwise step towards the nearest enemy.
* ``focus``: attack the weakest enemy in range (one that this hit kills first); otherwise step
  towards the weakest enemy on the board, so the team converges on one target.
* ``kite``: archers keep out of melee and shoot. An archer that a fighter could hit next turn
  (a fighter at distance 2 or less) steps to a safer cell, preferring one that still has a
  target in range; a safe archer shoots the weakest enemy in range, or closes in while staying
  out of melee reach. Fighters play ``focus`` and so screen their archers.
* ``guard``: hold the position: attack the weakest enemy in range; otherwise wait. A sentry
  that never walks into anyone's range, so it is beaten only by a side that attacks it from
  where it cannot answer (an archer against a fighter), not by waiting it out.

Two more are **held out** of every league (:data:`HELD_OUT`, the game's
``extra["held_out_scripts"]``): no league's pool contains them, not even with ``scripts all``,
so how a brain fares against them measures how it generalises to NPC logic it never met.

* ``hunter``: go for the archers first: shoot or strike an archer in range (the weakest), else
  the weakest enemy in range; otherwise step towards the nearest enemy archer (the nearest
  enemy once none is left).
* ``phalanx``: advance only in formation. Fighters step towards the nearest enemy but never
  more than one rank ahead of the rearmost living fighter; archers follow one rank behind the
  rearmost fighter (without fighters, archers keep the fighters' rule among themselves). Every
  unit attacks the weakest enemy in range first. A rank is how far a unit stands from its own
  edge of the board, counted in its team's forward direction.

Distances for stepping are shortest paths around walls and other units (breadth-first search),
so a script does not get stuck behind the pillars; attack ranges are Manhattan distances, as in
the rules. Plain Python, far cheaper than a network evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .arena_rules import (
    ATTACK,
    FORWARD,
    HP,
    O_DAMAGE,
    O_RANGE,
    P_H,
    P_N,
    P_W,
    WAIT,
    step_target,
    wall_cells,
)
from .core import Game

__all__ = ["HELD_OUT", "SCRIPTS", "Script", "rank", "script_action"]


@dataclass(frozen=True)
class _Units:
    """The position as scripts read it; agent ``i = team * N + slot``."""

    n: int
    hp: np.ndarray  # int64[2N], 0 = dead
    cell: np.ndarray  # int64[2N], -1 = dead
    damage: np.ndarray  # int64[2N]
    reach: np.ndarray  # int64[2N], attack range
    me: int  # the acting agent

    @property
    def enemies(self) -> list[int]:
        """The living enemies of the acting unit, by slot."""
        first = self.n if self.me < self.n else 0
        return [i for i in range(first, first + self.n) if self.hp[i] > 0]


def _units(game: Game, state: np.ndarray) -> _Units:
    params = game.params
    n = int(params[P_N])
    stat = lambda block: params[params[block] :][: 2 * n].astype(np.int64)  # noqa: E731
    return _Units(
        n=n,
        hp=state[HP : HP + 2 * n].copy(),
        cell=state[HP + 2 * n : HP + 4 * n].copy(),
        damage=stat(O_DAMAGE),
        reach=stat(O_RANGE),
        me=int(game.agent_to_move(state)),
    )


def _distance(game: Game, a: int, b: int) -> int:
    w = int(game.params[P_W])
    return abs(a // w - b // w) + abs(a % w - b % w)


def _path_lengths(game: Game, units: _Units, target: int) -> np.ndarray:
    """``int64[H*W]``: steps from each cell to a cell next to enemy ``target`` (walls and other
    living units block; a large number where none is reachable)."""
    params = game.params
    h, w = int(params[P_H]), int(params[P_W])
    blocked = wall_cells(params).copy()
    for i, cell in enumerate(units.cell):
        if cell >= 0 and i != units.me:
            blocked[cell] = True
    far = h * w + 1
    length = np.full(h * w, far, np.int64)
    goal = units.cell[target]
    frontier = []
    for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        r, c = goal // w + dr, goal % w + dc
        if 0 <= r < h and 0 <= c < w and not blocked[r * w + c]:
            length[r * w + c] = 0
            frontier.append(r * w + c)
    while frontier:
        nxt = []
        for cell in frontier:
            for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                r, c = cell // w + dr, cell % w + dc
                if 0 <= r < h and 0 <= c < w and not blocked[r * w + c] and length[r * w + c] == far:
                    length[r * w + c] = length[cell] + 1
                    nxt.append(r * w + c)
        frontier = nxt
    return length


def _steps(game: Game, state: np.ndarray, units: _Units) -> list[tuple[int, int]]:
    """``(action, cell)`` for waiting and every legal step of the acting unit."""
    mask = game.legal_mask(state)
    moves = [(WAIT, int(units.cell[units.me]))]
    for direction in range(4):
        if mask[FORWARD + direction]:
            cell = step_target(game.params, state, units.me, direction)
            moves.append((FORWARD + direction, int(cell)))
    return moves


def _in_range(game: Game, units: _Units, cell: int) -> list[int]:
    """Living enemies that the acting unit could attack from ``cell``."""
    return [e for e in units.enemies if _distance(game, cell, units.cell[e]) <= units.reach[units.me]]


def _attack(units: _Units, enemy: int) -> int:
    return ATTACK + enemy % units.n


def _weakest(units: _Units, candidates: list[int]) -> int:
    """The enemy to focus: one this unit's hit kills, else the lowest HP; then the lowest slot."""
    hit = units.damage[units.me]
    return min(candidates, key=lambda e: (units.hp[e] > hit, units.hp[e], e))


def _towards(game: Game, state: np.ndarray, units: _Units, target: int, safe: Callable[[int], bool] | None = None) -> int:
    """The step that shortens the path to ``target`` most (only onto ``safe`` cells when given);
    wait when none does."""
    length = _path_lengths(game, units, target)
    here = length[units.cell[units.me]]
    best, best_length = WAIT, here
    for action, cell in _steps(game, state, units)[1:]:
        if length[cell] < best_length and (safe is None or safe(cell)):
            best, best_length = action, length[cell]
    return best


def nearest(game: Game, state: np.ndarray) -> int:
    units = _units(game, state)
    me = units.cell[units.me]
    in_range = _in_range(game, units, me)
    if in_range:
        return _attack(units, min(in_range, key=lambda e: (_distance(game, me, units.cell[e]), e)))
    target = min(units.enemies, key=lambda e: (_distance(game, me, units.cell[e]), e))
    return _towards(game, state, units, target)


def focus(game: Game, state: np.ndarray) -> int:
    units = _units(game, state)
    in_range = _in_range(game, units, units.cell[units.me])
    if in_range:
        return _attack(units, _weakest(units, in_range))
    return _towards(game, state, units, min(units.enemies, key=lambda e: (units.hp[e], e)))


def _melee_threat(game: Game, units: _Units, cell: int) -> int:
    """Damage that enemy fighters (range 1) could deal to ``cell`` next turn: each one within
    two steps can step and hit."""
    return int(sum(units.damage[e] for e in units.enemies if units.reach[e] == 1 and _distance(game, cell, units.cell[e]) <= 2))


def kite(game: Game, state: np.ndarray) -> int:
    units = _units(game, state)
    if units.reach[units.me] <= 1:
        return focus(game, state)
    me = units.cell[units.me]
    threat = _melee_threat(game, units, me)
    in_range = _in_range(game, units, me)
    if threat:
        options = [
            (_melee_threat(game, units, cell), not _in_range(game, units, cell), action)
            for action, cell in _steps(game, state, units)[1:]
        ]
        if options and min(options)[0] < threat:
            return min(options)[2]  # fall back: less melee threat, a target in range if possible
    if in_range:
        return _attack(units, _weakest(units, in_range))
    nearest_enemy = min(units.enemies, key=lambda e: (_distance(game, me, units.cell[e]), e))
    return _towards(game, state, units, nearest_enemy, safe=lambda cell: _melee_threat(game, units, cell) == 0)


def guard(game: Game, state: np.ndarray) -> int:
    units = _units(game, state)
    in_range = _in_range(game, units, units.cell[units.me])
    return _attack(units, _weakest(units, in_range)) if in_range else WAIT


def _ranged(units: _Units, agent: int) -> bool:
    return bool(units.reach[agent] > 1)


def hunter(game: Game, state: np.ndarray) -> int:
    units = _units(game, state)
    me = units.cell[units.me]
    in_range = _in_range(game, units, me)
    archers = [e for e in in_range if _ranged(units, e)]
    if archers or in_range:
        return _attack(units, _weakest(units, archers or in_range))
    prey = [e for e in units.enemies if _ranged(units, e)] or units.enemies
    return _towards(game, state, units, min(prey, key=lambda e: (_distance(game, me, units.cell[e]), e)))


def rank(game: Game, agent: int, cell: int) -> int:
    """How far ``cell`` is from ``agent``'s own edge of the board, in its team's forward
    direction: 0 on the back row, ``H - 1`` on the enemy's (red looks north, blue south)."""
    h, w, n = int(game.params[P_H]), int(game.params[P_W]), int(game.params[P_N])
    row = cell // w
    return h - 1 - row if agent < n else row


def phalanx_limit(game: Game, state: np.ndarray, agent: int) -> int:
    """The furthest rank ``agent`` may step to under ``phalanx``: one rank ahead of the rearmost
    living fighter of its team for a fighter, one rank behind it for an archer; without
    fighters, one rank ahead of the rearmost living teammate."""
    n = int(game.params[P_N])
    units = _units(game, state)
    team = range(0, n) if agent < n else range(n, 2 * n)
    alive = [i for i in team if units.hp[i] > 0]
    fighters = [i for i in alive if not _ranged(units, i)]
    if not fighters:
        return min(rank(game, i, int(units.cell[i])) for i in alive) + 1
    rearmost = min(rank(game, i, int(units.cell[i])) for i in fighters)
    return rearmost - 1 if _ranged(units, agent) else rearmost + 1


def phalanx(game: Game, state: np.ndarray) -> int:
    units = _units(game, state)
    me = units.cell[units.me]
    in_range = _in_range(game, units, me)
    if in_range:
        return _attack(units, _weakest(units, in_range))
    limit = phalanx_limit(game, state, units.me)
    target = min(units.enemies, key=lambda e: (_distance(game, me, units.cell[e]), e))
    return _towards(game, state, units, target, safe=lambda cell: rank(game, units.me, cell) <= limit)


@dataclass(frozen=True)
class Script:
    """A scripted arena opponent: its name, what it does, and its move function."""

    name: str
    description: str
    act: Callable[[Game, np.ndarray], int]


#: The arena's scripted opponents by name (``selfplay arena`` and ``selfplay play`` take them).
SCRIPTS: dict[str, Script] = {
    s.name: s
    for s in (
        Script("nearest", "attack the nearest enemy in range, else step towards the nearest enemy", nearest),
        Script("focus", "attack the weakest enemy in range, else step towards the weakest enemy", focus),
        Script("kite", "archers keep out of melee and shoot the weakest in range; fighters focus", kite),
        Script("guard", "hold the position: attack the weakest enemy in range, else wait", guard),
    )
}

#: Scripts kept out of every league's pool (``scripts all`` included): a brain's score against
#: them is a generalisation check. Agents by name like the others.
HELD_OUT: dict[str, Script] = {
    s.name: s
    for s in (
        Script("hunter", "go for the archers: attack an archer in range, else the weakest in range; "
               "else step towards the nearest archer", hunter),
        Script("phalanx", "advance only in formation: fighters at most one rank ahead of the rearmost fighter, "
               "archers one rank behind it; attack the weakest in range", phalanx),
    )
}


def script_action(game: Game, name: str, state: np.ndarray) -> int:
    """The move of script ``name`` (of :data:`SCRIPTS` or :data:`HELD_OUT`) for the unit to act
    in ``state`` (an arena position)."""
    script = SCRIPTS.get(name) or HELD_OUT[name]
    return int(script.act(game, np.asarray(state, dtype=np.int64)))
