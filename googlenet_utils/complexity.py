"""Parameters and multiply-adds, measured on real modules with forward hooks.

Counting on the module itself (rather than from a formula) means the numbers in the notebooks
are the numbers of the code that runs. One multiply-add (MAC) is two FLOPs.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from torch import nn

# Szegedy et al. 2015, Table 1 (params, ops) as printed; see notebook 02 for how ours compare.
PAPER_TABLE1: dict[str, tuple[float, float]] = {
    "conv1": (2.7e3, 34e6),
    "conv2": (112e3, 360e6),
    "inception3a": (159e3, 128e6),
    "inception3b": (380e3, 304e6),
    "inception4a": (364e3, 73e6),
    "inception4b": (437e3, 88e6),
    "inception4c": (463e3, 100e6),
    "inception4d": (580e3, 119e6),
    "inception4e": (840e3, 170e6),
    "inception5a": (1072e3, 54e6),
    "inception5b": (1388e3, 71e6),
    "fc": (1000e3, 1e6),
}


@dataclass(frozen=True)
class LayerCost:
    """One convolution or linear layer: its name, weights, and multiply-adds for one input."""

    name: str
    kind: str
    params: int
    macs: int
    output_shape: tuple[int, ...]


def layer_costs(model: nn.Module, input_size: tuple[int, ...] = (1, 3, 224, 224)) -> list[LayerCost]:
    """Parameters and multiply-adds of every conv and linear layer, for one forward pass.

    MACs count per input sample; biases and batch norm count as parameters but not MACs.
    """
    if model.training:
        model = copy.deepcopy(model)  # a training-mode pass would update batch-norm statistics
    costs: list[LayerCost] = []

    def record(name: str):
        def hook(module: nn.Module, _inputs, output: torch.Tensor) -> None:
            per_output = module.weight[0].numel()  # multiplies that make one output value
            macs = output[0].numel() * per_output
            params = sum(p.numel() for p in module.parameters(recurse=False))
            costs.append(LayerCost(name, type(module).__name__, params, macs, tuple(output.shape[1:])))

        return hook

    handles = [
        module.register_forward_hook(record(name))
        for name, module in model.named_modules()
        if isinstance(module, nn.Conv2d | nn.Linear)
    ]
    try:
        with torch.no_grad():
            model(torch.zeros(input_size, device=next(model.parameters()).device))
    finally:
        for handle in handles:
            handle.remove()
    return costs


def grouped_costs(costs: Iterable[LayerCost], prefixes: Iterable[str]) -> dict[str, tuple[int, int]]:
    """Sum (params, MACs) of the layers under each dotted-name prefix, e.g. ``"inception3a"``."""
    totals = {}
    for prefix in prefixes:
        inside = [c for c in costs if c.name == prefix or c.name.startswith(prefix + ".")]
        totals[prefix] = (sum(c.params for c in inside), sum(c.macs for c in inside))
    return totals


def total_macs(model: nn.Module, input_size: tuple[int, ...]) -> int:
    """Multiply-adds of one forward pass for one sample (in the model's current train/eval mode)."""
    return sum(c.macs for c in layer_costs(model, input_size))


def count_parameters(model: nn.Module, inference: bool = False) -> int:
    """Parameters used in training, or at inference (without the auxiliary heads the paper discards)."""
    return sum(
        p.numel()
        for name, p in model.named_parameters()
        if not (inference and name.split(".")[0] in ("aux1", "aux2"))
    )


# --------------------------------------------------------------------------- memory, before training starts

# Bytes per parameter while training, measured on a CPU (widths 2 and 4, fp32 SGD with momentum, peak
# resident memory over a step and a checkpoint): weights, gradients and momentum, plus the
# checkpoint's copies (the host copy, the serialised buffer, the checksummed bytes). On a GPU those
# copies live in host memory; the device holds the first three and autocast's low-precision casts
# (worked out, not yet measured on a GPU).
BYTES_PER_PARAMETER = {"cpu": 44, "gpu": 14}
# Bytes per layer output value of one image (every leaf module's output, as ``activation_values``
# counts them) while a batch trains in fp32: measured 6.2 to 6.5 at widths 1 and 2. bf16 and fp16
# store half as much (assumed, not yet measured).
BYTES_PER_ACTIVATION = 6.4
DATA_BYTES = 500_000_000  # CIFAR-10 in memory with the loader's split copies


def activation_values(model: nn.Module, image_size: int = 32) -> int:
    """Output values of every leaf module for one image, all heads included (counted by forward hooks).

    The pass runs in eval mode, which changes nothing (no batch-norm update, no dropout draw) and
    has the training pass's shapes; ``forward_heads`` runs the auxiliary heads too.
    """
    total = 0

    def count(_module: nn.Module, _inputs: object, output: object) -> None:
        nonlocal total
        total += sum(t.numel() for t in (output if isinstance(output, tuple) else (output,)) if t is not None)

    was_training = model.training
    forward = getattr(model, "forward_heads", model)
    handles = [m.register_forward_hook(count) for m in model.modules() if not list(m.children())]
    try:
        with torch.no_grad():
            model.eval()
            forward(torch.zeros(1, 3, image_size, image_size, device=next(model.parameters()).device))
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return total


def training_memory(
    model: nn.Module, batch_size: int, *, device_type: str, precision: str, ema: bool = False
) -> int:
    """Estimated peak bytes of training ``model`` on batches of ``batch_size`` images (see the constants)."""
    kind = "cpu" if device_type == "cpu" else "gpu"
    per_parameter = BYTES_PER_PARAMETER[kind] + (4 * (5 if kind == "cpu" else 1) if ema else 0)
    per_value = BYTES_PER_ACTIVATION / (2 if precision in ("bf16", "fp16") else 1)
    values = activation_values(model)
    return int(count_parameters(model) * per_parameter + batch_size * values * per_value + DATA_BYTES)
