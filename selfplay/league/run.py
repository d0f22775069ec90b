"""A league of AlphaZero learners (selfplay.league.population), time-sliced on one actor pool:
:class:`League` and :func:`run_league`, what ``selfplay league GAME`` runs.

Every member is a :class:`selfplay.training.trainer.Trainer`: its own network, learner, replay buffer,
checkpoints and metrics in ``members/NAME/``. Learners take turns, one generation each
(on a 2-core machine two learners side by side would only contend, as in ``selfplay train``).
In a member's generation the shared actors play its games against the opponents
:func:`selfplay.league.population.opponent_distribution` picks, each game drawing one
(:class:`selfplay.training.messages.Pairings`), with each side searching with its own network. Each
learner learns from its own moves only, but from every game it plays: in a game between two current
members the opponent's moves go to its buffer too (``Trainer.receive``) and count towards its next
generation's learning steps (a crash before its next checkpoint loses them, like the turn in progress).
One turn, read top to bottom in :meth:`League._turn`::

    1. opponents  the member's opponent distribution, as networks (ONNX for the actors)
    2. play+learn Trainer.generation(): self-play/versus games, replay, learning, checkpoint;
                  the other current members it played receive their own moves
    3. record     the generation's results per opponent appended to games.jsonl (fsync), payoff
    4. freeze     when selfplay.league.population.freeze_due: a snapshot joins the pool; an exploiter may
                  restart from the seed network in a new directory (members/NAME.R)
    5. prune      snapshots beyond league.keep_snapshots, sparing ladder members and the latest
    6. commit     league.json, atomically; then retired directories are removed

The league directory and the order its files are written in: :mod:`selfplay.league.store`. On
resume, log lines past the committed turn are dropped, member checkpoints newer than the committed
generation are removed (the buffer is cut back to the checkpoint, as in selfplay train), and
directories or snapshots the state does not name are removed. So a SIGKILL loses at most the turn
in progress, never a committed snapshot, rating game or checkpoint. The payoff is rebuilt from the log.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

import games

from ..config import TrainConfig, with_overrides
from ..training.state import StopRequest
from .population import (
    SCRIPTED,
    SEED,
    LeagueError,
    Member,
    Payoff,
    Snapshot,
    freeze_due,
    opponent_distribution,
    reset_after_freeze,
)
from .store import (
    CONFIG_FILE,
    LOG_FILE,
    MEMBERS,
    SNAPSHOTS,
    STATE_FILE,
    LeagueRunConfig,
    append_lines,
    cut_log,
    load_state,
    read_log,
    remove_unnamed,
    retire,
    save_run_config,
    save_state,
    snapshot_path,
)

__all__ = ["League", "member_config", "run_league"]


def member_config(train: TrainConfig) -> TrainConfig:
    """A member's TrainConfig: the league's, rated by league games only (no rating matches, no
    final matches), a checkpoint every generation (the league commits every turn), two kept."""
    return with_overrides(train, {"eval.every": 0, "eval.final_games": 0, "run.keep_last": 2,
                                  "run.checkpoint_seconds": 0.0, "run.progress": False})


class _LeagueStop(StopRequest):
    """Ctrl-C / SIGTERM, or the league's time budget."""

    def __init__(self, time_up: Callable[[], bool]) -> None:
        super().__init__()
        self.time_up = time_up

    def __call__(self) -> bool:
        return self.reason is not None or self.time_up()


class League:
    """One session of a league run: :meth:`run` takes turns until the budget is spent."""

    def __init__(self, config: LeagueRunConfig, run_dir: str | Path, resume: bool = False,
                 stop: StopRequest | None = None, log: Callable[[str], None] | None = None) -> None:
        import torch

        from ..model.network import build_network

        if not (config.train.run.minutes > 0 or config.train.run.generations > 0):
            raise LeagueError("a league needs a budget: --minutes M, or --generations N (each member's generations)")
        if config.train.cluster.overlap:
            raise LeagueError("--cluster.overlap is for selfplay train: league members take turns on the actors")
        self.config = config
        self.run_dir = Path(run_dir)
        self.log = log or (lambda text: print(text, file=sys.stderr, flush=True))
        self.game = games.make(config.train.game, **config.train.game_options)
        self.member_train = member_config(config.train)
        self.session_start = time.monotonic()
        self.stop = stop if stop is not None else _LeagueStop(self._time_up)
        self.trainers: dict[str, Any] = {}
        self._weights: dict[str, Any] = {}  # snapshot name -> Weights
        self._retired: list[Path] = []  # member directories and snapshot sidecars to delete after the next commit
        self._plotted = -math.inf
        (self.run_dir / SNAPSHOTS).mkdir(parents=True, exist_ok=True)
        (self.run_dir / MEMBERS).mkdir(parents=True, exist_ok=True)
        torch.manual_seed(config.train.run.seed)
        seed_model = build_network(config.train.net, self.game.obs_shape, self.game.num_actions)
        if config.league.init and not resume:
            seed_model.load_state_dict(_init_checkpoint(config.league.init, self.game, config.train.net).model_state)
        if resume:
            self._resume()
        else:
            self.elapsed_before = 0.0
            self.seq = 0
            self.turn = 0
            self.next_step = 1
            self.rng = np.random.default_rng(np.random.SeedSequence([config.train.run.seed, 10]))
            self.members = [Member(name, kind) for name, kind in config.league.member_names()]
            # the pool: the seed network, and the game's scripted players (fixed: never pruned)
            scripts = config.league.script_players(self.game.extra.get("scripts", {}))
            self.snapshots = [Snapshot(SEED, "", "", 0, 0.0)] + [Snapshot(name, "", SCRIPTED, -1) for name in scripts]
            self.pruned: list[str] = []
            self._save_snapshot(0, seed_model, SEED, {"member": "", "kind": ""})
        self.seed_state = self._load_snapshot_state(0)
        self.payoff = self._rebuild_payoff()
        for member in self.members:
            self._open_trainer(member, resume=resume and (self._member_dir(member) / "config.json").exists())
        if not resume:
            self._commit()

    # ------------------------------------------------------------------ directories and state
    def _member_dir(self, member: Member) -> Path:
        return self.run_dir / MEMBERS / member.label

    def _open_trainer(self, member: Member, resume: bool) -> None:
        from ..model.checkpoint import atomic_write
        from ..training.state import CONFIG_FILE as TRAIN_CONFIG
        from ..training.trainer import Trainer

        directory = self._member_dir(member)
        if not resume:
            directory.mkdir(parents=True, exist_ok=True)
            with atomic_write(directory / TRAIN_CONFIG) as f:
                f.write(json.dumps(self.member_train.to_dict(), indent=1).encode())
        config = with_overrides(self.member_train, {"run.seed": self.config.train.run.seed + 1000 * (self.members.index(member) + 1)
                                                    + member.incarnation})
        trainer = Trainer(config, directory, resume=resume, stop=self.stop,
                          log=lambda text, name=member.label: self.log(f"{name}: {text}"),
                          initial_state=self.seed_state)
        trainer.start()
        member.generation = trainer.state.generation
        self.trainers[member.name] = trainer

    def _save_snapshot(self, step: int, model, name: str, meta: dict) -> None:
        from ..evaluation.agents import TRAINED_SEARCH
        from ..model.checkpoint import save_checkpoint

        search = {key: getattr(self.config.train.search, key) for key in TRAINED_SEARCH}  # how it plays alone (selfplay arena)
        meta = {"snapshot": name, **meta, "search": search}
        save_checkpoint(self.run_dir / SNAPSHOTS, step, model, meta=meta, game=self.game, keep_last=1 << 30)

    def _load_snapshot_state(self, step: int) -> dict:
        from ..model.checkpoint import load_checkpoint

        return load_checkpoint(snapshot_path(self.run_dir, step), expect_game=self.game,
                               expect_net=self.config.train.net).model_state

    def _commit(self) -> None:
        """league.json, atomically: the turn is done. Then the retired member directories and
        pruned snapshots go (deleted before the commit, a kill in between would leave a state that
        names missing files)."""
        save_state(self.run_dir, {
            "seq": self.seq,
            "elapsed": self.elapsed(),
            "turn": self.turn,
            "next_step": self.next_step,
            "rng": self.rng.bit_generator.state,
            "members": [m.to_dict() for m in self.members],
            "snapshots": [s.to_dict() for s in self.snapshots],
            "pruned": self.pruned,
        })
        retire(self._retired)  # only now that the committed state no longer names them
        self._retired = []

    def _resume(self) -> None:
        """Back to the last committed turn: the state, the log up to it, member checkpoints no
        newer than it; files the state does not name are removed."""
        state = load_state(self.run_dir)
        try:
            self.elapsed_before = float(state["elapsed"])
            self.seq, self.turn, self.next_step = int(state["seq"]), int(state["turn"]), int(state["next_step"])
            self.rng = np.random.default_rng()
            self.rng.bit_generator.state = state["rng"]
            self.members = [Member(**m) for m in state["members"]]
            self.snapshots = [Snapshot(**s) for s in state["snapshots"]]
            self.pruned = list(state.get("pruned", []))
        except (KeyError, TypeError, ValueError) as e:
            raise LeagueError(f"{self.run_dir / STATE_FILE}: bad league state ({type(e).__name__}: {e})") from None
        # the log: only committed lines (a crash may have left a later or a torn one)
        if cut_log(self.run_dir, self.seq):
            self.log(f"{LOG_FILE}: dropped the lines of the turn that was not committed")
        # snapshots frozen in the uncommitted turn; member directories other than the current
        # incarnations, and their checkpoints past the committed generation
        remove_unnamed(self.run_dir, [s.step for s in self.snapshots], {m.label: m.generation for m in self.members})

    def _rebuild_payoff(self) -> Payoff:
        """The decayed payoff, replayed from the committed log (so it is never saved twice)."""
        payoff = Payoff(self.config.league.payoff_decay)
        for line in read_log(self.run_dir, upto=self.seq):
            if line.get("event") == "reset":
                payoff.forget(line["member"])
            elif "label" in line:
                payoff.update(line["member"], line["label"], line["wins"], line["draws"], line["losses"])
        return payoff

    # ------------------------------------------------------------------ budget
    def elapsed(self) -> float:
        return self.elapsed_before + time.monotonic() - self.session_start

    def _time_up(self) -> bool:
        """The budget is spent: ``run.minutes`` of wall-clock, or ``run.generations`` turns of
        every member (each member's generations, resets included)."""
        run = self.config.train.run
        if run.generations > 0 and self.turn >= run.generations * len(self.members):
            return True
        return run.minutes > 0 and self.elapsed() >= 60 * run.minutes

    # ------------------------------------------------------------------ the loop
    def run(self) -> None:
        """Take turns until the budget is spent or a stop is requested."""
        from ..training.pool import make_actors

        first = self.trainers[self.members[0].name]
        cluster = self.config.train.cluster
        actors = make_actors(first.actor_spec(), first.num_actors(), cluster, log=self.log)
        for trainer in self.trainers.values():
            trainer.actors = actors
        self.actors = actors
        kind = "Ray actors" if cluster.backend == "ray" else "actor processes"
        self.log(f"league of {', '.join(m.label for m in self.members)} on {self.config.train.game}; "
                 f"{(actors.count if first.num_actors() else 0) or 'no'} {kind}; directory {self.run_dir}")
        try:
            while not self.stop():
                self._turn()
        finally:
            actors.close()
            for trainer in self.trainers.values():
                trainer.close()
        self.report()

    def _turn(self) -> None:
        """Steps 1-6 of the module docstring, once, for the member whose turn it is."""
        from ..training.messages import SELF, Pairings, is_script

        config = self.config.league
        member = self.members[self.turn % len(self.members)]
        trainer = self.trainers[member.name]
        # 1. opponents, as players: snapshot names, current members' player names, or SELF
        distribution = opponent_distribution(member, self.members, self.snapshots, self.payoff, config)
        names, probs, weights, labels, learners = [], [], {}, {}, {}
        by_name = {m.name: m for m in self.members}
        for label, p in distribution.items():
            if label == member.name or label == member.player:  # itself, or its own snapshot just frozen
                player = SELF
            elif label in by_name:
                player = by_name[label].player
                weights[player] = self.trainers[label].weights()
                learners[player] = label  # a current member: it learns its own moves of these games too
            else:
                player = label
                if not is_script(label):  # a scripted player moves by its script, with no network
                    weights[player] = self._snapshot_weights(label)
            if player in labels:  # the same network under two labels
                probs[names.index(player)] += p
                continue
            names.append(player)
            probs.append(p)
            labels[player] = label
        total = sum(probs)
        trainer.pairings = Pairings(tuple(names), tuple(p / total for p in probs), weights, tuple(learners))
        # 2. play and learn: the member's generation, with its checkpoint; the other members it
        # played get their own moves of those games, for their next generation
        player, before = member.player, member.generation
        stats = trainer.generation()
        for opponent, positions in trainer.shared.items():
            self.trainers[learners[opponent]].receive(positions)
        # 3. record the games (fsync) and the payoff
        tally: dict[str, list[float]] = {}
        for opponent, _seat, score in stats.results:
            wdl = tally.setdefault(opponent, [0, 0, 0])
            wdl[0 if score > 0 else 1 if score == 0 else 2] += 1
        lines = []
        t = round(self.elapsed(), 2)
        for opponent, (w, d, l) in sorted(tally.items()):
            self.seq += 1
            lines.append({"seq": self.seq, "t": t, "learner": player, "member": member.name, "kind": member.kind,
                          "opponent": opponent, "label": labels[opponent], "wins": w, "draws": d, "losses": l})
            self.payoff.update(member.name, labels[opponent], w, d, l)
        member.games += len(stats.results)
        member.generation = trainer.state.generation
        if member.generation > before:
            member.since_freeze += 1
        # 4. freeze, and maybe reset
        if member.generation > before and freeze_due(member, self.members, self.snapshots, self.payoff, config):
            lines += self._freeze(member, trainer)
        append_lines(self.run_dir, lines)
        self.turn += 1
        # 5. prune, 6. commit
        self._prune()
        self._commit()
        if time.monotonic() - self._plotted >= config.plot_seconds:
            self.report(quiet=True)

    def _freeze(self, member: Member, trainer) -> list[dict]:
        """A snapshot of ``member`` joins the pool; an exploiter may start again from the seed.
        Returns the log lines of a reset."""
        step = self.next_step
        self.next_step += 1
        name = member.player
        self._save_snapshot(step, trainer.model, name, {"member": member.name, "kind": member.kind,
                                                        "parent": member.parent, "elapsed": self.elapsed()})
        self.snapshots.append(Snapshot(name, member.name, member.kind, step, round(self.elapsed(), 2), member.parent))
        member.since_freeze = 0
        member.parent = name
        self.log(f"{name} frozen ({len(self.snapshots)} players in the pool)")
        if not reset_after_freeze(member, self.config.league, self.rng):
            return []
        trainer.close()
        self._retired.append(self._member_dir(member))
        member.incarnation += 1
        member.generation = 0
        member.since_freeze = 0
        member.parent = SEED
        self.payoff.forget(member.name)
        self.seq += 1
        line = {"seq": self.seq, "t": round(self.elapsed(), 2), "event": "reset", "member": member.name,
                "incarnation": member.incarnation}
        self._open_trainer(member, resume=False)
        self.trainers[member.name].actors = self.actors
        self.log(f"{member.name} reset to the seed network as {member.label}")
        return [line]

    def _snapshot_weights(self, name: str):
        from ..model.network import build_network
        from ..training.weights import export_weights

        if name not in self._weights:
            snapshot = next(s for s in self.snapshots if s.name == name)
            model = build_network(self.config.train.net, self.game.obs_shape, self.game.num_actions)
            model.load_state_dict(self._load_snapshot_state(snapshot.step))
            trainer = self.trainers[self.members[0].name]
            self._weights[name] = export_weights(model, self.game, trainer.device, self.config.train.run.inference)
        return self._weights[name]

    def _prune(self) -> None:
        """Keep at most ``league.keep_snapshots`` snapshots: the oldest go first, except the seed,
        each member's latest and the main-agent snapshots a 5-level ladder would pick now. Their
        games stay in the log, so the ratings keep them."""
        from .ladder import pick_levels
        from .report import rating_table

        excess = sum(s.kind != SCRIPTED for s in self.snapshots) - self.config.league.keep_snapshots
        if excess <= 0:
            return
        ratings = rating_table(read_log(self.run_dir)).ratings()
        ladder = {s.name: ratings.get(s.name, 0.0) for s in self.snapshots if s.kind == "main"}  # as `ladder` picks
        keep = {SEED} | {s.name for s in self.snapshots if s.kind == SCRIPTED} | set(pick_levels(ladder, 5) if ladder else [])
        for member in self.members:
            latest = [s for s in self.snapshots if s.member == member.name]
            if latest:
                keep.add(latest[-1].name)
        for snapshot in list(self.snapshots):
            if excess <= 0:
                break
            if snapshot.name in keep:
                continue
            self.snapshots.remove(snapshot)
            self.pruned.append(snapshot.name)
            self._weights.pop(snapshot.name, None)
            self._retired.append(snapshot_path(self.run_dir, snapshot.step))  # its files go once league.json stops naming it
            excess -= 1

    def report(self, quiet: bool = False) -> None:
        """ratings.json and the plots (selfplay.league.report)."""
        from .report import write_report

        self._plotted = time.monotonic()
        text = write_report(self.run_dir)
        if not quiet:
            self.log(text)


def _init_checkpoint(path: str, game: Any, net: Any) -> Any:
    """The checkpoint ``--league.init`` names, checked against the game and the members' network."""
    from ..model.checkpoint import load_checkpoint

    found = load_checkpoint(path, expect_game=game)
    if found.net != net:
        raise LeagueError(f"--league.init {path}: a {found.net.describe()} network, but the members are "
                          f"{net.describe()}; drop the --net.* settings to take the checkpoint's")
    return found


def run_league(config: LeagueRunConfig, run_dir: str | Path, resume: bool = False, final_report: bool = True) -> League:
    """Run (or resume) a league in ``run_dir``; a new one writes ``config.json`` first. At the
    end, unless stopped: the final matches (selfplay.league.final.final_report)."""
    from ..training.ray_cluster import require_ray

    run_dir = Path(run_dir)
    require_ray(config.train.cluster)  # before anything is written
    if resume and not (run_dir / STATE_FILE).exists() and (run_dir / CONFIG_FILE).exists():
        # killed before its first commit: nothing was played; start it afresh with its config
        for name in (SNAPSHOTS, MEMBERS):
            shutil.rmtree(run_dir / name, ignore_errors=True)
        (run_dir / LOG_FILE).unlink(missing_ok=True)
        resume = False
    elif not resume:
        if (run_dir / CONFIG_FILE).exists():
            raise LeagueError(f"{run_dir} already holds a league: resume it with --resume {run_dir}")
        if config.league.init:  # a checkpoint that does not fit refuses the run before anything is written
            _init_checkpoint(config.league.init, games.make(config.train.game, **config.train.game_options), config.train.net)
        run_dir.mkdir(parents=True, exist_ok=True)
        save_run_config(run_dir, config)
    league = League(config, run_dir, resume=resume)
    with league.stop:
        league.run()
        if league.stop.reason:
            league.log(f"stopped ({league.elapsed() / 60:.1f} min); resume with: selfplay league --resume {run_dir}")
            return league
    if final_report and config.train.eval.final_games:
        from .final import final_report as report

        league.log(f"final matches of the main agents ({config.train.eval.final_games} games each, "
                   f"{config.train.eval.final_visits} visits and the raw policy):")
        report(run_dir, log=league.log)
    league.log(f"status: selfplay league status {run_dir}; ladder: selfplay league ladder {run_dir} --levels 5")
    return league
