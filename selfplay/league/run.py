"""``selfplay league GAME``: a league of AlphaZero learners (selfplay.league.population), time-sliced on one
actor pool; ``selfplay league status DIR`` and ``selfplay league ladder DIR``.

Every member is a :class:`selfplay.training.trainer.Trainer`: its own network, learner, replay buffer,
checkpoints and metrics in ``members/NAME/``. Learners take turns, one generation each
(on a 2-core machine two learners side by side would only contend, as in ``selfplay train``).
In a member's generation the shared actors play its games against the opponents
:func:`selfplay.league.population.opponent_distribution` picks, each game drawing one
(:class:`selfplay.training.actor.Pairings`), with each side searching with its own network. Each
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

League directory::

    config.json        {"train": TrainConfig, "league": LeagueConfig}, every field; read by --resume
    league.json        the committed state: members, snapshots, turn, the last game-log line
    games.jsonl        append-only: one line per (learner generation, opponent) with W/D/L, and resets
    snapshots/         frozen players as checkpoints (ckpt-000000 is the seed)
    members/NAME/      each learner's run directory (selfplay train's layout)
    ratings.json       Elo fitted over every league game (selfplay.evaluation.elo), the seed at 0
    payoff.png elo.png the win-rate heatmap and Elo over time per member (selfplay.league.report)
    ladder/            after `selfplay league ladder`: one checkpoint per level and ladder.json

Crashes. The member's checkpoint (with its buffer) is written before the game log line, the log
line (fsync) before league.json, and league.json commits the turn. On resume, log lines past the
committed one are dropped, member checkpoints newer than the committed generation are removed (the
buffer is cut back to the checkpoint, as in selfplay train), and directories or snapshots the
state does not name are removed. So a SIGKILL loses at most the turn in progress, never a
committed snapshot, rating game or checkpoint. The payoff is rebuilt from the log.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

import games
from games.core import GameError

from ..config import (
    PRESETS,
    ConfigError,
    TrainConfig,
    add_config_arguments,
    overrides_from_args,
    preset,
    with_overrides,
)
from .population import (
    SCRIPTED,
    SEED,
    LeagueConfig,
    LeagueError,
    Member,
    Payoff,
    Snapshot,
    freeze_due,
    opponent_distribution,
    reset_after_freeze,
)
from ..training.state import StopRequest

__all__ = ["SUBCOMMANDS", "League", "LeagueRunConfig", "add_arguments", "league_preset", "main", "run_exploiter", "run_league"]

CONFIG_FILE = "config.json"
STATE_FILE = "league.json"
LOG_FILE = "games.jsonl"
SNAPSHOTS = "snapshots"
MEMBERS = "members"
STATE_FORMAT = "selfplay-league"
CONFIG_FORMAT = "selfplay-league-config"

#: Settings --resume may change: the budget and the hardware (as selfplay train), where actors run included.
RESUME_SAFE = frozenset({"run.minutes", "run.generations", "run.device", "run.inference", "selfplay.num_actors", "learner.threads",
                         "league.plot_seconds", "league.keep_snapshots", "cluster.backend", "cluster.address",
                         "cluster.actor_resource", "cluster.inference", "cluster.chunk_seconds"})


@dataclass(frozen=True)
class LeagueRunConfig:
    """A league run: the training settings every member uses, and the league's."""

    train: TrainConfig
    league: LeagueConfig

    def to_dict(self) -> dict[str, Any]:
        return {"format": CONFIG_FORMAT, "train": self.train.to_dict(), "league": self.league.to_dict()}

    @classmethod
    def from_dict(cls, data: Any) -> "LeagueRunConfig":
        if not isinstance(data, dict) or data.get("format") != CONFIG_FORMAT:
            raise LeagueError("not a league config")
        return cls(TrainConfig.from_dict(data["train"]), LeagueConfig.from_dict(data["league"]))


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


def _append_lines(path: Path, lines: list[dict]) -> None:
    """Append JSON lines and fsync: a line on disk survives any crash after this returns."""
    if not lines:
        return
    with open(path, "ab") as f:
        f.write(b"".join(json.dumps(line).encode() + b"\n" for line in lines))
        f.flush()
        os.fsync(f.fileno())


def read_log(run_dir: str | Path, upto: int | None = None) -> list[dict]:
    """The game log's records, those with ``seq <= upto``.

    Records are appended with consecutive ``seq`` numbers from 1, so the log is all or nothing up
    to its last line: a torn last line (a crash in the middle of an append) is dropped, but a
    damaged line or a missing record before it is refused (LeagueError naming the line), since a
    resume would otherwise rewrite the log without it."""
    path = Path(run_dir) / LOG_FILE
    out: list[dict] = []
    if not path.exists():
        return out
    texts = path.read_bytes().split(b"\n")
    for number, text in enumerate(texts, 1):
        last = number == len(texts)  # after the final newline: empty, or the torn end of an append
        try:
            line = json.loads(text)
            if not (isinstance(line, dict) and type(line.get("seq")) is int):
                raise ValueError("not a game record")
        except ValueError as e:
            if last:
                break
            raise LeagueError(f"{path}: line {number} is damaged ({' '.join(str(e).split())[:80]}); "
                              "the records after it cannot be trusted") from None
        if line["seq"] != number:
            raise LeagueError(f"{path}: line {number} holds record {line['seq']} where record {number} belongs "
                              "(a record is missing or repeated)")
        if upto is not None and line["seq"] > upto:
            break
        out.append(line)
    return out


def load_state(run_dir: str | Path) -> dict:
    path = Path(run_dir) / STATE_FILE
    try:
        state = json.loads(path.read_text())
    except FileNotFoundError:
        raise LeagueError(f"{run_dir}: not a league directory (no {STATE_FILE})") from None
    except (OSError, ValueError) as e:
        raise LeagueError(f"{path}: unreadable ({type(e).__name__}: {' '.join(str(e).split())})") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise LeagueError(f"{path}: not a {STATE_FORMAT} state file")
    return state


def load_run_config(run_dir: str | Path) -> LeagueRunConfig:
    path = Path(run_dir) / CONFIG_FILE
    try:
        return LeagueRunConfig.from_dict(json.loads(path.read_text()))
    except FileNotFoundError:
        raise LeagueError(f"{run_dir}: not a league directory (no {CONFIG_FILE})") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise LeagueError(f"{path}: not a usable league config ({' '.join(str(e).split())[:200]})") from None


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
        from ..training.state import CONFIG_FILE as TRAIN_CONFIG
        from ..training.trainer import Trainer
        from ..model.checkpoint import atomic_write

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

    def _snapshot_path(self, step: int) -> Path:
        return self.run_dir / SNAPSHOTS / f"ckpt-{step:06d}.json"

    def _load_snapshot_state(self, step: int) -> dict:
        from ..model.checkpoint import load_checkpoint

        return load_checkpoint(self._snapshot_path(step), expect_game=self.game, expect_net=self.config.train.net).model_state

    def _commit(self) -> None:
        """league.json, atomically: the turn is done. Then the retired member directories and
        pruned snapshots go (deleted before the commit, a kill in between would leave a state that
        names missing files)."""
        from ..model.checkpoint import atomic_write, delete_checkpoint

        state = {
            "format": STATE_FORMAT,
            "seq": self.seq,
            "elapsed": self.elapsed(),
            "turn": self.turn,
            "next_step": self.next_step,
            "rng": self.rng.bit_generator.state,
            "members": [m.to_dict() for m in self.members],
            "snapshots": [s.to_dict() for s in self.snapshots],
            "pruned": self.pruned,
        }
        with atomic_write(self.run_dir / STATE_FILE) as f:
            f.write(json.dumps(state, indent=1).encode())
        for path in self._retired:  # only now that the committed state no longer names them
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                delete_checkpoint(path)
        self._retired = []

    def _resume(self) -> None:
        """Back to the last committed turn: the state, the log up to it, member checkpoints no
        newer than it; files the state does not name are removed."""
        from ..model.checkpoint import atomic_write, delete_checkpoint, list_checkpoints

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
        lines = read_log(self.run_dir, upto=self.seq)
        log_path = self.run_dir / LOG_FILE
        committed = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
        if log_path.exists() and log_path.read_bytes() != committed:  # later lines, or a torn one
            with atomic_write(log_path) as f:
                f.write(committed)
            self.log(f"{LOG_FILE}: dropped the lines of the turn that was not committed")
        # snapshots the state does not name (frozen in the uncommitted turn)
        known = {s.step for s in self.snapshots}
        for sidecar in list_checkpoints(self.run_dir / SNAPSHOTS):
            step = int(sidecar.stem.split("-")[1])
            if step not in known:
                delete_checkpoint(sidecar)
        # member directories: only the current incarnations, at their committed generation
        current = {m.label for m in self.members}
        for directory in (self.run_dir / MEMBERS).iterdir():
            if directory.name not in current:
                shutil.rmtree(directory, ignore_errors=True)
        for member in self.members:
            for sidecar in list_checkpoints(self._member_dir(member)):
                if int(sidecar.stem.split("-")[1]) > member.generation:  # the buffer is cut back on load
                    delete_checkpoint(sidecar)

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
        _append_lines(self.run_dir / LOG_FILE, lines)
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
        from .report import pick_levels, rating_table

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
            self._retired.append(self._snapshot_path(snapshot.step))  # its files go once league.json stops naming it
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
    end, unless stopped: the final matches (selfplay.league.report.final_report)."""
    from ..model.checkpoint import atomic_write

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
        with atomic_write(run_dir / CONFIG_FILE) as f:
            f.write(json.dumps(config.to_dict(), indent=1).encode())
    league = League(config, run_dir, resume=resume)
    with league.stop:
        league.run()
        if league.stop.reason:
            league.log(f"stopped ({league.elapsed() / 60:.1f} min); resume with: selfplay league --resume {run_dir}")
            return league
    if final_report and config.train.eval.final_games:
        from .report import final_report as report

        league.log(f"final matches of the main agents ({config.train.eval.final_games} games each, "
                   f"{config.train.eval.final_visits} visits and the raw policy):")
        report(run_dir, log=league.log)
    league.log(f"status: selfplay league status {run_dir}; ladder: selfplay league ladder {run_dir} --levels 5")
    return league


# ----------------------------------------------------------------------------- exploitability

EXPLOIT_FILE = "exploit.json"


def run_exploiter(target: str | Path, config: TrainConfig, run_dir: str | Path, games_: int = 100,
                  visits: int | None = None, log: Callable[[str], None] | None = None,
                  init: str | Path | None = None) -> dict:
    """Exploitability: train a learner (``config``, a Trainer in ``run_dir``) against the fixed
    network ``target`` only (any network ``selfplay arena`` takes: a checkpoint or run directory,
    an exported brain or its ``.onnx``, ``pretrained``) for ``config.run.minutes``, then play
    it against the target, ``games_`` games at ``visits`` (default ``eval.final_visits``) and
    ``games_`` as raw policies. The lower the exploiter's score, the harder the target is to
    exploit. Writes ``exploit.json``.

    ``target`` may also be a fixed player of ``config.game`` (``mcts:200``, a script such as
    ``kite``: :func:`~selfplay.evaluation.agents.is_fixed_player`): the learner then trains against
    that player alone, a specialist, and is scored against it (which plays the same at any visits).

    The learner starts fresh (its seeded initialization), or from the network ``init`` with that
    network's architecture, as AlphaStar's exploiters start from its supervised agent. A common
    ``init`` for every target makes the measure sensitive at small budgets: a fresh network needs
    the budget to learn the game before it can exploit anything. The report then also scores
    ``init`` itself against the target, before training, with search and raw."""
    from ..training.messages import SCRIPT, Pairings
    from ..evaluation.agents import NetworkAgent, is_fixed_player, load_agent, trained_search_config
    from ..evaluation.matches import play_match
    from ..model.checkpoint import atomic_write, load_checkpoint
    from ..training.weights import evaluator_from_weights
    from ..evaluation.elo import score_interval
    from ..training.state import CONFIG_FILE as TRAIN_CONFIG
    from ..training.trainer import Trainer
    from ..training.weights import agent_weights, checkpoint_weights

    log = log or (lambda text: print(text, file=sys.stderr, flush=True))
    run_dir = Path(run_dir)
    if (run_dir / TRAIN_CONFIG).exists():
        raise LeagueError(f"{run_dir} already holds a run; choose another --run-dir")
    game = games.make(config.game, **config.game_options)
    fixed = is_fixed_player(str(target), game)
    if fixed:
        pairings = Pairings((SCRIPT + str(target).strip(),), (1.0,))
    else:
        aim_weights = agent_weights(target, game)
        pairings = Pairings(("target",), (1.0,), {"target": aim_weights})
    trainer_config = with_overrides(config, {"eval.every": 0, "eval.final_games": 0})
    seed = load_checkpoint(init, expect_game=game) if init is not None else None
    if seed is not None and seed.net != trainer_config.net:
        log(f"the exploiter takes {init}'s network: {seed.net.describe()}")
        trainer_config = trainer_config.replace(net=seed.net)
    run_dir.mkdir(parents=True, exist_ok=True)
    with atomic_write(run_dir / TRAIN_CONFIG) as f:
        f.write(json.dumps(trainer_config.to_dict(), indent=1).encode())
    with StopRequest() as stop:
        trainer = Trainer(trainer_config, run_dir, stop=stop, log=log,
                          initial_state=seed.model_state if seed is not None else None)
        trainer.pairings = pairings
        trainer.run()
    visits = config.eval.final_visits if visits is None else visits
    target_evaluator = None if fixed else evaluator_from_weights(aim_weights, game)

    def score(evaluator, name: str, simulations: int) -> dict:
        search = trained_search_config(simulations, config.search) if simulations else None
        me = NetworkAgent(game, evaluator, simulations, config=search, name=name)
        if fixed:
            them = load_agent(str(target), game)
        else:
            them = NetworkAgent(game, target_evaluator, simulations, config=search, name=str(target))
        result = play_match(game, me, them, games_, seed=1, opening_moves=config.eval.opening_moves,
                            batch_size=games_, stop_when_decided=False)
        lo, hi = score_interval(result.wins, result.draws, result.losses)
        log(f"{name} scores {100 * result.score:.1f}% against {target} (+{result.wins} ={result.draws} "
            f"-{result.losses}; 95% {100 * lo:.0f}..{100 * hi:.0f}%) "
            + (f"at {simulations} visits" if simulations else "as raw policies"))
        return {"wins": result.wins, "draws": result.draws, "losses": result.losses, "score": result.score,
                "score_ci95": [lo, hi]}

    mine = evaluator_from_weights(trainer.weights(), game)
    report = {"target": str(target), "init": None if init is None else str(init), "minutes": config.run.minutes,
              "generations": trainer.state.generation, "visits": visits,
              **score(mine, f"exploiter (generation {trainer.state.generation})", visits)}
    report["raw"] = score(mine, "exploiter, raw", 0)
    if seed is not None:  # the starting point: what training against the target added
        start = evaluator_from_weights(checkpoint_weights(seed, game), game)
        report["init_score"] = {"search": score(start, "init", visits), "raw": score(start, "init, raw", 0)}
    with atomic_write(run_dir / EXPLOIT_FILE) as f:
        f.write(json.dumps(report, indent=1).encode())
    return report


# ----------------------------------------------------------------------------- command line


def _league_flags(parser: argparse.ArgumentParser) -> None:
    from dataclasses import fields

    group = parser.add_argument_group("league settings", (LeagueConfig.__doc__ or "").split("\n")[0])
    for f in fields(LeagueConfig):
        kind = type(f.default)  # int, float or str
        group.add_argument(f"--league.{f.name.replace('_', '-')}", dest=f"league.{f.name}", type=kind,
                           default=argparse.SUPPRESS, metavar={int: "N", float: "X"}.get(kind, "TEXT"),
                           help=f.metadata["help"].replace("%", "%%"))


#: ``selfplay league WORD ...``: these words are subcommands, each with its own flags and help;
#: any other word names the game a new league trains on.
SUBCOMMANDS = {
    "status": "the league's members, snapshots and ratings",
    "ladder": "pick and measure a ladder of levels from the league's networks (ladder/)",
    "final": "the main agents against every snapshot and eval.final_opponents, with search and raw",
    "exploit": "train a fresh learner against one fixed agent for --minutes, then score it against that agent",
}


def add_arguments(parser: argparse.ArgumentParser, argv: Sequence[str] = ()) -> None:
    """The arguments of ``selfplay league`` followed by ``argv``: those of the subcommand that
    ``argv`` names (``status DIR``, ``ladder DIR``, ``final DIR``, ``exploit TARGET``), else those
    of a league run (``GAME``, or ``--resume DIR``). So each subcommand's ``--help`` shows its own
    flags only."""
    words = [a for a in argv if not a.startswith("-")]
    command = words[0] if words and words[0] in SUBCOMMANDS else None
    if command is None:
        parser.add_argument("target", nargs="?", metavar="GAME", help="the game to train a league on (subcommands: "
                            + "; ".join(f"{k}: {v}" for k, v in SUBCOMMANDS.items()) + ")")
        parser.set_defaults(directory=None)
        parser.add_argument("-o", "--option", action="append", metavar="KEY=VALUE", help="game option (repeatable)")
        parser.add_argument("--preset", choices=PRESETS, default=None, help="the members' training preset (default: small)")
        parser.add_argument("--run-dir", default=None, metavar="DIR", help="where the league is written (default: "
                            "runs/league-GAME-DATE-TIME)")
        parser.add_argument("--resume", default=None, metavar="DIR", help="continue the league in DIR; may change only: "
                            + ", ".join(sorted(RESUME_SAFE)))
        parser.add_argument("--print-config", action="store_true", help="print the league's full config as JSON and exit")
        parser.add_argument("--no-final", action="store_true", help="skip the final matches of the main agents")
        _league_flags(parser)
        add_config_arguments(parser)
        return
    parser.prog, parser.description = f"{parser.prog} {command}", SUBCOMMANDS[command]
    parser.add_argument("target", choices=[command], help=argparse.SUPPRESS)  # the word itself, shown in prog
    if command == "exploit":
        parser.add_argument("directory", metavar="TARGET", help="the agent to exploit, any agent spec selfplay arena "
                            "takes: a run directory or checkpoint, an exported brain (directory or .onnx), "
                            "'pretrained', or a fixed player (mcts:200, a script: a specialist against it)")
        parser.add_argument("--init", default=None, metavar="CHECKPOINT", help="the network the exploiter starts from "
                            "(its architecture too; default: a fresh network); use one for every target compared")
        parser.add_argument("--game", default=None, help="the game, where neither TARGET nor --init names it "
                            "(mcts:200, a script, pretrained, a bare .onnx)")
        parser.add_argument("-o", "--option", action="append", metavar="KEY=VALUE", help="game option (repeatable)")
        parser.add_argument("--preset", choices=PRESETS, default=None, help="the exploiter's training preset "
                            "(default: small, with the league members' settings for the game)")
        parser.add_argument("--run-dir", default=None, metavar="DIR", help="where the exploiter is written "
                            "(default: runs/exploit-GAME-DATE-TIME)")
        parser.add_argument("--games", type=int, default=40, help="games of the final score, with search and raw each")
        add_config_arguments(parser)
        return
    parser.add_argument("directory", metavar="DIR", help="the league directory")
    if command == "ladder":
        parser.add_argument("--levels", type=int, default=5, help="levels, from beginner to strongest")
        parser.add_argument("--games", type=int, default=40, help="games between neighbouring levels")
        parser.add_argument("--visits", type=int, default=0, help="simulations per move in those games (0: raw policy, "
                            "an NPC's brain)")
        parser.add_argument("--opening-moves", type=int, default=2, help="random plies opening each pair of games")
        parser.add_argument("--min-games", type=int, default=30, help="networks with fewer league games are not candidates")
        parser.add_argument("--kinds", default="main", help="members whose networks may be levels, comma-separated "
                            "(main, main_exploiter, league_exploiter); the seed always may")
    elif command == "final":
        parser.add_argument("--games", type=int, default=40, help="games per pairing")
        parser.add_argument("--snapshots", type=int, default=8, help="the snapshots to play, evenly spaced over "
                            "the main agents' line and over the exploiters' (0: every snapshot on disk)")
        parser.add_argument("--workers", type=int, default=0, help="processes playing the matches, each on one "
                            "core (0: one per CPU core)")


def league_preset(game: str, name: str, options: dict[str, Any]) -> tuple[TrainConfig, dict[str, Any]]:
    """A new league's starting point before its flags: ``selfplay train``'s preset for the members,
    and the LeagueConfig fields that differ from their defaults, where a game's leagues were measured
    to need other settings (docs/league.md, "Measured runs").

    The arena: no league exploiter (a 2-core league gives the main agent half the turns instead of
    a third), the two walkers ``random`` and ``mcts:50`` in the pool beside the scripts (what taught
    the main agent to punish a wandering unit), and games opening with 0-2 random plies, as its
    final matches do: three 60-minute leagues with these settings beat every script in at least
    90% of games at 200 visits, and two of them in at least 75% as raw policies (the third in 70%),
    where the one run without random openings left the raw policy at 37-74% against them."""
    train = preset(game, name, options)
    if game != "arena":
        return train, {}
    return (train.replace(selfplay=replace(train.selfplay, random_opening_moves=2)),
            {"league_exploiters": 0, "scripts": "all,random,mcts:50"})


def config_from_args(args: argparse.Namespace) -> tuple[LeagueRunConfig, Path, bool]:
    overrides = overrides_from_args(args)
    league_overrides = {k.split(".", 1)[1]: v for k, v in vars(args).items() if k.startswith("league.")}
    if args.resume:
        for given, flag in ((args.preset, "--preset"), (args.option, "-o"), (args.run_dir, "--run-dir")):
            if given:
                raise LeagueError(f"{flag} cannot be combined with --resume (the league's config.json decides)")
        config = load_run_config(args.resume)
        unsafe = sorted((set(overrides) | {f"league.{k}" for k in league_overrides}) - RESUME_SAFE)
        if unsafe:
            raise LeagueError(f"--resume keeps the league's settings; {', '.join('--' + k.replace('_', '-') for k in unsafe)} "
                              f"cannot change (allowed: {', '.join(sorted(RESUME_SAFE))})")
        return LeagueRunConfig(with_overrides(config.train, overrides),
                               replace(config.league, **league_overrides)), Path(args.resume), True
    if not args.target:
        raise LeagueError("give a game (selfplay league connect4), status DIR, ladder DIR, or --resume DIR")
    game = games.make(args.target, **games.parse_options(args.option))
    train, league_defaults = league_preset(game.name, args.preset or "small", dict(game.options))
    train = with_overrides(train, overrides)
    league_overrides = {**league_defaults, **league_overrides}
    if league_overrides.get("init") and not any(key.startswith("net.") for key in overrides):
        from ..model.checkpoint import load_checkpoint  # the members take the seed checkpoint's network

        train = train.replace(net=load_checkpoint(league_overrides["init"], expect_game=game).net)
    config = LeagueRunConfig(train, LeagueConfig(**league_overrides))
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir = Path(args.run_dir) if args.run_dir else Path("runs") / f"league-{args.target}-{stamp}"
    return config, run_dir, False


def _exploit_game(args: argparse.Namespace) -> games.Game:
    """The game of ``selfplay league exploit TARGET``: ``--game``, else the one TARGET (a
    checkpoint, a run, a brain) was made for, else ``--init``'s (a fixed player such as
    ``mcts:200``, ``pretrained`` or a bare ``.onnx`` has no game of its own)."""
    from export.contract import game_of, is_brain, read_manifest

    from ..model.checkpoint import load_checkpoint

    if args.game:
        return games.make(args.game, **games.parse_options(args.option))
    target = Path(os.path.expanduser(args.directory))
    if is_brain(target):
        return game_of(read_manifest(target), str(target))
    source = args.directory if target.exists() and target.suffix != ".onnx" else args.init
    if source is None:
        raise LeagueError(f"selfplay league exploit {args.directory}: its game is not recorded there; name it with "
                          "--game GAME or --init CHECKPOINT")
    found = load_checkpoint(source)
    return games.make(found.game.rsplit("_v", 1)[0], **dict(found.game_options or {}))


def main(args: argparse.Namespace) -> int:
    from ..model.checkpoint import CheckpointError
    from ..training.ray_cluster import ClusterError

    try:
        if args.target == "exploit":
            game = _exploit_game(args)
            # the league's member settings: an exploiter trains as the agents it is compared with did
            train = with_overrides(league_preset(game.name, args.preset or "small", dict(game.options))[0],
                                   overrides_from_args(args))
            stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
            run_exploiter(args.directory, train, args.run_dir or Path("runs") / f"exploit-{game.name}-{stamp}",
                          games_=args.games, init=args.init)
            return 0
        if args.target in ("status", "ladder", "final"):
            from .report import status_text, write_ladder

            if args.target == "status":
                print(status_text(args.directory))
            elif args.target == "final":
                from .report import final_report

                if args.snapshots < 0:
                    raise LeagueError(f"--snapshots {args.snapshots}: give a count of snapshots, or 0 for every one")
                if args.workers < 0:
                    raise LeagueError(f"--workers must be >= 0 (0: one per CPU core), got {args.workers}")
                final_report(args.directory, games=args.games, log=print, max_snapshots=args.snapshots,
                             workers=args.workers or None)
            else:
                print(write_ladder(args.directory, args.levels, args.games, args.visits, opening_moves=args.opening_moves, min_games=args.min_games,
                                   kinds=tuple(k.strip() for k in args.kinds.split(","))))
            return 0
        config, run_dir, resume = config_from_args(args)
        if args.print_config:
            print(json.dumps(config.to_dict(), indent=1))
            return 0
        run_league(config, run_dir, resume=resume, final_report=not args.no_final)
    except (ConfigError, CheckpointError, ClusterError) as e:
        raise LeagueError(" ".join(str(e).split())) from None
    return 0


if __name__ == "__main__":  # python -m selfplay.league.run GAME ... (the same as `selfplay league`)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as selfplay.tools.cli.main: before the parser loads torch
    parser = argparse.ArgumentParser(prog="selfplay league", description="Train a league of learners.")
    add_arguments(parser, sys.argv[1:])
    try:
        sys.exit(main(parser.parse_args()))
    except (LeagueError, GameError, ValueError) as e:
        print(f"selfplay league: error: {e}", file=sys.stderr)
        sys.exit(2)
