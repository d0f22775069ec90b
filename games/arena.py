"""Arena: turn-based tactics for two teams of units on a small grid, the NPC showcase.

:func:`make` builds the game; :func:`scenario` sets up hand-made positions. This module holds the
game record and the notation for people; the rules, layouts and kernels (and their reference)
are in :mod:`games.arena_rules`, the picture in :mod:`games.arena_draw`, the scripted opponents
in :mod:`games.arena_scripts`. ``docs/arena.md`` is the guide for game developers.
"""

from __future__ import annotations

import numpy as np

from . import arena_rules
from .arena_draw import TEAM_COLOURS, action_cells, draw
from .arena_rules import (
    ATTACK,
    CURSOR,
    DCOL,
    DROW,
    HP,
    KINDS,
    LEFT,
    MAPS,
    MAX_UNITS,
    MOVE_NAMES,
    O_MAX_HP,
    P_N,
    RIGHT,
    START_ROW,
    TEAM_NAMES,
    TURN,
    agent_name,
    agent_to_move,
    is_terminal,
    layout,
    lineup_of,
    make_params,
    team_hp,
    unit_stat,
    unit_token,
    wall_cells,
)
from .arena_scripts import HELD_OUT, SCRIPTS
from .boards import point_to_text, text_to_point
from .core import Game, GameError, dihedral_perms, integer_option, rules_from, short_repr

__all__ = ["KINDS", "MAPS", "make", "scenario"]

VERSION = 1


# --------------------------------------------------------------------------- notation
def render_text(params, state) -> str:
    """The board (red upper case, blue lower case, the acting unit starred) and a roster."""
    h, w, n, limit = layout(params)
    tokens = ["###" if wall else " . " for wall in wall_cells(params)]
    terminal = bool(is_terminal(params, state))
    acting = -1 if terminal else int(agent_to_move(params, state))
    for i in range(2 * n):
        if state[HP + i] > 0:
            tokens[int(state[HP + 2 * n + i])] = f"{unit_token(params, i)}{'*' if i == acting else ' '}"
    lines = ["     " + "   ".join("abcdefghijklmnopqrstuvwxyz"[:w])]
    for r in range(h):
        lines.append((f"{r + 1:>2}  " + " ".join(tokens[r * w : (r + 1) * w])).rstrip())
    for team in range(2):
        roster = []
        for i in range(team * n, team * n + n):
            hp, cell = int(state[HP + i]), int(state[HP + 2 * n + i])
            where = point_to_text(w, cell) if hp else "dead"
            roster.append(f"{unit_token(params, i)} {hp:>2}/{unit_stat(params, O_MAX_HP, i)} {where:<4}")
        lines.append(f"{TEAM_NAMES[team]:<5} " + "   ".join(roster).rstrip())
    red, blue = int(team_hp(params, state, 0)), int(team_hp(params, state, 1))
    head = f"turn {int(state[TURN])}/{limit}, HP red {red} blue {blue}: "
    if terminal:
        head += "red wins" if red > blue else "blue wins" if blue > red else "draw"
    else:
        kind = KINDS[lineup_of(params)[acting % n]][0]
        forward = "north" if acting < n else "south"
        head += f"{agent_name(params, acting)} ({kind}) to move, forward is {forward}"
    return "\n".join([head, *lines])


def action_to_text(params, action: int) -> str:
    n = int(params[P_N])
    if not 0 <= action < ATTACK + n:
        raise GameError(f"arena has no action {action}; actions are 0..{ATTACK + n - 1}")
    return MOVE_NAMES[action] if action < ATTACK else f"attack {action - ATTACK}"


_WORDS = {name: a for a, name in enumerate(MOVE_NAMES)} | {name[0]: a for a, name in enumerate(MOVE_NAMES)}


def text_to_action(params, text: str) -> int:
    """Notation to action: ``wait``/``w``, ``forward``/``f``, ``right``/``r``, ``back``/``b``,
    ``left``/``l``, ``attack 1``/``a1``; raises :class:`GameError`."""
    n = int(params[P_N])
    t = " ".join(text.strip().lower().split())
    if t in _WORDS:
        return _WORDS[t]
    for prefix in ("attack ", "attack", "a ", "a"):
        if t.startswith(prefix) and t[len(prefix) :].isdigit():
            slot = int(t[len(prefix) :])
            if slot >= n:
                raise GameError(f"no enemy slot {slot} to attack: slots are 0..{n - 1}")
            return ATTACK + slot
    raise GameError(
        f"cannot read arena action {text!r}: expected wait, forward, right, back, left "
        f"(w, f, r, b, l; moves are in the unit's own frame) or attack 0..{n - 1} (a0..a{n - 1})"
    )


def scenario(game: Game, units: dict[str, tuple[str, int]], to_move: str, turn: int = 0) -> np.ndarray:
    """A hand-made position: ``units`` maps agent names to ``(cell, hp)``, e.g.
    ``{"red_0": ("d5", 10), "blue_1": ("d3", 4)}`` (cells as in ``render_text``: ``a1`` top left);
    agents not named are dead. ``to_move`` names the acting unit; ``turn`` unit-turns are played.
    Returns the ``int64[S]`` state; raises :class:`GameError` on an impossible position."""
    h, w, n, limit = layout(game.params)
    state = np.zeros(game.state_size, dtype=np.int64)
    state[HP + 2 * n :] = -1
    names = list(game.agent_names)
    for name, (where, hp) in units.items():
        if name not in names:
            raise GameError(f"unknown unit {name!r}; units: {', '.join(names)}")
        i = names.index(name)
        cell = text_to_point(w, h, where)
        if not 1 <= hp <= unit_stat(game.params, O_MAX_HP, i):
            raise GameError(f"{name}: hp {hp} is out of 1..{unit_stat(game.params, O_MAX_HP, i)}")
        if wall_cells(game.params)[cell] or cell in state[HP + 2 * n :]:
            raise GameError(f"{name}: cell {where} is a wall or taken")
        state[HP + i], state[HP + 2 * n + i] = hp, cell
    if to_move not in units:
        raise GameError(f"the unit to move, {to_move!r}, must be one of the living units given")
    if not 0 <= turn < limit:
        raise GameError(f"turn {turn} is out of 0..{limit - 1}")
    agent = names.index(to_move)
    state[TURN], state[CURSOR] = turn, 2 * (agent % n) + agent // n
    return state



# --------------------------------------------------------------------------- the Game record
def make(lineup: str = "FAF", map: str = "pillars", turn_limit: int = 60) -> Game:  # noqa: A002
    """The arena with ``lineup`` (one kind letter per slot, both teams), ``map`` and
    ``turn_limit`` (unit-turns)."""
    # ASCII before upper(): "\ufb00".upper() is "FF"
    if not isinstance(lineup, str) or not lineup.isascii() or not 1 <= len(lineup) <= MAX_UNITS or any(
        letter not in KINDS for letter in lineup.upper()
    ):
        raise GameError(
            f"lineup {short_repr(lineup)} must be 1..{MAX_UNITS} kind letters from {''.join(KINDS)} "
            f"({', '.join(f'{k} {v[0]}' for k, v in KINDS.items())})"
        )
    lineup = lineup.upper()
    if not isinstance(map, str) or map not in MAPS:
        raise GameError(f"unknown arena map {short_repr(map)}; maps: {', '.join(MAPS)}")
    turn_limit = integer_option(turn_limit, "arena turn_limit")
    if not 1 <= turn_limit <= 10_000:
        raise GameError(f"turn_limit {short_repr(turn_limit)} is out of 1..10000")
    rows = MAPS[map]
    h, w, n, limit = len(rows), len(rows[0]), len(lineup), int(turn_limit)
    walls = np.array([ch == "#" for row in rows for ch in row], dtype=np.int64)
    grid = walls.reshape(h, w)
    assert (grid == grid[::-1]).all() and (grid == grid[:, ::-1]).all(), f"map {map} is not symmetric"
    if 2 * n - 1 > w:
        raise GameError(
            f"lineup {lineup!r} does not fit on map {map!r} ({w} columns): at most {(w + 1) // 2} units"
        )
    first = (w - 2 * n + 1) // 2  # red two columns apart, centred
    red = [(h - 1 - START_ROW) * w + first + 2 * k for k in range(n)]
    start = red + [h * w - 1 - cell for cell in red]  # blue: red's cells turned by a half turn
    assert not walls[start].any(), f"map {map} has a wall on a start cell"
    params = make_params(h, w, limit, lineup, start, walls)
    names = tuple(f"{team}_{k}" for team in TEAM_NAMES for k in range(n))
    planes = (
        "walls", "self", "turn_order", "allies_hp", *(f"enemy_{k}_hp" for k in range(n)),
        *(f"{name}s" for name, *_ in KINDS.values()), "enemy_reach", "ally_reach", "turns_left",
    )  # fmt: skip
    actions = tuple(action_to_text(params, a) for a in range(ATTACK + n))
    action_perms = np.stack([np.arange(ATTACK + n), np.arange(ATTACK + n)]).astype(np.int64)
    action_perms[1, [RIGHT, LEFT]] = LEFT, RIGHT
    return Game(
        name="arena",
        version=VERSION,
        options={"lineup": lineup, "map": map, "turn_limit": limit},
        num_players=2,
        num_actions=ATTACK + n,
        obs_shape=(len(planes), h, w),
        state_size=2 + 4 * n,
        max_length=limit,
        params=params,
        obs_perms=dihedral_perms(h, w)[:2],  # identity, left-right mirror
        action_perms=action_perms,
        **rules_from(vars(arena_rules)),
        render_text_fn=render_text,
        action_to_text_fn=action_to_text,
        text_to_action_fn=text_to_action,
        agent_names=names,
        agent_players=tuple(i // n for i in range(2 * n)),
        description=(
            f"Arena on {map} ({h}x{w}): red vs blue, {n} units each ({lineup}), "
            f"{limit} unit-turns; wipe out the enemy or end with more HP."
        ),
        draw_fn=draw,
        action_cells_fn=action_cells,
        extra={
            "player_colours": TEAM_COLOURS,
            "player_names": TEAM_NAMES,
            "plane_names": planes,
            "action_names": actions,
            "kinds": {letter: dict(zip(("name", "hp", "damage", "range"), v)) for letter, v in KINDS.items()},
            # (row, col) step of forward, right, back, left for each team, row 0 on top
            "move_deltas": np.stack([np.stack([DROW, DCOL], 1), -np.stack([DROW, DCOL], 1)]),
            # name -> games.arena_scripts.Script: the NPC logic a game ships today, as agents
            "scripts": SCRIPTS,
            # scripts no league's pool contains (`scripts all` neither): a generalisation check
            "held_out_scripts": HELD_OUT,
        },
    )
