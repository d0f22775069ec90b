"""The learner: optimizer steps on batches sampled from the replay buffer.

One step: sample ``batch_size`` positions (each through a random board symmetry), compute the
AlphaZero loss (:func:`selfplay.model.network.policy_value_loss`: policy cross-entropy against the
search's target plus the value loss against the final outcome), and step AdamW or SGD with
Nesterov momentum. Weight decay is the optimizer's (decoupled for AdamW, L2 for SGD). Norm and
bias parameters are not decayed. The forward pass runs under bf16 autocast where that is fast
(``LearnerConfig.precision``: CUDA, and CPUs with native bf16), with channels-last convolutions;
the weights and the optimizer stay float32.

The learning rate follows ``LearnerConfig.schedule`` over the run's *progress*, a number in
[0, 1] the caller passes (the fraction of the time or generation budget used). So a 5-minute and
a 5-hour run both decay their rate to the end of their budget. A linear warm-up over the first
``warmup_steps`` steps comes on top.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from ..config import LearnerConfig
from ..model.network import PolicyValueNet, autocast, policy_value_loss, prepare_for_device, uses_bf16
from .replay import ReplayBuffer

__all__ = ["Learner", "continued_progress", "learning_rate"]


def continued_progress(position: float, start_position: float, start_progress: float) -> float:
    """The schedule's progress at budget ``position`` in [0, 1] in a session that started at
    ``start_position`` with the schedule at ``start_progress`` (what the checkpoint recorded).

    The rest of the schedule is spread over the rest of the budget: ``start_progress`` at the
    start, 1 at the end of the budget, linear in between::

        progress = start_progress + (1 - start_progress) * (position - start_position) / (1 - start_position)

    With the budget unchanged, ``start_progress == start_position`` and the progress is the
    position itself. A resumed run with a larger budget (``--minutes`` raised) starts at a smaller
    position, but the schedule goes on from where it was, never back: the rate does not jump up."""
    start_progress = min(max(start_progress, 0.0), 1.0)
    if start_position >= 1.0:
        return 1.0
    done = (min(max(position, start_position), 1.0) - start_position) / (1.0 - start_position)
    return min(start_progress + (1.0 - start_progress) * done, 1.0)


def learning_rate(config: LearnerConfig, progress: float, step: int) -> float:
    """The rate at ``progress`` in [0, 1] of the budget, after ``step`` optimizer steps."""
    progress = min(max(progress, 0.0), 1.0)
    final = config.lr_final_fraction
    if config.schedule == "cosine":
        factor = final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * progress))
    elif config.schedule == "step":
        factor = 1.0 if progress < 0.5 else math.sqrt(final) if progress < 0.75 else final
    else:
        factor = 1.0
    if config.warmup_steps:
        factor *= min(1.0, (step + 1) / config.warmup_steps)
    return config.lr * factor


def _param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weights of convolutions and linear layers decay; biases and norm scales do not."""
    decay, plain = [], []
    for parameter in model.parameters():
        if parameter.requires_grad:
            (decay if parameter.ndim > 1 else plain).append(parameter)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]


class Learner:
    """Trains ``model`` (in place) on ``device`` with the settings of ``config``."""

    def __init__(self, model: PolicyValueNet, config: LearnerConfig, device: str | torch.device = "cpu") -> None:
        self.config = config
        self.device = torch.device(device)
        self.bf16 = uses_bf16(self.device, config.precision)
        # channels-last convolutions: what bf16 wants on CUDA, and 1.4x the steps on a CPU
        self.model = prepare_for_device(model, self.device, channels_last="always" if self.device.type == "cpu" else True)
        groups = _param_groups(model, config.weight_decay)
        if config.optimizer == "adamw":
            self.optimizer: torch.optim.Optimizer = torch.optim.AdamW(groups, lr=config.lr)
        else:
            self.optimizer = torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, nesterov=config.momentum > 0)
        self.steps = 0  # optimizer steps taken, over the whole run

    def train_steps(
        self, buffer: ReplayBuffer, steps: int, rng: np.random.Generator, progress: float = 0.0, should_stop=None
    ) -> dict[str, float]:
        """Take up to ``steps`` optimizer steps on batches from ``buffer`` (fewer if
        ``should_stop()`` turns true; it is asked before each step). Returns the mean losses
        ``{"loss", "policy_loss", "value_loss"}``, the last learning rate ``lr`` and ``steps``
        taken (all NaN and 0 if none was)."""
        model, config = self.model, self.config
        model.train()
        totals = torch.zeros(3, device=self.device)
        lr = float("nan")
        done = 0
        for _ in range(steps):
            if should_stop is not None and should_stop():
                break
            lr = learning_rate(config, progress, self.steps)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            obs, policy, value = buffer.sample(config.batch_size, rng, augment=config.augment)
            obs_t = torch.from_numpy(obs).to(self.device, non_blocking=True)
            policy_t = torch.from_numpy(policy).to(self.device, non_blocking=True)
            value_t = torch.from_numpy(value).to(self.device, non_blocking=True)
            with autocast(self.device, self.bf16):
                out = model.forward_heads(obs_t)
            loss, parts = policy_value_loss(out, policy_t, value_t)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            totals += torch.stack([loss.detach(), parts["policy"], parts["value"]])
            self.steps += 1
            done += 1
        means = (totals / max(done, 1)).tolist() if done else [float("nan")] * 3
        return {"loss": means[0], "policy_loss": means[1], "value_loss": means[2], "lr": lr, "steps": done}

    def steps_for(self, new_positions: int) -> int:
        """Optimizer steps that sample each of ``new_positions`` about ``samples_per_position``
        times (the replay ratio)."""
        return max(1, round(new_positions * self.config.samples_per_position / self.config.batch_size)) if new_positions else 0

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state (for ``save_checkpoint(optimizer_state=...)``) with the step count."""
        return {"optimizer": self.optimizer.state_dict(), "steps": self.steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.steps = int(state["steps"])
