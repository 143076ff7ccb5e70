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
from dataclasses import dataclass, field
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
# Design choices notebook 06 measures; the first of each is the paper's (and the default).
FIVE_BY_FIVE = ("5x5", "3x3", "3x3x2")  # the "5x5" branch: paper, torchvision, Inception-v2/v3
HEADS = ("gap", "fc")  # global average pooling (paper), or flatten the last map
NORMS = ("batch", "lrn", "none")  # batch norm everywhere; the paper's LRN in the stem; neither
# The widest network accepted: width 2 (41 million parameters) trained at 3.1 GB peak on a CPU (batch
# 8, a checkpoint included); width 4 already needed 8.2 GB at batch 2, and width 16 (2.6 billion
# parameters) would need over 40 GB. Within the limit, the command line estimates memory up front.
MAX_WIDTH = 2.0
# Smallest input side for which stage 4 is still 5x5, the auxiliary heads' pooling window.
MIN_INPUT_SIZE = {"imagenet": 65, "cifar": 9}
# The CPU's channels-last batch norm (torch 2.14) vectorises over channels: at width 0.125, layers of
# 8 or 12 channels ran 2x faster in NCHW, copies included, and the step of the cpu recipe (then at
# width 0.125) 1.18x at 16 and
# 32 px with every such layer in NCHW (bench train --device cpu measures it; CONTRIBUTING.md).
NCHW_NORM_MULTIPLE = 16
# Side of the last map at the nominal input (224 px, 32 px): what the "fc" head flattens.
FLATTEN_GRID = {"imagenet": 7, "cifar": 8}


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass(frozen=True)
class ModelConfig:
    """Everything that decides a GoogLeNet's layers: the model, its checkpoints and runs record it."""

    num_classes: int = 1000
    variant: str = "imagenet"
    width: float = 1.0  # multiplies every channel count; 1.0 is the paper's network
    aux_logits: bool = True
    batch_norm: bool | None = None  # None: as norm says, else on for "cifar", off for "imagenet" (paper)
    # Fields with a ``help`` are also command-line flags (``--dropout``, ``--five-by-five``, ...).
    dropout: float = field(
        default=0.4, metadata=_help("dropout before the final linear layer (default: the paper's 0.4)")
    )
    aux_dropout: float = field(
        default=0.7, metadata=_help("dropout inside each auxiliary head (default: the paper's 0.7)")
    )
    five_by_five: str = field(
        default="5x5",
        metadata=_help(
            f"the '5x5' branch ({', '.join(FIVE_BY_FIVE)}): the paper's kernel (default), torchvision's "
            "3x3, or Inception-v2/v3's two stacked 3x3"
        ),
    )
    reduce: bool = field(
        default=True,
        metadata=_help(
            "1x1 reductions before the 3x3 and 5x5 kernels (off: the paper's naive module, Fig. 2a)"
        ),
    )
    head: str = field(
        default="gap",
        metadata=_help(
            f"the head ({', '.join(HEADS)}): global average pooling (default), or flatten the last map"
        ),
    )
    # None: follows batch_norm ("batch" with it, "lrn" without), so older records read the same.
    norm: str | None = field(
        default=None,
        metadata=_help(
            f"normalisation ({', '.join(NORMS)}): default batch norm on CIFAR, the paper's LRN on ImageNet"
        ),
    )

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS:
            raise ConfigError(f"unknown variant {self.variant!r}: choose one of {', '.join(VARIANTS)}")
        if (
            isinstance(self.num_classes, bool)
            or not isinstance(self.num_classes, int)
            or self.num_classes < 1
        ):
            raise ConfigError(f"num_classes must be a positive integer, got {self.num_classes!r}")
        if not isinstance(self.width, int | float) or not 0 < self.width <= MAX_WIDTH:
            raise ConfigError(
                f"width must be > 0 and at most {MAX_WIDTH:g} (1.0 is the paper's network; wider ones "
                f"need more memory than an 8 GB machine has), got {self.width!r}"
            )
        for name in ("dropout", "aux_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"{name} must be in [0, 1), got {getattr(self, name)!r}")
        for name, allowed in (("five_by_five", FIVE_BY_FIVE), ("head", HEADS), ("norm", (*NORMS, None))):
            if getattr(self, name) not in allowed:
                shown = ", ".join(repr(a) for a in allowed)
                raise ConfigError(f"{name} must be one of {shown}, got {getattr(self, name)!r}")
        if not isinstance(self.reduce, bool):
            raise ConfigError(f"reduce must be True or False, got {self.reduce!r}")
        if self.batch_norm is None:
            default = self.variant == "cifar" if self.norm is None else self.norm == "batch"
            object.__setattr__(self, "batch_norm", default)
        if self.norm is None:
            object.__setattr__(self, "norm", "batch" if self.batch_norm else "lrn")  # today's two networks
        elif (self.norm == "batch") != self.batch_norm:
            raise ConfigError(
                f"norm={self.norm!r} contradicts batch_norm={self.batch_norm!r}: set only one of them"
            )

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
        # Run-time only (GoogLeNet.nchw_norm): a channels-last batch norm on the CPU, training, runs in
        # NCHW when its channel count is no multiple of 16, where the channels-last kernel is slowest.
        self.nchw_norm = batch_norm and out_channels % NCHW_NORM_MULTIPLE != 0

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv(x)
        if self.nchw_norm and self.training and y.device.type == "cpu" and _channels_last_only(y):
            nchw = F.relu(self.bn(y.contiguous()), inplace=True)
            return nchw.contiguous(memory_format=torch.channels_last)  # the next convolution's layout
        return F.relu(self.bn(y), inplace=True)


def _channels_last_only(x: Tensor) -> bool:
    return x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


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
        five_by_five: str = "5x5",
        reduce: bool = True,
    ) -> None:
        super().__init__()
        if five_by_five not in FIVE_BY_FIVE:
            raise ConfigError(f"five_by_five must be one of {', '.join(FIVE_BY_FIVE)}, got {five_by_five!r}")

        def conv(c_in: int, c_out: int, kernel_size: int) -> BasicConv2d:
            return BasicConv2d(c_in, c_out, kernel_size, batch_norm=batch_norm)

        # Without reductions (the naive module) the 3x3 and 5x5 kernels read every input channel.
        # The pool branch keeps its 1x1 projection either way, so every module's output width stays
        # the paper's: only the reductions differ (the paper's naive module, Fig. 2a, passes the
        # pooled input through, and the widths would then grow from module to module).
        reduced3 = out_channels_3x3_reduce if reduce else in_channels
        reduced5 = out_channels_5x5_reduce if reduce else in_channels
        self.branch1x1 = conv(in_channels, out_channels_1x1, 1)
        self.branch3x3 = nn.Sequential(
            *([conv(in_channels, reduced3, 1)] if reduce else []),
            conv(reduced3, out_channels_3x3, 3),
        )
        if five_by_five == "5x5":
            spatial = conv(reduced5, out_channels_5x5, 5)  # a real 5x5 kernel, as in the paper
        elif five_by_five == "3x3":
            spatial = conv(reduced5, out_channels_5x5, 3)  # torchvision's googlenet (a known, kept bug)
        else:
            # Two 3x3 see a 5x5 window (Inception-v2/v3). The first keeps the reduced width (notebook
            # 01, exercise 2); one Sequential, so that branch5x5 stays (reduction, spatial part).
            middle = out_channels_5x5_reduce if reduce else out_channels_5x5
            spatial = nn.Sequential(conv(reduced5, middle, 3), conv(middle, out_channels_5x5, 3))
        self.branch5x5 = nn.Sequential(*([conv(in_channels, reduced5, 1)] if reduce else []), spatial)
        self.branch_pool = nn.Sequential(
            nn.MaxPool2d(3, stride=1, padding=1),
            conv(in_channels, out_channels_pool, 1),
        )
        self.reduce = reduce  # the fused 1x1 path needs the reductions (GoogLeNet.fuse_1x1 checks)
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
        # Each slice is copied first: batch norm's backward on a channel slice of a shared tensor
        # gave wrong gradients on the CPU (torch 2.14; tests/test_model.py compares them).
        out1, reduced3, reduced5 = (
            F.relu(unit.bn(part.contiguous())) for unit, part in zip(units, parts, strict=True)
        )
        out3 = self.branch3x3[1](reduced3)
        out5 = self.branch5x5[1](reduced5)
        return torch.cat([out1, out3, out5, self.branch_pool(x)], dim=1)


class NaiveInceptionModule(nn.Module):
    """The paper's naive module (Fig. 2a), kept to count what the reductions save: 1x1, 3x3 and 5x5
    convolutions over every input channel, each with a ReLU, and a 3x3 max-pool whose output passes
    through, so the width grows by ``c1 + c3 + c5``. GoogLeNet never uses it; its trainable ablation
    is ``InceptionModule(reduce=False)``, which keeps the pool projection and the paper's widths."""

    def __init__(self, in_channels: int, c1: int, c3: int, c5: int) -> None:
        super().__init__()
        self.conv1x1 = nn.Conv2d(in_channels, c1, kernel_size=1)
        self.conv3x3 = nn.Conv2d(in_channels, c3, kernel_size=3, padding=1)
        self.conv5x5 = nn.Conv2d(in_channels, c5, kernel_size=5, padding=2)
        self.pool = nn.MaxPool2d(kernel_size=3, stride=1, padding=1)
        self.out_channels = in_channels + c1 + c3 + c5

    def forward(self, x: Tensor) -> Tensor:
        convolved = [F.relu(conv(x)) for conv in (self.conv1x1, self.conv3x3, self.conv5x5)]
        return torch.cat([*convolved, self.pool(x)], dim=1)  # N x (c1 + c3 + c5 + C) x H x W


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
        five_by_five: str = "5x5",
        reduce: bool = True,
        head: str = "gap",
        norm: str | None = None,
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
            five_by_five=five_by_five,
            reduce=reduce,
            head=head,
            norm=norm,
        )
        self.config = config
        self.variant = variant
        self.aux_logits = aux_logits
        self.min_input_size = MIN_INPUT_SIZE[variant]
        ch, bn = config.channels, config.batch_norm
        self.stem = self._make_stem(variant, ch, norm=config.norm)
        module_options = {"batch_norm": bn, "five_by_five": config.five_by_five, "reduce": config.reduce}
        # Each module reads what the one before it produces: scaling the table's "in" column instead
        # would round differently from the previous module's four branches (width 0.1: 26 vs 25).
        in_channels = self.stem.conv2.conv.out_channels
        for name, (_, *branch_channels) in INCEPTION_TABLE.items():
            module = InceptionModule(in_channels, *map(ch, branch_channels), **module_options)
            setattr(self, f"inception{name}", module)
            in_channels = module.out_channels
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
        # "gap": global average pooling instead of flatten + FC. "fc": the last map at its size for the
        # nominal input, flattened; other sizes (low-resolution epochs) are resampled to it, as the
        # auxiliary heads do.
        grid = 1 if config.head == "gap" else FLATTEN_GRID[variant]
        self.avgpool = nn.AdaptiveAvgPool2d(grid)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(self.inception5b.out_channels * grid * grid, num_classes)
        self._init_weights()

    @classmethod
    def from_config(cls, config: ModelConfig) -> GoogLeNet:
        """The network a ``ModelConfig`` describes (e.g. one read back from a run directory)."""
        return cls(**config.to_dict())

    @staticmethod
    def _make_stem(variant: str, ch: Callable[[int], int], *, norm: str) -> nn.Sequential:
        def conv(c_in: int, c_out: int, k: int, stride: int = 1) -> BasicConv2d:
            return BasicConv2d(c_in, c_out, k, stride=stride, batch_norm=norm == "batch")

        def lrn() -> nn.Module:
            # LRN only for norm="lrn": with batch norm it is dropped (BN normalises more usefully).
            return _local_response_norm() if norm == "lrn" else nn.Identity()

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
        # Shapes at width 1, as (channels, height, width) per image: imagenet variant | cifar variant.
        self.check_input(x)  # 3 x 224 x 224 | 3 x 32 x 32
        x = self.stem(x)  # 192 x 28 x 28 | 192 x 32 x 32 (the cifar stem keeps the resolution)
        x = self.inception3a(x)  # 256 x 28 x 28 | 256 x 32 x 32
        x = self.inception3b(x)  # 480 x 28 x 28 | 480 x 32 x 32
        x = self.pool3(x)  # 480 x 14 x 14 | 480 x 16 x 16
        x = self.inception4a(x)  # 512 x 14 x 14 | 512 x 16 x 16
        aux1 = self.aux1(x) if with_aux else None  # num_classes, from 4a's output
        x = self.inception4b(x)  # 512 x 14 x 14 | 512 x 16 x 16
        x = self.inception4c(x)  # 512 x 14 x 14 | 512 x 16 x 16
        x = self.inception4d(x)  # 528 x 14 x 14 | 528 x 16 x 16
        aux2 = self.aux2(x) if with_aux else None  # num_classes, from 4d's output
        x = self.inception4e(x)  # 832 x 14 x 14 | 832 x 16 x 16
        x = self.pool4(x)  # 832 x 7 x 7 | 832 x 8 x 8
        x = self.inception5a(x)  # 832 x 7 x 7 | 832 x 8 x 8
        x = self.inception5b(x)  # 1024 x 7 x 7 | 1024 x 8 x 8
        x = self.avgpool(x)  # 1024 x 1 x 1 (head "gap"; "fc" keeps a grid: 1024 x g x g)
        x = torch.flatten(x, 1)  # 1024 (times g x g for head "fc")
        logits = self.fc(self.dropout(x))  # num_classes
        return GoogLeNetOutputs(logits, aux1, aux2)

    def fuse_1x1(self, enabled: bool = True) -> GoogLeNet:
        """Run each module's three input 1x1 convolutions as one (parameters and state dict unchanged).

        Naive modules (``reduce=False``) have one 1x1 convolution only and keep their plain path.
        """
        for module in self.modules():
            if isinstance(module, InceptionModule):
                module.fuse_1x1 = enabled and module.reduce
        return self

    def nchw_norm(self, enabled: bool = True) -> GoogLeNet:
        """On the CPU, run channels-last batch norms of no multiple of 16 channels in NCHW (the default).

        The same function and state dict: only the memory layout of those layers' batch norm changes.
        """
        for module in self.modules():
            if isinstance(module, BasicConv2d):
                module.nchw_norm = (
                    enabled
                    and isinstance(module.bn, nn.BatchNorm2d)
                    and (module.bn.num_features % NCHW_NORM_MULTIPLE != 0)
                )
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
