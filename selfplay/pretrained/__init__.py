"""Brains shipped in the package, so a fresh install has a strong opponent before any training.

Each subdirectory is one exported brain (``export``: ``brain.onnx`` and ``brain.json``, with a
value output so it can search) and its model card ``card.json``::

    {"name": "connect4", "summary": "...",
     "reproduce": ["selfplay train connect4 ...", "selfplay pretrained make connect4 RUN ..."],
     "training": {"minutes", "machine", "generations", "games", "positions", "checkpoint"},
     "search": {"visits", and the search settings every command loads the brain with},
     "strength": {"seed": the matches' seed,
                  "matches": [{"opponent", "visits", "games", "wins", "draws", "losses", "score",
                               "ci95", "elo_diff", "elo_ci95", "opening_moves"}, ...],
                  "solver": {...} (Connect Four only: ``selfplay bench strength``'s report)},
     "exploitability": {"minutes", "seed", "generations", "visits", "games", "search": {W/D/L,
                        "score", "ci95"}, "raw": {...}, "command"} (``selfplay pretrained exploit``),
     "bytes": size of brain.onnx}

A **ladder** (``"kind": "ladder"`` on its card) is a difficulty ladder from one league: levels
``level_1/`` (the weakest) to ``level_N/``, each an exported brain, beside ``ladder.json`` (the
index ``selfplay play --agent DIR --level K`` reads) and ONE card for all of them::

    {"name": "arena_ladder", "kind": "ladder", "summary", "reproduce", "training",
     "search", "seed", "opening_moves", "start_level": the level ``selfplay play`` opens at,
     "min_step_score": what each level must score against the one below,
     "levels": [{"level", "brain": "level_1", "player", "visits", "elo", "league_elo",
                 "vs_below": {"games", "wins", "draws", "losses", "score", "ci95", "elo_diff"},
                 "strength": {"matches": [...]}, "bytes"}, ...],
     "bytes": all levels together}

``elo`` chains the measured steps (level 1 at 0, each level the one below plus the Elo of its
score against it, each side at its own visits); ``league_elo`` is the league's rating.

``selfplay pretrained make`` / ``make-ladder`` write a directory from a checkpoint / a league
and measure the card's figures (``selfplay.tools.pretrained_cmd``); nothing in a card is typed
by hand.

* :func:`shipped`: every brain and ladder in the package, as :class:`Pretrained`.
* :func:`for_game`: the brain for one game and its options (``pretrained`` as an agent spec,
  and the default opponent of ``selfplay play``), or None.
* :func:`ladder_for_game`: the ladder for one game and its options (``selfplay play GAME``
  opens at its ``start_level`` when one ships), or None.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

__all__ = ["BRAIN", "CARD_FILE", "CARD_SEARCH", "HERE", "LADDER", "Pretrained", "PretrainedError", "card_search", "for_game",
           "ladder_for_game", "shipped", "variants", "worst_match"]

HERE = Path(__file__).resolve().parent
CARD_FILE = "card.json"
BRAIN, LADDER = "brain", "ladder"  # the kinds of shipped directory


class PretrainedError(ValueError):
    """A shipped brain is missing or damaged (one line)."""


@dataclass(frozen=True)
class Pretrained:
    """One shipped brain or ladder: its directory, the game it plays and its model card."""

    name: str  # the directory's name
    path: Path  # the brain directory (brain.onnx, brain.json, card.json), or the ladder's
    game: str  # the game's registry name
    options: Mapping[str, Any]  # the game options it was trained with (defaults filled in)
    tag: str  # the game's version tag: a brain for another version is not offered
    card: Mapping[str, Any]
    kind: str = BRAIN  # BRAIN or LADDER

    def plays(self, game: Any) -> bool:
        """Whether this brain was trained for ``game`` (a ``games.Game``): same name, version
        and options."""
        return game.name == self.game and game.version_tag == self.tag and dict(game.options) == dict(self.options)

    def describe(self) -> str:
        """One line: name, game, training and the headline figures: for a brain the last two
        matches with search, the worst opponent's score and the exploitability; for a ladder
        its levels' Elo and visits and the weakest step."""
        opts = ",".join(f"{k}={v}" for k, v in self.options.items())
        head = f"{self.name:<10} {self.game}({opts}):"
        if self.kind == LADDER:
            return f"{head} {_describe_ladder(self.card)}"
        training = self.card.get("training", {})
        matches = self.card.get("strength", {}).get("matches", [])
        searched = [m for m in matches if m.get("visits")]
        figures = ", ".join(f"{100 * m['score']:.1f}% vs {m['opponent']}" for m in searched[-2:])
        visits = f" at {searched[-1]['visits']} visits" if searched else ""
        minutes = training.get("minutes")
        trained = f"{minutes:g} min on {training.get('machine', '?')}" if isinstance(minutes, (int, float)) else "?"
        worst = worst_match(self.card)
        line = f"{head} trained {trained}; {figures or 'not measured'}{visits}"
        line += f"; worst {100 * worst['score']:.1f}% vs {worst['opponent']}" if worst else ""
        return line + f"; {_describe_exploitability(self.card)}"


def worst_match(card: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The card's match with search (visits > 0) with the lowest score: the opponent a game
    developer judges the brain by; None when none was measured."""
    searched = [m for m in card.get("strength", {}).get("matches", []) if m.get("visits")]
    return min(searched, key=lambda m: m["score"]) if searched else None


def _describe_exploitability(card: Mapping[str, Any]) -> str:
    found = card.get("exploitability")
    if not found:
        return "exploitability not measured"
    budget = f"{found['minutes']:g}-minute" if found.get("minutes") else f"{found.get('generations')}-generation"
    return (f"exploitability {100 * found['search']['score']:.1f}% ({found['search']['wins']}/{found['search']['draws']}/"
            f"{found['search']['losses']}, a {budget} exploiter at {found.get('visits')} visits)")


def _describe_ladder(card: Mapping[str, Any]) -> str:
    levels = card.get("levels", [])
    if not levels:
        return "an empty ladder"
    elos = " ".join(f"{e['elo']:.0f}" if isinstance(e.get("elo"), (int, float)) else "?" for e in levels)
    visits = sorted({e.get("visits") for e in levels}, key=lambda v: (v is None, v))
    steps = [e["vs_below"] for e in levels[1:] if e.get("vs_below")]
    weakest = min(steps, key=lambda v: v["score"]) if steps else None
    text = f"a ladder of {len(levels)} levels, Elo {elos} at {'/'.join(map(str, visits))} visits"
    if weakest:
        text += f"; the weakest step {100 * weakest['score']:.1f}% in {weakest['games']} games"
    return text + f"; opens at level {card.get('start_level', 1)}"


def _read(path: Path) -> Pretrained:
    from export.contract import BrainError, read_manifest

    try:
        card = json.loads((path / CARD_FILE).read_text())
        if not isinstance(card, dict):
            raise PretrainedError(f"shipped brain {path.name}: {CARD_FILE} is not a JSON object")
        kind = card.get("kind", BRAIN)
        if kind == LADDER:
            levels = card.get("levels")
            if not isinstance(levels, list) or not levels or not all(isinstance(e, dict) and "brain" in e for e in levels):
                raise PretrainedError(f"shipped ladder {path.name}: its card lists no levels")
            manifest = read_manifest(path / str(levels[0]["brain"]))
        elif kind == BRAIN:
            manifest = read_manifest(path)
        else:
            raise PretrainedError(f"shipped brain {path.name}: unknown kind {kind!r} on its card")
    except (OSError, ValueError, BrainError) as e:
        if isinstance(e, PretrainedError):
            raise
        raise PretrainedError(f"shipped brain {path.name}: {e}") from None
    info = manifest.game
    return Pretrained(path.name, path, str(info["name"]), dict(info.get("options") or {}), str(info["tag"]), card, kind)


def shipped(root: Path | None = None) -> list[Pretrained]:
    """Every brain and ladder under ``root`` (default: this package), sorted by name. A
    directory without ``card.json`` is not shipped; a damaged one raises :class:`PretrainedError`."""
    root = HERE if root is None else Path(root)
    return [_read(p) for p in sorted(root.iterdir()) if p.is_dir() and (p / CARD_FILE).is_file()]


def for_game(game: Any, root: Path | None = None) -> Pretrained | None:
    """The shipped brain that plays ``game`` (a ``games.Game``, options included), or None."""
    return next((p for p in shipped(root) if p.kind == BRAIN and p.plays(game)), None)


def ladder_for_game(game: Any, root: Path | None = None) -> Pretrained | None:
    """The shipped ladder that plays ``game`` (options included), or None."""
    return next((p for p in shipped(root) if p.kind == LADDER and p.plays(game)), None)


def variants(game_name: str, root: Path | None = None) -> list[Pretrained]:
    """The shipped brains for any options of the game ``game_name`` (6x6 Othello for ``othello``)."""
    return [p for p in shipped(root) if p.kind == BRAIN and p.game == game_name]


#: The search settings a card may name (``SearchConfig`` fields), beside the visits.
CARD_SEARCH = ("root_policy", "c_init", "fpu", "fpu_value", "gumbel_rescale", "gumbel_c_visit", "gumbel_c_scale")


def card_search(path: str | Path) -> dict[str, Any]:
    """The search settings (``SearchConfig`` fields of :data:`CARD_SEARCH`) that the model card
    beside a brain (its directory, or the ``.onnx`` file in it; for a level of a shipped ladder,
    the ladder's card) says its figures were measured with; ``{}`` without a card (the default
    search)."""
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    card = folder / CARD_FILE
    if not card.is_file() and (folder.parent / CARD_FILE).is_file():
        card = folder.parent / CARD_FILE  # a level of a shipped ladder: the ladder's one card
    try:
        search = json.loads(card.read_text()).get("search", {})
    except (OSError, ValueError, AttributeError):
        return {}
    return {k: v for k, v in search.items() if k in CARD_SEARCH} if isinstance(search, dict) else {}
