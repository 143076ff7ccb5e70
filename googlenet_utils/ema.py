"""An exponential moving average (EMA) of a model's weights, updated on the device without a sync."""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn


class EMA:
    """Keeps ``module``, a copy of the model whose weights trail the live ones.

    After each step: ``ema = decay_t * ema + (1 - decay_t) * live``, for parameters and
    floating-point buffers (batch-norm statistics) alike, in one fused ``lerp`` over all tensors.
    ``decay_t = min(decay, (1 + t) / (10 + t))`` warms up, so the average is not dominated by
    the random initial weights. The step count lives on the host: no device-to-host sync.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.module = copy.deepcopy(model).eval().requires_grad_(False)
        self.decay = decay
        self.updates = 0
        self._bind(model)

    def _bind(self, model: nn.Module) -> None:
        live = dict(model.state_dict(keep_vars=True))
        mine = dict(self.module.state_dict(keep_vars=True))
        floats = [name for name, tensor in mine.items() if tensor.is_floating_point()]
        self._averaged = [mine[name].data for name in floats]
        self._sources = [live[name].data for name in floats]
        self._copied = [(mine[name].data, live[name].data) for name in mine if name not in floats]

    def current_decay(self) -> float:
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self) -> None:
        decay = self.current_decay()
        self.updates += 1
        torch._foreach_lerp_(self._averaged, self._sources, 1 - decay)
        for target, source in self._copied:  # integer buffers, e.g. batch norm's step counter
            target.copy_(source)

    def state_dict(self) -> dict[str, Any]:
        return {"module": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["module"])
        self.updates = int(state["updates"])
