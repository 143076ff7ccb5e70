"""tools/compare_tta.py: a shipped run's weights on its own validation split, under each TTA."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

import compare_tta  # noqa: E402


def test_without_augmentation_it_reproduces_the_runs_best_validation_accuracy(finished_run, synthetic_root):
    results = compare_tta.validation_accuracies(finished_run.run_dir, str(synthetic_root))
    assert set(results) == {"none", "flip", "flip+translate"}
    # The same weights, split and normalisation as the run's own validation of its best epoch.
    assert results["none"][0] == pytest.approx(finished_run.metrics.best_val_accuracy, abs=1e-6)
    assert all(0.0 <= accuracy <= 1.0 and seconds > 0 for accuracy, seconds in results.values())
