"""``selfplay bench curve RUN``: a run's strength against its training time.

The ratings a run makes while it trains (a few dozen games at a handful of visits) cannot tell
late generations apart. This measures afterwards, at full strength, the checkpoint a run had at
each chosen minute mark: matches against fixed opponents at ``--visits`` with 95% intervals,
and on Connect Four the solver benchmark's error rates (:mod:`.strength`). It writes
``curve.json`` and ``curve.png`` into the run directory (or ``--out``)::

    selfplay bench curve runs/c4-120 --minutes 20,40,60,80,100,120 --opponents mcts:200,mcts:1000

Each point is written as soon as it is measured; run the same command again after an
interruption and the points already measured (same settings) are kept, not replayed.

:func:`measure` is the measurement itself, shared with ``selfplay pretrained make``; the command
line is :mod:`selfplay.tools.curve_cmd`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import games

from ..model.checkpoint import atomic_write
from .agents import load_agent
from .elo import score_interval
from .matches import play_match, resolve_game

__all__ = ["CurveError", "checkpoints_at", "format_curve", "measure", "measure_curve", "plot_curve"]

#: The settings a stored point was measured with: a rerun keeps a point only when they match.
_SETTINGS = ("opponents", "games", "raw_games", "visits", "opening_moves", "seed", "solver_positions")


class CurveError(ValueError):
    """Bad input to the strength curve (no run there, a minute mark outside the run)."""


def measure(agent_path: str | Path, game: games.Game, opponents: list[str], games_: int, raw_games: int, visits: int,
            opening_moves: int = 2, seed: int = 0, solver_positions: int = 50, progress: bool = True,
            search: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """How strong the network at ``agent_path`` (a checkpoint or an exported brain) is:
    ``{"matches": [...], "solver": report}``. Matches: at ``visits`` (``games_`` games per
    opponent) and with the raw policy (``raw_games``), each row with W/D/L, the score and its 95%
    interval, and Elo. ``solver``: on the standard Connect Four board, the error rates of
    :func:`.strength.error_rates` on ``solver_positions`` positions per stage (0: none). The
    search's settings: ``search`` (None: :func:`.agents.load_agent`'s choice)."""
    matches = []
    searcher = None
    for label, count, sims in (("search", games_, visits), ("raw", raw_games, 0)):
        if not count:
            continue
        agent = load_agent(str(agent_path), game, visits=sims, search=search)
        searcher = searcher or agent
        for spec in opponents:
            result = play_match(game, agent, load_agent(spec, game), count, seed=seed, opening_moves=opening_moves,
                                stop_when_decided=False, progress=progress)  # fmt: skip
            if progress:
                print(result.summary(), file=sys.stderr, flush=True)
            matches.append({
                "opponent": spec, "visits": sims, "games": result.games, "wins": result.wins,
                "draws": result.draws, "losses": result.losses, "score": result.score,
                "ci95": list(score_interval(result.wins, result.draws, result.losses)),
                "elo_diff": result.elo_diff, "elo_ci95": list(result.elo_ci95), "opening_moves": opening_moves,
            })  # fmt: skip
    strength: dict[str, Any] = {"matches": matches}
    if solver_positions and game.name == "connect4" and dict(game.options) == {"width": 7, "height": 6}:
        from .strength import error_rates, format_report, load_positions

        searcher = searcher or load_agent(str(agent_path), game, visits=visits, search=search)
        report = error_rates(game, searcher.evaluator, load_positions(game, solver_positions, seed), visits, seed,
                             config=searcher.config)  # fmt: skip
        if progress:
            print(format_report(report), file=sys.stderr, flush=True)
        strength["solver"] = report
    return strength


def checkpoints_at(run_dir: str | Path, marks: list[float] | None = None, points: int = 6) -> list[dict[str, Any]]:
    """The checkpoint a run had at each minute mark: the latest one whose generation ended by
    then. ``marks`` default to ``points`` even steps up to the run's length. Returns
    ``[{"mark", "minutes", "generation", "checkpoint"}]`` (``minutes``: when that generation ended).
    Raises :class:`CurveError` for a directory with no metrics or checkpoints, and for a mark
    before the first checkpoint or more than a minute past the run's end."""
    from ..training.metrics import read_metrics

    run = Path(run_dir)
    rows = read_metrics(run) if (run / "metrics.csv").exists() else []
    ended = {0: 0.0, **{int(r["generation"]): float(r["elapsed_s"]) for r in rows}}
    saved = sorted((int(p.stem.split("-")[1]), p) for p in run.glob("ckpt-*.json") if p.stem.split("-")[1].isdigit())
    saved = [(g, p) for g, p in saved if g in ended]
    if not rows or not saved:
        raise CurveError(f"{run}: not a training run (needs metrics.csv and ckpt-*.json)")
    length = max(ended.values()) / 60
    if marks is None:
        marks = [round(length * (k + 1) / points, 1) for k in range(points)]
    chosen = []
    for mark in marks:
        if mark > length + 1:
            raise CurveError(f"{run}: minute mark {mark:g} is past the run's end ({length:.1f} minutes)")
        before = [(g, p) for g, p in saved if ended[g] <= mark * 60 + 1e-6]
        if not before:
            raise CurveError(f"{run}: no checkpoint by minute {mark:g} (the first is generation {saved[0][0]})")
        generation, path = before[-1]
        chosen.append({"mark": mark, "minutes": round(ended[generation] / 60, 2), "generation": generation,
                       "checkpoint": path.name})  # fmt: skip
    return chosen


def measure_curve(run_dir: str | Path, marks: list[float] | None, opponents: list[str], games_: int = 100,
                  raw_games: int = 0, visits: int = 200, opening_moves: int = 2, seed: int = 0,
                  solver_positions: int = 50, out: str | Path | None = None, progress: bool = True) -> dict[str, Any]:  # fmt: skip
    """Measure the checkpoints :func:`checkpoints_at` picks with :func:`measure`, writing
    ``curve.json`` after every point (kept on a rerun with the same settings) and ``curve.png``
    at the end. Returns the JSON's content."""
    run = Path(run_dir)
    out_dir = Path(out) if out else run
    chosen = checkpoints_at(run, marks)
    game = resolve_game(None, {}, [str(run / chosen[0]["checkpoint"])])
    settings = {"opponents": opponents, "games": games_, "raw_games": raw_games, "visits": visits,
                "opening_moves": opening_moves, "seed": seed, "solver_positions": solver_positions}  # fmt: skip
    path = out_dir / "curve.json"
    done: dict[int, dict[str, Any]] = {}
    if path.exists():
        try:
            old = json.loads(path.read_text())
            if all(old.get(k) == v for k, v in settings.items()):
                done = {int(p["generation"]): p for p in old["points"]}
        except (OSError, ValueError, KeyError, TypeError):
            pass  # unreadable: measured afresh and overwritten
    curve: dict[str, Any] = {"run": str(run), "game": game.name, "game_options": dict(game.options), **settings, "points": []}
    out_dir.mkdir(parents=True, exist_ok=True)
    for point in chosen:
        if point["generation"] in done:
            curve["points"].append({**done[point["generation"]], "mark": point["mark"]})
            continue
        if progress:
            print(f"minute {point['mark']:g}: {point['checkpoint']} (generation {point['generation']}, "
                  f"{point['minutes']:.1f} min)", file=sys.stderr, flush=True)  # fmt: skip
        strength = measure(run / point["checkpoint"], game, opponents, games_, raw_games, visits, opening_moves, seed,
                           solver_positions, progress)  # fmt: skip
        curve["points"].append({**point, **strength})
        with atomic_write(path) as f:
            f.write((json.dumps(curve, indent=1) + "\n").encode())
    with atomic_write(path) as f:
        f.write((json.dumps(curve, indent=1) + "\n").encode())
    plot_curve(curve, out_dir / "curve.png")
    return curve


def plot_curve(curve: dict[str, Any], path: str | Path) -> Path:
    """Scores against minutes (one line per opponent and visit count, 95% bars) and, when
    measured, the solver error rates with search and raw."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = curve["points"]
    solver = [p for p in points if "solver" in p]
    fig, axes = plt.subplots(1, 2 if solver else 1, figsize=(12 if solver else 7, 4), squeeze=False)
    ax = axes[0][0]
    series: dict[tuple[str, int], list[tuple[float, dict]]] = {}
    for p in points:
        for m in p["matches"]:
            series.setdefault((m["opponent"], m["visits"]), []).append((p["minutes"], m))
    for k, ((opponent, visits), rows) in enumerate(series.items()):
        xs = [x for x, _ in rows]
        ys = [100 * m["score"] for _, m in rows]
        errors = [[100 * (m["score"] - m["ci95"][0]) for _, m in rows], [100 * (m["ci95"][1] - m["score"]) for _, m in rows]]
        label = f"vs {opponent}, {'raw policy' if visits == 0 else f'{visits} visits'}"
        ax.errorbar(xs, ys, yerr=errors, marker="o", capsize=3, color=f"C{k}", linestyle="-" if visits else ":", label=label)
    ax.set_xlabel("training minutes")
    ax.set_ylabel("score %  (95% interval)")
    ax.set_title(f"{curve['game']}: strength against training time ({curve['games']} games per point)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    if solver:
        ax = axes[0][1]
        xs = [p["minutes"] for p in solver]
        for k, who in enumerate(("search", "raw")):
            rows = [p["solver"].get(who, {}).get("all") for p in solver]
            if not all(rows):
                continue
            ys = [100 * r["rate"] for r in rows]
            errors = [[100 * (r["rate"] - r["ci95"][0]) for r in rows], [100 * (r["ci95"][1] - r["rate"]) for r in rows]]
            label = f"{curve['visits']} visits" if who == "search" else "raw network"
            ax.errorbar(xs, ys, yerr=errors, marker="o", capsize=3, color=f"C{k}", label=label)
        ax.set_xlabel("training minutes")
        ax.set_ylabel("error %  (95% interval)")
        ax.set_title("Solver benchmark: moves that throw away a better result")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.tight_layout()
    path = Path(path)
    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=100)
    plt.close(fig)
    return path


def format_curve(curve: dict[str, Any]) -> str:
    """One line per point: minutes, generation, each score with its interval, solver errors."""
    lines = []
    for p in curve["points"]:
        cells = [f"{p['minutes']:6.1f} min  gen {p['generation']:>5}"]
        for m in p["matches"]:
            who = f"{m['opponent']}{'' if m['visits'] else ' raw'}"
            cells.append(f"{who} {100 * m['score']:5.1f}% ({100 * m['ci95'][0]:.0f}-{100 * m['ci95'][1]:.0f})")
        if "solver" in p:
            rates = [f"{100 * p['solver'][w]['all']['rate']:.1f}%" for w in ("search", "raw") if w in p["solver"]]
            cells.append("solver errors " + " / ".join(rates))
        lines.append("  ".join(cells))
    return "\n".join(lines)
