"""Looking inside a trained network: branch outputs, activity by class, filters, Grad-CAM, ablations.

Every function takes a model and tensors and returns tensors, numbers or rows; ``plots.inside``
draws them. Each one turns an interpretation ("this branch sees fine detail") into a measurement.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .complexity import layer_costs
from .model import GoogLeNet, InceptionModule

BRANCHES = ("branch1x1", "branch3x3", "branch5x5", "branch_pool")
BRANCH_LABELS = {"branch1x1": "1x1", "branch3x3": "3x3", "branch5x5": "5x5", "branch_pool": "pool proj"}


def paired_difference(correct_a: Tensor, correct_b: Tensor) -> tuple[float, float]:
    """Accuracy of b minus accuracy of a on the same items, and the standard error of that difference.

    ``correct_a`` and ``correct_b`` say per item whether each classifier got it right. The standard
    error is the sample standard deviation of the per-item differences over the square root of
    their number (a paired comparison: only items on which the two disagree contribute).
    """
    if correct_a.shape != correct_b.shape or correct_a.dim() != 1 or len(correct_a) < 2:
        raise ValueError("give two equally long 1-D tensors of at least 2 items")
    change = correct_b.double() - correct_a.double()
    return float(change.mean()), float(change.std() / len(change) ** 0.5)


@torch.no_grad()
def branch_feature_maps(module: InceptionModule, inputs: Tensor) -> dict[str, Tensor]:
    """The output of each of an Inception module's four branches for ``inputs`` (its input tensor)."""
    maps: dict[str, Tensor] = {}
    hooks = [
        getattr(module, name).register_forward_hook(
            lambda _m, _i, out, name=name: maps.__setitem__(name, out)
        )
        for name in BRANCHES
    ]
    try:
        module(inputs)
    finally:
        for hook in hooks:
            hook.remove()
    return maps


@torch.no_grad()
def module_input(model: GoogLeNet, module_name: str, images: Tensor) -> Tensor:
    """What ``model.<module_name>`` receives when the model sees ``images`` (in eval mode)."""
    captured: list[Tensor] = []
    hook = getattr(model, module_name).register_forward_pre_hook(lambda _m, args: captured.append(args[0]))
    was_training = model.training
    try:
        model.eval()(images)
    finally:
        hook.remove()
        model.train(was_training)
    return captured[0]


def shared_scale(weights: Tensor) -> Tensor:
    """Kernels as RGB images in [0, 1] on one scale for all: 0.5 (grey) is a zero weight, and the
    largest absolute weight of any kernel reaches 0 or 1, so strengths compare across kernels."""
    weights = weights.detach().float().cpu()
    return 0.5 + weights / (2 * weights.abs().max().clamp_min(1e-12))


def first_layer_filters(model: GoogLeNet, one_scale: bool = True) -> Tensor:
    """The first convolution's kernels (out x 3 x k x k) as RGB images in [0, 1].

    ``one_scale`` (the default): ``shared_scale``, one scale for all kernels. Otherwise each kernel
    is stretched from its own smallest weight (0) to its largest (1), which hides how weak it is.
    """
    weights = model.stem.conv1.conv.weight.detach().float().cpu()
    if one_scale:
        return shared_scale(weights)
    low = weights.amin(dim=(1, 2, 3), keepdim=True)
    high = weights.amax(dim=(1, 2, 3), keepdim=True)
    return (weights - low) / (high - low).clamp_min(1e-12)


def grad_cam(
    model: nn.Module, images: Tensor, target_layer: nn.Module, classes: Tensor | None = None
) -> Tensor:
    """Grad-CAM heat maps (N x H x W, in [0, 1]) for ``classes`` (default: the predicted ones).

    The channels of ``target_layer``'s output are weighted by the mean gradient of the class
    score, summed, passed through ReLU and upsampled to the image size (Selvaraju et al., 2017).
    """
    captured: dict[str, Tensor] = {}

    def keep(_module, _inputs, output: Tensor) -> None:
        output.retain_grad()
        captured["features"] = output

    was_training = model.training
    model.eval()
    hook = target_layer.register_forward_hook(keep)
    try:
        with torch.enable_grad():
            logits = model(images.detach().requires_grad_(True))
            chosen = logits.argmax(1) if classes is None else classes.to(logits.device)
            logits.gather(1, chosen[:, None]).sum().backward()
    finally:
        hook.remove()
        model.train(was_training)
    features = captured["features"]
    channel_weights = features.grad.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((channel_weights * features).sum(dim=1, keepdim=True))
    cam = F.interpolate(cam, size=images.shape[-2:], mode="bilinear", align_corners=False).squeeze(1)
    peak = cam.flatten(1).amax(dim=1)[:, None, None]
    model.zero_grad(set_to_none=True)
    # Scaled by each map's own peak, however small (a barely trained network's maps are tiny).
    return torch.where(peak > 0, cam / torch.where(peak > 0, peak, 1), 0).detach()


def branch_shares(model: GoogLeNet, input_size: int) -> list[dict[str, Any]]:
    """Per Inception module: output channels and multiply-adds of each branch (at ``input_size`` px)."""
    costs = layer_costs(model.eval(), (1, 3, input_size, input_size))
    rows = []
    for name, module in model.named_children():
        if not isinstance(module, InceptionModule):
            continue
        row: dict[str, Any] = {"module": name.removeprefix("inception")}
        for branch in BRANCHES:
            prefix = f"{name}.{branch}."
            inside = [c for c in costs if c.name.startswith(prefix)]
            row[f"{BRANCH_LABELS[branch]} channels"] = inside[-1].output_shape[0]
            row[f"{BRANCH_LABELS[branch]} MACs"] = sum(c.macs for c in inside)
        rows.append(row)
    return rows


def neighbour_correlation(maps: Tensor) -> Tensor:
    """How smooth feature maps are: per image, the mean correlation of neighbouring pixels (N).

    ``maps`` is N x C x H x W. For each channel, the Pearson correlation of every pixel with its
    right-hand neighbour and, separately, with the one below are averaged; channels without
    variation (all zero after a ReLU, say) are left out, and an image without any varying channel
    gets NaN. Near 1: the map changes slowly (broad patterns); near 0 or below: it changes from
    pixel to pixel (fine detail).
    """

    def correlation(a: Tensor, b: Tensor) -> Tensor:  # over the last dimension
        # A map varies if its variance is more than rounding noise on its mean square.
        varies = (a.var(-1) > 1e-12 * a.square().mean(-1)) & (b.var(-1) > 1e-12 * b.square().mean(-1))
        a, b = a - a.mean(-1, keepdim=True), b - b.mean(-1, keepdim=True)
        scale = (a.square().sum(-1) * b.square().sum(-1)).sqrt()
        return torch.where(varies, (a * b).sum(-1) / scale.clamp_min(1e-300), torch.nan)

    maps = maps.detach().cpu().double()  # float64 for the sums (not every device has it)
    horizontal = correlation(maps[..., :, :-1].flatten(2), maps[..., :, 1:].flatten(2))
    vertical = correlation(maps[..., :-1, :].flatten(2), maps[..., 1:, :].flatten(2))
    per_channel = (horizontal + vertical) / 2  # NaN where either direction has no variation
    return per_channel.nanmean(dim=1)


@dataclass
class BranchActivity:
    """Per image and branch (columns in ``BRANCHES`` order) of each analysed Inception module."""

    labels: Tensor  # N
    energy: dict[str, Tensor]  # module -> N x 4: mean over positions of the summed squared activations
    smoothness: dict[str, Tensor]  # module -> N x 4: neighbour_correlation of the branch's maps

    def energy_shares(self, module: str) -> Tensor:
        """Each branch's share of the module's output energy, per image (rows sum to 1)."""
        energy = self.energy[module]
        return energy / energy.sum(dim=1, keepdim=True).clamp_min(1e-30)


@torch.no_grad()
def branch_activity(model: nn.Module, batches: Any, module_names: list[str]) -> BranchActivity:
    """Activation energy and smoothness of every branch of the named Inception modules, per image.

    ``batches`` yields (normalised images, labels), e.g. an evaluation ``CIFARLoader``. The energy
    of a branch for one image is the mean over pixel positions of the sum over its channels of the
    squared activations: a branch with more channels, or stronger ones, carries more of it.
    """
    found: dict[str, dict[str, list[Tensor]]] = {name: {} for name in module_names}
    hooks = []
    for name in module_names:
        module = getattr(model, name)
        if not isinstance(module, InceptionModule):
            raise ValueError(f"{name} is not an Inception module of this model")
        for branch in BRANCHES:

            def keep(_m: nn.Module, _i: Any, out: Tensor, name: str = name, branch: str = branch) -> None:
                energy = out.float().square().sum(dim=1).mean(dim=(1, 2))
                found[name].setdefault(f"{branch} energy", []).append(energy.cpu())
                found[name].setdefault(f"{branch} smooth", []).append(neighbour_correlation(out))

            hooks.append(getattr(module, branch).register_forward_hook(keep))
    labels = []
    was_training = model.training
    model.eval()
    try:
        for images, batch_labels in batches:
            model(images)
            labels.append(batch_labels.cpu())
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)

    def columns(name: str, kind: str) -> Tensor:
        return torch.stack([torch.cat(found[name][f"{b} {kind}"]).double() for b in BRANCHES], dim=1)

    return BranchActivity(
        labels=torch.cat(labels),
        energy={name: columns(name, "energy") for name in module_names},
        smoothness={name: columns(name, "smooth") for name in module_names},
    )


def class_means(values: Tensor, labels: Tensor, num_classes: int) -> Tensor:
    """The mean row of ``values`` (N x K) for each class: num_classes x K (NaN for an absent class)."""
    values = values.double()
    totals = torch.zeros(num_classes, values.shape[1], dtype=torch.float64).index_add_(0, labels, values)
    counts = torch.bincount(labels, minlength=num_classes).double()[:, None]
    return torch.where(counts > 0, totals / counts.clamp_min(1), torch.nan)


def class_effect(
    values: Tensor, labels: Tensor, num_classes: int, shuffles: int = 999, seed: int = 0
) -> tuple[Tensor, Tensor]:
    """Does a measurement depend on the class? Per column of ``values`` (N x K): the F ratio and its p-value.

    The F ratio is the variance between the class means over the variance within the classes
    (one-way analysis of variance); it is about 1 when the class makes no difference. The p-value
    is the share of ``shuffles`` random reassignments of the labels (plus the real one) whose F
    is at least as large: a permutation test, which assumes nothing about the distribution.
    """
    values = values.double()
    n, present = len(values), int(torch.bincount(labels, minlength=num_classes).gt(0).sum())
    if present < 2 or n <= present:
        raise ValueError("need at least two classes and more items than classes")

    def ratio(assigned: Tensor) -> Tensor:
        means = class_means(values, assigned, num_classes).nan_to_num()
        counts = torch.bincount(assigned, minlength=num_classes).double()[:, None]
        between = (counts * (means - values.mean(dim=0)).square()).sum(dim=0) / (present - 1)
        within = (values - means[assigned]).square().sum(dim=0) / (n - present)
        return between / within.clamp_min(1e-300)

    observed = ratio(labels)
    generator = torch.Generator().manual_seed(seed)
    larger = torch.zeros_like(observed)
    for _ in range(shuffles):
        larger += ratio(labels[torch.randperm(n, generator=generator)]) >= observed
    return observed, (1 + larger) / (1 + shuffles)


def _derangement(n: int, seed: int = 0) -> Tensor:
    """A fixed random permutation of range(n) that moves every item (one cycle through a shuffled order)."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    partner = torch.empty_like(order)
    partner[order] = order.roll(-1)
    return partner


@torch.no_grad()
def branch_ablation(
    model: nn.Module, batches: Any, module_names: list[str], replacement: str = "mean"
) -> list[dict[str, Any]]:
    """Accuracy when one branch at a time carries no information about the image ("mean ablation").

    A first pass records the accuracy and each branch's mean output per channel (over all images
    and positions). Then, for each branch of each named module, that branch's output is replaced by
    its mean, so the next layer still receives the level it was trained on but nothing specific to
    the image. Rows: module, branch, accuracy, change against the intact network and the paired
    standard error of that change. ``batches`` must be iterable several times (a loader, a list).

    ``replacement="other image"`` instead gives each image the branch's output for another image of
    its batch, chosen by a fixed random derangement (a shuffled-image ablation): the next layer then
    receives real, typical maps, only from the wrong image, which rules out that the loss comes from
    an unnatural constant input. (Random, not the neighbour: a class-balanced sample is often sorted
    by class, and a neighbour of the same class would hand over the right evidence.)
    """
    if replacement not in ("mean", "other image"):
        raise ValueError(f"replacement must be 'mean' or 'other image', got {replacement!r}")
    modules = {name: getattr(model, name) for name in module_names}
    sums: dict[tuple[str, str], Tensor] = {}
    counts: dict[tuple[str, str], int] = {}
    hooks = []
    for name, module in modules.items():
        for branch in BRANCHES:

            def add(_m: nn.Module, _i: Any, out: Tensor, key: tuple[str, str] = (name, branch)) -> None:
                sums[key] = sums.get(key, 0) + out.float().sum(dim=(0, 2, 3)).cpu().double()
                counts[key] = counts.get(key, 0) + out.shape[0] * out.shape[2] * out.shape[3]

            hooks.append(getattr(module, branch).register_forward_hook(add))

    def correct() -> Tensor:
        right = []
        for images, labels in batches:
            logits = model(images)
            logits = logits[0] if isinstance(logits, tuple) else logits
            right.append((logits.argmax(1) == labels).cpu())
        return torch.cat(right)

    was_training = model.training
    model.eval()
    try:
        try:
            intact = correct()
        finally:
            for hook in hooks:
                hook.remove()
        rows = []
        for name, module in modules.items():
            for branch in BRANCHES:
                mean = sums[name, branch] / counts[name, branch]

                def replace(_m: nn.Module, _i: Any, out: Tensor, mean: Tensor = mean) -> Tensor:
                    if replacement == "other image":
                        return out[_derangement(len(out))]  # each image gets another image's maps
                    return mean.to(out.device, out.dtype)[None, :, None, None].expand_as(out)

                hook = getattr(module, branch).register_forward_hook(replace)
                try:
                    ablated = correct()
                finally:
                    hook.remove()
                change, error = paired_difference(intact, ablated)
                rows.append({
                    "module": name.removeprefix("inception"),
                    "branch": BRANCH_LABELS[branch],
                    "replacement": replacement,
                    "accuracy": float(ablated.double().mean()),
                    "intact accuracy": float(intact.double().mean()),
                    "change": change,
                    "standard error": error,
                })  # fmt: skip
    finally:
        model.train(was_training)
    return rows


def filter_structure(weights: Tensor) -> dict[str, Tensor]:
    """Two measures per convolution kernel (weights: out x 3 x k x k), each in [0, 1].

    ``colour share``: the share of the kernel's energy (sum of squared weights) that lies in the
    differences between its colour channels rather than in their mean (0: the same pattern in R, G
    and B, a grey filter; 1: channels that cancel, a pure colour-opponent filter). Random weights
    give 2/3 on average.

    ``edge fit``: how much of the grey pattern (the channel mean, less its own mean) a straight
    brightness ramp a*x + b*y explains (R squared): 1 for an edge or gradient at any orientation,
    0 for a centre-surround or checkerboard pattern. Random k x k weights give 2 / (k*k - 1) on
    average (0.25 for 3x3). Kernels without any grey pattern get NaN.
    """
    weights = weights.detach().cpu().double()
    grey = weights.mean(dim=1)  # out x k x k
    colour = weights - grey[:, None]
    total = weights.square().sum(dim=(1, 2, 3))
    colour_share = colour.square().sum(dim=(1, 2, 3)) / total.clamp_min(1e-30)
    size = weights.shape[-1]
    axis = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    x, y = axis[None, :].expand(size, size), axis[:, None].expand(size, size)
    centred = grey - grey.mean(dim=(1, 2), keepdim=True)
    explained = sum((centred * d).sum(dim=(1, 2)).square() / d.square().sum() for d in (x, y))
    variation = centred.square().sum(dim=(1, 2))
    edge_fit = torch.where(variation > 1e-30, explained / variation.clamp_min(1e-30), torch.nan)
    return {"colour share": colour_share, "edge fit": edge_fit}


def cam_box_shares(heatmaps: Tensor, boxes: list[tuple[int, int, int, int]]) -> tuple[Tensor, Tensor]:
    """Per heat map: the share of its mass inside its box, and the share of the image the box covers.

    ``boxes`` holds one (left, top, right, bottom) per map in pixel indices, right and bottom
    excluded, as in ``heatmap[top:bottom, left:right]``. A map spread evenly over the image puts
    exactly the box's area share inside it; more than that means the map favours the box.
    """
    if len(boxes) != len(heatmaps):
        raise ValueError(f"one box per heat map: {len(boxes)} boxes for {len(heatmaps)} maps")
    height, width = heatmaps.shape[-2:]
    inside, area = [], []
    for heat, (left, top, right, bottom) in zip(heatmaps.detach().cpu().double(), boxes, strict=True):
        if not (0 <= left < right <= width and 0 <= top < bottom <= height):
            raise ValueError(
                f"box {(left, top, right, bottom)} is empty or outside the {width}x{height} image"
            )
        inside.append(heat[top:bottom, left:right].sum() / heat.sum().clamp_min(1e-30))
        area.append((right - left) * (bottom - top) / (width * height))
    return torch.stack(inside), torch.tensor(area, dtype=torch.float64)


def centre_bias_maps(count: int, height: int, width: int, sigma: float = 0.25) -> Tensor:
    """``count`` copies of one fixed, centred Gaussian map (N x H x W, peak 1): a map that ignores the image.

    Photographers centre their objects, so a map that always favours the middle already puts
    more than the box's area inside many boxes. ``sigma`` is the Gaussian's width as a share of
    the image side (0.25: a quarter), fixed before any map is looked at.
    """
    rows = (torch.arange(height, dtype=torch.float64) - (height - 1) / 2) / (sigma * height)
    cols = (torch.arange(width, dtype=torch.float64) - (width - 1) / 2) / (sigma * width)
    bump = torch.exp(-(rows[:, None].square() + cols[None, :].square()) / 2)
    return bump.expand(count, height, width).clone()


def other_image_shares(heatmaps: Tensor, boxes: list[tuple[int, int, int, int]]) -> Tensor:
    """Per box: the mean share of the *other* images' heat maps inside it (the shuffled-image baseline).

    The maps keep everything Grad-CAM does on average (its resolution, its preference for some
    regions) but belong to other images: a map that looks at *this* object should beat them.
    """
    if len(heatmaps) < 2:
        raise ValueError("the shuffled-image baseline needs at least two heat maps")
    shares = []
    for i, box in enumerate(boxes):
        others = torch.cat([heatmaps[:i], heatmaps[i + 1 :]])
        inside, _ = cam_box_shares(others, [box] * len(others))
        shares.append(inside.mean())
    return torch.stack(shares)


def cam_against_baselines(heatmaps: Tensor, boxes: list[tuple[int, int, int, int]]) -> dict[str, Tensor]:
    """Per image, the share of map mass inside its box for Grad-CAM and three maps that ignore the object.

    ``uniform`` (the box's area: a flat map), ``centre`` (``centre_bias_maps``) and ``other images``
    (``other_image_shares``). Compare Grad-CAM with the strongest of them, not with the flat map.
    """
    inside, area = cam_box_shares(heatmaps, boxes)
    centre, _ = cam_box_shares(centre_bias_maps(len(boxes), *heatmaps.shape[-2:]), boxes)
    return {
        "Grad-CAM": inside,
        "uniform": area,
        "centre": centre,
        "other images": other_image_shares(heatmaps, boxes),
    }


# --------------------------------------------------------------------------- what each head's gradient adds

# The weight tensor whose gradient is measured in each of five layers, from the input side to 5b.
GRADIENT_LAYERS = {
    "conv1": "stem.conv1.conv.weight",
    "3a": "inception3a.branch1x1.conv.weight",
    "4a": "inception4a.branch1x1.conv.weight",
    "4e": "inception4e.branch1x1.conv.weight",
    "5b": "inception5b.branch1x1.conv.weight",
}


@dataclass
class HeadGradients:
    """Per layer (``GRADIENT_LAYERS`` order): the norms of the main, auxiliary and summed gradients."""

    losses: dict[str, float]  # each head's cross-entropy on the batch
    main: list[float]  # norm of the main loss's gradient
    aux: list[float]  # norm of the gradient of aux_weight x (aux1 + aux2); 0 where none arrives
    total: list[float]  # norm of the gradient of the whole training loss: what SGD follows
    cosine: list[float]  # cosine between the main and auxiliary gradients (NaN where aux is 0)

    def total_over_main(self) -> list[float]:
        """How much larger the summed gradient is than the main head's alone (1: the heads add nothing)."""
        return [t / m if m > 0 else float("nan") for t, m in zip(self.total, self.main, strict=True)]


def head_gradients(
    model: GoogLeNet,
    images: Tensor,
    labels: Tensor,
    layers: dict[str, str] = GRADIENT_LAYERS,
    aux_weight: float = 0.3,
) -> HeadGradients:
    """Each head's gradient at the named weights for one batch, from one forward pass in training mode.

    The summed gradient is measured as such (its norm is not the sum of the two norms: that depends
    on how well the main and auxiliary gradients line up, which ``cosine`` reports). Dropout is off
    while measuring, so that two networks (with and without heads) are measured alike.
    """
    from .model import head_losses

    was_training = model.training
    model.train()
    for dropout in (m for m in model.modules() if isinstance(m, nn.Dropout)):
        dropout.eval()  # no random masks: the measurement depends on the weights and the batch only
    try:
        losses = head_losses(model(images), labels)
        weights = [model.get_parameter(name) for name in layers.values()]
        main = torch.autograd.grad(losses["main"], weights, retain_graph=True)
        zeros = [torch.zeros_like(w) for w in weights]
        aux = zeros
        if "aux1" in losses:
            weighted = aux_weight * (losses["aux1"] + losses["aux2"])
            found = torch.autograd.grad(weighted, weights, allow_unused=True)
            aux = [z if g is None else g for g, z in zip(found, zeros, strict=True)]
    finally:
        model.train(was_training)
    total = [m + a for m, a in zip(main, aux, strict=True)]
    cosine = [
        float(F.cosine_similarity(m.flatten(), a.flatten(), dim=0)) if a.abs().sum() > 0 else float("nan")
        for m, a in zip(main, aux, strict=True)
    ]
    return HeadGradients(
        losses={head: loss.item() for head, loss in losses.items()},
        main=[float(g.norm()) for g in main],
        aux=[float(g.norm()) for g in aux],
        total=[float(g.norm()) for g in total],
        cosine=cosine,
    )


def gradients_before_and_after_training(
    images: Tensor,
    labels: Tensor,
    *,
    steps: int = 30,
    batch_size: int = 16,
    lr: float = 0.02,
    width: float = 0.125,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """The paper's argument on the ``cifar`` variant *without* batch norm: with and without aux heads,
    the gradient reaching each layer at initialisation and after ``steps`` of SGD on (images, labels).

    ``images`` are normalised N x 3 x 32 x 32 floats. Both networks start from the same weights (the
    one without heads gets the other's), train on the same batches with the same settings, and are
    measured on the same probe batch (the first ``batch_size`` images). Rows: network, when, main
    loss, and per layer the main head's gradient norm and the summed gradient's norm.
    """
    from .model import combine_losses, head_losses

    torch.manual_seed(seed)
    with_aux = GoogLeNet(10, variant="cifar", width=width, batch_norm=False, aux_logits=True)
    without = GoogLeNet(10, variant="cifar", width=width, batch_norm=False, aux_logits=False)
    missing, _ = without.load_state_dict(with_aux.state_dict(), strict=False)  # the heads' keys are extra
    if missing:
        raise RuntimeError(f"the two networks differ outside the auxiliary heads: {missing}")
    probe_images, probe_labels = images[:batch_size], labels[:batch_size]
    rows = []
    for name, model in (("with aux heads", with_aux), ("without aux heads", without)):
        optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
        order = torch.Generator().manual_seed(seed)  # the same batches for both networks
        torch.manual_seed(seed + 1)  # and the same dropout draws where the networks agree
        for when in ("at initialisation", f"after {steps} steps"):
            if when != "at initialisation":
                model.train()
                for _ in range(steps):
                    pick = torch.randint(0, len(images), (batch_size,), generator=order)
                    loss = combine_losses(head_losses(model(images[pick]), labels[pick]))
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
            measured = head_gradients(model, probe_images, probe_labels)
            row: dict[str, Any] = {"network": name, "when": when, "main loss": measured.losses["main"]}
            for k, layer in enumerate(GRADIENT_LAYERS):
                row[f"{layer} main"] = measured.main[k]
                row[f"{layer} total"] = measured.total[k]
            rows.append(row)
    return rows
