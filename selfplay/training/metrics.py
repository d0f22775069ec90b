"""Run metrics: one CSV row per generation, TensorBoard events, and plots.

* ``metrics.csv``: one row per generation, every column in :data:`COLUMNS` plus a score column
  per rating opponent (``score_vs_<name>``); empty cells where a value was not measured (Elo
  only in rated generations).
* ``tb/``: TensorBoard events (``tensorboard --logdir RUN``), the same numbers under
  ``selfplay/``, ``train/``, ``eval/``, stepped by generation. Written when ``tensorboardX`` is
  installed, skipped (with one notice) otherwise.
* ``losses.png``, ``elo.png``, ``speed.png``: drawn from the CSV by :func:`plot_run`; and
  ``errors.png`` (error rates by stage against the perfect solver) in Connect Four runs that
  measure them (``eval.solver_positions``).

On resume, rows and events of generations after the checkpoint the run resumes from are dropped
(they belong to work that was lost), so the files describe the run as it continued.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..model.checkpoint import atomic_write

__all__ = ["COLUMNS", "MetricsLog", "generation_row", "plot_run", "read_metrics"]

METRICS_FILE = "metrics.csv"
TENSORBOARD_DIR = "tb"

#: Column -> what it holds. Rates are per second of wall-clock in that phase.
COLUMNS: dict[str, str] = {
    "generation": "the network generation this row ends with (trained on everything so far)",
    "elapsed_s": "wall-clock seconds of the run so far, resumed sessions included",
    "games": "self-play games finished, whole run",
    "positions": "training positions produced, whole run",
    "buffer": "positions in the replay buffer",
    "selfplay_s": "seconds of self-play this generation",
    "positions_per_s": "training positions per second of self-play",
    "moves_per_s": "moves (full and fast searches) per second of self-play",
    "evals_per_s": "network evaluations per second of self-play, all actors",
    "mean_batch": "positions per network call",
    "network_share": "fraction of self-play time spent in the network",
    "cache_hit_rate": "share of the searches' position requests the actors' evaluation caches answered "
    "(selfplay.cache_positions): no network call",
    "game_length": "mean moves per finished game",
    "first_player_score": "mean score of the first player in [-1, 1]",
    "draw_rate": "fraction of finished games drawn",
    "resign_rate": "fraction of finished games resigned",
    "false_resign_rate": "false resignations among no-resign games where one was proposed",
    "resign_checks": "no-resign games where a resignation was proposed (false_resign_rate's denominator)",
    "resign_threshold": "the resignation threshold in force in this generation's games (empty: resigning off)",
    "train_steps": "optimizer steps this generation",
    "train_s": "seconds of learning this generation",
    "loss": "mean total loss this generation",
    "policy_loss": "mean policy cross-entropy",
    "value_loss": "mean value loss",
    "lr": "learning rate at the last step",
    "eval_s": "seconds of rating games this generation",
    "learner_share": "the learner's utilisation: seconds of learning over the generation's wall-clock",
    "policy_lag": "mean generations between the weights that played this generation's new positions and the "
    "learner's (0 when alternating; overlapped Ray actors play with the newest weights they have)",
    "policy_lag_max": "the largest such lag this generation",
    "elo": "Bradley-Terry Elo of this generation (random = 0)",
    "elo_lo": "95% interval, low end",
    "elo_hi": "95% interval, high end",
    "solver_error_raw": "connect4: share of solved positions where the raw network's move loses value",
    "solver_error_search": "connect4: the same with the rating search",
    **{
        f"solver_error_{who}_{stage}": f"connect4: {what}, {stage} positions ({moves} moves played)"
        for who, what in (("raw", "raw network's error rate"), ("search", "rating search's error rate"))
        for stage, moves in (("beginning", "up to 14"), ("middle", "15-28"), ("end", "29 or more"))
    },
}


def _score_column(opponent: str) -> str:
    return "score_vs_" + opponent.replace(":", "")


def read_metrics(run_dir: str | os.PathLike) -> list[dict[str, float]]:
    """The rows of ``metrics.csv`` as ``{column: float}`` (NaN for empty cells)."""
    path = Path(run_dir) / METRICS_FILE
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return [{k: float(v) if v not in ("", None) else math.nan for k, v in row.items()} for row in csv.DictReader(f)]


def generation_row(state: Any, buffer: int, elapsed: float, stats: Any, losses: Mapping[str, float], train_seconds: float,
                   eval_seconds: float, rating: Mapping[str, float] | None, resign_threshold: float) -> dict[str, Any]:
    """The row of the generation ``state`` (a RunState) has just reached: the run's counts,
    ``buffer`` positions in the replay buffer after ``elapsed`` seconds of the run, its self-play
    ``stats`` (SelfPlayStats), the learner's ``losses``, the rating (None: not rated) and the
    resignation threshold its games played under (NaN: resigning off)."""
    seconds = max(stats.seconds, 1e-9)
    games_done = max(stats.games, 1)
    return {
        "generation": state.generation,
        "elapsed_s": elapsed,
        "games": state.games,
        "positions": state.positions,
        "buffer": buffer,
        "selfplay_s": stats.seconds,
        "positions_per_s": stats.positions / seconds,
        "moves_per_s": stats.moves / seconds,
        "evals_per_s": stats.evaluations / seconds,
        "mean_batch": stats.evaluations / max(stats.evaluator_calls, 1),
        "network_share": stats.evaluator_seconds / seconds,
        "cache_hit_rate": stats.cache_hits / max(stats.cache_hits + stats.evaluations, 1),
        "game_length": stats.game_length / games_done if stats.games else math.nan,
        "first_player_score": stats.first_player_score / games_done if stats.games else math.nan,
        "draw_rate": stats.draws / games_done if stats.games else math.nan,
        "resign_rate": stats.resignations / games_done if stats.games else math.nan,
        "false_resign_rate": stats.false_resignation_rate,
        "resign_checks": stats.resign_checks,
        "resign_threshold": resign_threshold,
        "train_steps": losses["steps"],
        "train_s": train_seconds,
        "loss": losses["loss"],
        "policy_loss": losses["policy_loss"],
        "value_loss": losses["value_loss"],
        "lr": losses["lr"],
        "eval_s": eval_seconds,
        **(rating or {}),
    }


class MetricsLog:
    """Appends generation rows to ``metrics.csv`` and TensorBoard, starting after generation
    ``resume_from`` (rows of later generations, from a session that was cut off, are dropped)."""

    def __init__(self, run_dir: str | os.PathLike, opponents: Iterable[str], resume_from: int = 0) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / METRICS_FILE
        self.columns = list(COLUMNS) + [_score_column(o) for o in opponents]
        self.notice: str | None = None
        self._truncate(resume_from)
        self.writer = None
        try:
            from tensorboardX import SummaryWriter
        except ImportError:
            self.notice = "tensorboardX is not installed: no TensorBoard events (metrics.csv and plots still written)"
        else:
            self.writer = SummaryWriter(
                logdir=str(self.run_dir / TENSORBOARD_DIR), purge_step=resume_from + 1 if resume_from else None
            )

    def _truncate(self, generation: int) -> None:
        """Keep the header and rows up to ``generation``; switch to our columns if they differ."""
        rows = [r for r in self._raw_rows() if float(r.get("generation") or 0) <= generation]
        with atomic_write(self.path) as f:
            text = _csv_text(self.columns, rows)
            f.write(text.encode())

    def _raw_rows(self) -> list[dict[str, str]]:
        if not self.path.exists():
            return []
        with open(self.path, newline="") as f:
            return list(csv.DictReader(f))

    def log(self, row: Mapping[str, Any], scores: Mapping[str, float] | None = None) -> None:
        """Append one generation's ``row`` (keys from :data:`COLUMNS`) and opponent ``scores``."""
        values = dict(row)
        for opponent, score in (scores or {}).items():
            values[_score_column(opponent)] = score
        unknown = sorted(set(values) - set(self.columns))
        if unknown:
            raise KeyError(f"unknown metrics column(s): {', '.join(unknown)}")
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, self.columns).writerow({k: _cell(values.get(k)) for k in self.columns})
            f.flush()
            os.fsync(f.fileno())
        if self.writer is not None:
            step = int(values["generation"])
            for key, value in values.items():
                if key != "generation" and _is_number(value):
                    self.writer.add_scalar(f"{_tb_group(key)}/{key}", float(value), step)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _tb_group(key: str) -> str:
    if key in ("train_steps", "train_s", "loss", "policy_loss", "value_loss", "lr"):
        return "train"
    if key.startswith(("elo", "score_vs_", "eval", "solver_")):
        return "eval"
    return "selfplay"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _csv_text(columns: list[str], rows: list[Mapping[str, str]]) -> str:
    import io

    out = io.StringIO()
    writer = csv.DictWriter(out, columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k, "") for k in columns})
    return out.getvalue()


# ----------------------------------------------------------------------------- plots


def plot_run(run_dir: str | os.PathLike, baselines: Mapping[str, float] | None = None,
             generations: Mapping[int, tuple[float, float, float]] | None = None) -> list[Path]:
    """Draw ``losses.png``, ``elo.png``, ``speed.png`` (and ``errors.png`` when the rows hold
    solver error rates) in ``run_dir`` from its
    ``metrics.csv``; ``baselines`` (``{name: Elo}``) are drawn as horizontal lines on the Elo
    plot. ``generations`` (``{generation: (Elo, low, high)}``, the latest fit over every rating
    game) is the Elo curve; each rating's own estimate, made with the games up to it, is drawn
    beside it as dots (without ``generations``, those alone). Returns the paths written (none
    before the first row)."""
    import matplotlib

    matplotlib.use("Agg")  # files only, whatever the environment's default backend
    import matplotlib.pyplot as plt

    rows = read_metrics(run_dir)
    if not rows:
        return []
    run_dir = Path(run_dir)
    minutes = [r["elapsed_s"] / 60 for r in rows]
    written = []

    def column(name: str) -> list[float]:
        return [r.get(name, math.nan) for r in rows]

    def save(fig, name: str) -> None:
        path = run_dir / name
        fig.tight_layout()
        with atomic_write(path) as f:
            fig.savefig(f, format="png", dpi=100)
        plt.close(fig)
        written.append(path)

    fig, ax = plt.subplots(figsize=(7, 4))
    for name, label in (("loss", "total"), ("policy_loss", "policy (cross-entropy)"), ("value_loss", "value")):
        ax.plot(minutes, column(name), marker=".", label=label)
    ax.set_xlabel("minutes")
    ax.set_ylabel("loss")
    ax.set_title("Training loss per generation")
    ax.grid(alpha=0.3)
    ax.legend()
    save(fig, "losses.png")

    fig, ax = plt.subplots(figsize=(7, 4))
    rated = [(m, r["elo"], r["elo_lo"], r["elo_hi"]) for m, r in zip(minutes, rows) if math.isfinite(r.get("elo", math.nan))]
    ended = {int(r["generation"]): m for m, r in zip(minutes, rows)}
    fitted = sorted((ended[g], *v) for g, v in (generations or {}).items() if g in ended and math.isfinite(v[0]))
    if fitted:
        xs, elo, lo, hi = zip(*fitted)
        ax.fill_between(xs, lo, hi, alpha=0.2, label="95% interval")
        ax.plot(xs, elo, marker="o", label="network (fit over all games)")
        if rated:
            ax.plot([x for x, *_ in rated], [e for _, e, *_ in rated], ".", color="grey", alpha=0.6,
                    label="when rated (games so far)")
    elif rated:
        xs, elo, lo, hi = zip(*rated)
        ax.fill_between(xs, lo, hi, alpha=0.2, label="95% interval")
        ax.plot(xs, elo, marker="o", label="network")
    for k, (name, rating) in enumerate(sorted((baselines or {}).items(), key=lambda kv: kv[1])):
        ax.axhline(rating, linestyle="--", color=f"C{k + 2}", label=name)
    ax.set_xlabel("minutes")
    ax.set_ylabel("Elo (random = 0)")
    ax.set_title("Strength over time (Bradley-Terry over all rating games)")
    ax.grid(alpha=0.3)
    if rated or fitted or baselines:
        ax.legend(fontsize="small")
    save(fig, "elo.png")

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(minutes, column("positions_per_s"), marker=".", label="training positions/s")
    ax.plot(minutes, column("moves_per_s"), marker=".", label="moves/s")
    ax.set_xlabel("minutes")
    ax.set_ylabel("per second of self-play")
    ax.set_yscale("log")
    ax2 = ax.twinx()
    ax2.plot(minutes, column("evals_per_s"), color="C3", marker=".", label="network evaluations/s")
    ax2.set_ylabel("evaluations/s")
    ax.set_title("Self-play speed")
    ax.grid(alpha=0.3)
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], fontsize="small")
    save(fig, "speed.png")

    stages = ("beginning", "middle", "end")
    measured = [(m, r) for m, r in zip(minutes, rows) if math.isfinite(r.get("solver_error_raw_beginning", math.nan))]
    if measured:
        fig, ax = plt.subplots(figsize=(7, 4))
        xs = [m for m, _ in measured]
        for k, stage in enumerate(stages):
            for who, style in (("search", "-"), ("raw", ":")):
                ys = [100 * r.get(f"solver_error_{who}_{stage}", math.nan) for _, r in measured]
                if any(math.isfinite(y) for y in ys):
                    label = f"{stage}, {'with search' if who == 'search' else 'raw network'}"
                    ax.plot(xs, ys, style, color=f"C{k}", marker="o" if who == "search" else ".", label=label)
        ax.set_xlabel("minutes")
        ax.set_ylabel("error rate (%)")
        ax.set_title("Moves that throw away a better result (perfect solver)")
        ax.grid(alpha=0.3)
        ax.set_ylim(bottom=0)
        ax.legend(fontsize="small", ncol=2)
        save(fig, "errors.png")
    return written
