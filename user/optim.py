"""The PPO optimizer: Adam that clips and reports the gradient norm, and stops on a non-finite one;
and the dynamic loss scale that fp16 training needs (issue 15)."""

from __future__ import annotations

import math

import numpy as np
import torch

from user.monitoring import DivergenceError


class LossScale:
    """Dynamic loss scaling for fp16 (what ``torch.amp.GradScaler`` does), fitted to SB3's update.

    SB3's ``train()`` calls ``loss.backward()`` itself, so the loss cannot be multiplied before it.
    Instead the policy multiplies the gradient flowing back from its outputs (values, log-probs,
    entropy) by ``scale`` (:class:`ScaleGradient`), which scales every gradient in the network
    exactly as scaling the loss would, and :class:`GuardedAdam` divides it out before clipping.
    fp16 gradients that would underflow to zero stay representable. A step whose gradients
    overflowed is skipped and the scale halved; after ``growth_interval`` good steps it doubles.
    """

    def __init__(self, scale: float = 2.0**16, growth_interval: int = 2000, min_scale: float = 1.0):
        self.scale = scale
        self.growth_interval = growth_interval
        self.min_scale = min_scale  # below this the gradients are not merely overflowing: diverged
        self.good_steps = 0
        self.skipped = 0

    def overflowed(self) -> None:
        self.scale /= 2.0
        self.good_steps = 0
        self.skipped += 1
        if self.scale < self.min_scale:
            raise DivergenceError(f"non-finite gradients even at loss scale {self.scale:g} (fp16): the update diverged")

    def stepped(self) -> None:
        self.good_steps += 1
        if self.good_steps >= self.growth_interval:
            self.scale *= 2.0
            self.good_steps = 0

    def state_dict(self) -> dict[str, float]:
        return {"scale": self.scale, "good_steps": self.good_steps, "skipped": self.skipped}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.scale = float(state["scale"])
        self.good_steps, self.skipped = int(state["good_steps"]), int(state["skipped"])


class ScaleGradient(torch.autograd.Function):
    """Identity forward; the backward multiplies the gradient by ``scale``."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return grad * ctx.scale, None


class GuardedAdam(torch.optim.Adam):
    """Adam that clips the gradient norm itself, records it before and after, and refuses NaN.

    SB3 clips with ``max_grad_norm`` but does not report the norm; the trainer
    passes SB3 an infinite ``max_grad_norm`` and clips here instead, so the
    norm before and after clipping reaches ``metrics.csv`` and a non-finite
    gradient stops training within the update that produced it.
    """

    def __init__(self, params, lr: float = 1e-3, max_grad_norm: float = 0.5, **kwargs):
        super().__init__(params, lr=lr, **kwargs)
        self.max_grad_norm = max_grad_norm
        self.norms_before: list[float] = []
        self.norms_after: list[float] = []
        self.loss_scale: LossScale | None = None  # fp16: the gradients arrive multiplied by its scale

    @torch.no_grad()
    def step(self, closure=None):
        params = [p for group in self.param_groups for p in group["params"] if p.grad is not None]
        if self.loss_scale is not None:
            torch._foreach_div_([p.grad for p in params], self.loss_scale.scale)
        before = float(torch.nn.utils.clip_grad_norm_(params, self.max_grad_norm))
        if not math.isfinite(before) and self.loss_scale is not None:
            self.loss_scale.overflowed()  # skip this step; raises once the scale is spent
            return None
        if not math.isfinite(before):
            raise DivergenceError(f"non-finite gradient norm ({before}) in a PPO update")
        if self.loss_scale is not None:
            self.loss_scale.stepped()
        # clip_grad_norm_ scales every gradient by max_norm / (norm + 1e-6) when that is < 1.
        after = before * min(1.0, self.max_grad_norm / (before + 1e-6))
        self.norms_before.append(before)
        self.norms_after.append(after)
        return super().step(closure)

    def state_dict(self) -> dict:
        state = super().state_dict()
        if self.loss_scale is not None:  # an exact resume continues with the same scale
            state["loss_scale"] = self.loss_scale.state_dict()
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        state_dict = dict(state_dict)
        scale = state_dict.pop("loss_scale", None)
        super().load_state_dict(state_dict)
        if scale is not None and self.loss_scale is not None:
            self.loss_scale.load_state_dict(scale)

    def pop_norms(self) -> tuple[float, float]:
        """Mean gradient norm before / after clipping since the last call (nan if none)."""
        before = float(np.mean(self.norms_before)) if self.norms_before else float("nan")
        after = float(np.mean(self.norms_after)) if self.norms_after else float("nan")
        self.norms_before.clear()
        self.norms_after.clear()
        return before, after


def record_grad_norms(optimizer, logger) -> None:
    """Log the update's mean gradient norm before and after clipping (GuardedAdam only)."""
    if isinstance(optimizer, GuardedAdam):
        before, after = optimizer.pop_norms()
        logger.record("train/grad_norm_before_clip", before)
        logger.record("train/grad_norm_after_clip", after)
        if optimizer.loss_scale is not None:  # fp16: the scale, and the steps skipped on overflow so far
            logger.record("train/loss_scale", optimizer.loss_scale.scale)
            logger.record("train/skipped_steps", optimizer.loss_scale.skipped)
