"""Exponential moving average of a model's weights (used for the generator's samples and export).

    ema = EMA(G, decay=0.999)
    ...after each G optimiser step:  ema.update(G)
    ema.module(z, y)                 # averaged copy, eval mode, no grad

Parameters: ``ema = decay_t * ema + (1 - decay_t) * live`` with one fused ``torch._foreach_lerp_``;
buffers (BatchNorm running statistics) are copied from the live model. With ``warmup`` the decay
starts low, ``decay_t = min(decay, (1 + t) / (10 + t))`` at update ``t`` (counted in Python: no host
sync), so a short run's average is not dominated by the random initialisation.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import torch
from torch import Tensor, nn

__all__ = ["EMA"]


def _unwrap(model: nn.Module) -> nn.Module:
    """Look through ``torch.compile`` (``_orig_mod``) and DDP/DataParallel (``module``) wrappers."""
    while True:
        if hasattr(model, "_orig_mod"):
            model = model._orig_mod
        elif isinstance(model, nn.parallel.DistributedDataParallel | nn.DataParallel):
            model = model.module
        else:
            return model


class EMA:
    """A deep-copied, eval-mode, ``requires_grad=False`` average of ``model`` (``.module``)."""

    def __init__(self, model: nn.Module, decay: float = 0.999, warmup: bool = True):
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"EMA decay must be in [0, 1], got {decay}")
        self.decay = float(decay)
        self.warmup = bool(warmup)
        self.step = 0
        self.module = copy.deepcopy(_unwrap(model)).eval().requires_grad_(False)

    def current_decay(self) -> float:
        """The decay the next ``update`` will use."""
        if self.warmup:
            return min(self.decay, (1.0 + self.step) / (10.0 + self.step))
        return self.decay

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Move the average towards ``model``'s parameters and copy its buffers."""
        model = _unwrap(model)
        weight = 1.0 - self.current_decay()
        ema_params = list(self.module.parameters())
        live_params = [p.detach() for p in model.parameters()]
        if len(ema_params) != len(live_params):
            raise ValueError("EMA.update: model has a different set of parameters than the EMA copy")
        if ema_params:
            torch._foreach_lerp_(ema_params, live_params, weight)
        ema_buffers = list(self.module.buffers())
        live_buffers = list(model.buffers())
        if ema_buffers:
            torch._foreach_copy_(ema_buffers, live_buffers)
        self.step += 1

    def state_dict(self) -> dict[str, Tensor]:
        """The averaged model's ``state_dict`` (same keys as the live model; safetensors-friendly).

        ``self.step`` is kept separately (store it with the run state and set it after loading).
        """
        return self.module.state_dict()

    def load_state_dict(self, state_dict: Mapping[str, Tensor], step: int | None = None) -> None:
        """Load averaged weights (strict); optionally restore the update counter ``step``."""
        self.module.load_state_dict(state_dict, strict=True)
        if step is not None:
            self.step = int(step)
