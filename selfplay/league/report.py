"""What a league directory says: ratings, the payoff heatmap, Elo over time and the status table
(``selfplay league status DIR``).

Everything here is computed from the append-only game log (``games.jsonl``: one line per learner
generation and opponent, with wins, draws and losses from the learner's side) and ``league.json``.

* **Ratings**: Bradley-Terry over every league game (:func:`selfplay.evaluation.ratings.fit_bradley_terry`), a
  player per network (``main0/g12``: member ``main0`` after 12 generations), the seed network at
  0, with 95% intervals (:func:`selfplay.evaluation.ratings.rating_intervals`). ``ratings.json``.
* **payoff.png**: the score (wins + draws / 2) / games of each row against each column. A
  learner's networks are grouped into *periods*, the stretch of generations up to each snapshot
  (named by the snapshot) and the stretch since the last one (``NAME (now)``). Empty cells:
  never met.
* **elo.png**: top, the Elo of each member's networks over the league's wall-clock, one line per
  member (snapshots marked); bottom, how main exploiters score against the current main agents
  per generation (the main agents' robustness: low is good).

The difficulty ladder (``selfplay league ladder DIR``) is :mod:`selfplay.league.ladder`; the final
matches (``selfplay league final DIR``) are :mod:`selfplay.league.final`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..evaluation.ratings import RatingTable
from .store import load_state, member_label, read_log

__all__ = ["period_of", "rating_table", "status_text", "write_report"]

RATINGS_FILE = "ratings.json"


def rating_table(lines: list[dict]) -> RatingTable:
    """A :class:`RatingTable` of the log's games, the seed anchored at 0."""
    table = RatingTable(anchor="seed")
    for line in lines:
        if "opponent" in line and line["wins"] + line["draws"] + line["losses"] > 0:
            table.add(line["learner"], line["opponent"], line["wins"], line["draws"], line["losses"], t=line["t"])
    return table


def _member_of(player: str) -> str:
    """``main0`` of ``main0/g12`` and of ``main0.2/g3``; ``seed`` of ``seed``."""
    return player.split("/")[0].split(".")[0]


def _generation(player: str) -> int:
    return int(player.rsplit("/g", 1)[1]) if "/g" in player else 0


def period_of(player: str, snapshots: list[dict]) -> str:
    """The period a network belongs to: the first snapshot of its incarnation at or after its
    generation, or ``LABEL (now)`` after the last one."""
    if "/g" not in player:
        return player
    label, generation = player.split("/")[0], _generation(player)
    later = [s for s in snapshots if s["name"].split("/")[0] == label and _generation(s["name"]) >= generation]
    return min(later, key=lambda s: _generation(s["name"]))["name"] if later else f"{label} (now)"


def write_report(run_dir: str | Path) -> str:
    """Write ratings.json, payoff.png and elo.png; return the status table."""
    run_dir = Path(run_dir)
    state = load_state(run_dir)
    lines = read_log(run_dir, upto=state["seq"])
    table = rating_table(lines)
    if table.matches:
        table.save(run_dir / RATINGS_FILE)
        _plot(run_dir, state, lines, table)
    return status_text(run_dir, state=state, lines=lines, table=table)


def status_text(run_dir: str | Path, state: dict | None = None, lines: list | None = None,
                table: RatingTable | None = None) -> str:
    """The league table: each member (its latest network that played) and each snapshot, with
    kind, Elo and its 95% interval, games played, and the snapshot it continues from."""
    state = state or load_state(run_dir)
    lines = lines if lines is not None else read_log(run_dir, upto=state["seq"])
    table = table or rating_table(lines)
    ratings, intervals = (table.ratings(), table.intervals()) if table.matches else ({}, {})
    games: dict[str, int] = {}
    latest: dict[str, str] = {}
    for line in lines:
        if "opponent" in line:
            n = line["wins"] + line["draws"] + line["losses"]
            games[line["learner"]] = games.get(line["learner"], 0) + n
            games[line["opponent"]] = games.get(line["opponent"], 0) + n
            latest[line["learner"].split("/")[0]] = line["learner"]
    rows = []
    for m in state["members"]:
        label = member_label(m)
        player = latest.get(label, f"{label}/g{m['generation']}")
        rows.append((f"{m['name']} -> {player}", m["kind"], player, m["games"], m["parent"]))
    for s in state["snapshots"]:
        kind = "script (fixed)" if s["kind"] == "script" else (s["kind"] or "seed") + " (frozen)"
        rows.append((s["name"], kind, s["name"], games.get(s["name"], 0), s.get("parent", "") or "-"))
    out = [f"league {Path(run_dir).name}: {state['elapsed'] / 60:.1f} min, {len(state['snapshots'])} snapshots"
           + (f" ({len(state['pruned'])} pruned)" if state.get("pruned") else "")
           + f", {sum(games.values()) // 2} games",
           f"{'member':<28} {'kind':<26} {'Elo':>6} {'95% interval':>15} {'games':>7}  parent"]
    for name, kind, player, count, parent in rows:
        elo = ratings.get(player, math.nan)
        lo, hi = intervals.get(player, (math.nan, math.nan))
        interval = f"{lo:.0f}..{hi:.0f}" if math.isfinite(lo) else "-"
        out.append(f"{name:<28} {kind:<26} {elo:>6.0f} {interval:>15} {count:>7}  {parent}")
    return "\n".join(out)


def _plot(run_dir: Path, state: dict, lines: list[dict], table: RatingTable) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..model.checkpoint import atomic_write

    snapshots = state["snapshots"]
    games_lines = [line for line in lines if "opponent" in line]

    def save(fig, name: str) -> None:
        import io

        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=110)
        plt.close(fig)
        with atomic_write(run_dir / name) as f:
            f.write(buffer.getvalue())

    # payoff heatmap between periods
    periods: list[str] = []
    counts: dict[tuple[str, str], np.ndarray] = {}
    for line in games_lines:
        a, b = period_of(line["learner"], snapshots), period_of(line["opponent"], snapshots)
        for p in (a, b):
            if p not in periods:
                periods.append(p)
        wdl = np.array([line["wins"], line["draws"], line["losses"]], float)
        counts[(a, b)] = counts.get((a, b), np.zeros(3)) + wdl
        counts[(b, a)] = counts.get((b, a), np.zeros(3)) + wdl[::-1]
    ratings = table.ratings()
    periods.sort(key=lambda p: (_member_of(p) != "seed", _member_of(p), "(now)" in p, _generation(p)))
    P = len(periods)
    matrix = np.full((P, P), np.nan)
    for (a, b), wdl in counts.items():
        if a != b and wdl.sum():
            matrix[periods.index(a), periods.index(b)] = (wdl[0] + wdl[1] / 2) / wdl.sum()
    size = max(4.0, 0.35 * P + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(matrix, cmap="RdYlGn", vmin=0, vmax=1)
    ax.set_xticks(range(P), periods, rotation=90, fontsize=7)
    ax.set_yticks(range(P), periods, fontsize=7)
    if P <= 24:
        for i in range(P):
            for j in range(P):
                if math.isfinite(matrix[i, j]):
                    ax.text(j, i, f"{100 * matrix[i, j]:.0f}", ha="center", va="center", fontsize=6)
    ax.set_title("score of row against column (%), league games")
    fig.colorbar(image, ax=ax, fraction=0.04)
    fig.tight_layout()
    save(fig, "payoff.png")

    # Elo over time per member, and main exploiters against the current main agents
    first_t: dict[str, float] = {}
    for line in games_lines:
        first_t.setdefault(line["learner"], line["t"])
    exploited = any(m["kind"] == "main_exploiter" for m in state["members"])  # else no lower panel
    if exploited:
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 7), sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    else:
        fig, top = plt.subplots(figsize=(9, 5))
        top.set_xlabel("league minutes")
    frozen = {s["name"] for s in snapshots}
    for member in sorted({_member_of(p) for p in first_t}):
        players = sorted((p for p in first_t if _member_of(p) == member), key=lambda p: first_t[p])
        xs = [first_t[p] / 60 for p in players]
        line_, = top.plot(xs, [ratings.get(p, math.nan) for p in players], label=member, lw=1.2)
        marks = [p for p in players if p in frozen]
        top.scatter([first_t[p] / 60 for p in marks], [ratings.get(p, math.nan) for p in marks], color=line_.get_color(),
                    marker="o", s=20, zorder=3)
    top.axhline(0, color="grey", lw=0.8, ls=":")
    top.set_ylabel("Elo (seed network = 0)")
    top.set_title("Elo of each member's networks (dots: frozen snapshots)")
    top.legend(fontsize=8)
    if exploited:
        mains = {m["name"] for m in state["members"] if m["kind"] == "main"}
        vs = [line for line in games_lines if line["kind"] == "main_exploiter" and line["label"] in mains]
        if vs:
            bottom.plot([line["t"] / 60 for line in vs],
                        [(line["wins"] + line["draws"] / 2) / max(1, line["wins"] + line["draws"] + line["losses"]) for line in vs],
                        ".-", lw=0.8, label="main exploiters' score vs the current main agent")
            resets = [line["t"] / 60 for line in lines if line.get("event") == "reset"]
            for t in resets:
                bottom.axvline(t, color="grey", lw=0.6, ls="--")
            bottom.legend(fontsize=8)
        bottom.set_ylim(0, 1)
        bottom.set_ylabel("score")
        bottom.set_xlabel("league minutes (dashed: exploiter resets)")
    fig.tight_layout()
    save(fig, "elo.png")
