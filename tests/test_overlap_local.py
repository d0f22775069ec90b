"""Learning beside self-play without Ray: local actor processes stream positions (with one
inference server for all of them, or each with its own network) while the learner takes a bounded
number of steps; and the learner's batches sampled ahead on a thread are the serial loop's."""

from __future__ import annotations

import numpy as np
import pytest

import games
from selfplay.training.metrics import read_metrics
from selfplay.training.prefetch import prefetched
from selfplay.training.replay import ReplayBuffer
from selfplay.training.trainer import train
from test_train import tiny_config

C4 = games.make("connect4")


def _filled_buffer() -> ReplayBuffer:
    rng = np.random.default_rng(0)
    buffer = ReplayBuffer.for_game(C4, 500)
    policy = rng.random((300, C4.num_actions)).astype(np.float32)
    buffer.add((rng.random((300, *C4.obs_shape)) < 0.3).astype(np.float32), policy / policy.sum(axis=1, keepdims=True),
               rng.uniform(-1, 1, 300).astype(np.float32))
    return buffer


def test_batches_sampled_ahead_on_a_thread_are_the_serial_loops_batches():
    buffer = _filled_buffer()
    serial_rng, ahead_rng = np.random.default_rng(7), np.random.default_rng(7)
    serial = [buffer.sample(32, serial_rng, augment=True) for _ in range(6)]
    with prefetched(buffer, 6, "cpu", pin=False) as source:
        assert source is not buffer
        ahead = [source.sample(32, ahead_rng, augment=True) for _ in range(6)]
    for want, got in zip(serial, ahead):
        assert all(np.array_equal(w, g) for w, g in zip(want, got))
    assert ahead_rng.bit_generator.state == serial_rng.bit_generator.state  # the generator moved on as the loop's
    with prefetched(buffer, 6, "cpu") as source:  # on the CPU the learner samples itself
        assert source is buffer


class _FailsOnThirdSample:
    def __init__(self, buffer: ReplayBuffer) -> None:
        self.buffer, self.calls = buffer, 0

    def sample(self, *args, **kwargs):
        self.calls += 1
        if self.calls == 3:
            raise ValueError("a damaged row")
        return self.buffer.sample(*args, **kwargs)


def test_an_error_while_sampling_ahead_reaches_the_learner():
    with prefetched(_FailsOnThirdSample(_filled_buffer()), 4, "cpu", pin=False) as source:
        rng = np.random.default_rng(0)
        source.sample(8, rng)
        source.sample(8, rng)
        with pytest.raises(ValueError, match="a damaged row"):
            source.sample(8, rng)


@pytest.mark.parametrize("inference", ["server", "actor"])
def test_local_actors_train_overlapped_with_a_bounded_replay_ratio(tmp_path, capsys, inference):
    run = tmp_path / "run"
    config = tiny_config(**{"selfplay.num_actors": 2, "cluster.overlap": True, "cluster.inference": inference,
                            "cluster.chunk_seconds": 0.3, "eval.every": 0, "run.generations": 3})
    trainer = train(config, run, final_report=False)
    rows = read_metrics(run)
    assert ("one inference process (cpu) evaluates for every actor" in capsys.readouterr().err) == (inference == "server")
    assert trainer.state.generation == 3 and [r["generation"] for r in rows] == [1, 2, 3]
    positions = config.selfplay.positions_per_generation
    for row in rows:
        assert row["train_steps"] <= trainer.learner.steps_for(positions)  # the bound
        assert row["policy_lag"] >= 0 and row["policy_lag_max"] >= row["policy_lag"]
    assert rows[-1]["train_steps"] > 0
    replay = ReplayBuffer.load(run / "replay.npz", expect_game=games.make("tictactoe").version_tag)
    assert replay.total_added == trainer.state.positions  # no game counted twice


def test_new_weights_and_a_chunks_positions_crossing_in_the_pipe_do_not_deadlock():
    # An actor sends a chunk's positions (larger than a pipe's buffer) and reads its next message
    # only once they are read; the driver meanwhile sends new weights as large. A driver that
    # blocked in send would wait for the actor, and the actor for it, for ever.
    import multiprocessing
    import threading

    from selfplay.training.streaming import Outbox

    driver, actor = multiprocessing.Pipe()
    positions, weights = b"p" * (4 << 20), b"w" * (4 << 20)
    got = []

    def the_actor():
        actor.send(("positions", positions))  # blocks until the driver reads
        got.append(actor.recv())
        got.append(actor.recv())

    thread = threading.Thread(target=the_actor, daemon=True)
    thread.start()
    box = Outbox(driver)
    box.put(("weights", weights))  # returns at once: the outbox's thread writes
    box.put(("stop",))
    assert driver.recv() == ("positions", positions)
    thread.join()
    assert got == [("weights", weights), ("stop",)]  # whole, and in order
    box.finish()
    assert box.error is None
    actor.close()


def test_an_overlapped_local_run_resumes_where_it_stopped(tmp_path):
    # make train on a CPU without fast int8 overlaps (selfplay.presets); Ctrl-C and --resume must
    # hold there as they do for alternating runs: the counts go on, no position counted twice
    run = tmp_path / "run"
    settings = {"selfplay.num_actors": 2, "cluster.overlap": True, "cluster.chunk_seconds": 0.3, "eval.every": 0}
    first = train(tiny_config(**settings, **{"run.generations": 2}), run, final_report=False)
    positions = first.state.positions
    second = train(tiny_config(**settings, **{"run.generations": 4}), run, resume=True, final_report=False)
    assert second.state.generation == 4 and second.state.positions > positions
    assert [r["generation"] for r in read_metrics(run)] == [1, 2, 3, 4]
    replay = ReplayBuffer.load(run / "replay.npz", expect_game=games.make("tictactoe").version_tag)
    assert replay.total_added == second.state.positions
