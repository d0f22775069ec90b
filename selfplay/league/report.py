"""What a league directory says: ratings, the payoff heatmap, Elo over time, the status table and
the difficulty ladder (``selfplay league status DIR``, ``selfplay league ladder DIR``).

Everything here is computed from the append-only game log (``games.jsonl``: one line per learner
generation and opponent, with wins, draws and losses from the learner's side) and ``league.json``.

* **Ratings**: Bradley-Terry over every league game (:func:`selfplay.evaluation.elo.fit_bradley_terry`), a
  player per network (``main0/g12``: member ``main0`` after 12 generations), the seed network at
  0, with 95% intervals (:func:`selfplay.evaluation.elo.rating_intervals`). ``ratings.json``.
* **payoff.png**: the score (wins + draws / 2) / games of each row against each column. A
  learner's networks are grouped into *periods*, the stretch of generations up to each snapshot
  (named by the snapshot) and the stretch since the last one (``NAME (now)``). Empty cells:
  never met.
* **elo.png**: top, the Elo of each member's networks over the league's wall-clock, one line per
  member (snapshots marked); bottom, how main exploiters score against the current main agents
  per generation (the main agents' robustness: low is good).
* **ladder**: levels spaced in Elo from the weakest network still on disk to the strongest.
"""

from __future__ import annotations

import contextlib
import json
import math
import shutil
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ..evaluation.elo import RatingTable

__all__ = ["is_ladder", "pick_levels", "rating_table", "read_ladder", "status_text", "write_ladder", "write_report"]

RATINGS_FILE = "ratings.json"
LADDER_DIR = "ladder"
LADDER_FILE = "ladder.json"


def rating_table(lines: list[dict]) -> RatingTable:
    """A :class:`RatingTable` of the log's games, the seed anchored at 0."""
    table = RatingTable(anchor="seed")
    for line in lines:
        if "opponent" in line and line["wins"] + line["draws"] + line["losses"] > 0:
            table.add(line["learner"], line["opponent"], line["wins"], line["draws"], line["losses"], t=line["t"])
    return table


def pick_levels(elos: dict[str, float], levels: int) -> list[str]:
    """``levels`` names from ``{name: Elo}``, spaced in Elo from the lowest to the highest: for
    each of ``levels`` evenly spaced targets, the nearest name not yet taken. Returned from the
    weakest to the strongest; all of them when there are no more than ``levels``."""
    if levels < 1:
        raise ValueError(f"levels must be >= 1, got {levels}")
    ranked = sorted(elos, key=lambda n: (elos[n], n))
    if len(ranked) <= levels:
        return ranked
    low, high = elos[ranked[0]], elos[ranked[-1]]
    chosen: list[str] = []
    for target in np.linspace(low, high, levels):
        free = [n for n in ranked if n not in chosen]
        chosen.append(min(free, key=lambda n: (abs(elos[n] - target), elos[n])))
    return sorted(chosen, key=lambda n: (elos[n], n))


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
    from .run import load_state, read_log

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
    from .run import load_state, read_log

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
        label = m["name"] if m["incarnation"] == 0 else f"{m['name']}.{m['incarnation']}"
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


def _candidates(run_dir: Path, state: dict, kinds: tuple[str, ...]) -> dict[str, Path]:
    """``{player: checkpoint sidecar}``: the seed, the snapshots on disk and each member's latest
    checkpoint, of members of ``kinds``."""
    from ..model.checkpoint import list_checkpoints

    out = {}
    for s in state["snapshots"]:
        path = run_dir / "snapshots" / f"ckpt-{s['step']:06d}.json"
        if path.exists() and (s["kind"] in kinds or s["name"] == "seed"):
            out[s["name"]] = path
    for m in state["members"]:
        if m["kind"] not in kinds:
            continue
        label = m["name"] if m["incarnation"] == 0 else f"{m['name']}.{m['incarnation']}"
        sidecars = list_checkpoints(run_dir / "members" / label)
        mine = [p for p in sidecars if int(p.stem.split("-")[1]) == m["generation"]]
        if mine:
            out[f"{label}/g{m['generation']}"] = mine[0]
    return out


class Step(NamedTuple):
    """One ladder step: the upper level's wins, draws, losses and score against the lower."""

    wins: int
    draws: int
    losses: int
    score: float

    @classmethod
    def of(cls, result) -> "Step":
        return cls(result.wins, result.draws, result.losses, result.score)

    def flipped(self) -> "Step":
        return Step(self.losses, self.draws, self.wins, 1.0 - self.score)


def measure_levels(chosen: list[str], ratings: dict[str, float], match, retries: int = 3) -> tuple[list[str], list[Step]]:
    """Measure each step of the ladder ``chosen`` (names, weakest first, spaced in ``ratings``, the
    Elo of every candidate network) with ``match(upper, lower, k)`` (a result with wins, draws,
    losses and score, from ``upper``'s side) and mend the steps that do not hold. Returns the
    levels and, for each level above the first, its :class:`Step` against the one below.

    A level that does not beat the one below is swapped for the nearest untried network in Elo
    between its neighbours that does (at most ``retries`` tries), or else the level below it for
    one between its own neighbours. Failing both, a level that the one below beats is swapped
    with it, provided it still beats the level under both: ratings from league games under the
    training search can misorder networks (in a 60-minute arena league, ``main0/g12`` was rated
    above ``main0/g36`` and scored 12% against it)."""
    chosen = list(chosen)
    scores: list[Step] = []
    for k in range(1, len(chosen)):
        result = Step.of(match(chosen[k], chosen[k - 1], k))
        if result.score <= 0.5:
            low = ratings[chosen[k - 1]]
            high = ratings[chosen[k + 1]] if k + 1 < len(chosen) else math.inf
            spares = sorted((n for n in ratings if n not in chosen and low <= ratings[n] <= high),
                            key=lambda n: abs(ratings[n] - ratings[chosen[k]]))
            for spare in spares[:retries]:
                tried = Step.of(match(spare, chosen[k - 1], k))
                if tried.score > 0.5:
                    chosen[k], result = spare, tried
                    break
        if result.score <= 0.5 and k >= 2:
            # the two are equally strong: try a weaker level below, one that still beats its own
            # lower neighbour and loses to this level
            low, high = ratings[chosen[k - 2]], ratings[chosen[k]]
            middle = (low + high) / 2
            spares = sorted((n for n in ratings if n not in chosen and low <= ratings[n] <= high),
                            key=lambda n: abs(ratings[n] - middle))
            for spare in spares[:retries]:
                under, over = Step.of(match(spare, chosen[k - 2], k - 1)), Step.of(match(chosen[k], spare, k))
                if under.score > 0.5 and over.score > 0.5:
                    chosen[k - 1], scores[k - 2], result = spare, under, over
                    break
        if result.score < 0.5:
            # the level below is the stronger: swap the two if this one beats the level under both
            under = Step.of(match(chosen[k], chosen[k - 2], k - 1)) if k >= 2 else None
            if under is None or under.score > 0.5:
                if under is not None:
                    scores[k - 2] = under
                chosen[k - 1], chosen[k], result = chosen[k], chosen[k - 1], result.flipped()
        scores.append(result)
    return chosen, scores


def write_ladder(run_dir: str | Path, levels: int = 5, games: int = 40, visits: int = 0, seed: int = 0,
                 opening_moves: int = 2, kinds: tuple[str, ...] = ("main",), retries: int = 3,
                 min_games: int = 30) -> str:
    """Pick ``levels`` networks spaced in Elo, play each against its neighbours (``games`` each,
    ``visits`` simulations per move, 0 the raw policy; each pair of games from its own
    ``opening_moves`` random plies, since a raw policy plays one game per colour otherwise), and write ``ladder/level-K/`` (a
    checkpoint, ready for ``selfplay export``) and ``ladder/ladder.json``. Returns a summary.

    Each step is measured and mended where it does not hold (:func:`measure_levels`); a level that
    still does not beat the one below is kept and marked ``"beats_below": false``. Only networks with at least ``min_games`` league games are
    candidates: a learner's latest network, or a snapshot just frozen, has an Elo from a handful of
    games. Levels come from the seed and the networks of members of ``kinds``: by default the main
    agents' line, which grows stronger against everything. Exploiters are strong against their
    targets only (their Elo comes from few, one-sided games), which makes a poor difficulty step."""
    import games as games_module

    from ..evaluation.agents import NetworkAgent, trained_search_config
    from ..evaluation.matches import play_match
    from ..model.checkpoint import atomic_write
    from .population import LeagueError
    from .run import load_run_config, load_state, read_log

    run_dir = Path(run_dir)
    config = load_run_config(run_dir)
    state = load_state(run_dir)
    table = rating_table(read_log(run_dir, upto=state["seq"]))
    ratings, intervals = table.ratings(), table.intervals()
    played: dict[str, float] = {}
    for line in read_log(run_dir, upto=state["seq"]):
        if "opponent" in line:
            for who in (line["learner"], line["opponent"]):
                played[who] = played.get(who, 0) + line["wins"] + line["draws"] + line["losses"]
    candidates = {name: path for name, path in _candidates(run_dir, state, tuple(kinds)).items()
                  if name in ratings and played.get(name, 0) >= min_games}
    if len(candidates) < 2:
        raise LeagueError(f"{run_dir}: fewer than two networks on disk with {min_games} rated games; let the league run longer")
    chosen = pick_levels({name: ratings[name] for name in candidates}, levels)
    game = games_module.make(config.train.game, **config.train.game_options)
    agents: dict[str, Any] = {}

    def agent(name: str):
        if name not in agents:
            search = trained_search_config(visits, config.train.search) if visits else None
            agents[name] = NetworkAgent(game, checkpoint_evaluator(candidates[name], game), visits, config=search, name=name)
        return agents[name]

    def match(upper: str, lower: str, k: int):
        return play_match(game, agent(upper), agent(lower), games, seed=seed + k, opening_moves=opening_moves,
                          batch_size=games, stop_when_decided=False)

    chosen, scores = measure_levels(chosen, {name: ratings[name] for name in candidates}, match, retries)
    target = run_dir / LADDER_DIR
    if target.exists():
        shutil.rmtree(target)
    target.mkdir()
    entries = []
    for k, name in enumerate(chosen):
        level_dir = target / f"level-{k + 1}"
        level_dir.mkdir()
        sidecar = candidates[name]
        record = json.loads(sidecar.read_text())
        shutil.copy2(sidecar.with_name(record["file"]), level_dir / record["file"])
        shutil.copy2(sidecar, level_dir / sidecar.name)
        entry: dict[str, Any] = {"level": k + 1, "player": name, "elo": round(ratings[name], 1),
                                 "elo_interval": [round(x, 1) for x in intervals[name]],
                                 "checkpoint": f"level-{k + 1}/{sidecar.name}"}
        if k > 0:
            r = scores[k - 1]
            entry["vs_below"] = {"opponent": chosen[k - 1], "score": r.score, "wins": r.wins, "draws": r.draws, "losses": r.losses}
            entry["beats_below"] = r.score > 0.5
        if k + 1 < len(chosen):
            r = scores[k]
            entry["vs_above"] = {"opponent": chosen[k + 1], "score": 1 - r.score, "wins": r.losses, "draws": r.draws,
                                 "losses": r.wins}
        entries.append(entry)
    index = {"game": config.train.game, "game_options": dict(config.train.game_options), "games_per_pair": games,
             "visits": visits, "levels": entries}
    with atomic_write(target / LADDER_FILE) as f:
        f.write(json.dumps(index, indent=1).encode())
    out = [f"ladder of {len(chosen)} levels in {target} ({games} games per neighbour pair, {visits} visits):"]
    for entry in entries:
        below = entry.get("vs_below")
        out.append(f"  level {entry['level']}: {entry['player']:<16} Elo {entry['elo']:>7.1f}"
                   + (f"  scores {100 * below['score']:.0f}% vs level {entry['level'] - 1} "
                      f"(+{below['wins']:.0f} ={below['draws']:.0f} -{below['losses']:.0f})" if below else ""))
    unordered = [e["level"] for e in entries if e.get("beats_below") is False]
    if unordered:
        out.append(f"  levels {', '.join(map(str, unordered))} do not beat the level below in these games: the "
                   f"networks are too close (a longer league, or more --games or --visits, may separate them)")
    out.append(f"export a level: selfplay export {target}/level-1 --out brains/level-1")
    return "\n".join(out)


def _ladder_dir(path: str | Path) -> Path:
    """The directory holding ``ladder.json``: ``path`` itself or its ``ladder/``."""
    path = Path(path)
    return path if (path / LADDER_FILE).is_file() else path / LADDER_DIR


def is_ladder(path: str | Path) -> bool:
    """Whether ``path`` is a ladder directory, or a league directory that holds one."""
    return (_ladder_dir(path) / LADDER_FILE).is_file()


def read_ladder(path: str | Path) -> tuple[Path, dict[str, Any]]:
    """The ladder :func:`write_ladder` wrote, from its directory or the league directory above
    it: the ladder's directory and ``ladder.json`` (``levels[k - 1]["checkpoint"]`` is level
    ``k``'s checkpoint, relative to that directory). A one-line ``LeagueError`` otherwise."""
    from .population import LeagueError

    directory = _ladder_dir(path)
    bad = LeagueError(f"{directory / LADDER_FILE}: not a ladder written by selfplay league ladder, or its checkpoints are gone")
    try:
        index = json.loads((directory / LADDER_FILE).read_text())
    except FileNotFoundError:
        raise LeagueError(f"{path}: no {LADDER_FILE} here or in {LADDER_DIR}/ (selfplay league ladder DIR writes one)") from None
    except ValueError:
        raise bad from None
    levels = index.get("levels") if isinstance(index, dict) else None
    if not isinstance(levels, list) or not levels:
        raise bad
    for k, entry in enumerate(levels, 1):
        if not isinstance(entry, dict) or entry.get("level") != k or not isinstance(entry.get("checkpoint"), str):
            raise bad
        if not (directory / entry["checkpoint"]).is_file():
            raise bad
    return directory, index


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
    from .run import load_run_config, load_state

    run_dir = Path(run_dir)
    config, state = load_run_config(run_dir), load_state(run_dir)
    evaluation = config.train.eval
    games = games or evaluation.final_games
    visits = visits if visits is not None else (evaluation.final_visits, 0)
    opponents = opponents if opponents is not None else evaluation.final_opponent_specs
    networks = {name: str(path) for name, path in
                _candidates(run_dir, state, ("main", "main_exploiter", "league_exploiter")).items()}
    frozen = final_snapshots([s for s in state["snapshots"] if s["name"] in networks], max_snapshots)
    jobs: list[tuple] = []  # (player, opponent, visits, seed)
    for m in (m for m in state["members"] if m["kind"] == "main"):
        label = m["name"] if m["incarnation"] == 0 else f"{m['name']}.{m['incarnation']}"
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
    from .run import load_run_config

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


def checkpoint_evaluator(path: str | Path, game: Any) -> Any:
    """The search evaluator of the checkpoint at ``path`` (made for ``game``): its network as an
    in-memory ONNX model on onnxruntime, one thread."""
    from ..model.checkpoint import load_checkpoint
    from ..training.weights import checkpoint_weights, evaluator_from_weights

    return evaluator_from_weights(checkpoint_weights(load_checkpoint(path, expect_game=game), game), game)


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
