"""A league directory on disk: its files, how each is written, and what a resume keeps.

::

    config.json        {"train": TrainConfig, "league": LeagueConfig}, every field; read by --resume
    league.json        the committed state: members, snapshots, turn, the last game-log line
    games.jsonl        append-only: one line per (learner generation, opponent) with W/D/L, and resets
    snapshots/         frozen players as checkpoints (ckpt-000000 is the seed)
    members/NAME/      each learner's run directory (selfplay train's layout)
    ratings.json       Elo fitted over every league game, the seed at 0 (selfplay.league.report)
    payoff.png elo.png the win-rate heatmap and Elo over time per member (selfplay.league.report)
    final.json         after the final matches (selfplay.league.final), with final.png
    ladder/            after `selfplay league ladder`: one checkpoint per level and ladder.json (selfplay.league.ladder)

The write protocol, which makes a SIGKILL lose at most the turn in progress: a member's checkpoint
before the game log's lines (:func:`append_lines`, fsynced), the log before ``league.json``
(:func:`save_state`, atomic), which commits the turn; only then are the files the state stopped
naming deleted (:func:`retire`). A resume keeps the committed log lines (:func:`cut_log`) and removes
what the state does not name (:func:`remove_unnamed`).

The reports beside these read the league through this module.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..config import TrainConfig
from .population import LeagueConfig, LeagueError

__all__ = [
    "CONFIG_FILE",
    "LOG_FILE",
    "MEMBERS",
    "SNAPSHOTS",
    "STATE_FILE",
    "LeagueRunConfig",
    "append_lines",
    "checkpoint_evaluator",
    "cut_log",
    "league_networks",
    "load_run_config",
    "load_state",
    "member_label",
    "read_log",
    "remove_unnamed",
    "retire",
    "save_run_config",
    "save_state",
    "snapshot_path",
]

CONFIG_FILE = "config.json"
STATE_FILE = "league.json"
LOG_FILE = "games.jsonl"
SNAPSHOTS = "snapshots"
MEMBERS = "members"
STATE_FORMAT = "selfplay-league"
CONFIG_FORMAT = "selfplay-league-config"


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


# ----------------------------------------------------------------------------- config and state


def save_run_config(run_dir: str | Path, config: LeagueRunConfig) -> None:
    """``config.json``, atomically: a league exists from the moment it is written."""
    from ..model.checkpoint import atomic_write

    with atomic_write(Path(run_dir) / CONFIG_FILE) as f:
        f.write(json.dumps(config.to_dict(), indent=1).encode())


def load_run_config(run_dir: str | Path) -> LeagueRunConfig:
    path = Path(run_dir) / CONFIG_FILE
    try:
        return LeagueRunConfig.from_dict(json.loads(path.read_text()))
    except FileNotFoundError:
        raise LeagueError(f"{run_dir}: not a league directory (no {CONFIG_FILE})") from None
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise LeagueError(f"{path}: not a usable league config ({' '.join(str(e).split())[:200]})") from None


def save_state(run_dir: str | Path, state: Mapping[str, Any]) -> None:
    """``league.json``, atomically: the turn it describes is committed."""
    from ..model.checkpoint import atomic_write

    with atomic_write(Path(run_dir) / STATE_FILE) as f:
        f.write(json.dumps({"format": STATE_FORMAT, **state}, indent=1).encode())


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


# ----------------------------------------------------------------------------- the game log


def append_lines(run_dir: str | Path, lines: list[dict]) -> None:
    """Append JSON lines to the game log and fsync: a line on disk survives any crash after this returns."""
    if not lines:
        return
    with open(Path(run_dir) / LOG_FILE, "ab") as f:
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


def cut_log(run_dir: str | Path, seq: int) -> bool:
    """Cut the game log back to its committed records (``seq <= seq``), atomically; whether there
    was more (the lines of a turn that was not committed, or a torn one)."""
    from ..model.checkpoint import atomic_write

    committed = b"".join(json.dumps(line).encode() + b"\n" for line in read_log(run_dir, upto=seq))
    path = Path(run_dir) / LOG_FILE
    if not path.exists() or path.read_bytes() == committed:
        return False
    with atomic_write(path) as f:
        f.write(committed)
    return True


# ----------------------------------------------------------------------------- networks on disk


def snapshot_path(run_dir: str | Path, step: int) -> Path:
    """The checkpoint sidecar of the snapshot saved at ``step``."""
    return Path(run_dir) / SNAPSHOTS / f"ckpt-{step:06d}.json"


def member_label(member: Mapping[str, Any]) -> str:
    """A ``league.json`` member's directory and player prefix: ``NAME``, or ``NAME.R`` after R resets
    (as :attr:`selfplay.league.population.Member.label`)."""
    return member["name"] if member["incarnation"] == 0 else f"{member['name']}.{member['incarnation']}"


def retire(paths: Iterable[Path]) -> None:
    """Delete member directories and snapshot checkpoints. Only once the committed state no longer
    names them: deleted first, a kill in between would leave a state that names missing files."""
    from ..model.checkpoint import delete_checkpoint

    for path in paths:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            delete_checkpoint(path)


def remove_unnamed(run_dir: str | Path, snapshot_steps: Iterable[int], members: Mapping[str, int]) -> None:
    """Remove what a committed state does not name: snapshots other than ``snapshot_steps``, member
    directories other than ``members`` (``{label: committed generation}``) and, in those, checkpoints
    newer than the committed generation (the buffer is cut back to the checkpoint on load)."""
    from ..model.checkpoint import delete_checkpoint, list_checkpoints

    run_dir = Path(run_dir)
    known = set(snapshot_steps)
    for sidecar in list_checkpoints(run_dir / SNAPSHOTS):
        if int(sidecar.stem.split("-")[1]) not in known:
            delete_checkpoint(sidecar)
    for directory in (run_dir / MEMBERS).iterdir():
        if directory.name not in members:
            shutil.rmtree(directory, ignore_errors=True)
    for label, generation in members.items():
        for sidecar in list_checkpoints(run_dir / MEMBERS / label):
            if int(sidecar.stem.split("-")[1]) > generation:
                delete_checkpoint(sidecar)


def league_networks(run_dir: str | Path, state: Mapping[str, Any], kinds: tuple[str, ...]) -> dict[str, Path]:
    """``{player: checkpoint sidecar}``: the seed, the snapshots on disk and each member's latest
    checkpoint, of members of ``kinds``."""
    from ..model.checkpoint import list_checkpoints

    run_dir = Path(run_dir)
    out = {}
    for s in state["snapshots"]:
        path = snapshot_path(run_dir, s["step"])
        if path.exists() and (s["kind"] in kinds or s["name"] == "seed"):
            out[s["name"]] = path
    for m in state["members"]:
        if m["kind"] not in kinds:
            continue
        label = member_label(m)
        sidecars = list_checkpoints(run_dir / MEMBERS / label)
        mine = [p for p in sidecars if int(p.stem.split("-")[1]) == m["generation"]]
        if mine:
            out[f"{label}/g{m['generation']}"] = mine[0]
    return out


def checkpoint_evaluator(path: str | Path, game: Any) -> Any:
    """The search evaluator of the checkpoint at ``path`` (made for ``game``): its network as an
    in-memory ONNX model on onnxruntime, one thread."""
    from ..model.checkpoint import load_checkpoint
    from ..training.weights import evaluator_from_weights
    from ..training.weights import checkpoint_weights

    return evaluator_from_weights(checkpoint_weights(load_checkpoint(path, expect_game=game), game), game)
