"""``selfplay bench cache CHECKPOINT``: self-play speed with the actors' evaluation cache beside
the same actor without it (the yardstick), in one process.

Two actors with the preset's self-play and search settings and the checkpoint's network (int8
like the ``make train`` actors, or float32) play alternately, ``rounds`` times ``positions``
training positions each, a new network (fresh trees, an empty cache) at every round as in
training. Reported: training positions/s, network evaluations/s and the cache's hit rate of each,
and the ratio of positions/s. Measure on a quiet machine: the two sides alternate, so load that
comes and goes falls on both.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

__all__ = ["BenchCacheError", "bench_cache", "format_report"]


class BenchCacheError(ValueError):
    """A bad setting of the cache benchmark (one line for the command)."""


def bench_cache(checkpoint: str | Path, preset_name: str = "small", positions: int = 4000, rounds: int = 3,
                capacity: int | None = None, inference: str = "int8", seed: int = 0,
                log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The side-by-side measurement (module docstring) as a dict: ``rows`` (one per side) and
    ``ratio`` (positions/s with the cache over without)."""
    from ..model.checkpoint import load_checkpoint
    from ..model.inference import int8_onnx
    from ..presets import preset
    from ..training.actor import Actor
    from ..training.messages import ActorSpec, Weights
    from ..training.weights import export_weights
    from .networks import checkpoint_game

    if inference not in ("int8", "onnx"):
        raise BenchCacheError(f"bench cache: inference must be int8 or onnx, got {inference!r}")
    if positions < 1 or rounds < 1:
        raise BenchCacheError(f"bench cache: positions and rounds must be >= 1, got {positions} and {rounds}")
    found = load_checkpoint(checkpoint)
    game = checkpoint_game(found)
    config = preset(game.name, preset_name, dict(game.options))
    capacity = config.selfplay.cache_positions if capacity is None else capacity
    if capacity < 1:
        raise BenchCacheError(f"bench cache: capacity must be >= 1, got {capacity}")
    weights = export_weights(found.build_model(), game, "cpu", "onnx")

    def actor(cache: int, seed_: int) -> Actor:
        return Actor(ActorSpec(game.name, dict(game.options), config.search,
                               replace(config.selfplay, cache_positions=cache), seed=seed_))

    if inference == "int8":  # calibrated on the network's own self-play positions, as the trainer does
        warm = actor(0, seed + 1)
        warm.set_weights(0, weights)
        calibration, _ = warm.play(300)
        weights = Weights("onnx", int8_onnx(weights.data, calibration.obs[:256]))
    sides = {0: actor(0, seed), capacity: actor(capacity, seed)}
    totals = {size: {"positions": 0, "seconds": 0.0, "evaluations": 0, "hits": 0} for size in sides}
    for round_ in range(rounds):
        for size, player in sides.items():
            player.set_weights(round_, weights)
            start = time.perf_counter()
            _, stats = player.play(positions)
            total = totals[size]
            total["seconds"] += time.perf_counter() - start
            total["positions"] += stats.positions
            total["evaluations"] += stats.evaluations
            total["hits"] += stats.cache_hits
        if log:
            log(f"round {round_ + 1}/{rounds} done")
    rows = [{
        "cache_positions": size,
        "positions_per_s": t["positions"] / t["seconds"],
        "evals_per_s": t["evaluations"] / t["seconds"],
        "hit_rate": t["hits"] / max(t["hits"] + t["evaluations"], 1),
        "positions": t["positions"],
        "seconds": t["seconds"],
    } for size, t in totals.items()]
    return {"game": game.name, "preset": preset_name, "checkpoint": str(checkpoint), "inference": inference,
            "rows": rows, "ratio": rows[1]["positions_per_s"] / rows[0]["positions_per_s"]}


def format_report(report: dict[str, Any]) -> str:
    lines = [f"{report['game']}, preset {report['preset']}, {report['inference']} network: one actor each side",
             f"{'cache entries':>14} {'positions/s':>12} {'evals/s':>10} {'hit rate':>9}"]
    for row in report["rows"]:
        lines.append(f"{row['cache_positions']:>14,} {row['positions_per_s']:>12,.0f} {row['evals_per_s']:>10,.0f} "
                     f"{100 * row['hit_rate']:>8.1f}%")
    lines.append(f"positions/s with the cache: x{report['ratio']:.2f}")
    return "\n".join(lines)
