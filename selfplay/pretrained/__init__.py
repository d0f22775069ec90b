"""Brains shipped in the package, so a fresh install has a strong opponent before any training.

Each subdirectory is one exported brain (``export``: ``brain.onnx`` and ``brain.json``, with a
value output so it can search) and its model card ``card.json``::

    {"name": "connect4", "summary": "...",
     "reproduce": ["selfplay train connect4 ...", "selfplay pretrained make connect4 RUN ..."],
     "training": {"minutes", "machine", "generations", "games", "positions", "checkpoint"},
     "strength": {"matches": [{"opponent", "visits", "games", "wins", "draws", "losses", "score",
                               "ci95", "elo_diff", "elo_ci95"}, ...],
                  "solver": {...} (Connect Four only: ``selfplay bench strength``'s report)},
     "bytes": size of brain.onnx}

``selfplay pretrained make`` writes a directory from a checkpoint and measures the card's
figures (``selfplay.tools.pretrained_cmd``); nothing in a card is typed by hand.

* :func:`shipped`: every brain in the package, as :class:`Pretrained`.
* :func:`for_game`: the brain for one game and its options (``pretrained`` as an agent spec,
  and the default opponent of ``selfplay play``), or None.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

__all__ = ["CARD_FILE", "HERE", "Pretrained", "PretrainedError", "CARD_SEARCH", "card_search", "for_game", "shipped", "variants"]

HERE = Path(__file__).resolve().parent
CARD_FILE = "card.json"


class PretrainedError(ValueError):
    """A shipped brain is missing or damaged (one line)."""


@dataclass(frozen=True)
class Pretrained:
    """One shipped brain: its directory, the game it plays and its model card."""

    name: str  # the directory's name
    path: Path  # the brain directory (brain.onnx, brain.json, card.json)
    game: str  # the game's registry name
    options: Mapping[str, Any]  # the game options it was trained with (defaults filled in)
    tag: str  # the game's version tag: a brain for another version is not offered
    card: Mapping[str, Any]

    def plays(self, game: Any) -> bool:
        """Whether this brain was trained for ``game`` (a ``games.Game``): same name, version
        and options."""
        return game.name == self.game and game.version_tag == self.tag and dict(game.options) == dict(self.options)

    def describe(self) -> str:
        """One line: name, game, training and the headline figures."""
        opts = ",".join(f"{k}={v}" for k, v in self.options.items())
        training = self.card.get("training", {})
        matches = self.card.get("strength", {}).get("matches", [])
        searched = [m for m in matches if m.get("visits")]
        figures = ", ".join(f"{100 * m['score']:.1f}% vs {m['opponent']}" for m in searched[-2:])
        visits = f" at {searched[-1]['visits']} visits" if searched else ""
        minutes = training.get("minutes")
        trained = f"{minutes:g} min on {training.get('machine', '?')}" if isinstance(minutes, (int, float)) else "?"
        return f"{self.name:<10} {self.game}({opts}): trained {trained}; {figures or 'not measured'}{visits}"


def _read(path: Path) -> Pretrained:
    from export.contract import BrainError, read_manifest

    try:
        manifest = read_manifest(path)
        card = json.loads((path / CARD_FILE).read_text())
    except (OSError, ValueError, BrainError) as e:
        raise PretrainedError(f"shipped brain {path.name}: {e}") from None
    if not isinstance(card, dict):
        raise PretrainedError(f"shipped brain {path.name}: {CARD_FILE} is not a JSON object")
    info = manifest.game
    return Pretrained(path.name, path, str(info["name"]), dict(info.get("options") or {}), str(info["tag"]), card)


def shipped(root: Path | None = None) -> list[Pretrained]:
    """Every brain under ``root`` (default: this package), sorted by name. A directory without
    ``card.json`` is not a shipped brain; a damaged one raises :class:`PretrainedError`."""
    root = HERE if root is None else Path(root)
    return [_read(p) for p in sorted(root.iterdir()) if p.is_dir() and (p / CARD_FILE).is_file()]


def for_game(game: Any, root: Path | None = None) -> Pretrained | None:
    """The shipped brain that plays ``game`` (a ``games.Game``, options included), or None."""
    return next((p for p in shipped(root) if p.plays(game)), None)


def variants(game_name: str, root: Path | None = None) -> list[Pretrained]:
    """The shipped brains for any options of the game ``game_name`` (6x6 Othello for ``othello``)."""
    return [p for p in shipped(root) if p.game == game_name]


#: The search settings a card may name (``SearchConfig`` fields), beside the visits.
CARD_SEARCH = ("root_policy", "c_init", "fpu", "fpu_value", "gumbel_rescale", "gumbel_c_visit", "gumbel_c_scale")


def card_search(path: str | Path) -> dict[str, Any]:
    """The search settings (``SearchConfig`` fields of :data:`CARD_SEARCH`) that the model card
    beside a brain (its directory, or the ``.onnx`` file in it) says its figures were measured
    with; ``{}`` without a card (the default search)."""
    path = Path(path)
    card = (path if path.is_dir() else path.parent) / CARD_FILE
    try:
        search = json.loads(card.read_text()).get("search", {})
    except (OSError, ValueError, AttributeError):
        return {}
    return {k: v for k, v in search.items() if k in CARD_SEARCH} if isinstance(search, dict) else {}
