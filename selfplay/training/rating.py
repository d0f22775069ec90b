"""Rating a run's networks while it trains, and its final report.

Every ``eval.every`` generations, :meth:`Ratings.rate` plays the new network against the fixed
baselines (``eval.opponents``), the latest rated generations (``eval.previous``) and, with
``eval.milestones``, the checkpoints kept at minute marks; Elo comes from Bradley-Terry over all
games so far (selfplay.evaluation.ratings.RatingTable, saved to ``ratings.json``). In Connect Four
runs with ``eval.solver_positions``, it also measures how often the network throws away a better
result, judged by the perfect solver. After the budget, :meth:`Ratings.final_report` plays the
final network against ``eval.final_opponents`` and writes ``final.json``.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from games.core import Game

from ..config import TrainConfig
from .state import FINAL_FILE, RATINGS_FILE, RunState
from .weights import evaluator_from_weights, export_weights

__all__ = ["Ratings"]

#: Positions each rated network's evaluation cache keeps (search.cache; 2.6 MB on Connect Four).
RATING_CACHE = 65_536
#: The final report's cache, larger: its 200-visit searches over 200 games at once fill a small
#: one in a move or two. Up to 2**20 positions in at most 64 MiB (Connect Four: 2**20, 40 MiB;
#: make train's final matches 8% faster than with 65,536).
FINAL_CACHE_BYTES = 64 << 20


class Ratings:
    """The rating matches of one run: its :attr:`table` of every match, and the networks its
    next ratings play (recently rated generations, milestones), kept as weights."""

    def __init__(self, game: Game, config: TrainConfig, run_dir: Path, device: str, cores: int,
                 log: Callable[[str], None], table: Any) -> None:
        self.game = game
        self.config = config
        self.run_dir = run_dir
        self.device = device
        self.cores = cores
        self.log = log
        self.table = table  # selfplay.evaluation.ratings.RatingTable
        self.rated_weights: dict[int, Any] = {}  # generation -> Weights of recently rated networks
        self._milestones: dict[int, Any] = {}  # generation -> Weights of a checkpoint kept at a minute mark
        self._solver_positions: list[dict] = []  # connect4 benchmark positions by set, each loaded when first needed

    def rate(self, generation: int, weights: Any, state: RunState) -> tuple[dict[str, float], dict[str, float]]:
        """Matches of ``generation`` (playing ``weights``) against the baselines and the latest
        rated generations, recorded in ``state.rated``; returns (``{"elo", "elo_lo", "elo_hi"}``,
        ``{opponent: score}``)."""
        from ..evaluation.agents import load_agent

        config = self.config.eval
        me = self._network_agent(weights, config.visits, f"gen{generation}")
        opponents = [load_agent(spec, self.game) for spec in config.opponent_specs]
        recent = sorted(self.rated_weights)[-config.previous:] if config.previous else []
        for old in recent:
            opponents.append(self._network_agent(self.rated_weights[old], config.visits, f"gen{old}"))
        for old in state.milestones if config.milestones else []:
            if old not in recent and old != generation:
                opponents.append(self._network_agent(self._milestone_weights(old), config.visits, f"gen{old}"))
        scores = {}
        for k, result in enumerate(self._matches(me, opponents, config.games, [generation, 2])):
            self.table.add(result, generation=generation)
            if k < len(config.opponent_specs):
                scores[config.opponent_specs[k]] = result.score
        self.rated_weights[generation] = weights
        for old in sorted(self.rated_weights)[: -max(config.previous, 1)]:
            del self.rated_weights[old]
        state.rated.append(generation)
        self.table.save(self.run_dir / RATINGS_FILE)
        ratings, intervals = self.table.ratings(), self.table.intervals()
        name = f"gen{generation}"
        lo, hi = intervals.get(name, (math.nan, math.nan))
        rating = {"elo": ratings.get(name, math.nan), "elo_lo": lo, "elo_hi": hi}
        if config.solver_positions and self.game.name == "connect4":
            rating.update(self._solver_errors(me.evaluator))
        return rating, scores

    def final_report(self, generation: int, weights: Callable[[], Any]) -> list[dict[str, Any]]:
        """Matches of ``generation`` (playing ``weights()``, asked for only when there are final
        matches) against ``eval.final_opponents``, printed and saved to ``final.json``; the
        results as dicts.

        The matches and, in Connect Four, the solver's error rates run side by side, one thread
        per core: the rates start on the core of the first match to end instead of after the
        last one (make train: 64 s -> 52 s)."""
        from concurrent.futures import ThreadPoolExecutor

        from ..evaluation.agents import load_agent

        config = self.config.eval
        if not config.final_games or not config.final_opponent_specs:
            return []
        name = f"gen{generation}@{config.final_visits}"
        from search.cache import EvaluationCache

        cache = EvaluationCache.within(FINAL_CACHE_BYTES, self.game.num_actions)
        me = self._network_agent(weights(), config.final_visits, name, cache=cache)
        self.log(f"final strength of generation {generation} ({config.final_visits} visits per move), "
                 f"{config.final_games} games against each opponent:")
        start = time.monotonic()
        opponents = [load_agent(spec, self.game) for spec in config.final_opponent_specs]
        solver = config.solver_positions and self.game.name == "connect4"
        positions = self._benchmark_positions(config.solver_sets) if solver else None
        with ThreadPoolExecutor(max_workers=max(1, self.cores)) as pool:
            matches = [pool.submit(self._match, me, opponent, config.final_games, [generation, 3, k])
                       for k, opponent in enumerate(opponents)]
            if solver:
                from ..evaluation.strength import error_rates

                rates = pool.submit(error_rates, self.game, me.evaluator, positions, config.final_visits,
                                    seed=0, config=me.config)
            results = []
            for match in matches:
                result = match.result()
                self.log("  " + result.summary())
                results.append({k: v for k, v in result.to_dict().items() if k != "records"})
            final: dict[str, Any] = {"generation": generation, "visits": config.final_visits, "matches": results}
            if solver:
                from ..evaluation.strength import format_report

                final["solver"] = rates.result()
                self.log("  error rates against the perfect solver (moves that throw away a better result):")
                for line in format_report(final["solver"]).splitlines():
                    self.log("    " + line)
        self.log(f"  ({time.monotonic() - start:.0f} s)")
        from ..model.checkpoint import atomic_write

        with atomic_write(self.run_dir / FINAL_FILE) as f:
            f.write(json.dumps(final, indent=1).encode())
        return results

    def reload(self, rated: list[int], model: Any, export: Callable[[], Any]) -> None:
        """After a resume: the weights of the latest of the ``rated`` generations still on disk,
        each loaded into ``model`` and made into weights by ``export()``; ``model`` is put back
        as it was."""
        from ..model.checkpoint import CheckpointError, list_checkpoints, load_checkpoint

        wanted = set(rated[-max(self.config.eval.previous, 1):])
        saved_model = {k: v.clone() for k, v in model.state_dict().items()}
        for sidecar in list_checkpoints(self.run_dir):
            step = int(sidecar.stem.split("-")[1])
            if step in wanted:
                try:
                    model.load_state_dict(load_checkpoint(sidecar, expect_game=self.game).model_state)
                except CheckpointError:
                    continue
                self.rated_weights[step] = export()
        model.load_state_dict(saved_model)

    # ------------------------------------------------------------------ pieces
    def _network_agent(self, weights: Any, visits: int, name: str, cache: Any = None):
        from ..evaluation.agents import NetworkAgent, trained_search_config

        from search.cache import EvaluationCache

        # one thread: rating batches are small, and idle spinning threads only contend. The
        # cache (default: RATING_CACHE positions): a match searches without reusing its trees,
        # so each move's search meets the previous one's positions again; the opponents'
        # threads share it.
        cache = EvaluationCache(RATING_CACHE) if cache is None else cache
        evaluator = cache.wrap(evaluator_from_weights(weights, self.game, self.device, threads=1))
        search = None
        if visits:  # the self-play search made deterministic: no noise, the best move; the same solver setting
            search = trained_search_config(visits, self.config.search)
        return NetworkAgent(self.game, evaluator, visits, config=search, name=name)

    def _milestone_weights(self, generation: int):
        """The float32 network of the checkpoint kept at a minute mark, exported once."""
        if generation not in self._milestones:
            from ..model.checkpoint import load_checkpoint

            model = load_checkpoint(self.run_dir / f"ckpt-{generation:06d}.json", expect_game=self.game).build_model()
            self._milestones[generation] = export_weights(model, self.game, "cpu", "onnx")
        return self._milestones[generation]

    def _matches(self, me, opponents: list, games_each: int, seed_key: list[int]) -> list:
        """:meth:`_match` of ``me`` against every opponent, one thread per core (the search
        kernels and onnxruntime release the GIL), results in the opponents' order."""
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=max(1, min(self.cores, len(opponents)))) as pool:
            return list(pool.map(lambda k: self._match(me, opponents[k], games_each, [*seed_key, k]), range(len(opponents))))

    def _match(self, me, opponent, games: int, seed_key: list[int]):
        """``play_match(me, opponent)``: ``games`` games, all of them, every game in one batch,
        seeded by the run's seed and ``seed_key``."""
        from ..evaluation.matches import play_match

        seed = int(np.random.SeedSequence([self.config.run.seed, *seed_key]).generate_state(1)[0])
        return play_match(self.game, me, opponent, games, seed=seed, opening_moves=self.config.eval.opening_moves,
                          batch_size=games, stop_when_decided=False)

    def _solver_errors(self, evaluator) -> dict[str, float]:
        """Connect Four: how often the raw network and its rating search throw away a better
        result, judged by the perfect solver (selfplay.evaluation.strength)."""
        from ..evaluation.strength import error_rates

        report = error_rates(self.game, evaluator, self._benchmark_positions(), self.config.eval.visits, seed=0)
        return {
            f"solver_error_{who}" + ("" if stage == "all" else f"_{stage}"): row["rate"]
            for who in ("raw", "search") if who in report
            for stage, row in report[who].items()
        }

    def _benchmark_positions(self, sets: int = 1) -> dict[str, list]:
        """The solved Connect Four positions of ``eval.solver_positions`` per stage from the first
        ``sets`` seeds, each stage's positions of every set together; loaded once."""
        from ..evaluation.strength import load_positions

        while len(self._solver_positions) < sets:
            seed = len(self._solver_positions)
            self._solver_positions.append(load_positions(self.game, self.config.eval.solver_positions, seed=seed, progress=True))
        return {stage: [p for positions in self._solver_positions[:sets] for p in positions[stage]]
                for stage in self._solver_positions[0]}
