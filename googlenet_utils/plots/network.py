"""The whole GoogLeNet as a block diagram, drawn from a model rather than from a table.

``stage_shapes`` runs one forward pass with hooks (as ``complexity.layer_costs`` does) and
records what every stage returns; ``draw_network`` draws those stages top to bottom, stem to
head, with the auxiliary heads branching off after 4a and 4d. Every number on the figure is
read from the model, so the figure is right for either variant, any width and any input size.
"""

from __future__ import annotations

import copy

import torch
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
from torch import nn

# The main path, in the order the forward pass runs it; the heads hang off after 4a and 4d.
MAIN_PATH = (
    "stem",
    "inception3a",
    "inception3b",
    "pool3",
    "inception4a",
    "inception4b",
    "inception4c",
    "inception4d",
    "inception4e",
    "pool4",
    "inception5a",
    "inception5b",
    "avgpool",
    "fc",
)
AUX_AFTER = {"aux1": "inception4a", "aux2": "inception4d"}
_AUX_PARTS = ("pool", "conv", "fc1", "fc2")
_COLOURS = {
    "input": "#eeeeee",
    "stem": "#d9d9d9",
    "inception": "#9ecae1",
    "pool": "#fdd0a2",
    "head": "#a1d99b",
}
_AUX_COLOUR = "#fdae6b"


def stage_shapes(model: nn.Module, input_size: int = 32) -> dict[str, tuple[int, ...]]:
    """What every stage returns for one ``input_size`` x ``input_size`` image, without the batch axis.

    Keys: ``"input"``, each name of ``MAIN_PATH``, ``"stem.<layer>"`` for the stem's layers and
    ``"aux1.<part>"``/``"aux2.<part>"`` (pool, conv, fc1, fc2) when the model has auxiliary heads.
    """
    minimum = getattr(model, "min_input_size", 1)
    if input_size < minimum:
        variant = getattr(model, "variant", "this")
        raise ValueError(
            f"the {variant!r} variant needs input_size >= {minimum}, got {input_size} "
            "(224 is the paper's size for 'imagenet', 32 CIFAR's for 'cifar')"
        )
    if model.training:
        model = copy.deepcopy(model).eval()  # a training-mode pass would update batch-norm statistics
    watched = {name: getattr(model, name) for name in MAIN_PATH}
    watched.update({f"stem.{name}": layer for name, layer in model.stem.named_children()})
    for head in AUX_AFTER:
        if getattr(model, head, None) is not None:
            watched.update({f"{head}.{part}": getattr(getattr(model, head), part) for part in _AUX_PARTS})
    shapes: dict[str, tuple[int, ...]] = {"input": (3, input_size, input_size)}

    def record(name: str):
        def hook(_module: nn.Module, _inputs, output: torch.Tensor) -> None:
            shapes[name] = tuple(output.shape[1:])

        return hook

    handles = [module.register_forward_hook(record(name)) for name, module in watched.items()]
    try:
        with torch.no_grad():
            device = next(model.parameters()).device
            model.forward_heads(torch.zeros(1, 3, input_size, input_size, device=device))
    finally:
        for handle in handles:
            handle.remove()
    return shapes


def _shape(shape: tuple[int, ...]) -> str:
    """(512, 16, 16) -> "512 x 16 x 16"; (10,) -> "10"."""
    return " x ".join(str(n) for n in shape)


def _pool(layer: nn.Module) -> str:
    kind = "max" if isinstance(layer, nn.MaxPool2d) else "avg"
    kernel, stride = layer.kernel_size, layer.stride
    kernel = kernel[0] if isinstance(kernel, tuple) else kernel
    stride = stride[0] if isinstance(stride, tuple) else stride
    return f"{kind} pool {kernel}x{kernel}" + (f"/{stride}" if stride != 1 else "")


def _layer(layer: nn.Module) -> str | None:
    """A stem layer in words (``None`` for layers that do nothing, e.g. LRN replaced by Identity)."""
    conv = getattr(layer, "conv", None)
    if isinstance(conv, nn.Conv2d):
        k, stride = conv.kernel_size[0], conv.stride[0]
        return f"conv {k}x{k}" + (f"/{stride}" if stride != 1 else "")
    if isinstance(layer, nn.MaxPool2d | nn.AvgPool2d):
        return _pool(layer)
    if isinstance(layer, nn.LocalResponseNorm):
        return "LRN"
    return None


def _labels(model: nn.Module, shapes: dict[str, tuple[int, ...]]) -> dict[str, tuple[str, str, str]]:
    """For each box: (name, output-size text, detail line)."""
    stem_layers = [_layer(layer) for layer in model.stem.children()]
    labels = {
        "input": ("input image", _shape(shapes["input"]), ""),
        "stem": ("stem", _shape(shapes["stem"]), ", ".join(s for s in stem_layers if s)),
    }
    for name in MAIN_PATH[1:-2]:
        layer = getattr(model, name)
        if name.startswith("inception"):
            labels[name] = (f"inception {name[-2:]}", _shape(shapes[name]), "")
        else:
            labels[name] = (_pool(layer), _shape(shapes[name]), "")
    dropout = getattr(model, "dropout", None)
    drop = f"dropout {dropout.p:.0%}, " if isinstance(dropout, nn.Dropout) and dropout.p > 0 else ""
    labels["head"] = (
        "global average pool",
        _shape(shapes["avgpool"]),
        f"{drop}linear → {_shape(shapes['fc'])} logits (softmax in the loss)",
    )
    return labels


def _aux_lines(model: nn.Module, head: str, shapes: dict[str, tuple[int, ...]]) -> list[str]:
    module = getattr(model, head)
    dropout = getattr(module, "dropout", None)
    drop = f", dropout {dropout.p:.0%}" if isinstance(dropout, nn.Dropout) and dropout.p > 0 else ""
    return [
        f"{_pool(module.pool)} → {_shape(shapes[f'{head}.pool'])}",
        f"conv 1x1 → {_shape(shapes[f'{head}.conv'])}",
        f"linear → {_shape(shapes[f'{head}.fc1'])}{drop}",
        f"linear → {_shape(shapes[f'{head}.fc2'])} logits",
    ]


def draw_network(model: nn.Module, input_size: int = 32) -> Figure:
    """GoogLeNet from stem to head, each box labelled with its output size (channels x height x width).

    The sizes come from one forward pass of ``model`` on an ``input_size`` x ``input_size`` image
    (224 for the paper's ``"imagenet"`` variant, 32 for ``"cifar"``); the auxiliary heads, when the
    model has them, branch off after inception 4a and 4d. The figure is built outside pyplot.
    """
    shapes = stage_shapes(model, input_size)
    labels = _labels(model, shapes)
    rows = ["input", *MAIN_PATH[:-2], "head"]
    heads = [h for h in AUX_AFTER if f"{h}.fc2" in shapes]
    tall = {"stem", "head"}  # boxes with a second line of detail
    heights = {row: 0.95 if row in tall else 0.6 for row in rows}
    gap = 0.32
    total = sum(heights.values()) + gap * (len(rows) - 1)

    right = 10.3 if heads else 6.3  # room for the auxiliary heads beside the main path
    height_in = 0.5 * total + 1.1  # inches: 0.5 per unit of boxes, the rest for the three-line title
    fig = Figure(figsize=(0.9 * right, height_in))
    ax = fig.add_axes((0.01, 0.01, 0.98, (height_in - 1.0) / height_in))
    ax.set_xlim(0, right)
    ax.set_ylim(-0.1, total + 0.1)
    ax.axis("off")
    x_main, w_main = 3.15, 5.9  # wide enough for the stem's line of detail at 9 pt
    centres: dict[str, float] = {}
    top = total
    previous_bottom: float | None = None
    for row in rows:
        height = heights[row]
        centre = top - height / 2
        centres[row] = centre
        kind = "inception" if row.startswith("inception") else "pool" if row.startswith("pool") else row
        ax.add_patch(
            FancyBboxPatch(
                (x_main - w_main / 2, centre - height / 2),
                w_main,
                height,
                boxstyle="round,pad=0,rounding_size=0.12",
                fc=_COLOURS[kind],
                ec="black",
                lw=0.8,
            )
        )
        name, size, detail = labels[row]
        line = centre + (0.18 if detail else 0)
        inner_left, inner_right = x_main - w_main / 2 + 0.15, x_main + w_main / 2 - 0.15
        ax.text(inner_left, line, name, ha="left", va="center", fontsize=9, weight="bold")
        ax.text(inner_right, line, size, ha="right", va="center", fontsize=9, family="monospace")
        if detail:
            ax.text(inner_left, centre - 0.2, detail, ha="left", va="center", fontsize=9)
        if previous_bottom is not None:
            ax.add_patch(
                FancyArrowPatch(
                    (x_main, previous_bottom), (x_main, top), arrowstyle="-|>", mutation_scale=8, lw=0.8
                )
            )
        previous_bottom = top - height
        top -= height + gap

    x_aux, w_aux = 8.65, 3.1
    for head in heads:
        after = AUX_AFTER[head]
        y_top = centres[after] + heights[after] / 2
        lines = _aux_lines(model, head, shapes)
        height = 0.62 + 0.3 * len(lines)
        ax.add_patch(
            FancyBboxPatch(
                (x_aux - w_aux / 2, y_top - height),
                w_aux,
                height,
                boxstyle="round,pad=0,rounding_size=0.12",
                fc=_AUX_COLOUR,
                ec="black",
                lw=0.8,
            )
        )
        left = x_aux - w_aux / 2 + 0.12
        title = f"{head} (training only)"
        ax.text(left, y_top - 0.3, title, ha="left", va="center", fontsize=9, weight="bold")
        for k, line in enumerate(lines):
            ax.text(left, y_top - 0.62 - 0.3 * k, line, ha="left", va="center", fontsize=9)
        # The head reads the module's output: branch off below the box, into the head's side.
        below = centres[after] - heights[after] / 2 - gap / 2
        ax.add_patch(
            FancyArrowPatch(
                (x_main, below),
                (x_aux - w_aux / 2, below),
                arrowstyle="-|>",
                mutation_scale=8,
                lw=0.8,
                ls="--",
            )
        )

    config = getattr(model, "config", None)
    if config is not None:
        norm = "batch norm" if config.batch_norm else "no batch norm"
        aux = "" if heads else ", no auxiliary heads"
        about = f"'{config.variant}' variant, width {config.width:g}, {norm}{aux}"
    else:
        about = type(model).__name__
    fig.suptitle(
        f"GoogLeNet on a {input_size} x {input_size} image\n{about}\n"
        "each box's output size on its right (channels x height x width)",
        fontsize=10,
    )
    return fig
