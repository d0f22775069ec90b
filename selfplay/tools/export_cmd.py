"""``selfplay export``: a checkpoint or run as a verified ONNX brain (``export``), or verify one.

::

    selfplay export runs/connect4-20250101-120000 --out brains/connect4 --with-value
    selfplay export runs/a runs/b --out brains            # one brain per source: brains/a, brains/b
    selfplay export --verify brains/connect4               # check an existing brain
    selfplay export --verify brains/connect4 --against runs/connect4-20250101-120000
    selfplay export runs/league-arena/ladder --out brains/arena-ladder   # every level, and ladder.json

This module only loads checkpoints and turns them into what ``export.export_brain`` takes (the
network, its game, and the facts for the manifest); ``export`` builds, verifies and writes.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
from pathlib import Path
from typing import Any

from export.contract import DEFAULT_OPSET, MLAGENTS_FILE, BrainError

__all__ = ["add_arguments", "checkpoint_facts", "export_checkpoint", "export_ladder", "export_loaded", "load_source", "main"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``selfplay export``."""
    parser.add_argument(
        "sources", nargs="*", metavar="CHECKPOINT_OR_RUN",
        help="run directories (their latest checkpoint), ckpt-*.json or ckpt-*.safetensors, or a league ladder",
    )  # fmt: skip
    parser.add_argument("--out", metavar="DIR", help="the brain directory (with several sources: one subdirectory each)")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default {DEFAULT_OPSET}: Unity Sentis and onnxruntime >= 1.9)")
    parser.add_argument("--with-value", action="store_true", help="also output 'value' [batch, 1] (needed to search on top of the brain)")
    parser.add_argument("--mlagents", action="store_true", help=f"also write {MLAGENTS_FILE}, the brain under ML-Agents' tensor names")
    parser.add_argument("--positions", type=int, default=1000, help="real positions (from random games) the export is verified on")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random games for verification")
    parser.add_argument("--verify", metavar="BRAIN", help="verify an existing brain (directory or .onnx) instead of exporting")
    parser.add_argument("--against", metavar="CHECKPOINT", help="with --verify: also compare with this checkpoint's network")


def checkpoint_facts(checkpoint: Any) -> dict[str, Any]:
    """What a checkpoint knows about its network, for the manifest: a name, its strength (Elo
    when the run rated it) and its training (generation, games, positions, time, preset)."""
    run = checkpoint.meta.get("run") or {}
    config = checkpoint.meta.get("config") or {}
    elo = checkpoint.metrics.get("elo")
    elo = float(elo) if isinstance(elo, (int, float)) and math.isfinite(elo) else None
    return {
        "name": f"{checkpoint.path.parent.name}/{checkpoint.path.stem}",
        "strength": {
            "elo": elo,
            "elo_scale": "Bradley-Terry over the run's rating games, the random mover at 0" if elo is not None else None,
            "level": None,
        },
        "training": {
            "game": checkpoint.game,
            "checkpoint": checkpoint.path.name,
            "run": checkpoint.path.parent.name,
            "generation": int(run.get("generation", checkpoint.step)),
            "games": run.get("games"),
            "positions": run.get("positions"),
            "elapsed_seconds": run.get("elapsed"),
            "preset": config.get("preset"),
            "loss": checkpoint.metrics.get("loss"),
        },
    }


def load_source(source: str) -> tuple[Any, Any]:
    """(checkpoint, its game) for a run directory or checkpoint file."""
    from ..evaluation.networks import checkpoint_game
    from ..model.checkpoint import load_checkpoint

    checkpoint = load_checkpoint(Path(source).expanduser())
    return checkpoint, checkpoint_game(checkpoint)


def export_checkpoint(source: str, out: str | Path, opset: int = DEFAULT_OPSET, with_value: bool = False,
                      mlagents: bool = False, positions: int = 1000, seed: int = 0) -> list[Any]:  # fmt: skip
    """Export the checkpoint ``source`` names as a brain in ``out`` (``export.export_brain``);
    returns its :class:`export.exporter.ExportedBrain` records."""
    checkpoint, game = load_source(source)
    return export_loaded(checkpoint, game, out, opset, with_value, mlagents, positions, seed)


def export_loaded(checkpoint: Any, game: Any, out: str | Path, opset: int = DEFAULT_OPSET, with_value: bool = False,
                  mlagents: bool = False, positions: int = 1000, seed: int = 0) -> list[Any]:  # fmt: skip
    """:func:`export_checkpoint` of a checkpoint already loaded (:func:`load_source`)."""
    from export.exporter import export_brain
    from export.positions import sample_positions

    return export_brain(
        checkpoint.build_model(),
        game,
        out,
        opset=opset,
        with_value=with_value,
        mlagents=mlagents,
        facts=checkpoint_facts(checkpoint),
        positions=sample_positions(game, positions, seed),
    )


def export_ladder(source: str | Path, out: str | Path, opset: int = DEFAULT_OPSET, positions: int = 1000,
                  seed: int = 0) -> list[Any]:  # fmt: skip
    """Export every level of the league ladder at ``source`` (``selfplay league ladder``) as a
    brain with a value output, ``out/level-K/``, each manifest carrying its level and Elo, and write
    ``out/ladder.json``: the ladder's index with each level's ``checkpoint`` pointing at its
    brain, so ``selfplay play --agent OUT --level K`` plays it with no checkpoint and no torch.
    Returns the brains' records, level 1 first."""
    from export.contract import atomic_write
    from export.exporter import export_brain
    from export.positions import sample_positions

    from ..league.ladder import LADDER_FILE, read_ladder

    directory, index = read_ladder(source)
    out = Path(out)
    written, levels = [], []
    for entry in index["levels"]:
        checkpoint, game = load_source(str(directory / entry["checkpoint"]))
        facts = checkpoint_facts(checkpoint)
        facts["name"] = f"level {entry['level']}: {entry.get('player', facts['name'])}"
        facts["strength"] = {"elo": entry.get("elo"), "elo_interval": entry.get("elo_interval"),
                             "elo_scale": "the league's Bradley-Terry fit, its seed network at 0", "level": entry["level"]}
        target = out / f"level-{entry['level']}"
        exported = export_brain(checkpoint.build_model(), game, target, opset=opset, with_value=True, facts=facts,
                                positions=sample_positions(game, positions, seed))[0]
        written.append(exported)
        levels.append({**entry, "checkpoint": f"{target.name}/{exported.model_path.name}"})
    with atomic_write(out / LADDER_FILE) as f:
        f.write((json.dumps({**index, "levels": levels}, indent=1) + "\n").encode())
    for stale in out.glob("level-*"):  # levels of an older, longer ladder exported here
        if stale.name not in {f"level-{e['level']}" for e in levels}:
            shutil.rmtree(stale)
    return written


def _verify(args: argparse.Namespace) -> int:
    from export.contract import game_of, read_manifest
    from export.exporter import torch_reference
    from export.positions import sample_positions
    from export.verify import verify_brain

    path = Path(args.verify).expanduser()
    targets = [path]
    if path.is_dir() and (path / MLAGENTS_FILE).exists():
        targets.append(path / MLAGENTS_FILE)
    reference = None
    if args.against:
        checkpoint, _ = load_source(args.against)
        reference = torch_reference(checkpoint.build_model())
    for target in targets:
        game = game_of(read_manifest(target), str(target))
        report = verify_brain(target, reference=reference, positions=sample_positions(game, args.positions, args.seed))
        print(report.summary())
    return 0


def main(args: argparse.Namespace) -> int:
    """``selfplay export``."""
    if args.verify:
        if args.sources or args.out:
            raise BrainError("selfplay export --verify BRAIN takes no sources and no --out")
        return _verify(args)
    if not args.sources or not args.out:
        raise BrainError("selfplay export: give CHECKPOINT_OR_RUN ... --out DIR (or --verify BRAIN)")
    if args.positions < 1:
        raise BrainError(f"--positions must be >= 1, got {args.positions}")
    out = Path(args.out).expanduser()
    from ..league.ladder import is_ladder

    for source in args.sources:
        if is_ladder(source):
            target = out if len(args.sources) == 1 else out / Path(source.rstrip("/")).name
            for exported in export_ladder(source, target, args.opset, args.positions, args.seed):
                print(f"{exported.model_path}: {exported.report.summary().split(': ', 1)[1]}")
            print(f"wrote {target}/ (a ladder of {len(list(target.glob('level-*')))} brains; selfplay play --agent {target} --level 1)")
            continue
        target = out if len(args.sources) == 1 else out / Path(source.rstrip("/")).name.removesuffix(".json")
        for exported in export_checkpoint(source, target, args.opset, args.with_value, args.mlagents, args.positions, args.seed):
            print(f"{exported.model_path}: {exported.report.summary().split(': ', 1)[1]}")
        print(f"wrote {target}/ ({exported.manifest.game['tag']}, opset {exported.manifest.onnx['opset']})")
    return 0
