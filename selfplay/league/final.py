"""The final matches of a league (``selfplay league final DIR``, and the end of a league run): each
main agent's latest network against every snapshot on disk and every fixed opponent, with search
and as a raw policy, in worker processes; ``final.json`` and ``final.png``.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from .store import checkpoint_evaluator, league_networks, load_run_config, load_state, member_label

__all__ = ["FINAL_FILE", "final_report", "final_snapshots"]

FINAL_FILE = "final.json"


def final_report(run_dir: str | Path, games: int | None = None, visits: tuple[int, ...] | None = None,
                 opponents: list[str] | None = None, log=None, max_snapshots: int = 8, workers: int | None = None) -> dict:
    """How each main agent's latest network fares against every snapshot on disk and every
    fixed opponent (default: the train config's ``eval.final_opponents``, e.g. the arena's
    scripts and ``mcts:200``), with search (``eval.final_visits``) **and** as a raw policy (0
    visits, what a game engine runs as an NPC brain). ``games`` per pairing (default
    ``eval.final_games``); at most ``max_snapshots`` snapshots (0: every snapshot on disk), chosen
    by :func:`final_snapshots`. The matches run in ``workers`` processes (default: one per CPU
    core; each match is single-threaded), in order of the report. Writes ``final.json`` and
    ``final.png``; returns the report."""
    import multiprocessing
    import os

    from ..model.checkpoint import atomic_write

    run_dir = Path(run_dir)
    config, state = load_run_config(run_dir), load_state(run_dir)
    evaluation = config.train.eval
    games = games or evaluation.final_games
    visits = visits if visits is not None else (evaluation.final_visits, 0)
    opponents = opponents if opponents is not None else evaluation.final_opponent_specs
    networks = {name: str(path) for name, path in
                league_networks(run_dir, state, ("main", "main_exploiter", "league_exploiter")).items()}
    frozen = final_snapshots([s for s in state["snapshots"] if s["name"] in networks], max_snapshots)
    jobs: list[tuple] = []  # (player, opponent, visits, seed)
    for m in (m for m in state["members"] if m["kind"] == "main"):
        label = member_label(m)
        me = f"{label}/g{m['generation']}"
        if me in networks:
            pairings = [(v, o) for v in visits for o in opponents + [name for name in frozen if name != me]]
            jobs += [(me, opponent, v, seed) for seed, (v, opponent) in enumerate(pairings)]
    work = [(str(run_dir), networks, games, *job) for job in jobs]
    workers = max(1, min(workers or os.cpu_count() or 1, len(work)))
    report: dict[str, Any] = {"games": games, "visits": list(visits), "agents": []}
    with contextlib.ExitStack() as stack:
        if workers > 1:  # spawn: a forked onnxruntime or torch is not safe
            pool = stack.enter_context(multiprocessing.get_context("spawn").Pool(workers))
            rows = pool.imap(_final_match, work)
        else:
            rows = map(_final_match, work)
            stack.callback(_FINAL_CACHE.clear)  # the caller's process keeps no networks
        for (me, *_), row in zip(jobs, rows):
            if not report["agents"] or report["agents"][-1]["player"] != me:
                report["agents"].append({"player": me, "matches": []})
            report["agents"][-1]["matches"].append(row)
            if log:
                lo, hi = row["score_ci95"]
                log(f"  {me}@{row['visits']} vs {row['opponent']}: {100 * row['score']:.1f}% (+{row['wins']} "
                    f"={row['draws']} -{row['losses']}), 95% {100 * lo:.0f}..{100 * hi:.0f}%")
    with atomic_write(run_dir / FINAL_FILE) as f:
        f.write(json.dumps(report, indent=1).encode())
    _plot_final(run_dir, report)
    return report


_FINAL_CACHE: dict[Any, Any] = {}  # a final worker's run config, game and evaluators, loaded once


def _final_match(job: tuple) -> dict:
    """One match of :func:`final_report` (in a worker process, or in the caller's):
    ``(run_dir, networks {name: checkpoint}, games, player, opponent, visits, seed)`` -> its row
    (wins, draws, losses, score and 95% interval, from the player's side)."""
    import games as games_module

    from ..evaluation.agents import NetworkAgent, load_agent, trained_search_config
    from ..evaluation.elo import score_interval
    from ..evaluation.matches import play_match

    run_dir, networks, games, me, opponent, visits, seed = job
    if _FINAL_CACHE.get("run_dir") != run_dir:
        _FINAL_CACHE.clear()
        config = load_run_config(run_dir)
        _FINAL_CACHE.update(run_dir=run_dir, config=config,
                            game=games_module.make(config.train.game, **config.train.game_options))
    config, game = _FINAL_CACHE["config"], _FINAL_CACHE["game"]

    def agent(name: str):
        if (name, "evaluator") not in _FINAL_CACHE:
            _FINAL_CACHE[name, "evaluator"] = checkpoint_evaluator(networks[name], game)
        search = trained_search_config(visits, config.train.search) if visits else None
        return NetworkAgent(game, _FINAL_CACHE[name, "evaluator"], visits, config=search, name=f"{name}@{visits}")

    other = agent(opponent) if opponent in networks else load_agent(opponent, game, visits=visits)
    result = play_match(game, agent(me), other, games, seed=seed, opening_moves=config.train.eval.opening_moves,
                        batch_size=games, stop_when_decided=False)
    lo, hi = score_interval(result.wins, result.draws, result.losses)
    return {"visits": visits, "opponent": opponent, "wins": result.wins, "draws": result.draws,
            "losses": result.losses, "score": result.score, "score_ci95": [lo, hi]}


def _spread(names: list[str], count: int) -> list[str]:
    """``count`` of ``names`` evenly spaced, the first and the last included (all if fewer)."""
    if count <= 0:
        return []
    return names if count >= len(names) else [names[round(k)] for k in np.linspace(0, len(names) - 1, count)]


def final_snapshots(snapshots: list[dict], limit: int) -> list[str]:
    """The names of at most ``limit`` (0: all) of ``snapshots`` (``league.json`` entries, oldest
    first) for the final matches: evenly spaced over the main agents' line (the seed included) and,
    separately, over the exploiters' snapshots, about half each. Spaced over the whole list, which
    alternates between the two as they freeze in turn, the picks can fall on one kind only."""
    names = [s["name"] for s in snapshots]
    if limit <= 0 or limit >= len(names):
        return names
    line = [s["name"] for s in snapshots if s["kind"] in ("main", "")]  # "": the seed
    others = [s["name"] for s in snapshots if s["kind"] not in ("main", "")]
    share = min(len(line), max(limit - len(others), (limit + 1) // 2))
    picked = set(_spread(line, share)) | set(_spread(others, limit - share))
    return [name for name in names if name in picked]


def _plot_final(run_dir: Path, report: dict) -> None:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..model.checkpoint import atomic_write

    for entry in report["agents"][:1]:
        opponents = list(dict.fromkeys(r["opponent"] for r in entry["matches"]))
        fig, ax = plt.subplots(figsize=(8, max(3.0, 0.3 * len(opponents) + 1.5)))
        height = 0.8 / max(1, len(report["visits"]))
        for k, v in enumerate(report["visits"]):
            rows = {r["opponent"]: r for r in entry["matches"] if r["visits"] == v}
            ys = np.arange(len(opponents)) + k * height
            scores = [rows[o]["score"] if o in rows else np.nan for o in opponents]
            errors = np.array([[rows[o]["score"] - rows[o]["score_ci95"][0], rows[o]["score_ci95"][1] - rows[o]["score"]]
                               if o in rows else [0, 0] for o in opponents]).T
            ax.barh(ys, scores, height=height, xerr=errors, label=f"{v} visits" + (" (raw policy)" if v == 0 else ""))
        ax.set_yticks(np.arange(len(opponents)) + height * (len(report["visits"]) - 1) / 2, opponents, fontsize=7)
        ax.axvline(0.5, color="grey", lw=0.6, ls=":")
        ax.set_xlim(0, 1)
        ax.set_xlabel("score (wins + draws / 2), 95% interval")
        ax.set_title(f"{entry['player']} against every opponent, {report['games']} games each")
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=len(report["visits"]))  # bars start at 0: beside them, not on them
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=110)
        plt.close(fig)
        with atomic_write(run_dir / "final.png") as f:
            f.write(buffer.getvalue())
