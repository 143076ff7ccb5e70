"""GoogLeNet (Inception-v1) as in Szegedy et al., "Going Deeper with Convolutions" (CVPR 2015).

Two variants share the nine-module channel table of the paper's Table 1:

* ``"imagenet"``: the paper's network for 224x224 images (7x7/2 stem, LRN, no batch norm).
* ``"cifar"``: the same Inception stages for 32x32 images. The stem keeps the paper's
  conv1 -> conv2-reduce -> conv2 sequence but with a 3x3 first kernel and no downsampling,
  so stages 3/4/5 run at 32/16/8 pixels instead of collapsing to 2/1/1. Batch norm is on by
  default: it keeps training stable at the large learning rates of the course's recipe.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .errors import ConfigError

# Paper Table 1: in, #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj.
INCEPTION_TABLE: dict[str, tuple[int, int, int, int, int, int, int]] = {
    "3a": (192, 64, 96, 128, 16, 32, 32),
    "3b": (256, 128, 128, 192, 32, 96, 64),
    "4a": (480, 192, 96, 208, 16, 48, 64),
    "4b": (512, 160, 112, 224, 24, 64, 64),
    "4c": (512, 128, 128, 256, 24, 64, 64),
    "4d": (512, 112, 144, 288, 32, 64, 64),
    "4e": (528, 256, 160, 320, 32, 128, 128),
    "5a": (832, 256, 160, 320, 32, 128, 128),
    "5b": (832, 384, 192, 384, 48, 128, 128),
}
VARIANTS = ("imagenet", "cifar")
# Smallest input side for which stage 4 is still 5x5, the auxiliary heads' pooling window.
MIN_INPUT_SIZE = {"imagenet": 65, "cifar": 9}


@dataclass(frozen=True)
class ModelConfig:
    """Everything that decides a GoogLeNet's layers: the model, its checkpoints and runs record it."""

    num_classes: int = 1000
    variant: str = "imagenet"
    width: float = 1.0  # multiplies every channel count; 1.0 is the paper's network
    aux_logits: bool = True
    batch_norm: bool | None = None  # None: on for "cifar", off for "imagenet" (the paper's network)
    dropout: float = 0.4  # before the final linear layer (paper: 40%)
    aux_dropout: float = 0.7  # inside each auxiliary head (paper: 70%)

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ConfigError(f"unknown variant {self.variant!r}: choose one of {', '.join(VARIANTS)}")
        if (
            isinstance(self.num_classes, bool)
            or not isinstance(self.num_classes, int)
            or self.num_classes < 1
        ):
            raise ConfigError(f"num_classes must be a positive integer, got {self.num_classes!r}")
        if not isinstance(self.width, int | float) or not 0 < self.width <= 16:
            raise ConfigError(
                f"width must be > 0 and at most 16 (1.0 is the paper's network), got {self.width!r}"
            )
        for name in ("dropout", "aux_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"{name} must be in [0, 1), got {getattr(self, name)!r}")
        if self.batch_norm is None:
            object.__setattr__(self, "batch_norm", self.variant == "cifar")

    def channels(self, paper_channels: int) -> int:
        """A paper channel count scaled by ``width`` (at least one channel)."""
        return max(1, round(paper_channels * self.width))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ModelConfig:
        """Rebuild a recorded configuration; unknown keys are an error, not silently dropped."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"unknown model settings {', '.join(unknown)}; known: {', '.join(sorted(known))}"
            )
        return cls(**values)


class GoogLeNetOutputs(NamedTuple):
    """What a GoogLeNet with auxiliary heads returns in training mode."""

    logits: Tensor
    aux1: Tensor | None  # head attached after inception 4a (None without aux heads)
    aux2: Tensor | None  # head attached after inception 4d


class BasicConv2d(nn.Module):
    """Convolution, optional batch norm, ReLU: the unit every GoogLeNet layer is made of."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        stride: int = 1,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        # "Same" padding for odd kernels keeps the spatial size unless the stride shrinks it.
        self.conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            padding=kernel_size // 2,
            bias=not batch_norm,  # batch norm's shift makes a conv bias redundant
        )
        self.bn = nn.BatchNorm2d(out_channels) if batch_norm else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


class InceptionModule(nn.Module):
    """Four parallel branches (1x1, 1x1->3x3, 1x1->5x5, 3x3 max-pool->1x1) joined on channels."""

    def __init__(
        self,
        in_channels: int,
        out_channels_1x1: int,
        out_channels_3x3_reduce: int,
        out_channels_3x3: int,
        out_channels_5x5_reduce: int,
        out_channels_5x5: int,
        out_channels_pool: int,
        *,
        batch_norm: bool = False,
    ) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(in_channels, out_channels_1x1, 1, batch_norm=batch_norm)
        self.branch3x3 = nn.Sequential(
            BasicConv2d(in_channels, out_channels_3x3_reduce, 1, batch_norm=batch_norm),
            BasicConv2d(out_channels_3x3_reduce, out_channels_3x3, 3, batch_norm=batch_norm),
        )
        self.branch5x5 = nn.Sequential(
            BasicConv2d(in_channels, out_channels_5x5_reduce, 1, batch_norm=batch_norm),
            # A real 5x5 kernel, as in the paper (torchvision's googlenet uses 3x3 here).
            BasicConv2d(out_channels_5x5_reduce, out_channels_5x5, 5, batch_norm=batch_norm),
        )
        self.branch_pool = nn.Sequential(
            nn.MaxPool2d(3, stride=1, padding=1),
            BasicConv2d(in_channels, out_channels_pool, 1, batch_norm=batch_norm),
        )
        self.in_channels = in_channels
        self.out_channels = out_channels_1x1 + out_channels_3x3 + out_channels_5x5 + out_channels_pool
        # Run-time only: the three 1x1 convolutions that read x run as one (same parameters).
        self.fuse_1x1 = False

    def forward(self, x: Tensor) -> Tensor:
        if self.fuse_1x1:
            return self._forward_fused(x)
        branches = (self.branch1x1, self.branch3x3, self.branch5x5, self.branch_pool)
        return torch.cat([branch(x) for branch in branches], dim=1)

    def _forward_fused(self, x: Tensor) -> Tensor:
        """The same function as ``forward``: 1x1, 3x3-reduce and 5x5-reduce as one matrix product."""
        units = (self.branch1x1, self.branch3x3[0], self.branch5x5[0])
        weight = torch.cat([unit.conv.weight for unit in units])  # stacked output channels
        bias = None if units[0].conv.bias is None else torch.cat([unit.conv.bias for unit in units])
        joint = F.conv2d(x, weight, bias)
        parts = joint.split([unit.conv.out_channels for unit in units], dim=1)
        out1, reduced3, reduced5 = (F.relu(unit.bn(part)) for unit, part in zip(units, parts, strict=True))
        out3 = self.branch3x3[1](reduced3)
        out5 = self.branch5x5[1](reduced5)
        return torch.cat([out1, out3, out5, self.branch_pool(x)], dim=1)


class AuxClassifier(nn.Module):
    """The paper's auxiliary head: avgpool 5x5/3, 1x1 conv (128), FC 1024, dropout 0.7, linear."""

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        *,
        batch_norm: bool = False,
        conv_channels: int = 128,
        hidden_features: int = 1024,
        dropout: float = 0.7,
    ) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(5, stride=3)
        self.conv = BasicConv2d(in_channels, conv_channels, 1, batch_norm=batch_norm)
        self.fc1 = nn.Linear(conv_channels * 4 * 4, hidden_features)
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden_features, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool(x)
        if x.shape[-2:] != (4, 4):
            # The paper's sizes (14x14 at 224 px, 16x16 at 32 px) pool to exactly 4x4; other
            # input sizes are brought to the same 4x4 grid so the FC layer keeps its shape.
            x = F.adaptive_avg_pool2d(x, 4)
        x = self.conv(x)
        x = F.relu(self.fc1(torch.flatten(x, 1)), inplace=True)
        return self.fc2(self.dropout(x))


def _local_response_norm() -> nn.Module:
    # AlexNet's LRN constants, which the paper's stem uses (k=1 as in Caffe's reference model).
    return nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)


class GoogLeNet(nn.Module):
    """Inception-v1 with optional auxiliary classifiers, for ImageNet-sized or CIFAR-sized input.

    In training mode with ``aux_logits=True``, ``forward`` returns ``GoogLeNetOutputs``; in eval
    mode (or without aux heads) it returns the main logits only: the paper discards the
    auxiliary heads at inference.
    """

    def __init__(
        self,
        num_classes: int = 1000,
        *,
        variant: str = "imagenet",
        aux_logits: bool = True,
        batch_norm: bool | None = None,
        dropout: float = 0.4,
        width: float = 1.0,
        aux_dropout: float = 0.7,
    ) -> None:
        super().__init__()
        config = ModelConfig(
            num_classes=num_classes,
            variant=variant,
            width=width,
            aux_logits=aux_logits,
            batch_norm=batch_norm,
            dropout=dropout,
            aux_dropout=aux_dropout,
        )
        self.config = config
        self.variant = variant
        self.aux_logits = aux_logits
        self.min_input_size = MIN_INPUT_SIZE[variant]
        ch, bn = config.channels, config.batch_norm
        self.stem = self._make_stem(variant, ch, batch_norm=bn)
        modules = {name: [ch(c) for c in row] for name, row in INCEPTION_TABLE.items()}
        for name, (in_ch, *branch_channels) in modules.items():
            setattr(self, f"inception{name}", InceptionModule(in_ch, *branch_channels, batch_norm=bn))
        self.pool3 = nn.MaxPool2d(3, stride=2, padding=1)  # 28 -> 14 (ImageNet), 32 -> 16 (CIFAR)
        self.pool4 = nn.MaxPool2d(3, stride=2, padding=1)  # 14 -> 7 (ImageNet), 16 -> 8 (CIFAR)
        if aux_logits:
            aux = {
                "conv_channels": ch(128),
                "hidden_features": ch(1024),
                "batch_norm": bn,
                "dropout": aux_dropout,
            }
            self.aux1 = AuxClassifier(self.inception4a.out_channels, num_classes, **aux)
            self.aux2 = AuxClassifier(self.inception4d.out_channels, num_classes, **aux)
        else:
            self.aux1 = self.aux2 = None
        self.avgpool = nn.AdaptiveAvgPool2d(1)  # global average pooling instead of flatten + FC
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(self.inception5b.out_channels, num_classes)
        self._init_weights()

    @classmethod
    def from_config(cls, config: ModelConfig) -> GoogLeNet:
        """The network a ``ModelConfig`` describes (e.g. one read back from a run directory)."""
        return cls(**config.to_dict())

    @staticmethod
    def _make_stem(variant: str, ch: Callable[[int], int], *, batch_norm: bool) -> nn.Sequential:
        def conv(c_in: int, c_out: int, k: int, stride: int = 1) -> BasicConv2d:
            return BasicConv2d(c_in, c_out, k, stride=stride, batch_norm=batch_norm)

        def lrn() -> nn.Module:
            # With batch norm the LRN layers are dropped: BN normalises more usefully.
            return nn.Identity() if batch_norm else _local_response_norm()

        if variant == "imagenet":
            layers = [
                ("conv1", conv(3, ch(64), 7, stride=2)),  # 224 -> 112
                ("pool1", nn.MaxPool2d(3, stride=2, padding=1)),  # 112 -> 56
                ("norm1", lrn()),
                ("conv2_reduce", conv(ch(64), ch(64), 1)),
                ("conv2", conv(ch(64), ch(192), 3)),
                ("norm2", lrn()),
                ("pool2", nn.MaxPool2d(3, stride=2, padding=1)),  # 56 -> 28
            ]
        else:
            # No early downsampling: a 32x32 image keeps its 32x32 resolution into stage 3.
            layers = [
                ("conv1", conv(3, ch(64), 3)),
                ("norm1", lrn()),
                ("conv2_reduce", conv(ch(64), ch(64), 1)),
                ("conv2", conv(ch(64), ch(192), 3)),
                ("norm2", lrn()),
            ]
        return nn.Sequential(OrderedDict(layers))

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                # He init over each conv's *inputs* keeps activations' scale through ReLU layers; over
                # its outputs (fan_out) a 1x1 reduction (480 -> 16) would amplify 30x, and the paper's
                # network without batch norm would start with activations in the hundreds.
                nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.01)
                nn.init.zeros_(m.bias)

    def check_input(self, x: Tensor) -> None:
        """Raise ``ValueError`` with the reason when ``x`` is not a batch this network accepts."""
        if not isinstance(x, Tensor) or x.dim() != 4:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(
                f"GoogLeNet expects a 4-D tensor (batch, 3, height, width), got {shape}; "
                "add a batch dimension with x.unsqueeze(0) for a single image"
            )
        if x.shape[1] != 3:
            raise ValueError(
                f"GoogLeNet expects 3 colour channels (RGB) in dimension 1, got {x.shape[1]} "
                f"(shape {tuple(x.shape)}); channels-last images need x.permute(0, 3, 1, 2)"
            )
        height, width = x.shape[-2:]
        if min(height, width) < self.min_input_size:
            hint = " (use variant='cifar' for 32x32 images)" if self.variant == "imagenet" else ""
            raise ValueError(
                f"the {self.variant!r} variant needs images of at least "
                f"{self.min_input_size}x{self.min_input_size} pixels, got {height}x{width}{hint}"
            )

    def forward_heads(self, x: Tensor) -> GoogLeNetOutputs:
        """All three heads' logits, whatever the mode (aux fields are ``None`` without aux heads)."""
        return self._forward(x, with_aux=self.aux_logits)

    def forward(self, x: Tensor) -> Tensor | GoogLeNetOutputs:
        if self.training and self.aux_logits:
            return self._forward(x, with_aux=True)
        return self._forward(x, with_aux=False).logits

    def _forward(self, x: Tensor, *, with_aux: bool) -> GoogLeNetOutputs:
        self.check_input(x)
        x = self.stem(x)
        x = self.inception3b(self.inception3a(x))
        x = self.inception4a(self.pool3(x))
        aux1 = self.aux1(x) if with_aux else None
        x = self.inception4d(self.inception4c(self.inception4b(x)))
        aux2 = self.aux2(x) if with_aux else None
        x = self.pool4(self.inception4e(x))
        x = self.inception5b(self.inception5a(x))
        x = torch.flatten(self.avgpool(x), 1)
        logits = self.fc(self.dropout(x))
        return GoogLeNetOutputs(logits, aux1, aux2)

    def fuse_1x1(self, enabled: bool = True) -> GoogLeNet:
        """Run each module's three input 1x1 convolutions as one (parameters and state dict unchanged)."""
        for module in self.modules():
            if isinstance(module, InceptionModule):
                module.fuse_1x1 = enabled
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config.to_dict().items())
        return f"GoogLeNet({args})"


def head_losses(
    outputs: Tensor | GoogLeNetOutputs, targets: Tensor, *, label_smoothing: float = 0.0
) -> dict[str, Tensor]:
    """Cross-entropy of each head: ``{"main": ..., "aux1": ..., "aux2": ...}`` (aux when present)."""
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing!r}")
    if isinstance(outputs, Tensor):
        outputs = GoogLeNetOutputs(outputs, None, None)
    heads = {"main": outputs.logits, "aux1": outputs.aux1, "aux2": outputs.aux2}
    return {
        name: F.cross_entropy(logits, targets, label_smoothing=label_smoothing)
        for name, logits in heads.items()
        if logits is not None
    }


def combine_losses(losses: dict[str, Tensor], *, aux_weight: float = 0.3) -> Tensor:
    """The paper's total loss: main loss plus ``aux_weight`` times each auxiliary loss."""
    if aux_weight < 0:
        raise ValueError(f"aux_weight must be >= 0 (the paper uses 0.3), got {aux_weight!r}")
    total = losses["main"]
    for name in ("aux1", "aux2"):
        if name in losses:
            total = total + aux_weight * losses[name]
    return total


def googlenet_loss(
    outputs: Tensor | GoogLeNetOutputs,
    targets: Tensor,
    *,
    aux_weight: float = 0.3,
    label_smoothing: float = 0.0,
) -> Tensor:
    """Main cross-entropy plus ``aux_weight`` x each auxiliary cross-entropy (paper: 0.3)."""
    losses = head_losses(outputs, targets, label_smoothing=label_smoothing)
    return combine_losses(losses, aux_weight=aux_weight)
