"""Validation accuracy of shipped runs under each test-time augmentation (never the test images).

    python tools/compare_tta.py results/timed-cpu-30min-baseline-xeon results/reference-cpu-90min

Each run's weights (``best.pt``) are evaluated on the validation split it held out of the training
images (its size and seed from ``config.json``, normalised with its training statistics), with no
augmentation, with the mirror image and with flips plus 2-pixel shifts: how the `cpu` recipe's test
augmentation was chosen. The mirror must be the one the runs trained on (``make mirror``).
"""

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from googlenet_utils import load_run, model_from_checkpoint  # noqa: E402
from googlenet_utils.cifar10 import load_cifar10, split_validation  # noqa: E402
from googlenet_utils.devices import pick_precision  # noqa: E402
from googlenet_utils.evaluation import VIEWS, accuracy, predict  # noqa: E402
from googlenet_utils.loader import CIFARLoader  # noqa: E402


def validation_accuracies(run_dir: Path, data_dir: str) -> dict[str, tuple[float, float]]:
    """(accuracy, seconds) of ``run_dir``'s weights on its validation split, per TTA mode."""
    record = load_run(run_dir)
    train = record.train_config
    data = load_cifar10(data_dir, verify=False)
    _, validation = split_validation(data, train["val_size"], train["seed"])
    norm = record.config["normalisation"]
    stats = (torch.tensor(norm["mean"]), torch.tensor(norm["std"]))
    loader = CIFARLoader(validation.images, validation.labels, 500, train=False, stats=stats)
    model = model_from_checkpoint(run_dir / "best.pt").to(memory_format=torch.channels_last)
    precision = pick_precision(train["precision"], torch.device("cpu"))
    results = {}
    for tta in VIEWS:
        start = time.perf_counter()
        predictions = predict(model, loader, tta=tta, precision=precision)
        logits = predictions.tta if predictions.tta is not None else predictions.logits
        results[tta] = (accuracy(logits, predictions.labels), time.perf_counter() - start)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("runs", nargs="+", type=Path, help="shipped run folders with best.pt")
    parser.add_argument("--data-dir", default=str(ROOT / "data" / "mirror"))
    args = parser.parse_args()
    for run_dir in args.runs:
        results = validation_accuracies(run_dir, args.data_dir)
        base = results["flip"][0]
        for tta, (acc, seconds) in results.items():
            print(
                f"{run_dir.name:40s} {tta:15s} {acc:.2%}  "
                f"({(acc - base) * 100:+.2f} points against flip, {seconds:.1f} s)"
            )


if __name__ == "__main__":
    main()
