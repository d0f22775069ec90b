"""Checkpoints: exact round trips (weights, batch-norm statistics, optimizer state), refusal of
damaged or mismatched files, retention, crash debris, and a run killed with SIGKILL mid-save.

Games are stood in for by records with the fields a checkpoint reads (version tag, options,
observation shape, action count), so these tests need no game code.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import selfplay.model.checkpoint as checkpoint_module
from selfplay.model.checkpoint import (
    CheckpointError,
    best_checkpoint,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
)
from selfplay.model.network import NetConfig, build_network, policy_value_loss
from selfplay.training.replay import ReplayBuffer

TICTACTOE = SimpleNamespace(version_tag="tictactoe_v1", options={}, obs_shape=(2, 3, 3), num_actions=9)
C4 = SimpleNamespace(version_tag="connect4_v1", options={"width": 7, "height": 6}, obs_shape=(2, 6, 7), num_actions=7)
C4_WIDE = SimpleNamespace(
    version_tag="connect4_v1", options={"width": 8, "height": 6}, obs_shape=(2, 6, 8), num_actions=8
)
NET = NetConfig(kind="resnet", channels=8, blocks=1, hidden=8, value_head="wdl")
REPO = Path(__file__).resolve().parents[1]


def batch(game, n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    obs = (torch.rand((n, *game.obs_shape), generator=g) < 0.3).float()
    policy = torch.softmax(torch.randn(n, game.num_actions, generator=g), -1)
    return obs, policy, torch.randint(-1, 2, (n,), generator=g).float()


def train_step(model, optimizer, game, seed):
    loss, _ = policy_value_loss(model.forward_heads(batch(game, seed=seed)[0]), *batch(game, seed=seed)[1:])
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def trained(game=C4, cfg=NET, steps=2):
    """A network and its Adam optimizer after a few steps (moved weights, BN stats, moments)."""
    torch.manual_seed(0)
    model = build_network(cfg, game.obs_shape, game.num_actions)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for i in range(steps):
        train_step(model, optimizer, game, i)
    return model, optimizer


def steps_on_disk(directory):
    return [int(p.stem.split("-")[1]) for p in list_checkpoints(directory)]


def test_round_trip_restores_identical_outputs_and_training_continues_identically(tmp_path):
    model, optimizer = trained()
    path = save_checkpoint(
        tmp_path, 12, model, optimizer.state_dict(), {"run": "test"}, game=C4, metrics={"loss": 1.5}
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt-000012.json", "ckpt-000012.safetensors"]
    assert path.name == "ckpt-000012.json"
    ckpt = load_checkpoint(tmp_path, expect_game=C4, expect_net=NET)
    assert ckpt.path == path and ckpt.tensor_path.name == "ckpt-000012.safetensors"
    for same in (path, ckpt.tensor_path):
        assert load_checkpoint(same).step == 12
    assert (ckpt.step, ckpt.game, ckpt.net, ckpt.obs_shape, ckpt.num_actions) == (12, "connect4_v1", NET, (2, 6, 7), 7)
    assert ckpt.game_options == {"width": 7, "height": 6}
    assert ckpt.metrics == {"loss": 1.5} and ckpt.meta == {"run": "test"}

    restored = ckpt.build_model()
    obs = batch(C4, n=5, seed=9)[0]
    model.eval()
    with torch.no_grad():
        for a, b in zip(model.forward_heads(obs), restored.forward_heads(obs)):
            assert torch.equal(a, b)

    # The optimizer resumes exactly: one more step on both sides gives identical weights.
    model.train()
    restored.train()
    restored_optimizer = torch.optim.Adam(restored.parameters(), lr=1e-2)
    restored_optimizer.load_state_dict(ckpt.optimizer_state)
    train_step(model, optimizer, C4, 5)
    train_step(restored, restored_optimizer, C4, 5)
    for (name, a), b in zip(model.state_dict().items(), restored.state_dict().values()):
        assert torch.equal(a, b), name


def test_saved_files_are_plain_safetensors_and_json(tmp_path):
    model, optimizer = trained(TICTACTOE, NetConfig(kind="mlp", layers=1, hidden=16))
    path = save_checkpoint(tmp_path, 3, model, optimizer.state_dict(), game="tictactoe_v1")
    from safetensors.torch import load_file

    tensors = load_file(tmp_path / "ckpt-000003.safetensors")
    assert set(model.state_dict()) == {k.removeprefix("model/") for k in tensors if k.startswith("model/")}
    assert any(k.startswith("optimizer/state/") for k in tensors)
    sidecar = json.loads(path.read_text())
    assert sidecar["file"] == "ckpt-000003.safetensors"
    assert load_checkpoint(path).metrics == {}
    # Scalars from numpy and torch (a loss tensor) are recorded as plain numbers.
    save_checkpoint(tmp_path, 4, model, game="tictactoe_v1", metrics={"a": np.float32(0.5), "b": torch.tensor(2)})
    assert load_checkpoint(tmp_path).metrics == {"a": 0.5, "b": 2}
    assert sidecar["game"] == "tictactoe_v1" and sidecar["net"]["kind"] == "mlp" and sidecar["step"] == 3
    assert sidecar["optimizer"]["param_groups"][0]["lr"] == 1e-2


@pytest.fixture
def saved(tmp_path):
    """The tensor file of a fresh checkpoint."""
    model, optimizer = trained()
    save_checkpoint(tmp_path, 7, model, optimizer.state_dict(), game=C4)
    return tmp_path / "ckpt-000007.safetensors"


def test_a_truncated_file_is_refused(saved):
    saved.write_bytes(saved.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match=r"ckpt-000007.safetensors: truncated or overwritten: \d+ bytes"):
        load_checkpoint(saved)
    # Without verification the damage is still caught, by the parser.
    with pytest.raises(CheckpointError, match="ckpt-000007.safetensors: unreadable safetensors data"):
        load_checkpoint(saved, verify=False)


def test_a_flipped_byte_is_refused(saved):
    data = bytearray(saved.read_bytes())
    data[len(data) // 2] ^= 0x01
    saved.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="ckpt-000007.safetensors: corrupt: sha256 does not match"):
        load_checkpoint(saved)


def test_a_missing_or_unreadable_sidecar_is_refused(saved):
    sidecar = saved.with_suffix(".json")
    sidecar.write_text('{"format": "selfplay-checkpoint", "format_vers')
    with pytest.raises(CheckpointError, match="ckpt-000007.json: unreadable sidecar"):
        load_checkpoint(saved)
    sidecar.unlink()
    with pytest.raises(CheckpointError, match="ckpt-000007.safetensors: no sidecar ckpt-000007.json"):
        load_checkpoint(saved)
    assert latest_checkpoint(saved.parent) is None
    with pytest.raises(CheckpointError, match="no checkpoint in this directory"):
        load_checkpoint(saved.parent)


def test_another_game_or_network_is_refused_with_what_differs(saved):
    with pytest.raises(CheckpointError, match="checkpoint is for game connect4_v1, expected tictactoe_v1"):
        load_checkpoint(saved, expect_game=TICTACTOE)
    with pytest.raises(CheckpointError, match=r"connect4_v1 with different options: width=7 \(expected 8\)"):
        load_checkpoint(saved, expect_game=C4_WIDE)
    with pytest.raises(CheckpointError, match=r"network config differs: channels=8 \(expected 16\)"):
        load_checkpoint(saved, expect_net=NetConfig(kind="resnet", channels=16, blocks=1, hidden=8, value_head="wdl"))
    assert load_checkpoint(saved, expect_game="connect4_v1").step == 7


def test_weights_that_do_not_fit_the_recorded_network_are_refused(saved):
    sidecar = saved.with_suffix(".json")
    record = json.loads(sidecar.read_text())
    record["net"]["channels"] = 16  # edited by hand: the sidecar now lies about the weights
    sidecar.write_text(json.dumps(record))
    with pytest.raises(CheckpointError, match="ckpt-000007.json: weights do not fit resnet 16x1 wdl: .*size mismatch"):
        load_checkpoint(saved).build_model()


def test_keep_last_k_and_the_best(tmp_path):
    model = build_network(NetConfig(kind="mlp", layers=1, hidden=4), (2, 3, 3), 9)
    elo = {0: 10, 1: 50, 2: 20, 3: 30, 4: 40, 5: 45}
    for step, value in elo.items():
        save_checkpoint(tmp_path, step, model, game=TICTACTOE, metrics={"elo": value}, keep_last=2, best_metric="elo")
    assert steps_on_disk(tmp_path) == [1, 4, 5]  # the best (elo 50) and the last two
    assert best_checkpoint(tmp_path, "elo").name == "ckpt-000001.json"
    assert len(list(tmp_path.iterdir())) == 6  # nothing else left behind
    # A new best displaces the old one.
    save_checkpoint(tmp_path, 6, model, game=TICTACTOE, metrics={"elo": 60}, keep_last=2, best_metric="elo")
    assert steps_on_disk(tmp_path) == [5, 6]
    # Lower-is-better metrics, and checkpoints without the metric.
    for step, loss in [(7, 0.5), (8, 0.9), (9, None)]:
        metrics = {} if loss is None else {"loss": loss}
        save_checkpoint(
            tmp_path, step, model, game=TICTACTOE, metrics=metrics, keep_last=1, best_metric="loss",
            higher_is_better=False,
        )
    assert steps_on_disk(tmp_path) == [7, 9]
    assert latest_checkpoint(tmp_path).name == "ckpt-000009.json"


def test_crash_debris_is_ignored_then_cleaned_and_a_step_can_be_saved_again(tmp_path):
    model = build_network(NetConfig(kind="mlp", layers=1, hidden=4), (2, 3, 3), 9)
    save_checkpoint(tmp_path, 1, model, game=TICTACTOE)
    # What a crash mid-save leaves: tensors without a sidecar, and temporary files.
    (tmp_path / "ckpt-000002.safetensors").write_bytes(b"half")
    (tmp_path / ".ckpt-000002.json.tmp-123-abcd").write_bytes(b"{")
    (tmp_path / ".replay.npz.tmp-123-abcd").write_bytes(b"PK")
    assert latest_checkpoint(tmp_path).name == "ckpt-000001.json"
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    # Saving step 1 again puts the new tensors beside the old, then switches the sidecar to them.
    for again, tensor_file in [(1, "ckpt-000001.b.safetensors"), (2, "ckpt-000001.safetensors")]:
        save_checkpoint(tmp_path, 1, model, game=TICTACTOE, metrics={"again": again})
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["ckpt-000001.json", tensor_file])
        reloaded = load_checkpoint(tmp_path)
        assert reloaded.metrics == {"again": again} and reloaded.tensor_path.name == tensor_file
        assert all(torch.equal(v, reloaded.model_state[k]) for k, v in model.state_dict().items())
    (tmp_path / "ckpt-000001.b.safetensors").write_bytes(b"old")  # as a crash before cleanup leaves it
    with pytest.raises(CheckpointError, match="ckpt-000001.b.safetensors: stale tensor file"):
        load_checkpoint(tmp_path / "ckpt-000001.b.safetensors")


def test_unsavable_input_is_refused(tmp_path):
    model = build_network(NetConfig(kind="mlp", layers=1, hidden=4), (2, 3, 3), 9)
    with pytest.raises(CheckpointError, match="step must be a non-negative integer"):
        save_checkpoint(tmp_path, -1, model, game=TICTACTOE)
    with pytest.raises(CheckpointError, match="networks from build_network"):
        save_checkpoint(tmp_path, 1, torch.nn.Linear(2, 2), game=TICTACTOE)
    with pytest.raises(CheckpointError, match="metrics/meta must be finite numbers.*nan"):
        save_checkpoint(tmp_path, 1, model, game=TICTACTOE, metrics={"loss": float("nan")})
    with pytest.raises(CheckpointError, match="metrics/meta must be finite.*ndarray is not JSON serializable"):
        save_checkpoint(tmp_path, 1, model, game=TICTACTOE, meta={"weights": np.zeros(3)})
    with pytest.raises(CheckpointError, match="game must be a games.Game or a version tag"):
        save_checkpoint(tmp_path, 1, model, game=3)
    assert list(tmp_path.iterdir()) == []


def test_the_replay_buffer_is_saved_with_the_checkpoint(tmp_path):
    model = build_network(NetConfig(kind="mlp", layers=1, hidden=4), (2, 3, 3), 9)
    buffer = ReplayBuffer(10, (2, 3, 3), 9, game="tictactoe_v1")
    buffer.add(np.ones((3, 2, 3, 3), np.float32), np.full((3, 9), 1 / 9, np.float32), np.array([1, 0, -1], np.float32))
    save_checkpoint(tmp_path, 4, model, game=TICTACTOE, replay=buffer)
    ckpt = load_checkpoint(tmp_path)
    restored = ReplayBuffer.load(ckpt.replay_path, expect_game=ckpt.game)
    assert len(restored) == 3 and restored.value[:3].tolist() == [1, 0, -1]


# A training run in miniature: resume from the directory, then add data, step, checkpoint with
# the replay buffer, as fast as it can, until killed.
WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np, torch
    from selfplay.model.checkpoint import load_checkpoint, latest_checkpoint, save_checkpoint
    from selfplay.model.network import NetConfig, build_network
    from selfplay.training.replay import ReplayBuffer

    directory = sys.argv[1]
    torch.set_num_threads(1)
    cfg = NetConfig(kind="mlp", layers=2, hidden=64)
    if latest_checkpoint(directory):
        ckpt = load_checkpoint(directory, expect_game="tictactoe_v1", expect_net=cfg)
        model, step = ckpt.build_model(), ckpt.step
        buffer = ReplayBuffer.load(ckpt.replay_path, capacity=5000, expect_game="tictactoe_v1")
    else:
        model, step = build_network(cfg, (2, 3, 3), 9), 0
        buffer = ReplayBuffer(5000, (2, 3, 3), 9, game="tictactoe_v1")
    rng = np.random.default_rng(step)
    while True:
        step += 1
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.01)
        buffer.add(rng.random((200, 2, 3, 3), dtype=np.float32), np.full((200, 9), 1 / 9, np.float32),
                   np.zeros(200, np.float32), generation=step)
        save_checkpoint(directory, step, model, game="tictactoe_v1", metrics={"rows": buffer.total_added},
                        replay=buffer, keep_last=2)
        print(step, flush=True)
    """
)


def test_sigkill_at_a_random_moment_never_costs_a_checkpoint_or_the_buffer(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    last_step = 0
    for round_ in range(2):  # the second round resumes from what the first left
        child = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE, env=env, text=True
        )
        try:
            first = int(child.stdout.readline())  # a checkpoint of this round is on disk
            assert first == last_step + 1, f"round {round_} resumed at {first}, expected {last_step + 1}"
            delay = random.uniform(0.0, 0.5)
            time.sleep(delay)
            child.send_signal(signal.SIGKILL)
        finally:
            child.kill()
            child.wait()
        on_disk = steps_on_disk(tmp_path)
        # keep_last=2, plus one when killed between a commit and the pruning that follows it.
        assert 1 <= len(on_disk) <= 3, f"killed after {delay:.3f}s: {on_disk}"
        for path in list_checkpoints(tmp_path):
            ckpt = load_checkpoint(path, expect_game="tictactoe_v1")  # verifies size and sha256
            ckpt.build_model()
        latest = load_checkpoint(tmp_path)
        buffer = ReplayBuffer.load(latest.replay_path)
        # The buffer is never older than the newest checkpoint (it is written first).
        assert buffer.total_added >= latest.metrics["rows"], f"killed after {delay:.3f}s"
        assert latest.step >= first
        last_step = latest.step


class Crash(BaseException):
    """The process dies here (a BaseException, so no ``except Exception`` swallows it)."""


class CrashAt:
    """Counts the file-system steps of a save (each write, fsync, rename, unlink) and crashes at
    step ``n``; a write crashes halfway through its bytes. ``crashed`` says whether step n came."""

    def __init__(self, n: int):
        self.n, self.count, self.crashed = n, 0, False

    def step(self) -> bool:
        """Whether to crash now: at step n, and at every step after (cleanup code that would
        run after an exception, like removing a temporary file, does not run in a dead process)."""
        self.count += 1
        self.crashed = self.crashed or self.count == self.n
        return self.crashed

    def install(self, monkeypatch):
        crash = self

        class Writer:  # a file whose n-th write stops halfway
            def __init__(self, f):
                self._f = f

            def write(self, data):
                if crash.step():
                    self._f.write(bytes(data)[: len(bytes(data)) // 2])
                    self._f.flush()
                    raise Crash
                return self._f.write(data)

            def __getattr__(self, name):
                return getattr(self._f, name)

        def wrap(fn):
            def wrapped(*args, **kwargs):
                if crash.step():
                    raise Crash
                return fn(*args, **kwargs)

            return wrapped

        monkeypatch.setattr(checkpoint_module, "open", lambda *a, **k: Writer(open(*a, **k)), raising=False)
        monkeypatch.setattr(os, "replace", wrap(os.replace))
        monkeypatch.setattr(os, "fsync", wrap(os.fsync))
        monkeypatch.setattr(Path, "unlink", wrap(Path.unlink))


@pytest.mark.parametrize("step", [3, 2], ids=["new step", "newest step again"])
def test_a_crash_at_any_step_of_a_save_leaves_every_checkpoint_and_the_buffer_intact(tmp_path, monkeypatch, step):
    """Checkpoints 1 and 2 exist (keep_last=1 has already pruned 1); saving ``step`` crashes at
    its 1st, 2nd, ... file-system step in turn, until a save completes. After each crash every
    checkpoint on disk loads with the weights its sidecar describes, one of them is 2 or ``step``,
    the buffer is no older than the newest, and the next save succeeds and cleans up."""
    model = build_network(NetConfig(kind="mlp", layers=1, hidden=4), (2, 3, 3), 9)
    buffer = ReplayBuffer(50, (2, 3, 3), 9, game="tictactoe_v1")

    def save(directory, step, mark):
        row = np.full((4, 2, 3, 3), mark, np.float32), np.full((4, 9), 1 / 9, np.float32), np.zeros(4, np.float32)
        buffer.add(*row)
        with torch.no_grad():
            model.policy_fc.bias.fill_(mark)  # which save these weights come from
        metrics = {"rows": buffer.total_added, "mark": mark}
        save_checkpoint(directory, step, model, game=TICTACTOE, metrics=metrics, replay=buffer, keep_last=1)

    base = tmp_path / "base"
    save(base, 1, mark=1)
    save(base, 2, mark=2)
    rows_before = buffer.total_added
    n = 0
    while True:
        n += 1
        directory = tmp_path / f"crash-{n}"
        shutil.copytree(base, directory)
        buffer.total_added = rows_before  # (the rows themselves do not matter here)
        with monkeypatch.context() as patch:
            crash = CrashAt(n)
            crash.install(patch)
            try:
                save(directory, step, mark=3)
            except Crash:
                pass
        where = f"crash at file-system step {n}"
        on_disk = steps_on_disk(directory)
        assert on_disk and set(on_disk) <= {2, step}, f"{where}: {on_disk}"
        for path in list_checkpoints(directory):
            ckpt = load_checkpoint(path)
            assert ckpt.build_model().policy_fc.bias[0] == ckpt.metrics["mark"], where
        latest = load_checkpoint(directory)
        assert ReplayBuffer.load(latest.replay_path).total_added >= latest.metrics["rows"], where
        save(directory, 4, mark=4)  # the run resumes
        left = sorted(p.name for p in directory.iterdir())
        assert left == ["ckpt-000004.json", "ckpt-000004.safetensors", "replay.npz"], where
        if not crash.crashed:
            break
    assert n > 10  # the save really was cut at every write, fsync, rename and unlink
