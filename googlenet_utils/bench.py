"""Benchmarks. Each measures a baseline in the same run, on the same machine, and prints the ratio.

    python -m googlenet_utils.bench loader   # CIFARLoader vs a torchvision DataLoader pipeline
    python -m googlenet_utils.bench train    # a recipe's step (eager, fused 1x1, NCHW, compiled) vs plain
    python -m googlenet_utils.bench train --size 16 --batch-size 256   # a low-resolution epoch's step

``bench train`` uses the recipe's batch size, precision and width (``--recipe``; by default
``fast`` with a GPU, ``cpu`` without), and on a GPU reports model FLOP utilisation against the
GPU's dense bf16 peak. ``--size`` times the steps of a low-resolution epoch (16 or 24 px) instead.
Without ``--data-dir`` both use the synthetic set (CIFAR-10's shapes).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader
from torchvision import transforms
from torchvision.datasets import CIFAR10

from .cifar10 import CIFAR10Data, load_cifar10
from .complexity import total_macs
from .devices import device_name, pick_device, synchronize
from .host_memory import freed_memory_kept, keep_freed_memory
from .loader import CROP_PADDING, CIFARLoader, channel_stats
from .model import googlenet_loss
from .recipe import choose_recipe, make_optimizer
from .runspec import RunSpec, describe_run
from .synthetic import make_synthetic_cifar10
from .trainer import Trainer, shrink

# Dense (not sparse) bf16 tensor-core peaks in FLOP/s from the vendors' data sheets, keyed by the
# exact name torch.cuda.get_device_name reports. fp16 for the T4 and V100, which lack bf16.
PEAK_FLOPS = {
    "NVIDIA H100 80GB HBM3": 989e12,
    "NVIDIA H100 PCIe": 756e12,
    "NVIDIA H100 NVL": 835e12,
    "NVIDIA H200": 989e12,
    "NVIDIA H200 NVL": 835e12,
    "NVIDIA A100-SXM4-80GB": 312e12,
    "NVIDIA A100-SXM4-40GB": 312e12,
    "NVIDIA A100-PCIE-40GB": 312e12,
    "NVIDIA A100 80GB PCIe": 312e12,
    "NVIDIA L40S": 362e12,
    "NVIDIA L4": 121e12,
    "NVIDIA GeForce RTX 4090": 165e12,
    "NVIDIA GeForce RTX 3090": 71e12,
    "Tesla V100-SXM2-16GB": 125e12,
    "Tesla V100-SXM2-32GB": 125e12,
    "Tesla T4": 65e12,
}


def peak_flops(name: str) -> float | None:
    """The dense bf16 (or fp16) peak of a GPU by its exact name; ``None`` for a name not in the table."""
    return PEAK_FLOPS.get(name)


def train_flops_per_image(model: torch.nn.Module, size: int = 32) -> float:
    """FLOPs of one training image at ``size`` pixels: forward and backward, the backward about twice."""
    return 3 * 2 * total_macs(model.train(), (1, 3, size, size))


def _rate(
    batches: Iterator, step: Callable[[Any], None], warmup: int, count: int, device: torch.device
) -> float:
    """Batches per second of ``step`` over ``count`` batches, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        step(next(batches))
    synchronize(device)
    start = time.perf_counter()
    for _ in range(count):
        step(next(batches))
    synchronize(device)
    return count / (time.perf_counter() - start)


def _page_faults() -> int:
    """Minor page faults of this process so far (pages the kernel had to map and zero on first touch)."""
    try:
        import resource  # POSIX only: Windows counts none here
    except ImportError:
        return 0
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _endless(make: Callable[[], Any]) -> Iterator:
    while True:
        yield from make()


class _Unverified(CIFAR10):
    """torchvision's CIFAR-10 reader without its md5 check (the synthetic set and mirrors differ)."""

    meta = {**CIFAR10.meta, "md5": None}

    def _check_integrity(self) -> bool:
        return True


def torchvision_loader(
    root: Path, batch_size: int, stats, workers: int = 2, pin_memory: bool = False
) -> DataLoader:
    """The usual pipeline: PIL crop/flip per image, ToTensor, Normalize, collated by worker processes."""
    mean, std = (tuple((s / 255).tolist()) for s in stats)
    augment = transforms.Compose(
        [
            transforms.RandomCrop(32, padding=CROP_PADDING, padding_mode="reflect"),  # as CIFARLoader pads
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(mean, std),
        ]
    )
    dataset = _Unverified(str(root), train=True, transform=augment)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=True,
        num_workers=workers,
        drop_last=True,
        persistent_workers=workers > 0,
        pin_memory=pin_memory,
    )


def _dataset(args: argparse.Namespace, scratch: Path) -> tuple[Path, CIFAR10Data]:
    if args.data_dir:
        return Path(args.data_dir), load_cifar10(args.data_dir, verify=not args.no_verify)
    make_synthetic_cifar10(scratch, n_train=args.images, n_test=100)
    return scratch, load_cifar10(scratch, verify=False)


def compare_loaders(
    root: str | Path, data: CIFAR10Data, *, batch_size: int = 512, batches: int = 30, device: str = "auto"
) -> dict[str, Any]:
    """Augmented training images per second: CIFARLoader against torchvision's DataLoader pipeline.

    ``root`` must hold the same images as ``data`` (torchvision reads them from disk itself).
    """
    device = pick_device(device)
    ours = CIFARLoader(data.train_images, data.train_labels, batch_size, train=True, device=device)
    ours_rate = _rate(_endless(lambda: ours), lambda batch: None, 2, batches, device)
    baseline = torchvision_loader(Path(root), batch_size, ours.stats, pin_memory=device.type == "cuda")

    def to_device(batch) -> None:
        images, labels = batch
        images.to(device, non_blocking=True), labels.to(device, non_blocking=True)

    base_rate = _rate(_endless(lambda: baseline), to_device, 2, batches, device)
    return {
        "benchmark": "loader",
        "device": device_name(device),
        "batch_size": batch_size,
        "cifar_loader_images_per_s": ours_rate * batch_size,
        "dataloader_images_per_s": base_rate * batch_size,
        "ratio": ours_rate / base_rate,
        "data": data.source,
    }


def bench_loader(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as scratch:
        root, data = _dataset(args, Path(scratch))
        batch_size = args.batch_size or 512
        result = compare_loaders(root, data, batch_size=batch_size, batches=args.batches, device=args.device)
    print(f"CIFARLoader ({result['device']}): {result['cifar_loader_images_per_s']:>12,.0f} images/s")
    print(f"torchvision DataLoader (2 workers): {result['dataloader_images_per_s']:>10,.0f} images/s")
    print(f"ratio: {result['ratio']:.1f}x  (augmented training batches of {batch_size}, {data.source})")
    return result


def step_images_per_s(spec: RunSpec, *, size: int = 32, steps: int = 3, warmup: int = 1) -> float:
    """Training images/s of ``spec``'s step (its network, batch, precision and layout) at ``size`` px.

    The images are random: what the pixels show does not change a step's speed. On a CPU the
    process first keeps the memory it frees, as a CPU training run does before it times its steps.
    """
    if not 12 <= size <= 32 or steps < 1 or warmup < 0:
        raise ValueError(f"size must be 12 to 32 pixels, steps at least 1, warmup at least 0; got {size}, "
                         f"{steps}, {warmup}")  # fmt: skip
    batch = spec.train.batch_size
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (2 * batch, 3, 32, 32), dtype=torch.uint8, generator=generator)
    labels = torch.arange(2 * batch) % spec.model.num_classes
    # One training batch after a validation split of half a batch, which the trainer insists on.
    data = CIFAR10Data(images[batch // 2 :], labels[batch // 2 :], images[:batch], labels[:batch],
                       [str(k) for k in range(spec.model.num_classes)], source="random images")  # fmt: skip
    with tempfile.TemporaryDirectory() as scratch:
        config = dataclasses.replace(spec.train, run_dir=scratch, epochs=1, warmup_epochs=0.0, resolutions="",
                                     val_size=batch // 2, eval_batch_size=batch, compile=False)  # fmt: skip
        trainer = Trainer(spec.build_model(), data, config)
        if trainer.device.type == "cpu":
            keep_freed_memory()

        def train_step(pair: tuple[torch.Tensor, torch.Tensor]) -> None:
            images, targets = pair
            trainer.train_step(shrink(images, size) if size != images.shape[-1] else images, targets)

        batches = _endless(lambda: trainer.train_loader)
        return _rate(batches, train_step, warmup, steps, trainer.device) * batch


def bench_train(args: argparse.Namespace) -> dict[str, Any]:
    """Training images/s of the recipe's step, eager and compiled, against a plain fp32 DataLoader loop."""
    device = pick_device(args.device)
    recipe, _ = choose_recipe(args.recipe, device)
    width = args.width or recipe.width
    batch_size = args.batch_size or recipe.config().batch_size
    compiled = args.compile if args.compile is not None else device.type == "cuda"
    steps = args.steps or (30 if device.type == "cuda" else 5)
    with tempfile.TemporaryDirectory() as scratch:
        root, data = _dataset(args, Path(scratch))
        # The plain loop's workers fork first, before CUDA or a compiler starts threads in this process.
        baseline = torchvision_loader(root, batch_size, channel_stats(data.train_images))
        plain_batches = _endless(lambda: baseline)
        next(plain_batches)
        spec = describe_run(
            recipe,
            width=width,
            num_classes=len(data.classes),
            epochs=1,
            warmup_epochs=0.0,
            batch_size=batch_size,
            val_size=min(1000, len(data.train_labels) // 10),
            device=str(device),
            compile=compiled,
            run_dir=str(Path(scratch) / "run"),
            progress=False,
            **({"precision": args.precision} if args.precision else {}),
        )
        model, config = spec.build_model(), spec.train
        plain_model = copy.deepcopy(model)  # same weights, default fp32 NCHW layout
        trainer = Trainer(model, data, config)

        def recipe_rate(layout: torch.memory_format | None = None) -> float:
            step = iter(range(10**9))
            batches = _endless(lambda: trainer.train_loader)

            def train_step(batch) -> None:
                images = shrink(batch[0], args.size) if args.size != batch[0].shape[-1] else batch[0]
                images = images.contiguous(memory_format=layout) if layout is not None else images
                trainer.train_step(images, batch[1], next(step))

            return _rate(batches, train_step, args.warmup, steps, device)

        trainer.compile = False
        default_allocator = default_faults = None
        if device.type == "cpu" and not freed_memory_kept():  # first: it cannot be undone
            start = _page_faults()
            default_allocator = recipe_rate() * batch_size
            default_faults = (_page_faults() - start) / (args.warmup + steps)
            keep_freed_memory()  # as a CPU training run does before it times its steps
        start = _page_faults()
        eager = recipe_rate() * batch_size
        faults = (_page_faults() - start) / (args.warmup + steps)
        fp32 = None
        if trainer.dtype is not None:  # the same step without autocast: what bf16 (or fp16) buys here
            trainer.dtype, dtype = None, trainer.dtype
            fp32 = recipe_rate() * batch_size
            trainer.dtype = dtype
        before = None
        if config.channels_last and device.type == "cpu":
            model.nchw_norm(False)  # the step before: every batch norm in channels-last
            before = recipe_rate() * batch_size
            model.nchw_norm()
        model.fuse_1x1()  # the same parameters; each module's three 1x1 convolutions on x run as one
        fused = recipe_rate() * batch_size
        model.fuse_1x1(False)
        nchw = None
        if config.channels_last:  # the same step in the default layout: what channels-last buys here
            model.to(memory_format=torch.contiguous_format)  # the same parameters, other strides
            nchw = recipe_rate(torch.contiguous_format) * batch_size
            model.to(memory_format=torch.channels_last)
        compiled_rate = None
        if compiled:
            trainer.compile = True
            trainer.warm_up_compiled()  # compiles before the clock starts; timed separately
            compiled_rate = recipe_rate() * batch_size if trainer.compile else None

        plain_model.to(device).train()
        optimizer = make_optimizer(plain_model, config)

        def plain_step(batch) -> None:
            images, labels = (t.to(device) for t in batch)
            if args.size != images.shape[-1]:
                images = torch.nn.functional.interpolate(images, size=(args.size, args.size), mode="bilinear")
            loss = googlenet_loss(plain_model(images), labels, label_smoothing=config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        plain = _rate(plain_batches, plain_step, args.warmup, steps, device) * batch_size
    best = compiled_rate or eager
    flops_per_image = train_flops_per_image(model, args.size)
    name = device_name(device)
    peak = peak_flops(name) if device.type == "cuda" else None
    result = {
        "benchmark": "train",
        "device": name,
        "recipe": recipe.name,
        "width": width,
        "batch_size": batch_size,
        "precision": trainer.precision,
        "eager_images_per_s": eager,
        "fp32_images_per_s": fp32,
        "fp32_ratio": eager / fp32 if fp32 else None,  # the recipe's step against the same step in fp32
        "default_allocator_images_per_s": default_allocator,
        "default_allocator_page_faults_per_step": default_faults,
        "page_faults_per_step": faults,
        # The recipe's step against the same first steps of a process with glibc's default mmap threshold.
        "kept_memory_ratio": eager / default_allocator if default_allocator else None,
        "channels_last_norm_images_per_s": before,
        # The recipe's step (odd-width batch norms in NCHW on a CPU) against all of them channels-last.
        "nchw_norm_ratio": eager / before if before else None,
        "fused_1x1_images_per_s": fused,
        "fused_1x1_ratio": fused / eager,  # the fused step against the recipe's, measured in this run
        "nchw_images_per_s": nchw,
        "nchw_ratio": nchw / eager if nchw else None,  # the NCHW step against the recipe's channels-last one
        "size": args.size,
        "compiled_images_per_s": compiled_rate,
        "compile_seconds": trainer.compile_seconds if compiled else None,
        "plain_images_per_s": plain,
        "ratio": best / plain,
        "train_gflop_per_image": flops_per_image / 1e9,
        "timed_steps": steps,
        "peak_flops": peak,
        "model_flop_utilisation": best * flops_per_image / peak if peak else None,
        "data": data.source,
    }
    print(f"recipe '{recipe.name}' step, eager ({trainer.precision}, channels_last): {eager:>9,.0f} images/s")
    if compiled_rate is not None:
        print(
            f"recipe '{recipe.name}' step, compiled ({trainer.compile_seconds:.0f} s to compile): "
            f"{compiled_rate:>9,.0f} images/s"
        )
    if fp32 is not None:
        print(
            f"the same step in fp32:                           {fp32:>9,.0f} images/s "
            f"(the recipe's {trainer.precision} step is {result['fp32_ratio']:.2f}x as fast)"
        )
    if default_allocator is not None:
        print(
            f"the same step, freed memory returned to the OS:  {default_allocator:>9,.0f} images/s "
            f"(the recipe's step is {result['kept_memory_ratio']:.2f}x as fast; "
            f"{default_faults:,.0f} against {faults:,.0f} page faults a step)"
        )
    if before is not None:
        print(
            f"the same step, every batch norm channels-last:   {before:>9,.0f} images/s "
            f"(the recipe's step is {result['nchw_norm_ratio']:.2f}x as fast)"
        )
    print(
        f"the same step with fused 1x1 convolutions:       {fused:>9,.0f} images/s "
        f"({result['fused_1x1_ratio']:.2f}x the recipe's step)"
    )
    if nchw is not None:
        print(
            f"the same step in the NCHW layout:                {nchw:>9,.0f} images/s "
            f"({result['nchw_ratio']:.2f}x the recipe's step)"
        )
    print(f"plain fp32 NCHW DataLoader loop:                 {plain:>9,.0f} images/s")
    print(
        f"ratio: {result['ratio']:.2f}x  (GoogLeNet cifar, width {width}, batch {batch_size}, "
        f"{args.size}x{args.size} images, {name})"
    )
    if device.type == "cuda":
        utilisation = (
            f"{result['model_flop_utilisation']:.1%} of {peak / 1e12:.0f} TFLOP/s" if peak else "peak unknown"
        )
        print(f"model FLOP utilisation: {utilisation}")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m googlenet_utils.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("what", choices=("loader", "train"))
    parser.add_argument("--data-dir", help="a CIFAR-10 folder to read instead of the synthetic set")
    parser.add_argument("--no-verify", action="store_true", help="skip md5 checks (for the JPEG mirror)")
    parser.add_argument("--images", type=int, default=10_000, help="synthetic training images")
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--recipe", default="auto", help="train: whose batch size, precision and width (default: by device)"
    )
    parser.add_argument(
        "--batch-size", type=int, default=None, help="default: 512 (loader), the recipe's (train)"
    )
    parser.add_argument("--precision", default=None, help="train: override the recipe's precision")
    parser.add_argument("--batches", type=int, default=30, help="timed batches (loader)")
    parser.add_argument(
        "--steps", type=int, default=None, help="timed steps (train; default 5 on CPU, 30 on GPU)"
    )
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (train)")
    parser.add_argument("--width", type=float, default=None, help="GoogLeNet width (default: the recipe's)")
    parser.add_argument(
        "--size", type=int, default=32, choices=range(12, 33), metavar="PIXELS",
        help="train: image side of the timed steps, 12 to 32 (a low-resolution epoch's: 16, 24)",
    )  # fmt: skip
    parser.add_argument(
        "--compile",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also time the compiled step (default: on with CUDA)",
    )
    parser.add_argument("--json", help="also write the result to this JSON file")
    args = parser.parse_args(argv)
    result = bench_loader(args) if args.what == "loader" else bench_train(args)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
