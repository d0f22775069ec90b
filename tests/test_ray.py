"""The Ray backend (``--backend ray``): flags and errors, training and leagues on a local Ray
instance (alternating, overlapped, resumed, with an inference actor), and a real two-node cluster
that loses an actor and then a whole node while it trains tic-tac-toe to perfect play."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from raycluster import Cluster
from selfplay.config import RESUME_SAFE, ClusterConfig, ConfigError
from selfplay.model.checkpoint import load_checkpoint
from selfplay.tools import cli
from selfplay.training import ray_actors
from selfplay.training.metrics import read_metrics
from selfplay.training.replay import ReplayBuffer
from selfplay.training.resume import load_config
from selfplay.training.trainer import train
from test_train import ROOT, TTT, _child_value, _env, _minimax_values, parse, tiny_config

RAY_TINY = {"selfplay.num_actors": 2, "cluster.backend": "ray", "cluster.chunk_seconds": 0.5, "eval.every": 0}


# ----------------------------------------------------------------------------- settings and errors


def test_cluster_flags_are_config_fields_saved_with_the_run():
    from selfplay.tools.train_cmd import config_from_args

    args = parse("tictactoe", "--backend", "ray", "--address", "10.0.0.1:6379", "--actors", "8", "--cluster.overlap", "true",
                 "--cluster.actor-resource", "selfplay_actor", "--cluster.inference", "server")
    config, _, _ = config_from_args(args)
    assert config.cluster == ClusterConfig(backend="ray", address="10.0.0.1:6379", actor_resource="selfplay_actor",
                                           overlap=True, inference="server")
    assert config.selfplay.num_actors == 8
    assert config.to_dict()["cluster"]["address"] == "10.0.0.1:6379"
    assert {f"cluster.{name}" for name in config.to_dict()["cluster"]} <= RESUME_SAFE  # a resumed run may move to a cluster
    assert ClusterConfig(overlap=True).backend == "local"  # local actor processes overlap too (selfplay.training.streaming)
    with pytest.raises(ConfigError, match="backend must be one of local, ray"):
        ClusterConfig(backend="mpi")


def _one_line_error(argv: list[str], capsys) -> str:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err, err
    return err


def test_a_missing_ray_is_one_line_naming_the_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    for command in ("train", "league"):
        run = tmp_path / command
        err = _one_line_error([command, "tictactoe", "--backend", "ray", "--run-dir", str(run)], capsys)
        assert "pip install selfplay[ray]" in err
        assert not run.exists()  # nothing written
    # the local backend never imports it
    assert cli.main(["train", "tictactoe", "--print-config"]) == 0


def test_ray_is_imported_only_for_the_ray_backend():
    code = ("import sys, selfplay.training.trainer, selfplay.training.ray_actors, selfplay.league.run, selfplay.tools.cli; "
            "from selfplay.training.trainer import train; assert 'ray' not in sys.modules, 'ray imported'")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_bad_or_unreachable_address_is_one_line(tmp_path, capsys):
    from raycluster import free_port

    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    start = time.monotonic()
    err = _one_line_error(["train", "tictactoe", "--backend", "ray", "--address", address, "--run-dir", str(tmp_path / "a")], capsys)
    assert f"cannot reach a Ray cluster at {address}" in err and time.monotonic() - start < 30
    err = _one_line_error(["league", "tictactoe", "--backend", "ray", "--address", "nowhere", "--run-dir", str(tmp_path / "b")], capsys)
    assert "expected HOST:PORT" in err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


# ----------------------------------------------------------------------------- a local Ray instance


@pytest.fixture(scope="module")
def local_ray():
    """One Ray instance in this test process for the module's tests (a pool that did not start
    Ray leaves it running)."""
    before = dict(os.environ)
    owned = ray_actors.connect(num_cpus=2)
    assert dict(os.environ) == before  # what importing ray and ray.init write into it is put back
    yield
    if owned:
        ray_actors.disconnect()
    ours = lambda env: {k: v for k, v in env.items() if k.startswith("RAY_") or k == "PYTHONBREAKPOINT"}  # noqa: E731
    assert ours(os.environ) == ours(before)


def test_ray_actors_train_alternating_then_overlapped_then_with_an_inference_actor(tmp_path, local_ray):
    run = tmp_path / "run"
    first = train(tiny_config(**RAY_TINY, **{"run.generations": 2}), run, final_report=False)
    rows = read_metrics(run)
    assert [r["generation"] for r in rows] == [1, 2] and first.state.games > 0
    assert all(r["policy_lag"] == 0 and 0 < r["learner_share"] < 1 for r in rows[1:])
    # resume overlapped: the actors keep playing while the learner learns, with the weights they have
    config = load_config(run)
    second = train(tiny_config(**RAY_TINY, **{"cluster.overlap": True, "run.generations": 5}), run, resume=True,
                   final_report=False)
    assert second.state.generation == 5
    rows = read_metrics(run)
    assert [r["generation"] for r in rows] == [1, 2, 3, 4, 5]
    overlapped = rows[2:]
    assert all(r["train_steps"] > 0 and r["policy_lag"] >= 0 and r["policy_lag_max"] >= r["policy_lag"] for r in overlapped)
    assert any(r["policy_lag"] > 0 for r in overlapped)  # games from the weights the actors had, not the newest
    # no game counted twice: the buffer holds exactly the positions the run counted
    replay = ReplayBuffer.load(run / "replay.npz", expect_game=TTT.version_tag)
    assert replay.total_added == load_checkpoint(run).meta["run"]["positions"] == second.state.positions
    assert config.cluster.overlap is False  # the run's own config.json is unchanged by a resume
    # one inference actor evaluating for the actors (it takes one of the two CPUs)
    third = train(tiny_config(**{**RAY_TINY, "cluster.inference": "server", "selfplay.num_actors": -1, "run.generations": 6}),
                  run, resume=True, final_report=False)
    assert third.state.generation == 6 and third.state.games > second.state.games


def test_a_league_plays_its_games_on_ray_actors(tmp_path, local_ray):
    from selfplay.league.population import LeagueConfig
    from selfplay.league.run import run_league
    from selfplay.league.store import LeagueRunConfig, read_log

    config = LeagueRunConfig(tiny_config(**RAY_TINY, **{"run.generations": 1}), LeagueConfig())
    league = run_league(config, tmp_path / "league", final_report=False)
    assert all(m.generation == 1 for m in league.members)
    lines = read_log(tmp_path / "league")
    assert lines and sum(line["wins"] + line["draws"] + line["losses"] for line in lines if "wins" in line) > 0


# ----------------------------------------------------------------------------- deliveries and the inference actor


HANG_GUARD = 120.0  # seconds: only so that a hang fails instead of blocking the suite; no assertion is about time


def _ray_pool(count: int):
    """``count`` Ray actors playing tic-tac-toe with a tiny network, its weights broadcast, each
    started (so that each delivers from the first poll on)."""
    from selfplay.model.network import build_network
    from selfplay.training.messages import ActorSpec
    from selfplay.training.weights import export_weights

    config = tiny_config(**RAY_TINY)
    spec = ActorSpec("tictactoe", {}, config.search, config.selfplay, seed=11)
    actors = ray_actors.RayActors(spec, count, config.cluster)
    weights = export_weights(build_network(config.net, TTT.obs_shape, TTT.num_actions), TTT, "cpu", "onnx")
    actors.broadcast(0, weights)
    actors.ray.get([slot.handle.__ray_ready__.remote() for slot in actors.slots], timeout=HANG_GUARD)
    return actors


def _deliveries(actors, each: int) -> list:
    """Poll until every actor has delivered ``each`` play calls (each asks for 5 positions: a game or two)."""
    out = []
    for _ in range(1000):  # a hang guard: each poll waits (up to HANG_GUARD) for a delivery
        out += actors.poll(HANG_GUARD, num_positions=5)
        if all(sum(d.actor == i for d in out) >= each for i in range(actors.count)):
            return out
    raise AssertionError(f"{len(out)} deliveries, not {each} from each of {actors.count} actors")


def test_every_delivery_is_a_distinct_play_call_numbered_in_order(local_ray):
    """Every position counted once: each delivery carries the id of the play call that made it,
    (Ray actor id, call number), and no id comes twice or is skipped. (A position count and the
    buffer's count both come from the same delivery, so they agree on a duplicate too.)"""
    actors = _ray_pool(2)
    try:
        deliveries = _deliveries(actors, 3)
    finally:
        actors.close()
    calls = [d.call for d in deliveries]
    assert len(set(calls)) == len(calls), f"a play call delivered twice: {calls}"
    by_actor: dict = {}
    for d in deliveries:
        by_actor.setdefault(d.call[0], []).append(d.call[1])
    assert len(by_actor) == 2 and all(numbers == list(range(len(numbers))) for numbers in by_actor.values()), by_actor
    assert sum(len(d.positions) for d in deliveries) == sum(d.stats.positions for d in deliveries) > 0


def test_a_play_call_delivered_twice_or_never_stops_the_run(local_ray, monkeypatch):
    """The check above can fail: a driver that hands a play call's result out again (its games
    would be counted twice), or drops one (its games lost), stops with one line naming it."""
    from selfplay.training.messages import ActorError

    actors = _ray_pool(1)
    try:
        sent, send = [], actors._send

        def send_and_record(slot, num_positions):
            send(slot, num_positions)
            sent.append(slot.pending)

        monkeypatch.setattr(actors, "_send", send_and_record)
        (first,) = _deliveries(actors, 1)
        assert first.call[1] == 0 and len(sent) == 1
        # the next poll waits on the play call it has delivered already
        monkeypatch.setattr(actors, "_send", lambda slot, num_positions: setattr(slot, "pending", sent[0]))
        with pytest.raises(ActorError, match=r"^ray: actor 0 delivered play call 0 of Ray actor \w+ twice "
                                             r"\(its games would be counted twice\)$"):
            actors.poll(HANG_GUARD)

        # a play call's result dropped: the actor's next call arrives first
        def send_two(slot, num_positions):
            send(slot, num_positions)
            send(slot, num_positions)  # replaces the first call's ref, which is never delivered

        monkeypatch.setattr(actors, "_send", send_two)
        with pytest.raises(ActorError, match=r"^ray: actor 0 delivered play call 2 of Ray actor \w+, but its call 1 "
                                             r"never arrived \(its games would be lost\)$"):
            _deliveries(actors, 1)
    finally:
        actors.close()


class _AppendSignals(list):
    """A list that releases ``appended`` after each append: the test sees each request queued."""

    def __init__(self, appended) -> None:
        super().__init__()
        self.appended = appended

    def append(self, item) -> None:
        super().append(item)
        self.appended.release()


def test_a_failing_evaluator_fails_every_call_of_its_batch_and_the_host_stays_usable():
    """Three calls wait for the network in one batch; the evaluator raises. Each caller gets the
    error (not only the thread that ran the batch: the others would wait forever). The host
    keeps no error: with a working evaluator the next call is answered."""
    import threading

    from selfplay.training.messages import ActorError

    host = ray_actors._InferenceHost("tictactoe", {}, "cpu")

    def broken(obs, mask):
        raise RuntimeError("the network broke")

    host.evaluator = broken
    appended = threading.Semaphore(0)
    host.waiting = _AppendSignals(appended)
    outcomes: dict[int, str] = {}
    finished = threading.Semaphore(0)

    def call(k: int) -> None:
        try:
            host.evaluate(np.zeros((1, *TTT.obs_shape), np.float32), np.ones((1, TTT.num_actions), bool))
            outcomes[k] = "answered"
        except BaseException as e:
            outcomes[k] = f"{type(e).__name__}: {e}"
        finished.release()

    threads = [threading.Thread(target=call, args=(k,), daemon=True) for k in range(3)]  # daemon: a hang cannot block exit
    with host.network_lock:  # so that the three requests queue up, and the first thread to get the network takes them all
        for thread in threads:
            thread.start()
        assert all(appended.acquire(timeout=HANG_GUARD) for _ in threads)
    all(finished.acquire(timeout=HANG_GUARD) for _ in threads)  # (stops at the first caller left waiting)
    error = "ActorError: inference actor: the evaluator failed on a batch of 3 positions from 3 calls: RuntimeError: the network broke"
    assert outcomes == {0: error, 1: error, 2: error}
    # still usable: the next batch is evaluated afresh
    host.evaluator = lambda obs, mask: (np.zeros(mask.shape, np.float32), np.full(obs.shape[0], 0.5, np.float32))
    logits, values = host.evaluate(np.zeros((2, *TTT.obs_shape), np.float32), np.ones((2, TTT.num_actions), bool))
    assert logits.shape == (2, TTT.num_actions) and values.tolist() == [0.5, 0.5]
    # an evaluator that answers for too few positions fails its batch too, rather than hand back short rows
    host.evaluator = lambda obs, mask: (np.zeros((1, TTT.num_actions), np.float32), np.zeros(1, np.float32))
    with pytest.raises(ActorError, match="it returned 1 logits and 1 values for 2 positions$"):
        host.evaluate(np.zeros((2, *TTT.obs_shape), np.float32), np.ones((2, TTT.num_actions), bool))


def test_every_caller_of_a_failing_inference_actor_gets_the_error_through_ray(local_ray):
    """The inference actor as a Ray actor: calls before it has weights all fail with the one-line
    error (none waits forever), and once it has weights it answers."""
    import ray

    from selfplay.model.network import build_network
    from selfplay.training.weights import export_weights

    host = ray.remote(num_cpus=0, max_concurrency=4)(ray_actors._InferenceHost).remote("tictactoe", {}, "cpu")
    try:
        obs, mask = np.zeros((1, *TTT.obs_shape), np.float32), np.ones((1, TTT.num_actions), bool)
        calls = [host.evaluate.remote(obs, mask) for _ in range(4)]
        for ref in calls:
            with pytest.raises(ray.exceptions.RayTaskError, match="inference actor: the evaluator failed on a batch of "
                                                                  r"\d+ positions from \d+ calls: RuntimeError: it has no weights yet"):
                ray.get(ref, timeout=HANG_GUARD)
        config = tiny_config(**RAY_TINY)
        weights = export_weights(build_network(config.net, TTT.obs_shape, TTT.num_actions), TTT, "cpu", "onnx")
        ray.get(host.set_weights.remote(0, weights), timeout=HANG_GUARD)
        logits, values = ray.get(host.evaluate.remote(obs, mask), timeout=HANG_GUARD)
        assert logits.shape == (1, TTT.num_actions) and values.shape == (1,)
    finally:
        ray.kill(host)


# ----------------------------------------------------------------------------- a two-node cluster


def _misses(run: Path) -> int:
    """Positions (of the 4,520) where the run's rating agent does not play an optimal move."""
    from dataclasses import replace

    from selfplay.evaluation.agents import NetworkAgent, network_search_config
    from selfplay.model.inference import load_evaluator

    config = load_config(run)
    values = _minimax_values()
    keys = list(values)
    states = np.array(keys, np.int64)
    search = replace(network_search_config(config.eval.visits, config.search.root_policy), solver=config.search.solver)
    agent = NetworkAgent(TTT, load_evaluator(run, TTT), config.eval.visits, config=search)
    actions = agent.act(states, states[:, 2], 0)
    lookup = lambda s: values[tuple(int(x) for x in s)]  # noqa: E731
    return sum(_child_value(np.array(k), int(a), lookup) != values[k] for k, a in zip(keys, actions))


def _events(path: Path) -> str:
    """The log without its per-generation lines: what happened."""
    return "\n".join(line for line in path.read_text().splitlines() if not line.startswith("generation"))[-4000:]


def _wait_for_text(path: Path, pattern: str, process: subprocess.Popen, timeout: float, count: int = 1) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        found = re.findall(pattern, path.read_text())
        if len(found) >= count:
            return found
        assert process.poll() is None, _events(path)
        assert time.monotonic() < deadline, f"{len(found)} of {count} {pattern!r} after {timeout} s:\n{_events(path)}"
        time.sleep(0.2)


def _train_through_a_lost_actor_and_a_lost_node(tmp_path: Path, settings: list[str], finish) -> Path:
    """A head node and a worker node with two actor slots (``selfplay_actor``), as separate
    processes, and ``selfplay train tictactoe --preset tiny`` joining them with ``settings``. The
    run's actors land on the worker; one is killed, then the whole worker node. The run goes on
    with replacements on the head. ``finish(process, log, run, cluster)`` ends the run; returns its directory."""
    cluster = Cluster()
    try:
        head = cluster.add_head(num_cpus=2)
        worker = cluster.add_worker(num_cpus=2, resources={"selfplay_actor": 2})
        run, log = tmp_path / "run", tmp_path / "train.log"
        command = [sys.executable, "-m", "selfplay.tools.train_cmd", "tictactoe", "--preset", "tiny", "--run-dir", str(run),
                   "--backend", "ray", "--address", cluster.address, "--actors", "2",
                   "--cluster.actor-resource", "selfplay_actor", "--run.progress", "false", "--no-final", *settings]
        with open(log, "w") as out:
            process = subprocess.Popen(command, cwd=ROOT, env={**_env(), "RAY_AUTH_MODE": "disabled"}, stdout=out, stderr=out)
        try:
            # both actors on the worker node
            placed = _wait_for_text(log, r"ray: 2 actors playing, on nodes? (\S+) \((\d)\)", process, 120)
            worker_node = placed[0][0]
            assert placed[0][1] == "2" and len(worker.actor_processes("_ActorHost")) == 2
            assert not head.actor_processes("_ActorHost")
            _wait_for_text(log, r"generation 3:", process, 120)
            # one actor dies: replaced (on the worker, which has a free slot again)
            os.kill(worker.actor_processes("_ActorHost")[0], 9)
            _wait_for_text(log, r"ray: actor \d replaced on node", process, 60)
            generation = len(read_metrics(run))
            _wait_for_text(log, rf"generation {generation + 2}:", process, 120)
            # the whole worker node dies: both actors are replaced on the head, the only node left
            killed = worker.kill()
            assert killed
            replaced = _wait_for_text(log, r"ray: actor \d replaced on node (\S+)", process, 120, count=3)
            assert all(node != worker_node for node in replaced[1:]), replaced
            assert len(head.actor_processes("_ActorHost")) == 2
            generation = len(read_metrics(run))
            _wait_for_text(log, rf"generation {generation + 2}:", process, 120)  # learning goes on
            finish(process, log, run, cluster)
        finally:
            if process.poll() is None:
                process.kill()
    finally:
        cluster.close()
    text = log.read_text()
    assert len(re.findall(r"ray: actor \d (?:on node \S+ )?lost", text)) == 3, _events(log)
    state = load_checkpoint(run).meta["run"]
    replay = ReplayBuffer.load(run / "replay.npz", expect_game=TTT.version_tag)
    # every position counted once: the two counts come from the same deliveries, so they agree on
    # a duplicate too; what catches one is the driver's check of each delivery's call id, which
    # stops the run (failing the waits above): test_a_play_call_delivered_twice_or_never_stops_the_run
    assert replay.total_added == state["positions"]
    return run


@pytest.mark.slow
def test_a_two_node_cluster_trains_on_through_a_lost_actor_and_a_lost_node(tmp_path):
    """The faults, on a small fast run (4 simulations, 16 games per actor); then the learner itself
    is killed (SIGKILL) and resumed from its checkpoint on what is left of the cluster. Slow: two
    Ray nodes and a run on them cost 43-48 s of the suite's two cores; in every run the delivery
    tests above cover a lost or repeated play call, and a failing inference actor, on one node."""
    small = ["--generations", "100000", "--minutes", "0", "--eval.every", "0", "--selfplay.games-per-actor", "16",
             "--search.num-simulations", "4", "--search.gumbel-considered", "4", "--selfplay.positions-per-generation", "200",
             "--learner.min-positions", "100", "--cluster.chunk-seconds", "0.5"]

    def finish(process, log, run, cluster):
        process.kill()
        process.wait(timeout=30)
        resumed_from = load_checkpoint(run).step
        command = [sys.executable, "-m", "selfplay.tools.train_cmd", "--resume", str(run), "--backend", "ray", "--address",
                   cluster.address, "--generations", str(resumed_from + 2)]
        done = subprocess.run(command, cwd=ROOT, env={**_env(), "RAY_AUTH_MODE": "disabled"}, capture_output=True, text=True,
                              timeout=180)
        assert done.returncode == 0, done.stderr[-3000:]
        assert load_checkpoint(run).step == resumed_from + 2
        assert [r["generation"] for r in read_metrics(run)][-2:] == [resumed_from + 1, resumed_from + 2]

    _train_through_a_lost_actor_and_a_lost_node(tmp_path, small, finish)


@pytest.mark.slow
def test_a_two_node_cluster_losing_an_actor_and_a_node_still_trains_perfect_tictactoe(tmp_path):
    """The tiny preset's 5 minutes (docs/training.md: perfect play), through the same faults."""
    def finish(process, log, run, cluster):
        assert process.wait(timeout=600) == 0, _events(log)

    run = _train_through_a_lost_actor_and_a_lost_node(tmp_path, ["--minutes", "5"], finish)
    state = load_checkpoint(run).meta["run"]
    print(f"{state['generation']} generations, {state['games']} games in {state['elapsed']:.0f} s")
    assert state["elapsed"] >= 5 * 60
    assert _misses(run) == 0


def test_bench_actors_reports_speed_utilisation_and_lag(tmp_path):
    """`selfplay bench actors` (the scaling figures of docs/ray.md), here a short local run."""
    from selfplay.training.scaling import bench_actors, format_table

    # a budget of generations, not of the command's seconds: the same run on any machine
    rows = bench_actors("tictactoe", "tiny", counts=(1,), backend="local", modes=("alternating",),
                        overrides={"selfplay.positions_per_generation": 300, "learner.min_positions": 100, "run.minutes": 0.0,
                                   "run.generations": 3}, log=lambda _: None)
    assert len(rows) == 1 and rows[0]["generations"] == 3
    row = rows[0]
    assert row["positions_per_s"] > 0 and 0 < row["learner_share"] < 1 and row["policy_lag"] == 0
    assert row["replay_ratio"] == pytest.approx(8.0, rel=0.2)  # the tiny preset's samples_per_position
    assert "| local | alternating | 1 |" in format_table(rows)
