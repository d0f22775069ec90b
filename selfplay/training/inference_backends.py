"""Where an inference server's batches run (:class:`Backend`), and what builds one from weights
(:class:`BackendFactory`): :class:`TorchBackend` (CUDA or CPU), :class:`CallBackend` (any
evaluator callable, e.g. onnxruntime on the CPU), :class:`ModeledBackend` (a
:class:`selfplay.evaluation.device_model.DeviceModel`: benchmarks without a GPU). The server
(selfplay.training.inference_server) hands a factory to its process when it starts, and asks it
for a backend whenever new weights arrive.

* **One synchronisation per batch.** :class:`TorchBackend` copies the gathered batch from pinned
  memory, runs one forward (bf16 from ``bf16_from`` leaves on, fp32 below, where fp32 is faster;
  channels-last; optionally ``torch.compile`` with batches padded to powers of two) and copies
  the outputs into pinned memory, then records one CUDA event; the server waits on that event
  only when it has nothing else to do.

This module imports torch only in the server process, and only for :class:`TorchBackend`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Protocol

import numpy as np

__all__ = [
    "Backend",
    "BackendFactory",
    "CallBackend",
    "CallBackends",
    "ModeledBackend",
    "ModeledBackends",
    "NetworkBackends",
    "ServerOptions",
    "TorchBackend",
]

POLL_SECONDS = 0.0002  # how often a CUDA event is polled while there is nothing else to do


@dataclass(frozen=True)
class ServerOptions:
    """How the server batches and runs the network."""

    device: str = "cpu"  # where a torch network runs: cpu, cuda, cuda:1
    target_batch: int = 4096  # launch as soon as this many leaves wait (also the largest batch, unless one request is larger)
    max_wait: float = 0.0  # seconds the oldest request waits for others while the device is idle (batches grow while it is busy)
    bf16_from: int = 1024  # CUDA: batches of at least this many leaves run under bf16 autocast, smaller ones in fp32
    compile: bool = False  # CUDA: torch.compile the network (batches padded to powers of two, so it compiles a few times)
    threads: int = 1  # CPU: intra-op threads of the network

    def __post_init__(self) -> None:
        if self.target_batch < 1 or self.max_wait < 0 or self.bf16_from < 1 or self.threads < 1:
            raise ValueError(f"server options out of range: {self}")


class Backend(Protocol):
    """Where batches run. Two staging slots: a batch is gathered into ``inputs(slot)``, started
    by ``launch(slot, n)`` and read by ``result(slot)`` (blocking); ``remaining(slot)`` says how
    long it still runs (0: done; an estimate, or a polling interval)."""

    def inputs(self, slot: int) -> tuple[np.ndarray, np.ndarray]: ...

    def launch(self, slot: int, n: int) -> None: ...

    def remaining(self, slot: int) -> float: ...

    def result(self, slot: int) -> tuple[np.ndarray, np.ndarray]: ...


class _NumpySlots:
    """Two staging slots of plain numpy arrays, ``rows`` leaves each."""

    def __init__(self, rows: int, obs_shape: tuple, num_actions: int) -> None:
        self.staging = [(np.zeros((rows, *obs_shape), np.float32), np.zeros((rows, num_actions), np.bool_)) for _ in range(2)]
        self.n = [0, 0]

    def inputs(self, slot: int) -> tuple[np.ndarray, np.ndarray]:
        return self.staging[slot]


class CallBackend(_NumpySlots):
    """Any evaluator ``(obs, mask) -> (logits, value)``, run synchronously at launch."""

    def __init__(self, evaluate: Callable, rows: int, obs_shape: tuple, num_actions: int) -> None:
        super().__init__(rows, obs_shape, num_actions)
        self.evaluate = evaluate
        self.results: list[Any] = [None, None]

    def launch(self, slot: int, n: int) -> None:
        obs, mask = self.staging[slot]
        self.results[slot] = None
        logits, value = self.evaluate(obs[:n], mask[:n])
        self.results[slot] = (np.asarray(logits, np.float32).reshape(n, -1), np.asarray(value, np.float32).reshape(-1))

    def remaining(self, slot: int) -> float:
        return 0.0

    def result(self, slot: int) -> tuple[np.ndarray, np.ndarray]:
        return self.results[slot]


class ModeledBackend(_NumpySlots):
    """A modeled device (:class:`selfplay.evaluation.device_model.DeviceModel`): the batch takes
    the table's time on the shared device timeline; uniform priors and value 0."""

    def __init__(self, device: Any, rows: int, obs_shape: tuple, num_actions: int) -> None:
        super().__init__(rows, obs_shape, num_actions)
        self.device = device
        self.done_at = [0.0, 0.0]
        self.zeros = (np.zeros((rows, num_actions), np.float32), np.zeros(rows, np.float32))

    def launch(self, slot: int, n: int) -> None:
        self.n[slot] = n
        self.done_at[slot] = self.device.launch(n)

    def remaining(self, slot: int) -> float:
        return max(0.0, self.done_at[slot] - time.monotonic())

    def result(self, slot: int) -> tuple[np.ndarray, np.ndarray]:
        self.device.wait(self.done_at[slot])
        n = self.n[slot]
        return self.zeros[0][:n], self.zeros[1][:n]


class TorchBackend:
    """A torch policy-value network on ``options.device``. Inputs and outputs are staged in
    pinned memory on CUDA, so both copies are asynchronous; one CUDA event per batch."""

    def __init__(self, model: Any, rows: int, obs_shape: tuple, num_actions: int, options: ServerOptions) -> None:
        import torch

        from ..model.network import prepare_for_device

        self.torch = torch
        self.device = torch.device(options.device)
        self.cuda = self.device.type == "cuda"
        self.options = options
        self.pad = self.cuda and options.compile  # compiled graphs per batch size: pad to powers of two
        rows = _bucket(rows) if self.pad else rows
        self.model = prepare_for_device(model, self.device, compile=self.pad).eval()
        if not self.cuda:
            torch.set_num_threads(options.threads)
        pin = self.cuda
        self.obs = torch.zeros((2, rows, *obs_shape), dtype=torch.float32, pin_memory=pin)
        self.mask = torch.zeros((2, rows, num_actions), dtype=torch.bool, pin_memory=pin)
        self.logits = torch.zeros((2, rows, num_actions), dtype=torch.float32, pin_memory=pin)
        self.value = torch.zeros((2, rows), dtype=torch.float32, pin_memory=pin)
        self.events = [torch.cuda.Event() for _ in range(2)] if self.cuda else []
        self.n = [0, 0]

    def load(self, state: dict) -> None:
        """New weights into the same network (a compiled graph stays valid)."""
        self.model.load_state_dict(state)

    def inputs(self, slot: int) -> tuple[np.ndarray, np.ndarray]:
        return self.obs[slot].numpy(), self.mask[slot].numpy()

    def launch(self, slot: int, n: int) -> None:
        torch = self.torch
        self.n[slot] = n
        rows = _bucket(n) if self.pad else n
        with torch.inference_mode():
            x = self.obs[slot, :rows].to(self.device, non_blocking=True)
            if self.cuda and n >= self.options.bf16_from:
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    logits, value = self.model(x)
            else:
                logits, value = self.model(x)
            self.logits[slot, :n].copy_(logits[:n].float(), non_blocking=True)
            self.value[slot, :n].copy_(value.reshape(-1)[:n].float(), non_blocking=True)
            if self.cuda:
                self.events[slot].record()

    def remaining(self, slot: int) -> float:
        return 0.0 if not self.cuda or self.events[slot].query() else POLL_SECONDS

    def result(self, slot: int) -> tuple[np.ndarray, np.ndarray]:
        if self.cuda:
            self.events[slot].synchronize()
        n = self.n[slot]
        return self.logits[slot, :n].numpy(), self.value[slot, :n].numpy()


def _bucket(n: int) -> int:
    """The batch size a compiled network runs ``n`` leaves at: the next power of two, at least 64."""
    return max(64, 1 << (int(n) - 1).bit_length())


class BackendFactory(Protocol):
    """Builds (or updates) the server's backend for new weights; runs in the server process."""

    def __call__(self, weights: Any, current: Any, rows: int, game: Any, options: ServerOptions) -> Backend: ...


class NetworkBackends:
    """The backend for :class:`selfplay.training.messages.Weights`: safetensors run in torch
    (:class:`TorchBackend`, the same network reloaded for each generation), ONNX and brains in
    onnxruntime on the CPU (:class:`CallBackend`)."""

    def __call__(self, weights: Any, current: Any, rows: int, game: Any, options: ServerOptions) -> Backend:
        if weights.format == "safetensors":
            from safetensors.torch import load as load_tensors

            from ..model.network import NetConfig, build_network

            state = load_tensors(weights.data)
            if isinstance(current, TorchBackend) and current.net == weights.net:
                current.load(state)
                return current
            model = build_network(NetConfig.from_dict(weights.net), game.obs_shape, game.num_actions)
            model.load_state_dict(state)
            backend = TorchBackend(model, rows, game.obs_shape, game.num_actions, options)
            backend.net = weights.net
            return backend
        from .weights import evaluator_from_weights

        return CallBackend(evaluator_from_weights(weights, game, "cpu", options.threads), rows, game.obs_shape, game.num_actions)


@dataclass
class ModeledBackends:
    """Every generation runs on the same modeled device (weights are ignored)."""

    device: Any  # a DeviceModel

    def __call__(self, weights: Any, current: Any, rows: int, game: Any, options: ServerOptions) -> Backend:
        return current if current is not None else ModeledBackend(self.device, rows, game.obs_shape, game.num_actions)


@dataclass
class CallBackends:
    """Every generation runs ``evaluate`` (a picklable evaluator; tests, fakes)."""

    evaluate: Callable

    def __call__(self, weights: Any, current: Any, rows: int, game: Any, options: ServerOptions) -> Backend:
        return CallBackend(self.evaluate, rows, game.obs_shape, game.num_actions)
