"""The PPO optimizer: Adam that clips and reports the gradient norm, and stops on a non-finite one."""

from __future__ import annotations

import math

import numpy as np
import torch

from user.monitoring import DivergenceError


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

    @torch.no_grad()
    def step(self, closure=None):
        params = [p for group in self.param_groups for p in group["params"] if p.grad is not None]
        before = float(torch.nn.utils.clip_grad_norm_(params, self.max_grad_norm))
        if not math.isfinite(before):
            raise DivergenceError(f"non-finite gradient norm ({before}) in a PPO update")
        # clip_grad_norm_ scales every gradient by max_norm / (norm + 1e-6) when that is < 1.
        after = before * min(1.0, self.max_grad_norm / (before + 1e-6))
        self.norms_before.append(before)
        self.norms_after.append(after)
        return super().step(closure)

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
