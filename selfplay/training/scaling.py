"""``selfplay bench actors``: how training scales with the number of actors.

For each mode (alternating, overlapped) and actor count, a real training run of ``seconds``
(:func:`selfplay.training.trainer.train`, no rating, no final matches) in a temporary directory,
measured from its ``metrics.csv`` after its first generation (so actor start-up is left out):

* ``positions_per_s``: training positions added to the buffer per second of wall-clock, the
  whole loop included (self-play, learning, weights out);
* ``selfplay_positions_per_s``: the actors' rate while they play (alternating: per second of
  self-play; overlapped: the same as the above, since they never pause);
* ``learner_share``: the learner's utilisation, seconds of learning over wall-clock;
* ``replay_ratio``: samples the learner drew per new position (``learner.samples_per_position``
  when alternating; at most that when overlapped);
* ``policy_lag``: mean generations between the weights that played a position and the learner.

With Ray it joins ``address`` (or starts a local instance) once for all runs.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any, Callable

__all__ = ["bench_actors", "format_table"]


def _measure(run_dir: Path, batch_size: int) -> dict[str, float]:
    from .metrics import read_metrics

    rows = read_metrics(run_dir)
    if len(rows) < 3:
        return {"generations": len(rows), "positions_per_s": math.nan, "selfplay_positions_per_s": math.nan,
                "learner_share": math.nan, "replay_ratio": math.nan, "policy_lag": math.nan}
    first, rest = rows[0], rows[1:]
    window = rest[-1]["elapsed_s"] - first["elapsed_s"]
    positions = rest[-1]["positions"] - first["positions"]
    selfplay = sum(r["selfplay_s"] for r in rest)
    lags = [r["policy_lag"] for r in rest if math.isfinite(r["policy_lag"])]
    return {
        "generations": len(rows),
        "positions_per_s": positions / window,
        "selfplay_positions_per_s": positions / selfplay,
        "learner_share": sum(r["train_s"] for r in rest) / window,
        "replay_ratio": sum(r["train_steps"] for r in rest) * batch_size / positions,
        "policy_lag": sum(lags) / len(lags) if lags else math.nan,
    }


def bench_actors(game: str = "tictactoe", preset_name: str = "tiny", counts: tuple[int, ...] = (1, 2), seconds: float = 60.0,
                 backend: str = "ray", address: str = "", modes: tuple[str, ...] = ("alternating", "overlapped"),
                 overrides: dict[str, Any] | None = None, log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """One short training run per (mode, actor count); returns a row of figures for each."""
    from ..config import with_overrides
    from ..presets import preset
    from .trainer import train

    owned = False
    if backend == "ray":
        from .ray_cluster import connect, require_ray
        from ..config import ClusterConfig

        require_ray(ClusterConfig(backend="ray", address=address))
        owned = connect(address)
    results = []
    try:
        for mode in modes:
            for count in counts:
                settings = {
                    "selfplay.num_actors": count, "cluster.backend": backend, "cluster.address": address,
                    "cluster.overlap": mode == "overlapped", "run.minutes": seconds / 60, "run.generations": 0,
                    "eval.every": 0, "eval.final_games": 0, "run.progress": False, "run.checkpoint_seconds": 3600.0,
                    **(overrides or {}),
                }
                config = with_overrides(preset(game, preset_name), settings)
                with tempfile.TemporaryDirectory(prefix="selfplay-bench-") as tmp:
                    train(config, Path(tmp) / "run", final_report=False)
                    row = {"backend": backend, "mode": mode, "actors": count,
                           **_measure(Path(tmp) / "run", config.learner.batch_size)}
                log(f"{backend} {mode}, {count} actor{'s' if count != 1 else ''}: {row['positions_per_s']:.0f} positions/s, "
                    f"learner {100 * row['learner_share']:.0f}% busy")
                results.append(row)
    finally:
        if owned:
            from .ray_cluster import disconnect

            disconnect()
    return results


def format_table(rows: list[dict[str, Any]]) -> str:
    """The rows as a Markdown table."""
    lines = ["| backend | mode | actors | generations | positions/s | actors' positions/s while playing | learner busy | "
             "replay ratio | policy lag |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['backend']} | {r['mode']} | {r['actors']} | {r['generations']} | {r['positions_per_s']:.0f} | "
                     f"{r['selfplay_positions_per_s']:.0f} | {100 * r['learner_share']:.0f}% | {r['replay_ratio']:.1f} | "
                     f"{r['policy_lag']:.2f} |")
    return "\n".join(lines)
