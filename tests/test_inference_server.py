"""The inference server: answers equal direct evaluation bit for bit, batches merge, faults stay
local (a killed or failing client leaves the others served), and nothing outlives shutdown.

Events and timeouts here only guard against a hang; what the tests assert is behaviour."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import warnings

import numpy as np
import pytest

import games
from search import SearchConfig
from selfplay.config import SelfPlayConfig
from selfplay.training.messages import ActorError, ActorSpec, Weights
from selfplay.training.processes import LocalActors
from selfplay.training.inference_backends import CallBackends, ServerOptions
from selfplay.training.inference_server import Channel, InferenceError, InferenceServer, RemoteEvaluator
from selfplay.training.streaming import StreamingActors

C4 = games.make("connect4")
TTT = games.make("tictactoe")
HANG_GUARD = 60.0  # seconds: only ever reached when something hangs


def rowwise(obs: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A deterministic stand-in for a network whose answer for a row depends on that row alone."""
    flat = obs.reshape(obs.shape[0], -1)
    logits = flat[:, : mask.shape[1]] * 3.0 - mask * 0.5
    value = np.tanh(flat.sum(axis=1) / flat.shape[1] - 0.25)
    return logits.astype(np.float32), value.astype(np.float32)


class Failing:
    """``rowwise``, but raises on any batch holding a leaf whose first cell is 7."""

    def __call__(self, obs, mask):
        if (obs[:, 0, 0, 0] == 7.0).any():
            raise ValueError("a poisoned leaf")
        return rowwise(obs, mask)


class Broken:
    """An evaluator that always raises."""

    def __call__(self, obs, mask):
        raise RuntimeError("no network here")


class Gated:
    """``rowwise`` after ``started`` is set and ``go`` is set by the test."""

    def __init__(self, started, go) -> None:
        self.started, self.go = started, go

    def __call__(self, obs, mask):
        self.started.set()
        self.go.wait(HANG_GUARD)
        return rowwise(obs, mask)


def leaves(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    obs = (rng.random((n, *C4.obs_shape)) < 0.3).astype(np.float32)
    return obs, rng.random((n, C4.num_actions)) < 0.8


def start(count: int, factory, capacity: int = 64, **options) -> tuple[InferenceServer, list[Channel]]:
    channels = [Channel(capacity, C4.obs_shape, C4.num_actions) for _ in range(count)]
    server = InferenceServer(channels, "connect4", {}, ServerOptions(**options), factory)
    for channel in channels:
        channel.release(client=False)  # the clients are this process (threads, or passed on to children)
    server.set_weights(0, None)
    return server, channels


def _call_once(half, obs, mask) -> None:
    RemoteEvaluator(half)(obs, mask)


def _children_of(pid: int) -> set[int]:
    """Live child processes of ``pid`` (from /proc), but multiprocessing's own resource tracker,
    which serves the interpreter until it exits."""
    out = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    command = f.read()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z" and b"resource_tracker" not in command:
                out.add(int(entry))
    return out


# ----------------------------------------------------------------------------- answers


def test_a_network_through_the_server_answers_bit_for_bit_as_direct_evaluation():
    """fp32 torch on the CPU: each request is one batch (one client), so the arithmetic is the
    direct call's, and every bit must come back unchanged."""
    import torch
    from safetensors.torch import save as save_tensors

    from search import TorchEvaluator
    from selfplay.model.network import NetConfig, build_network

    torch.manual_seed(3)
    model = build_network(NetConfig(channels=8, blocks=1, hidden=16), C4.obs_shape, C4.num_actions).eval()
    weights = Weights("safetensors", save_tensors({k: v.contiguous() for k, v in model.state_dict().items()}),
                      model.config.to_dict())
    channel = Channel(64, C4.obs_shape, C4.num_actions)
    server = InferenceServer([channel], "connect4", {}, ServerOptions(device="cpu", max_wait=0.0))
    channel.release(client=False)
    try:
        server.set_weights(0, weights)
        remote, direct = RemoteEvaluator(channel.client()), TorchEvaluator(model)
        torch.set_num_threads(1)  # as the server runs it
        for n, seed in ((1, 0), (37, 1), (64, 2)):
            obs, mask = leaves(n, seed)
            got, want = remote(obs, mask), direct(obs, mask)
            assert got[0].dtype == np.float32 and got[0].shape == (n, C4.num_actions) and got[1].shape == (n,)
            assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    finally:
        server.close()


def test_waiting_clients_share_one_batch_and_each_gets_its_own_rows():
    server, channels = start(3, CallBackends(rowwise), max_wait=HANG_GUARD)  # launch once all three wait
    try:
        inputs = [leaves(n, seed) for seed, n in enumerate((5, 17, 40))]
        answers: list = [None] * 3

        def client(i: int) -> None:
            answers[i] = RemoteEvaluator(channels[i].client())(*inputs[i])

        threads = [threading.Thread(target=client, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(HANG_GUARD)
        for (obs, mask), got in zip(inputs, answers):
            want = rowwise(obs, mask)
            assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
        stats = server.stats()
        assert stats["batches"] == 1 and stats["largest"] == 5 + 17 + 40
    finally:
        server.close()


def test_self_play_through_the_server_is_the_same_as_with_the_actors_own_network():
    from selfplay.model.inference import onnx_bytes
    from selfplay.model.network import NetConfig, build_network

    model = build_network(NetConfig(kind="mlp", layers=1, hidden=16), TTT.obs_shape, TTT.num_actions)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        weights = Weights("onnx", onnx_bytes(model, TTT.obs_shape))
    spec = ActorSpec("tictactoe", {}, SearchConfig(num_simulations=8, root_policy="gumbel"),
                     SelfPlayConfig(games_per_actor=8, random_opening_moves=1), seed=11)
    direct, _ = LocalActors(spec).collect(0, weights, 60)
    pool = StreamingActors(spec, 1, serve=True, options=ServerOptions(max_wait=0.0))
    try:
        served, stats = pool.collect(0, weights, 60)
        assert pool.server_stats()["leaves"] == stats.evaluations > 0
    finally:
        pool.close()
    for name in ("obs", "policy", "value"):
        assert np.array_equal(getattr(served, name), getattr(direct, name)), name


# ----------------------------------------------------------------------------- faults


def test_a_batch_that_fails_answers_its_client_with_the_error_and_the_server_goes_on():
    server, channels = start(2, CallBackends(Failing()), max_wait=0.0)
    try:
        poisoned, mask = leaves(4, 0)
        poisoned[2, 0, 0, 0] = 7.0
        first, second = RemoteEvaluator(channels[0].client()), RemoteEvaluator(channels[1].client())
        with pytest.raises(InferenceError, match="ValueError: a poisoned leaf"):
            first(poisoned, mask)
        good = leaves(6, 1)
        assert np.array_equal(second(*good)[1], rowwise(*good)[1])  # the other client is served
        assert np.array_equal(first(*good)[0], rowwise(*good)[0])  # and so is the one that failed, next time
        with pytest.raises(InferenceError, match="holds 64"):
            first(*leaves(65, 2))  # more than its channel holds: refused before anything is sent
        assert server.stats()["errors"] == 1
    finally:
        server.close()


def test_a_client_killed_while_its_batch_runs_is_dropped_and_the_others_are_served():
    context = multiprocessing.get_context("spawn")
    started, go = context.Event(), context.Event()
    channels = [Channel(8, C4.obs_shape, C4.num_actions) for _ in range(2)]
    server = InferenceServer(channels, "connect4", {}, ServerOptions(max_wait=0.0), CallBackends(Gated(started, go)))
    doomed = context.Process(target=_call_once, args=(channels[0].client(), *leaves(3, 0)), daemon=True)
    doomed.start()
    channels[0].release()
    channels[1].release(client=False)
    try:
        server.set_weights(0, None)
        assert started.wait(HANG_GUARD)  # its batch is on the "device"
        os.kill(doomed.pid, signal.SIGKILL)
        doomed.join(HANG_GUARD)
        go.set()
        obs, mask = leaves(5, 1)
        got = RemoteEvaluator(channels[1].client())(obs, mask)
        assert np.array_equal(got[1], rowwise(obs, mask)[1])
        assert server.stats()["dropped"] == 1
    finally:
        go.set()
        server.close()
    assert not server.process.is_alive()


def test_a_dead_server_makes_its_clients_raise_instead_of_waiting():
    server, channels = start(1, CallBackends(rowwise), max_wait=0.0)
    remote = RemoteEvaluator(channels[0].client())
    remote(*leaves(2, 0))
    os.kill(server.pid, signal.SIGKILL)
    server.process.join(HANG_GUARD)
    with pytest.raises(InferenceError, match="gone"):
        remote(*leaves(2, 1))
    server.close()


def _pool_spec() -> ActorSpec:
    return ActorSpec("tictactoe", {}, SearchConfig(num_simulations=4, root_policy="gumbel"),
                     SelfPlayConfig(games_per_actor=4), seed=5)


def test_actors_whose_evaluations_fail_stop_the_run_with_the_error_and_leave_no_process():
    pool = StreamingActors(_pool_spec(), 2, serve=True, factory=CallBackends(Broken()))
    try:
        with pytest.raises(ActorError, match="actor . failed(.|\n)*InferenceError: .*RuntimeError: no network here"):
            pool.collect(0, Weights("onnx", b""), 20)  # (the factory's evaluator runs; the weights only mark the generation)
    finally:
        pool.close()
    assert not _children_of(os.getpid())


def test_a_killed_actor_stops_the_run_and_shutdown_leaves_no_process():
    pool = StreamingActors(_pool_spec(), 2, serve=True, factory=CallBackends(rowwise))
    pids = [p.pid for p in pool.processes] + [pool.server.pid]
    try:
        pool.collect(0, Weights("onnx", b""), 20)  # both actors are up and served
        pool.broadcast(1, Weights("onnx", b"1"))
        os.kill(pool.processes[0].pid, signal.SIGKILL)
        with pytest.raises(ActorError, match="actor 0 died"):
            for _ in range(int(HANG_GUARD / 0.1)):
                pool.poll(0.1)
        assert pool.server.process.is_alive()
    finally:
        pool.close()
    assert not _children_of(os.getpid())
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
