"""Policy-value networks built from a game's static facts, so every game trains with no game code.

``build_network(cfg, obs_shape, num_actions)`` returns a :class:`PolicyValueNet` whose

    forward(obs: float32[N, C, H, W]) -> (policy_logits: float32[N, A], value: float32[N])

is the whole contract that search evaluators and ONNX export rely on. ``value`` is the expected
outcome in [-1, 1] **from the point of view of the player to move** in each position (the same
player ``encode`` draws the planes for). Policy logits cover every action; masking illegal
actions is the caller's business (search does it once, on the prior).

Two trunks, chosen by :attr:`NetConfig.kind`:

* ``"resnet"``: AlphaZero's shape: a 3x3 conv stem, ``blocks`` residual blocks
  (conv-BN-ReLU-conv-BN + skip, ReLU), a policy head (1x1 conv to 2 planes, BN, ReLU, linear to
  ``A``) and a value head (1x1 conv to ``value_planes`` planes, BN, ReLU, linear to ``hidden``,
  ReLU, linear).
* ``"mlp"``: the planes flattened, ``layers`` fully connected ReLU layers of width ``hidden``,
  the same two heads as linear layers. Small and fast: the NPC brains that ship to games.

Value heads, chosen by :attr:`NetConfig.value_head`:

* ``"scalar"``: one number through ``tanh``; trained by mean squared error;
* ``"wdl"``: three logits (win, draw, loss for the player to move); ``value = P(win) - P(loss)``;
  trained by cross-entropy against :func:`wdl_target`. :meth:`PolicyValueNet.forward_heads`
  returns the logits too.

On CUDA, :func:`prepare_for_device` moves the model (channels-last for conv nets, optional
``torch.compile``); callers run it under :func:`autocast` (bf16). Outputs are always float32.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Mapping, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "NetConfig",
    "NetConfigError",
    "NetOutput",
    "PolicyValueNet",
    "autocast",
    "build_network",
    "count_parameters",
    "default_net_config",
    "policy_value_loss",
    "prepare_for_device",
    "uses_bf16",
    "wdl_target",
]

KINDS = ("resnet", "mlp")
VALUE_HEADS = ("scalar", "wdl")


class NetConfigError(ValueError):
    """A network configuration that cannot be built (unknown kind, non-positive size...)."""


@dataclass(frozen=True)
class NetConfig:
    """Architecture of a policy-value network. The defaults suit one CPU core (see
    :func:`default_net_config`); everything else comes from the game (observation shape, actions)."""

    kind: str = field(default="resnet", metadata={"help": "trunk: 'resnet' (conv) or 'mlp' (NPC brains)"})
    channels: int = field(default=32, metadata={"help": "resnet: convolution channels in the trunk"})
    blocks: int = field(default=3, metadata={"help": "resnet: residual blocks in the trunk"})
    layers: int = field(default=2, metadata={"help": "mlp: fully connected hidden layers"})
    hidden: int = field(
        default=64, metadata={"help": "mlp: width of every hidden layer; resnet: width of the value head"}
    )
    value_planes: int = field(
        default=1, metadata={"help": "resnet: planes of the value head's 1x1 convolution, the input of its linear "
                             "layers (planes x cells)"}
    )
    value_head: str = field(
        default="scalar", metadata={"help": "'scalar' (tanh, MSE loss) or 'wdl' (win/draw/loss logits)"}
    )

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise NetConfigError(f"network kind {self.kind!r} is not one of {', '.join(KINDS)}")
        if self.value_head not in VALUE_HEADS:
            raise NetConfigError(f"value head {self.value_head!r} is not one of {', '.join(VALUE_HEADS)}")
        for name in ("channels", "blocks", "layers", "hidden", "value_planes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "blocks" else 1):
                least = "0" if name == "blocks" else "1"
                raise NetConfigError(f"network {name} must be an integer >= {least}, got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (saved with every checkpoint and export)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "NetConfig":
        """Inverse of :meth:`to_dict`; refuses unknown keys (a config from a newer version)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise NetConfigError(f"unknown network setting(s): {', '.join(unknown)}")
        return cls(**dict(data))

    def describe(self) -> str:
        """Short human summary: ``resnet 32x3 scalar`` or ``mlp 2x64 wdl``."""
        size = f"{self.channels}x{self.blocks}" if self.kind == "resnet" else f"{self.layers}x{self.hidden}"
        return f"{self.kind} {size} {self.value_head}"


def default_net_config(device: str | torch.device = "cpu", kind: str = "resnet") -> NetConfig:
    """A sensible size for where the network will run.

    CPU: 32 channels x 3 blocks, because self-play on the CPU is bound by network evaluations and
    a deeper, wider trunk costs them several times over (`selfplay bench net`). CUDA: 128 x 10, a typical AlphaZero size for small boards, cheap at the batch
    sizes a GPU evaluator runs at. ``kind="mlp"`` gives a 2 x 64 NPC brain either way.
    """
    if kind == "mlp":
        return NetConfig(kind="mlp", layers=2, hidden=64)
    if torch.device(device).type == "cuda":
        return NetConfig(kind=kind, channels=128, blocks=10, hidden=128)
    return NetConfig(kind=kind, channels=32, blocks=3, hidden=64)


class NetOutput(NamedTuple):
    """Everything a network computes for a batch of ``N`` positions (all float32)."""

    policy_logits: torch.Tensor  # [N, A], unmasked
    value: torch.Tensor  # [N] in [-1, 1], from the player to move
    wdl_logits: torch.Tensor | None  # [N, 3] win/draw/loss for the player to move; None for "scalar"


class PolicyValueNet(nn.Module):
    """Base of every network here: records what it was built from, and turns the value head's
    raw output into ``value`` (and W/D/L logits). Subclasses implement :meth:`raw_heads`."""

    def __init__(self, cfg: NetConfig, obs_shape: tuple[int, int, int], num_actions: int) -> None:
        super().__init__()
        self.config = cfg
        self.obs_shape = tuple(int(d) for d in obs_shape)
        self.num_actions = int(num_actions)
        self.channels_last = False  # set by prepare_for_device
        # What forward_heads runs, called as self._compute_fn(self, obs): a plain function, not a
        # bound method, so prepare_for_device can swap in a compiled one and a deepcopy of a
        # compiled model still computes with its own weights.
        self._compute_fn = PolicyValueNet._compute

    def raw_heads(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``obs [N, C, H, W]`` -> (policy logits ``[N, A]``, value head output ``[N, 1 or 3]``:
        before ``tanh``, or the W/D/L logits). No shape check and no dtype cast: the exporter
        (``export.graph``) finishes these with its own allowed operators."""
        raise NotImplementedError

    def forward_heads(self, obs: torch.Tensor) -> NetOutput:
        """All outputs, float32 even under autocast. Training uses this; search uses ``forward``."""
        return self._compute_fn(self, obs)

    def _compute(self, obs: torch.Tensor) -> NetOutput:
        tracing = torch.jit.is_tracing() or torch.compiler.is_compiling()  # exported graphs check shapes themselves
        if not tracing and (obs.dim() != 4 or tuple(obs.shape[1:]) != self.obs_shape):
            raise ValueError(f"observations must be [N, {', '.join(map(str, self.obs_shape))}], got {list(obs.shape)}")
        if self.channels_last:
            obs = obs.contiguous(memory_format=torch.channels_last)
        policy_logits, value_out = self.raw_heads(obs)
        policy_logits, value_out = policy_logits.float(), value_out.float()
        if self.config.value_head == "wdl":
            probs = torch.softmax(value_out, dim=-1)
            return NetOutput(policy_logits, probs[:, 0] - probs[:, 2], value_out)
        return NetOutput(policy_logits, torch.tanh(value_out.squeeze(-1)), None)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``obs float32[N, C, H, W]`` -> (``policy_logits float32[N, A]``, ``value float32[N]``)."""
        out = self.forward_heads(obs)
        return out.policy_logits, out.value

    @property
    def value_outputs(self) -> int:
        return 3 if self.config.value_head == "wdl" else 1

    def extra_repr(self) -> str:
        return f"{self.config.describe()}, obs_shape={self.obs_shape}, num_actions={self.num_actions}"


class ResidualBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN, plus the input, then ReLU."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(x + self.bn2(self.conv2(y)))


def _conv_bn(c_in: int, c_out: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()
    )


class ResNet(PolicyValueNet):
    """AlphaZero-style residual trunk with policy and value heads (see the module docstring)."""

    POLICY_PLANES = 2

    def __init__(self, cfg: NetConfig, obs_shape: tuple[int, int, int], num_actions: int) -> None:
        super().__init__(cfg, obs_shape, num_actions)
        planes, height, width = self.obs_shape
        cells = height * width
        self.stem = _conv_bn(planes, cfg.channels, 3)
        self.trunk = nn.Sequential(*(ResidualBlock(cfg.channels) for _ in range(cfg.blocks)))
        self.policy_conv = _conv_bn(cfg.channels, self.POLICY_PLANES, 1)
        self.policy_fc = nn.Linear(self.POLICY_PLANES * cells, num_actions)
        self.value_conv = _conv_bn(cfg.channels, cfg.value_planes, 1)
        self.value_fc = nn.Sequential(
            nn.Linear(cfg.value_planes * cells, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, self.value_outputs)
        )

    def raw_heads(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.trunk(self.stem(obs))
        policy = self.policy_fc(torch.flatten(self.policy_conv(x), 1))
        value = self.value_fc(torch.flatten(self.value_conv(x), 1))
        return policy, value


class MLP(PolicyValueNet):
    """Flattened planes through ``layers`` ReLU layers of width ``hidden``; linear heads."""

    def __init__(self, cfg: NetConfig, obs_shape: tuple[int, int, int], num_actions: int) -> None:
        super().__init__(cfg, obs_shape, num_actions)
        width = self.obs_shape[0] * self.obs_shape[1] * self.obs_shape[2]
        body: list[nn.Module] = []
        for _ in range(cfg.layers):
            body += [nn.Linear(width, cfg.hidden), nn.ReLU()]
            width = cfg.hidden
        self.body = nn.Sequential(*body)
        self.policy_fc = nn.Linear(width, num_actions)
        self.value_fc = nn.Linear(width, self.value_outputs)

    def raw_heads(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.body(torch.flatten(obs, 1))
        return self.policy_fc(x), self.value_fc(x)


def build_network(cfg: NetConfig, obs_shape: tuple[int, int, int], num_actions: int) -> PolicyValueNet:
    """The network ``cfg`` describes, for observations ``float32[N, *obs_shape]`` and ``num_actions``
    actions (a game's ``obs_shape`` and ``num_actions``). Freshly initialised, in train mode, on CPU."""
    shape = tuple(obs_shape)
    if len(shape) != 3 or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in shape):
        raise NetConfigError(f"observation shape must be three positive integers (C, H, W), got {obs_shape!r}")
    if isinstance(num_actions, bool) or not isinstance(num_actions, int) or num_actions < 1:
        raise NetConfigError(f"number of actions must be a positive integer, got {num_actions!r}")
    network = {"resnet": ResNet, "mlp": MLP}[cfg.kind]
    return network(cfg, shape, num_actions)


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) scalar parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def prepare_for_device(
    model: PolicyValueNet, device: str | torch.device, compile: bool = False, channels_last: bool | str = True
) -> PolicyValueNet:
    """Move ``model`` to ``device``, in place, and return it.

    On CUDA, conv nets switch to channels-last memory (weights now, inputs in ``forward``), which
    tensor cores want under bf16; ``channels_last="always"`` does it on the CPU too (oneDNN's
    convolutions train faster that way). ``compile=True`` wraps the computation in ``torch.compile``
    without changing the module: its type, attributes and ``state_dict`` keys stay as they were,
    so checkpoints and export need not care. A compiled model recompiles for each new batch size
    (then once more with dynamic shapes); evaluators that pad to a few fixed sizes avoid that.
    """
    device = torch.device(device)
    model.to(device)
    if (device.type == "cuda" or channels_last == "always") and channels_last and isinstance(model, ResNet):
        model.to(memory_format=torch.channels_last)
        model.channels_last = True
    if compile:
        model._compute_fn = torch.compile(PolicyValueNet._compute)
    return model


PRECISIONS = ("auto", "fp32", "bf16")


def native_bf16() -> bool:
    """Whether this CPU computes in bf16 natively (x86 AVX512-BF16 or AMX), where bf16 autocast
    trains faster than float32, most with channels-last (docs/training.md, "Learning", has the
    figures); elsewhere bf16 is emulated and slower than float32."""
    import platform

    if platform.machine().lower() not in ("x86_64", "amd64") or not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return False
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def uses_bf16(device: str | torch.device, precision: str = "auto") -> bool:
    """Whether training on ``device`` at ``precision`` (one of :data:`PRECISIONS`) runs bf16:
    ``auto`` is bf16 on CUDA and on CPUs with :func:`native_bf16`, float32 elsewhere."""
    if precision not in PRECISIONS:
        raise NetConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision != "auto":
        return precision == "bf16"
    return torch.device(device).type == "cuda" or (torch.device(device).type == "cpu" and native_bf16())


def autocast(device: str | torch.device, bf16: bool | None = None) -> contextlib.AbstractContextManager:
    """bf16 autocast on ``device`` when ``bf16`` (None: on CUDA only), else nothing.

    ``with autocast(device): logits, value = model(obs)``; outputs are float32 either way.
    """
    device = torch.device(device)
    if device.type == "cuda" if bf16 is None else bf16:
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def wdl_target(value: torch.Tensor) -> torch.Tensor:
    """``float32[N]`` outcomes in [-1, 1] -> ``float32[N, 3]`` W/D/L target distributions.

    ``+1 -> (1, 0, 0)``, ``0 -> (0, 1, 0)``, ``-1 -> (0, 0, 1)``, and a fractional outcome ``z``
    (a score margin) -> ``(max(z, 0), 1 - |z|, max(-z, 0))``, whose expected value is ``z``.
    """
    win = value.clamp(min=0)
    loss = (-value).clamp(min=0)
    return torch.stack([win, 1 - win - loss, loss], dim=-1)


def policy_value_loss(
    out: NetOutput, policy_target: torch.Tensor, value_target: torch.Tensor
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """AlphaZero loss on one batch: policy cross-entropy plus the value loss.

    ``policy_target float32[N, A]`` (search visit distributions; zero on illegal actions),
    ``value_target float32[N]`` (final outcome from the player to move at that position). The value
    loss is MSE for a scalar head and cross-entropy against :func:`wdl_target` for a W/D/L head.
    Returns ``(loss, {"policy": ..., "value": ...})``, the parts detached (``.item()`` them when
    logging, not every step, to spare a GPU sync). Weight decay is the optimizer's job.
    """
    policy_loss = -(policy_target * F.log_softmax(out.policy_logits, dim=-1)).sum(-1).mean()
    if out.wdl_logits is None:
        value_loss = F.mse_loss(out.value, value_target)
    else:
        value_loss = -(wdl_target(value_target) * F.log_softmax(out.wdl_logits, dim=-1)).sum(-1).mean()
    loss = policy_loss + value_loss
    return loss, {"policy": policy_loss.detach(), "value": value_loss.detach()}

