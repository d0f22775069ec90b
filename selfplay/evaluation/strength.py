"""``selfplay bench strength connect4 --checkpoint C``: how often the agent's move throws away a
better game-theoretic result, judged by our perfect solver (``games.connect4_solver``).

AlphaZero.jl reports this on Pascal Pons' test positions. Here, positions come from varied
play (careless to expert, see ``benchmark_positions``), bucketed by stage: ``beginning`` (up to
14 moves played), ``middle`` (15-28) and ``end`` (more). A move is an **error** when another
legal move has a strictly better outcome (win > draw > loss). Each stage's error rate is given
for the raw network (the legal move with the highest logit), for the network with search
(``visits`` simulations per move) and, with ``value=True``, for the value head one ply deeper
(the move whose child position the value rates best: the value's own strength, apart from the
policy), with a 95% Wilson interval.

Answering the beginning positions is the solver's slowest work, so the answered positions are
cached in a JSON file, keyed by count, seed and board, and reused. The default set
(7x6, 50 per stage, seed 0) ships with selfplay in ``selfplay/data``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

import games
from games.connect4_benchmark import STAGES, BenchmarkPosition, benchmark_positions
from games.connect4_solver import outcome_is_error

from .agents import NetworkAgent
from ..model.checkpoint import atomic_write
from .elo import wilson_interval

__all__ = ["OnePlyValue", "StrengthError", "error_rates", "format_report", "load_positions"]


class StrengthError(games.GameError):
    """Bad input to the strength benchmark."""


#: Positions shipped with selfplay (7x6, 50 per stage, seeds 0, 1 and 2: the default set and the
#: two more the final report of ``make train`` measures), answered once by ``load_positions`` and
#: copied here, so a fresh install does not spend minutes solving them.
PACKAGED = Path(__file__).parent.parent / "data"


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "selfplay"


def load_positions(
    game: games.Game, per_stage: int, seed: int = 0, cache: Path | None = None, progress: bool = False
) -> dict[str, list[BenchmarkPosition]]:
    """Benchmark positions for ``game`` (connect4 of any size), answered by the solver; read from
    the cache file when present, else made and written there atomically."""
    if game.name != "connect4":
        raise StrengthError(f"the strength benchmark needs the connect4 solver; {game.name} has none")
    width, height = int(game.options["width"]), int(game.options["height"])
    name = f"connect4-{width}x{height}-n{per_stage}-seed{seed}.json"
    path = (cache or _cache_dir()) / name
    for known in (PACKAGED / name, path):
        if known.exists():
            try:
                data = json.loads(known.read_text())
                return {
                    stage: [BenchmarkPosition(tuple(p["moves"]), np.array(p["outcomes"], np.int8)) for p in rows]
                    for stage, rows in data["stages"].items()
                }
            except (OSError, ValueError, KeyError, TypeError):
                pass  # a damaged cache is remade below
    if progress:
        print(f"answering {per_stage} positions per stage with the solver (cached in {path})...", file=sys.stderr)
    stages = benchmark_positions(per_stage, seed=seed, width=width, height=height)
    record = {
        "width": width,
        "height": height,
        "seed": seed,
        "stages": {
            stage: [{"moves": list(p.moves), "outcomes": p.outcomes.tolist()} for p in rows] for stage, rows in stages.items()
        },
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as f:
        f.write(json.dumps(record).encode())
    return stages


def _wilson(errors: int, n: int) -> tuple[float, float]:
    low, high = wilson_interval(errors, n)
    return float(low), float(high)


class OnePlyValue:
    """The move whose child position ``evaluator``'s value rates best for the mover (a finished
    game's child scored by its result): the value head as a player, without the policy."""

    def __init__(self, game: games.Game, evaluator: Any) -> None:
        self.game, self.evaluator = game, evaluator

    def act(self, states: np.ndarray, move_numbers: np.ndarray, rng_seed: Any) -> np.ndarray:
        """int64[G]: each state's move (ties: the lowest index)."""
        game = self.game
        scores = []  # float64[A] per state: each move's worth for the state's mover (-inf: illegal)
        children, where = [], []  # the unfinished children, and (state, action, same mover) of each
        for g, state in enumerate(states):
            q = np.full(game.num_actions, -np.inf)
            mover = game.to_play(state)
            for a in np.flatnonzero(game.legal_mask(state)):
                child = game.next_state(state, int(a))
                if game.is_terminal(child):
                    q[a] = float(game.returns(child)[mover])
                else:
                    children.append(child)
                    where.append((g, int(a), game.to_play(child) == mover))
            scores.append(q)
        if children:
            obs = np.stack([game.encode(c) for c in children]).astype(np.float32)
            masks = np.stack([game.legal_mask(c) for c in children])
            _, values = self.evaluator(obs, masks)  # float32[N]: each child from its own mover's view
            for (g, a, same), v in zip(where, np.asarray(values, np.float64).reshape(-1)):
                scores[g][a] = v if same else -v
        return np.array([int(np.argmax(q)) for q in scores], np.int64)


def error_rates(
    game: games.Game, evaluator: Any, positions: dict[str, list[BenchmarkPosition]], visits: int = 200, seed: int = 0,
    config: Any = None, value: bool = False,
) -> dict[str, Any]:
    """Error rates by stage for the raw network (``raw``), with ``visits`` simulations
    (``search``, with ``config``, default :func:`.agents.network_search_config`) and, with
    ``value``, for the value one ply deeper (``value``, :class:`OnePlyValue`):
    ``{"raw": {stage: {"rate", "errors", "positions", "ci95"}, ..., "all": ...}, ...}``."""
    players: dict[str, Any] = {"raw": NetworkAgent(game, evaluator, 0, name="raw")}
    if value:
        players["value"] = OnePlyValue(game, evaluator)
    if visits > 0:
        players["search"] = NetworkAgent(game, evaluator, visits, config=config, name=f"search@{visits}")
    report: dict[str, Any] = {"visits": visits, "positions": {s: len(p) for s, p in positions.items()}}
    for label, agent in players.items():
        rows: dict[str, Any] = {}
        total_errors = total = 0
        for stage in STAGES:
            batch = positions.get(stage, [])
            if not batch:
                continue
            states = np.stack([game.play(p.moves) for p in batch])
            moves = np.array([len(p.moves) for p in batch], np.int64)
            actions = agent.act(states, moves, seed)
            errors = sum(outcome_is_error(p.outcomes, int(a)) for p, a in zip(batch, actions))
            rows[stage] = {"rate": errors / len(batch), "errors": errors, "positions": len(batch), "ci95": _wilson(errors, len(batch))}
            total_errors, total = total_errors + errors, total + len(batch)
        rows["all"] = {"rate": total_errors / max(total, 1), "errors": total_errors, "positions": total, "ci95": _wilson(total_errors, total)}
        report[label] = rows
    return report


def format_report(report: dict[str, Any]) -> str:
    stages = [s for s in (*STAGES, "all") if s in report["raw"]]
    lines = [f"{'error rate':<14}" + "".join(f"{s:>20}" for s in stages)]
    names = {"raw": "raw network", "value": "value, 1 ply", "search": f"{report['visits']} visits"}
    for label, name in names.items():
        if label in report:
            cells = []
            for s in stages:
                row = report[label][s]
                cells.append(f"{100 * row['rate']:6.1f}% ({row['errors']}/{row['positions']})")
            lines.append(f"{name:<14}" + "".join(f"{c:>20}" for c in cells))
    return "\n".join(lines)
