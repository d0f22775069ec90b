"""What a game's observation and actions mean, in words, for the manifest.

:func:`describe_game` turns a ``games.Game`` into the manifest's ``game``, ``observation`` and
``actions`` sections. The plane names and meanings restate each game module's encoding
docstring (``games/connect4.py`` and the others); a game that names its planes itself
(``game.extra["plane_names"]``, the arena) is checked against this table, so a renamed or added
plane fails the export instead of shipping a stale description. An unknown game (an external
PettingZoo game) still exports, with planes named ``plane_0``, ``plane_1``... and a note.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PLANES", "describe_game"]

_MOVER = "the player to move"

#: game name -> [(plane name, meaning)], in plane order. The arena's depend on its lineup: see
#: :func:`_arena_planes`.
PLANES: dict[str, list[tuple[str, str]]] = {
    "tictactoe": [
        ("own_marks", f"1 on each cell holding a mark of {_MOVER}, else 0"),
        ("opponent_marks", "1 on each cell holding a mark of the opponent, else 0"),
    ],
    "connect4": [
        ("own_discs", f"1 on each cell holding a disc of {_MOVER}, else 0"),
        ("opponent_discs", "1 on each cell holding a disc of the opponent, else 0"),
    ],
    "othello": [
        ("own_discs", f"1 on each cell holding a disc of {_MOVER}, else 0"),
        ("opponent_discs", "1 on each cell holding a disc of the opponent, else 0"),
        ("own_moves", f"1 on each cell where a disc of {_MOVER} would flip at least one opponent disc (its legal placements)"),
    ],
    "gomoku": [
        ("own_stones", f"1 on each cell holding a stone of {_MOVER}, else 0"),
        ("opponent_stones", "1 on each cell holding a stone of the opponent, else 0"),
    ],
}

_ROWS = {
    "tictactoe": "row 0 is the top row, column 0 the leftmost (cell a1 is row 0, column 0)",
    "connect4": "row 0 is the TOP row of the board as displayed (discs fall towards row H-1), column 0 the leftmost",
    "othello": "row 0 is the top row, column 0 the leftmost (cell a1 is row 0, column 0)",
    "gomoku": "row 0 is the top row, column 0 the leftmost (cell a1 is row 0, column 0)",
    "arena": (
        "the acting unit's frame: a red unit sees the board as stored (row 0 on top); a blue unit sees it turned "
        "by a half turn (board cell (r, c) at (H-1-r, W-1-c)), so every unit sees its own team start at the bottom"
    ),
}


def _arena_planes(n: int) -> list[tuple[str, str]]:
    """The arena's planes for ``n`` units a team (``games/arena_rules.py``'s encoding docstring)."""
    return [
        ("walls", "1 on wall cells"),
        ("self", "1 on the acting unit's cell"),
        ("turn_order", "(2N - d) / 2N on each living unit, d = unit-turns until it acts (the acting unit 1)"),
        ("allies_hp", "hp / 10 on the acting unit and each living teammate"),
        *((f"enemy_{k}_hp", f"hp / 10 on enemy slot {k} (the target of action 'attack {k}')") for k in range(n)),
        ("fighters", "1 on every living fighter, both teams"),
        ("archers", "1 on every living archer, both teams"),
        ("enemy_reach", "min(1, total damage / 10 of the living enemies that can hit the cell from where they stand)"),
        ("ally_reach", "the same for the acting unit's team, the acting unit included"),
        ("turns_left", "(turn_limit - turn) / turn_limit on every cell"),
    ]


def _planes(game: Any) -> tuple[list[tuple[str, str]], str | None]:
    """[(name, meaning)] per plane, and a note when the meanings are not known."""
    channels = int(game.obs_shape[0])
    if game.name == "arena":
        known = _arena_planes(channels - 9)
    else:
        known = PLANES.get(game.name)
    named = tuple(game.extra.get("plane_names", ()) or ())
    if known is not None and named and tuple(name for name, _ in known) != named:
        raise ValueError(
            f"{game.name}: the game names its planes {list(named)}, the export describes "
            f"{[name for name, _ in known]}: update export/encoding.py"
        )
    if known is not None and len(known) != channels:
        raise ValueError(f"{game.name}: the export describes {len(known)} planes, the game encodes {channels}: update export/encoding.py")
    if known is not None:
        return known, None
    names = named or tuple(f"plane_{c}" for c in range(channels))
    note = f"the meaning of each plane is not described here: read {game.name}'s encode"
    return [(name, "") for name in names], note


def describe_game(game: Any) -> dict[str, Any]:
    """``{"game", "observation", "actions"}`` sections of the manifest for ``game`` (a
    ``games.Game``): version tag and options, the planes in order with what each feature
    means, how a feature index maps to (plane, row, column), and the action table."""
    channels, height, width = (int(d) for d in game.obs_shape)
    planes, note = _planes(game)
    observation: dict[str, Any] = {
        "dtype": "float32",
        "shape": [channels, height, width],
        "size": channels * height * width,
        "layout": "planes flattened row-major: feature index = plane * H * W + row * W + column",
        "point_of_view": (
            "the player (in the arena: the unit) to move: 'own' planes are the mover's, so one network plays both sides"
        ),
        "rows": _ROWS.get(game.name, "row 0 on top, column 0 leftmost"),
        "planes": [
            {"index": c, "name": name, "meaning": meaning, "offset": c * height * width}
            for c, (name, meaning) in enumerate(planes)
        ],
        "encoder": f"games.make({game.name!r}, **options).encode(state)",
    }
    if note:
        observation["note"] = note
    return {
        "game": {
            "name": game.name,
            "version": int(game.version),
            "tag": game.version_tag,
            "options": _plain(dict(game.options)),
            "description": game.description,
            "agents": list(game.agent_names),
        },
        "observation": observation,
        "actions": {
            "count": int(game.num_actions),
            "table": [{"index": a, "text": game.action_to_text(a)} for a in range(game.num_actions)],
            "mask": "float32, 1.0 = legal, 0.0 = illegal, in table order; at least one legal action per row",
        },
    }


def _plain(options: dict[str, Any]) -> dict[str, Any]:
    """Options as JSON values (numbers, strings, booleans), others as strings."""
    return {k: v if isinstance(v, (bool, int, float, str)) or v is None else str(v) for k, v in options.items()}
