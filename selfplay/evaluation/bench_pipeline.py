"""``selfplay bench pipeline``: self-play and learning against one device, today's design beside
the inference server, in one process run.

Designs (``--designs``):

* ``actor``, today's: every actor process evaluates its own batches on the device, and
  generations alternate (the actors play a generation's positions, then the learner learns);
* ``server``: the actor processes send their leaves to one inference server process
  (:mod:`selfplay.training.inference_server`), and the learner learns beside them (overlapped, at
  most ``samples_per_position`` samples per arriving position), its batches sampled ahead;
* ``threads``: as ``server``, but the actors are threads of this process (the numba search
  kernels release the GIL): the alternative to processes, measured rather than assumed.

Devices:

* ``--device-model NAME`` (:mod:`selfplay.evaluation.device_model`): a modeled GPU that answers a
  batch after the time its latency table gives, one batch at a time for every process. Everything
  else is real: the actors' searches, the messages and copies, the server, the replay buffer
  and the learner's sampling (the learner's step takes the device for
  :data:`~selfplay.evaluation.device_model.TRAIN_STEP_FORWARDS` forwards). The device's busy fraction
  is exact, so the figures say whether this machine's CPU can feed that device.
* ``--device cpu`` or ``cuda``: the real network ``--net`` on the real device; self-play only
  (``actor`` is :class:`~selfplay.training.processes.ActorPool`, exactly what ``selfplay train`` runs).

Each design runs ``--warmup`` seconds, then is measured for ``--seconds``. A generation (new
weights: fresh trees; in ``actor``, the learner's turn) comes every ``--generation-positions``
positions, by default the preset's: small generations exaggerate what today's design loses to
its barrier (every actor must finish its share before anyone learns). Figures: evaluations/s
and self-play positions/s; the device's busy fraction (modeled only) and mean batch; the CPU
seconds of the actor processes, the server and this process (learner, bench loop, and in the
``threads`` design the actors), and their sum per leaf; from that, the cores that would keep the
device 70% busy with batches of the size the design forms: the actors' own (``actor``), or the
server's ``target_batch`` (``server``, ``threads``; enough actors fill it).
"""

from __future__ import annotations

import math
import os
import queue
import sys
import threading
import time
from dataclasses import replace
from typing import Any, Callable

import numpy as np

import games

__all__ = ["DESIGNS", "bench_pipeline", "format_report"]

DESIGNS = ("actor", "server", "threads")
BUSY_GOAL = 0.7  # the busy fraction the cores figure aims at


# ----------------------------------------------------------------------------- CPU accounts


def _cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) of process ``pid`` so far; NaN where /proc cannot say."""
    if pid == os.getpid():
        return time.process_time()
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return math.nan


class _Accounts:
    """CPU seconds of named groups of processes over a window."""

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self.groups = groups
        self.start = self._read()

    def _read(self) -> dict[str, float]:
        return {name: sum(_cpu_seconds(pid) for pid in pids) for name, pids in self.groups.items()}

    def since(self) -> dict[str, float]:
        now = self._read()
        return {name: now[name] - self.start[name] for name in self.groups}


# ----------------------------------------------------------------------------- actors as threads


class _ThreadActors:
    """``count`` actors as threads of this process, each with a channel to one inference server
    process: the stream interface of :class:`selfplay.training.streaming.StreamingActors`."""

    def __init__(self, spec: Any, count: int, options: Any, factory: Any, chunk_seconds: float = 1.0) -> None:
        from ..training.actor import Actor
        from ..training.messages import ActorSpec
        from ..training.inference_server import Channel, InferenceServer, RemoteEvaluator

        game = games.make(spec.game, **spec.game_options)
        capacity = spec.selfplay.games_per_actor * spec.search.leaves_per_step
        channels = [Channel(capacity, game.obs_shape, game.num_actions) for _ in range(count)]
        self.server = InferenceServer(channels, spec.game, dict(spec.game_options), options, factory)
        for channel in channels:
            channel.release(client=False)
        self.count, self.chunk_seconds = count, chunk_seconds
        self.actors = [Actor(replace(spec, seed=spec.seed + i)) for i in range(count)]
        self.remotes = [RemoteEvaluator(c.client()) for c in channels]
        self.generation = -1
        self.deliveries: queue.Queue = queue.Queue()
        self.stop = threading.Event()
        self.started = threading.Event()
        self.threads = [threading.Thread(target=self._play, args=(i,), daemon=True, name=f"actor-{i}") for i in range(count)]
        self.errors: list[BaseException] = []
        self.processes: list[Any] = []  # none: the actors are this process

    def broadcast(self, generation: int, weights: Any, *_: Any) -> None:
        self.server.set_weights(generation, weights)
        self.generation = generation
        if not self.started.is_set():
            self.started.set()
            for thread in self.threads:
                thread.start()

    def _play(self, i: int) -> None:
        from ..training.messages import Delivery

        actor = self.actors[i]
        try:
            while not self.stop.is_set():
                if actor.generation != self.generation:  # new weights: fresh trees, as an actor process
                    actor.set_evaluator(self.generation, self.remotes[i])
                deadline = time.monotonic() + self.chunk_seconds
                positions, stats = actor.play(1 << 40, lambda: self.stop.is_set() or time.monotonic() >= deadline
                                              or actor.generation != self.generation)
                self.deliveries.put(Delivery(actor.generation, positions, stats, i, ()))
        except BaseException as e:
            self.errors.append(e)

    def poll(self, timeout: float, **_: Any) -> list:
        if self.errors:
            raise self.errors[0]
        out = []
        try:
            out.append(self.deliveries.get(timeout=timeout) if timeout > 0 else self.deliveries.get_nowait())
            while True:
                out.append(self.deliveries.get_nowait())
        except queue.Empty:
            pass
        return out

    def server_stats(self) -> dict:
        return self.server.stats()

    def close(self) -> None:
        self.stop.set()
        for thread in self.threads:
            if thread.is_alive():
                thread.join(timeout=30)
        self.server.close()


# ----------------------------------------------------------------------------- the learner


class _ModeledLearner:
    """The learner against a modeled device: real batches from the replay buffer (sampled
    ahead on a thread, as on CUDA), and the device taken for each optimizer step."""

    def __init__(self, device: Any, batch_size: int, samples_per_position: float, augment: bool) -> None:
        self.device, self.batch_size, self.ratio, self.augment = device, batch_size, samples_per_position, augment
        self.steps = 0

    def steps_for(self, positions: int) -> int:
        return int(positions * self.ratio / self.batch_size)

    def train_steps(self, buffer: Any, steps: int, rng: np.random.Generator) -> None:
        from ..training.prefetch import prefetched

        with prefetched(buffer, steps, pin=False) as source:
            for _ in range(steps):
                source.sample(self.batch_size, rng, augment=self.augment)
                self.device.train_step(self.batch_size)
                self.steps += 1


# ----------------------------------------------------------------------------- one measurement


def _measure(design: str, spec: Any, count: int, seconds: float, warmup: float, device: Any, table: Any,
             real: dict | None, options: Any, learner: dict, generation_positions: int, log: Callable[[str], None]) -> dict:
    """One design against one device: the figures of the module docstring."""
    from ..training.messages import Weights
    from ..training.processes import ActorPool
    from ..training.inference_backends import ModeledBackends, NetworkBackends
    from ..training.replay import ReplayBuffer
    from ..training.streaming import StreamingActors

    game = games.make(spec.game, **spec.game_options)
    weights = real["weights"][design] if real else Weights("onnx", b"")  # modeled: a generation marker
    factory = ModeledBackends(device) if real is None else NetworkBackends()
    model = _ModeledLearner(device, **learner) if real is None else None
    buffer = ReplayBuffer.for_game(game, 200_000)
    rng = np.random.default_rng(0)
    generation_positions = generation_positions if real is None else 1 << 40  # real devices: self-play only
    if design == "actor":
        pool = ActorPool(spec, count) if real else StreamingActors(spec, count, evaluator=device)
    elif design == "server":
        pool = StreamingActors(spec, count, serve=True, options=options, factory=factory)
    else:
        pool = _ThreadActors(spec, count, options, factory)
    try:
        groups = {"actors": [p.pid for p in pool.processes], "server": [pool.server.pid] if getattr(pool, "server", None) else [],
                  "main": [os.getpid()]}
        alternating = design == "actor"
        state = {"generation": 0, "positions": 0, "evaluations": 0, "calls": 0, "waiting": 0.0, "played": 0.0}

        def take(positions: Any, stats: Any) -> None:
            if len(positions):
                buffer.add(positions.obs, positions.policy, positions.value)
            state["positions"] += stats.positions
            state["evaluations"] += stats.evaluations
            state["calls"] += stats.evaluator_calls
            state["waiting"] += stats.evaluator_seconds
            state["played"] += stats.seconds

        def run_until(deadline: float) -> None:
            if alternating:
                while time.monotonic() < deadline:
                    positions, stats = pool.collect(state["generation"], weights, min(generation_positions, 1 << 30),
                                                    should_stop=lambda: time.monotonic() >= deadline)
                    take(positions, stats)
                    if model is not None:
                        model.train_steps(buffer, model.steps_for(len(positions)), rng)
                    state["generation"] += 1
                return
            arrived = generation_start = 0
            steps_done = 0
            while time.monotonic() < deadline:
                allowed = model.steps_for(arrived) if model is not None else 0
                for delivery in pool.poll(0.0 if steps_done < allowed else 0.05, num_positions=1 << 40):
                    take(delivery.positions, delivery.stats)
                    arrived += len(delivery.positions)
                if arrived - generation_start >= generation_positions:
                    state["generation"] += 1
                    generation_start = arrived
                    pool.broadcast(state["generation"], weights)
                if model is not None and steps_done < allowed:
                    step = min(4, allowed - steps_done)
                    model.train_steps(buffer, step, rng)
                    steps_done += step

        if not alternating:
            pool.broadcast(0, weights)
        run_until(time.monotonic() + warmup)
        for key in ("positions", "evaluations", "calls", "waiting", "played"):
            state[key] = 0
        before = device.counters() if device is not None else None
        server_before = pool.server_stats() if design != "actor" else {}
        accounts = _Accounts(groups)
        began = time.monotonic()
        run_until(began + seconds)
        wall = time.monotonic() - began
        cpu = accounts.since()
        server_after = pool.server_stats() if design != "actor" else {}
    finally:
        pool.close()
    leaves = state["evaluations"]
    row: dict[str, Any] = {"design": design, "actors": count, "seconds": wall, "evals_per_s": leaves / wall,
                           "positions_per_s": state["positions"] / wall,
                           "actor_waiting": state["waiting"] / state["played"] if state["played"] else math.nan}
    if device is not None:
        window = device.between(before, device.counters())
        row.update(busy_fraction=window["busy_fraction"], train_busy_fraction=window["train_busy_fraction"],
                   mean_batch=window["mean_batch"], evals_per_s=window["evals_per_s"], leaves=window["evals_per_s"] * wall)
        leaves = row["leaves"]
    elif server_after:
        batches = server_after["batches"] - server_before.get("batches", 0)
        row["mean_batch"] = (server_after["leaves"] - server_before.get("leaves", 0)) / max(batches, 1)
    else:
        row["mean_batch"] = state["evaluations"] / max(state["calls"], 1)
    if server_after:
        row["server"] = {k: server_after[k] - server_before.get(k, 0) for k in ("gather_s", "wait_s", "scatter_s", "batches", "leaves")}
    row["cpu_s"] = cpu
    total = sum(v for v in cpu.values() if math.isfinite(v))
    row["cpu_us_per_leaf"] = 1e6 * total / max(leaves, 1)
    row["server_cpu_us_per_leaf"] = 1e6 * cpu["server"] / max(leaves, 1) if groups["server"] else math.nan
    if table is not None and table.name != "null":  # (the null device never gets busy)
        batch = row["mean_batch"] if design == "actor" else options.target_batch
        goal = BUSY_GOAL * table.rate(batch) if math.isfinite(batch) else math.nan
        row.update(batch_at_scale=batch, evals_per_s_at_goal=goal, cores_for_goal=goal * total / max(leaves, 1))
    log(f"  {design:>8}: {row['evals_per_s']:>10,.0f} evals/s, {row['positions_per_s']:>7,.0f} positions/s, "
        + (f"device {100 * row['busy_fraction']:.0f}% busy, " if device is not None else "")
        + f"mean batch {row['mean_batch']:,.0f}, CPU {row['cpu_us_per_leaf']:.1f} us/leaf")
    return row


# ----------------------------------------------------------------------------- the benchmark


def bench_pipeline(
    game_name: str = "connect4",
    preset_name: str = "full",
    device_models: tuple[str, ...] = ("h200-32x3", "h200-128x10"),
    device: str | None = None,
    net: str = "preset",
    designs: tuple[str, ...] = ("actor", "server"),
    actors: int | None = None,
    games_per_actor: int | None = None,
    seconds: float = 10.0,
    warmup: float = 3.0,
    generation_positions: int | None = None,
    target_batch: int = 4096,
    max_wait: float = 0.0,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Every design of ``designs`` against each modeled device of ``device_models`` (or, with
    ``device``, the real network ``net`` there); a JSON-ready report with one row per
    (device, design). The actors play ``game_name`` with preset ``preset_name``'s self-play and
    search settings (``games_per_actor`` overrides its games per actor); ``actors`` processes
    (default: one per core)."""
    from ..config import available_cores
    from ..evaluation.device_model import TABLES, device_model
    from ..presets import preset
    from ..training.messages import ActorSpec
    from ..training.inference_backends import ServerOptions

    log = log or (lambda text: print(text, file=sys.stderr, flush=True))
    unknown = [d for d in designs if d not in DESIGNS]
    if unknown or not designs:
        raise ValueError(f"bench pipeline: unknown design {', '.join(unknown) or '(none)'}; choose from {', '.join(DESIGNS)}")
    if seconds <= 0 or warmup < 0:
        raise ValueError(f"bench pipeline: --seconds must be > 0 and --warmup >= 0, got {seconds} and {warmup}")
    config = preset(game_name, preset_name)
    generation_positions = generation_positions or config.selfplay.positions_per_generation
    selfplay = config.selfplay if games_per_actor is None else replace(config.selfplay, games_per_actor=games_per_actor)
    cores = available_cores()
    count = actors or cores
    spec = ActorSpec(game_name, dict(config.game_options), config.search, selfplay, seed=seed,
                     device=device if device else "cpu")
    options = ServerOptions(device=device or "cpu", target_batch=target_batch, max_wait=max_wait)
    learner = {"batch_size": config.learner.batch_size, "samples_per_position": config.learner.samples_per_position,
               "augment": config.learner.augment}
    report: dict[str, Any] = {
        "game": game_name, "preset": preset_name, "cores": cores, "actors": count,
        "games_per_actor": selfplay.games_per_actor, "simulations": [config.search.num_simulations, selfplay.fast_simulations],
        "seconds": seconds, "target_batch": target_batch, "max_wait": max_wait, "generation_positions": generation_positions,
        "rows": [],
    }
    if device:
        real = _real_weights(config, net, device, designs)
        report["net"] = real["net"]
        targets = [(device, None, None, real)]
    else:
        for name in device_models:
            if name not in TABLES:
                raise ValueError(f"bench pipeline: unknown device model {name!r}; choose from {', '.join(TABLES)}")
        targets = [(name, TABLES[name], device_model(name), None) for name in device_models]
    for name, table, modeled, real in targets:
        log(f"{name}: {count} actor{'s' if count != 1 else ''} x {selfplay.games_per_actor} games, {seconds:g} s per design")
        for design in designs:
            row = _measure(design, spec, count, seconds, warmup, modeled, table, real, options, learner,
                           generation_positions, log)
            report["rows"].append({"device": name, **row})
    return report


def _real_weights(config: Any, net: str, device: str, designs: tuple[str, ...]) -> dict:
    """A fresh network (``net``: ``preset``, the preset's own, or a size :func:`parse_net` takes)
    as the weights each design sends: ONNX for CPU actors and a CPU server; safetensors for torch
    on CUDA."""
    import torch

    from ..model.network import build_network
    from ..training.weights import export_weights
    from .bench_net import parse_net

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("bench pipeline: --device cuda, but torch sees no CUDA device")
    game = games.make(config.game, **config.game_options)
    torch.manual_seed(0)
    model = build_network(config.net, game.obs_shape, game.num_actions).eval() if net == "preset" else parse_net(net, game, device)
    weights = {design: export_weights(model, game, device, "auto") for design in designs}
    return {"net": model.config.describe() if hasattr(model, "config") else net, "weights": weights}


def format_report(report: dict[str, Any]) -> str:
    """The report as a table, and each design's ratio to ``actor`` on the same device."""
    lines = [
        f"{report['game']}, preset {report['preset']} ({report['games_per_actor']} games per actor, "
        f"{'/'.join(map(str, report['simulations']))} simulations), {report['actors']} actor{'s' * (report['actors'] != 1)} on "
        f"{report['cores']} cores, "
        f"{report['seconds']:g} s per design" + (f", network {report['net']}" if "net" in report else
                                                  f", generations of {report['generation_positions']:,} positions"),
        f"{'device':<12} {'design':<8} {'evals/s':>10} {'busy':>5} {'pos/s':>7} {'batch':>6} {'us/leaf':>8} "
        f"{'actors':>7} {'server':>7} {'main':>6} {'cores@70%':>9} {'batch@scale':>11}",
    ]
    for row in report["rows"]:
        busy = f"{100 * row['busy_fraction']:.0f}%" if "busy_fraction" in row else "-"
        cores = f"{row['cores_for_goal']:.1f}" if "cores_for_goal" in row else "-"
        scale = f"{row['batch_at_scale']:,.0f}" if "batch_at_scale" in row else "-"
        cpu = row["cpu_s"]
        lines.append(
            f"{row['device']:<12} {row['design']:<8} {row['evals_per_s']:>10,.0f} {busy:>5} {row['positions_per_s']:>7,.0f} "
            f"{row['mean_batch']:>6,.0f} {row['cpu_us_per_leaf']:>8.1f} {cpu['actors']:>6.1f}s {cpu['server']:>6.1f}s "
            f"{cpu['main']:>5.1f}s {cores:>9} {scale:>11}")
    base = {row["device"]: row for row in report["rows"] if row["design"] == "actor"}
    for row in report["rows"]:
        old = base.get(row["device"])
        if old is None or row is old:
            continue
        parts = [f"evals/s x{row['evals_per_s'] / max(old['evals_per_s'], 1e-9):.2f}",
                 f"positions/s x{row['positions_per_s'] / max(old['positions_per_s'], 1e-9):.2f}"]
        if "busy_fraction" in row:
            parts.append(f"busy {100 * old['busy_fraction']:.0f}% -> {100 * row['busy_fraction']:.0f}%")
        lines.append(f"{row['device']} {row['design']} / actor: " + ", ".join(parts))
    return "\n".join(lines)
