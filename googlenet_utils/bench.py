"""Benchmarks. Each measures a baseline in the same run, on the same machine, and prints the ratio.

    python -m googlenet_utils.bench loader   # CIFARLoader vs a torchvision DataLoader pipeline
    python -m googlenet_utils.bench train    # the training recipe vs a plain fp32 NCHW DataLoader loop

Without ``--data-dir`` both use the synthetic set (same shapes as CIFAR-10, so the same speed).
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from torchvision import transforms
from torchvision.datasets import CIFAR10

from .complexity import total_macs
from .data import CROP_PADDING, CIFAR10Data, CIFARLoader, load_cifar10, make_synthetic_cifar10
from .devices import pick_device
from .model import GoogLeNet, googlenet_loss
from .train import TrainConfig, Trainer, make_optimizer

# Dense bf16/fp16 tensor-core peaks (FLOP/s) from the vendors' data sheets, for model FLOP utilisation.
PEAK_FLOPS = {
    "H200": 989e12,
    "H100 PCIe": 756e12,
    "H100": 989e12,
    "A100": 312e12,
    "L4": 121e12,
    "A10": 125e12,
    "T4": 65e12,
    "V100": 125e12,
    "RTX 4090": 165e12,
    "RTX 3090": 71e12,
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _rate(batches: Iterator, step: Callable[[object], None], warmup: int, count: int, device) -> float:
    """Batches per second of ``step`` over ``count`` batches, after ``warmup`` untimed ones."""
    for _ in range(warmup):
        step(next(batches))
    _sync(device)
    start = time.perf_counter()
    for _ in range(count):
        step(next(batches))
    _sync(device)
    return count / (time.perf_counter() - start)


def _endless(make: Callable[[], object]) -> Iterator:
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
    augment = transforms.Compose([
        transforms.RandomCrop(32, padding=CROP_PADDING, padding_mode="reflect"),  # as CIFARLoader pads
        transforms.RandomHorizontalFlip(),
        transforms.ToTensor(),
        transforms.Normalize(mean, std),
    ])  # fmt: skip
    dataset = _Unverified(str(root), train=True, transform=augment)
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=True, num_workers=workers, drop_last=True,
        persistent_workers=workers > 0, pin_memory=pin_memory,
    )  # fmt: skip


def _dataset(args: argparse.Namespace, scratch: Path) -> tuple[Path, CIFAR10Data]:
    if args.data_dir:
        return Path(args.data_dir), load_cifar10(args.data_dir, verify=not args.no_verify)
    make_synthetic_cifar10(scratch, n_train=args.images, n_test=100)
    return scratch, load_cifar10(scratch, verify=False)


def compare_loaders(
    root: str | Path, data: CIFAR10Data, *, batch_size: int = 512, batches: int = 30, device: str = "auto"
) -> dict:
    """Augmented training images per second: CIFARLoader against torchvision's DataLoader pipeline.

    ``root`` must hold the same images as ``data`` (torchvision reads them from disk itself).
    """
    device = pick_device(device)
    ours = CIFARLoader(data.train_images, data.train_labels, batch_size, train=True, device=device)
    ours_rate = _rate(_endless(lambda: ours), lambda batch: None, 2, batches, device)
    baseline = torchvision_loader(root, batch_size, ours.stats, pin_memory=device.type == "cuda")

    def to_device(batch) -> None:
        images, labels = batch
        images.to(device, non_blocking=True), labels.to(device, non_blocking=True)

    base_rate = _rate(_endless(lambda: baseline), to_device, 2, batches, device)
    return {
        "benchmark": "loader", "device": _device_label(device), "batch_size": batch_size,
        "cifar_loader_images_per_s": ours_rate * batch_size,
        "dataloader_images_per_s": base_rate * batch_size, "ratio": ours_rate / base_rate,
        "data": data.source,
    }  # fmt: skip


def bench_loader(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        root, data = _dataset(args, Path(scratch))
        result = compare_loaders(
            root, data, batch_size=args.batch_size, batches=args.batches, device=args.device
        )
    print(f"CIFARLoader ({result['device']}): {result['cifar_loader_images_per_s']:>12,.0f} images/s")
    print(f"torchvision DataLoader (2 workers): {result['dataloader_images_per_s']:>10,.0f} images/s")
    print(f"ratio: {result['ratio']:.1f}x  (augmented training batches of {args.batch_size}, {data.source})")
    return result


def bench_train(args: argparse.Namespace) -> dict:
    device = pick_device(args.device)
    with tempfile.TemporaryDirectory() as scratch:
        root, data = _dataset(args, Path(scratch))
        torch.manual_seed(0)
        model = GoogLeNet(len(data.classes), variant="cifar", width=args.width)
        plain_model = copy.deepcopy(model)  # same weights, default fp32 NCHW layout
        config = TrainConfig(
            epochs=1, warmup_epochs=0, batch_size=args.batch_size, val_size=100, device=str(device),
            compile=args.compile, run_dir=str(Path(scratch) / "run"), progress=False,
        )  # fmt: skip
        trainer = Trainer(model, data, config)
        recipe_rate = _rate(
            _endless(lambda: trainer.train_loader),
            lambda b: trainer.train_step(*b),
            args.warmup,
            args.steps,
            device,
        )

        plain_model.to(device).train()
        optimizer = make_optimizer(plain_model, config)
        baseline = torchvision_loader(root, args.batch_size, trainer.train_loader.stats)

        def plain_step(batch) -> None:
            images, labels = (t.to(device) for t in batch)
            loss = googlenet_loss(plain_model(images), labels, label_smoothing=config.label_smoothing)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        plain_rate = _rate(_endless(lambda: baseline), plain_step, args.warmup, args.steps, device)
    images_per_s = recipe_rate * args.batch_size
    flops_per_image = 3 * 2 * total_macs(model.train(), (1, 3, 32, 32))  # backward costs about 2x forward
    result = {
        "benchmark": "train", "device": _device_label(device), "width": args.width,
        "batch_size": args.batch_size, "precision": trainer.precision, "compile": args.compile,
        "recipe_images_per_s": images_per_s, "plain_images_per_s": plain_rate * args.batch_size,
        "ratio": recipe_rate / plain_rate, "train_gflop_per_image": flops_per_image / 1e9,
    }  # fmt: skip
    peak = _peak_flops(device)
    if peak:
        result["model_flop_utilisation"] = images_per_s * flops_per_image / peak
    print(f"recipe ({trainer.precision}, channels_last, CIFARLoader): {images_per_s:>9,.0f} images/s")
    print(f"plain fp32 NCHW DataLoader loop:             {result['plain_images_per_s']:>9,.0f} images/s")
    print(f"ratio: {result['ratio']:.2f}x  (GoogLeNet cifar, width {args.width}, batch {args.batch_size}, "
          f"{result['device']})")  # fmt: skip
    if peak:
        print(f"model FLOP utilisation: {result['model_flop_utilisation']:.1%} of {peak / 1e12:.0f} TFLOP/s")
    return result


def _device_label(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{device.type} ({torch.get_num_threads()} threads)"


def _peak_flops(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_FLOPS.items() if key in name), None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m googlenet_utils.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("what", choices=("loader", "train"))
    parser.add_argument("--data-dir", help="a CIFAR-10 folder to read instead of the synthetic set")
    parser.add_argument("--no-verify", action="store_true", help="skip md5 checks (for a mirror)")
    parser.add_argument("--images", type=int, default=10_000, help="synthetic training images")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=None, help="default: 512 (loader), 256 (train)")
    parser.add_argument("--batches", type=int, default=30, help="timed batches (loader)")
    parser.add_argument(
        "--steps", type=int, default=None, help="timed steps (train; default 5 on CPU, 30 on GPU)"
    )
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (train)")
    parser.add_argument(
        "--width", type=float, default=None, help="GoogLeNet width (default: 1.0 on GPU, 0.25 on CPU)"
    )
    parser.add_argument("--compile", action="store_true", help="torch.compile the recipe's model")
    parser.add_argument("--json", help="also write the result to this JSON file")
    args = parser.parse_args(argv)
    on_gpu = pick_device(args.device).type == "cuda"
    args.batch_size = args.batch_size or (512 if args.what == "loader" else 256)
    args.steps = args.steps or (30 if on_gpu else 5)
    args.width = args.width or (1.0 if on_gpu else 0.25)
    result = bench_loader(args) if args.what == "loader" else bench_train(args)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
