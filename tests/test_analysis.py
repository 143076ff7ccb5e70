"""Analysis on inputs whose answers are worked out by hand, and every plot on a tiny real run."""

import csv
import json

import matplotlib
import matplotlib.pyplot as plt
import pytest
import torch
from matplotlib.figure import Figure
from torch import nn

from googlenet_utils import GoogLeNet, TrainConfig, fit, load_cifar10, make_synthetic_cifar10, plots
from googlenet_utils.analysis import (
    BRANCH_LABELS,
    ablation_table,
    branch_feature_maps,
    branch_shares,
    confident_mistakes,
    confusion_matrix,
    expected_calibration_error,
    first_layer_filters,
    format_table,
    grad_cam,
    head_accuracies,
    load_run,
    module_input,
    most_confused_pairs,
    precision_recall,
    read_history,
    reliability,
    row_normalised,
    tta_logits,
)
from googlenet_utils.data import CIFARLoader
from googlenet_utils.model import INCEPTION_TABLE
from googlenet_utils.train import evaluate

matplotlib.use("Agg")  # no display in CI


# ---------------------------------------------------------------- counts and errors


def test_confusion_matrix_counts_by_hand():
    labels = torch.tensor([0, 0, 0, 1, 1, 2])
    predicted = torch.tensor([0, 1, 1, 1, 2, 2])
    expected = torch.tensor([[1, 2, 0], [0, 1, 1], [0, 0, 1]])
    confusion = confusion_matrix(labels, predicted, 3)
    assert torch.equal(confusion, expected)
    assert torch.allclose(row_normalised(confusion)[0], torch.tensor([1 / 3, 2 / 3, 0], dtype=torch.float64))
    precision, recall = precision_recall(confusion)
    # class 1: predicted 3 times, right once; present twice, found once
    assert precision.tolist() == pytest.approx([1.0, 1 / 3, 0.5])
    assert recall.tolist() == pytest.approx([1 / 3, 0.5, 1.0])
    assert most_confused_pairs(confusion, k=2) == [(0, 1, 2), (1, 2, 1)]


def test_confident_mistakes_are_ordered_by_confidence():
    probabilities = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    labels = torch.tensor([0, 0, 1, 1])  # items 1 (0.8) and 2 (0.6) are wrong
    assert confident_mistakes(probabilities, labels) == [
        (1, 0, 1, pytest.approx(0.8)),
        (2, 1, 0, pytest.approx(0.6)),
    ]


def test_expected_calibration_error_on_a_constructed_example():
    # Two predictions at confidence 0.85 (one right) and two at 0.55 (both right), 10 bins:
    # (0.8, 0.9] gap |0.5 - 0.85| = 0.35, (0.5, 0.6] gap |1.0 - 0.55| = 0.45
    # -> ECE = 0.5 * 0.35 + 0.5 * 0.45 = 0.4.
    probabilities = torch.tensor([[0.85, 0.1, 0.05], [0.85, 0.1, 0.05], [0.55, 0.3, 0.15], [0.15, 0.55, 0.3]])
    labels = torch.tensor([0, 1, 0, 1])
    assert expected_calibration_error(probabilities, labels, n_bins=10) == pytest.approx(0.4)
    bins = reliability(probabilities, labels, n_bins=10)
    assert bins.counts.tolist() == [0, 0, 0, 0, 0, 2, 0, 0, 2, 0]
    assert bins.accuracy[8].item() == pytest.approx(0.5) and bins.confidence[5].item() == pytest.approx(0.55)
    perfect = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert expected_calibration_error(perfect, torch.tensor([0, 1])) == 0.0


class LeftRight(nn.Module):
    """Not flip-invariant: class 0 if the left half is brighter, class 1 if the right half is."""

    def forward(self, x):
        left, right = x[..., :16].mean(dim=(1, 2, 3)), x[..., 16:].mean(dim=(1, 2, 3))
        return torch.stack([left - right, right - left], dim=1)


def test_flip_tta_on_a_model_that_is_not_flip_invariant():
    images = torch.zeros(4, 3, 32, 32, dtype=torch.uint8)
    images[0, :, :, :16] = 200  # bright left
    images[1, :, :, 16:] = 200  # bright right
    images[2, :, :, :16] = 120
    images[2, :, :, 16:] = 100  # slightly brighter left
    images[3, :, :, :] = 50
    labels = torch.tensor([0, 1, 0, 1])
    stats = (torch.full((3,), 100.0), torch.full((3,), 50.0))
    loader = CIFARLoader(images, labels, 4, train=False, device="cpu", stats=stats)
    result = evaluate(LeftRight(), loader, tta=True, keep_logits=True)
    x = next(iter(loader))[0]
    assert torch.allclose(result.logits, LeftRight()(x))
    assert torch.allclose(result.logits_flipped, LeftRight()(x.flip(3)))  # the mirror swaps the halves
    # Mirrored logits are the negation, so the average is 0 and argmax picks class 0 for every image.
    predictions = {"logits": result.logits, "logits_flipped": result.logits_flipped, "labels": labels}
    assert torch.allclose(tta_logits(predictions), torch.zeros(4, 2))
    assert result.accuracy == pytest.approx(0.5)
    assert head_accuracies(predictions) == {
        "main": pytest.approx(0.75),
        "main + flip TTA": pytest.approx(0.5),
    }


def test_head_accuracies_include_aux_heads():
    labels = torch.tensor([0, 1, 1, 0])
    hit = torch.tensor([[2.0, 0.0], [0.0, 2.0], [0.0, 2.0], [2.0, 0.0]])
    half = torch.tensor([[2.0, 0.0], [2.0, 0.0], [0.0, 2.0], [0.0, 2.0]])
    predictions = {"logits": hit, "logits_flipped": None, "aux1": half, "aux2": hit, "labels": labels}
    assert head_accuracies(predictions) == {"main": 1.0, "aux1": 0.5, "aux2": 1.0}
    with pytest.raises(ValueError, match="tta=False"):
        tta_logits(predictions)


# ---------------------------------------------------------------- run directories


def write_fake_run(
    run_dir, *, aux: bool, accuracy: float, epochs: int, seconds: float, params: tuple[int, int]
):
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps({"epochs": epochs}))
    with open(run_dir / "history.csv", "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=["epoch", "val_accuracy", "train_loss_aux1", "lr"])
        writer.writeheader()
        for epoch in range(1, epochs + 1):
            aux_loss = 1.0 / epoch if aux else ""
            writer.writerow({"epoch": epoch, "val_accuracy": accuracy - 0.01 * (epochs - epoch),
                             "train_loss_aux1": aux_loss, "lr": 0.1 / epoch})  # fmt: skip
    metrics = {
        "test_accuracy": accuracy, "test_accuracy_no_tta": accuracy - 0.002,
        "best_val_accuracy": accuracy + 0.001, "best_epoch": epochs, "epochs": epochs,
        "train_seconds": seconds,
        "parameters": {"train": params[0], "inference": params[1]}, "device": "NVIDIA H100",
        "data": {"source": "CIFAR-10 (official files, md5-verified)"},
    }  # fmt: skip
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    logits = torch.zeros(2, 10)
    torch.save({"logits": logits, "logits_flipped": logits, "aux1": logits if aux else None,
                "aux2": logits if aux else None, "labels": torch.zeros(2, dtype=torch.long)},
               run_dir / "test_predictions.pt")  # fmt: skip


def test_ablation_table_from_two_fake_runs(tmp_path):
    write_fake_run(
        tmp_path / "with_aux",
        aux=True,
        accuracy=0.95,
        epochs=3,
        seconds=300.0,
        params=(10_333_886, 5_983_402),
    )
    write_fake_run(
        tmp_path / "no_aux", aux=False, accuracy=0.94, epochs=2, seconds=250.0, params=(5_983_402, 5_983_402)
    )
    rows = ablation_table([tmp_path / "with_aux", tmp_path / "no_aux"])
    assert [row["run"] for row in rows] == ["with_aux", "no_aux"]
    assert [row["aux heads"] for row in rows] == ["yes", "no"]
    assert [row["test accuracy"] for row in rows] == [0.95, 0.94]
    assert [row["best epoch"] for row in rows] == [3, 2]
    assert [row["train time (s)"] for row in rows] == [300.0, 250.0]
    assert rows[0]["params (training)"] == 10_333_886 and rows[0]["params (inference)"] == 5_983_402
    text = format_table(rows)
    assert "10,333,886" in text and "0.9500" in text and len(text.splitlines()) == 4


def test_history_reading_and_missing_files(tmp_path):
    write_fake_run(tmp_path / "run", aux=False, accuracy=0.9, epochs=2, seconds=1.0, params=(1, 1))
    history = read_history(tmp_path / "run" / "history.csv")
    assert history[0] == {"epoch": 1, "val_accuracy": pytest.approx(0.89), "train_loss_aux1": None, "lr": 0.1}
    assert isinstance(history[1]["epoch"], int)
    (tmp_path / "run" / "metrics.json").unlink()
    with pytest.raises(FileNotFoundError, match="not a finished run: it lacks metrics.json"):
        load_run(tmp_path / "run")


# ---------------------------------------------------------------- inside the network


def test_branch_feature_maps_are_the_four_parts_of_the_output():
    model = GoogLeNet(10, variant="cifar", width=0.25).eval()
    images = torch.randn(1, 3, 32, 32)
    x = module_input(model, "inception3a", images)
    maps = branch_feature_maps(model.inception3a, x)
    assert list(maps) == ["branch1x1", "branch3x3", "branch5x5", "branch_pool"]
    with torch.no_grad():
        assert torch.equal(torch.cat(list(maps.values()), dim=1), model.inception3a(x))
    _, c1, _, c3, _, c5, pool = (round(c * 0.25) for c in INCEPTION_TABLE["3a"])
    assert [m.shape[1] for m in maps.values()] == [c1, c3, c5, pool]


def test_grad_cam_finds_the_evidence():
    # One feature channel = image brightness; the class-0 score is its global average.
    model = nn.Sequential(
        nn.Conv2d(3, 1, 1, bias=False), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(1, 2)
    )
    with torch.no_grad():
        model[0].weight.fill_(1.0)
        model[3].weight.copy_(torch.tensor([[1.0], [-1.0]]))
        model[3].bias.zero_()
    images = torch.zeros(2, 3, 32, 32)
    images[0, :, :8, :8] = 1.0  # evidence in the top-left corner
    images[1, :, 24:, 20:] = 1.0  # and bottom-right
    cams = grad_cam(model, images, model[0], classes=torch.tensor([0, 0]))
    assert cams.shape == (2, 32, 32) and cams.min() >= 0 and cams.max() <= 1
    assert cams[0, :8, :8].mean() > 0.9 and cams[0, 16:, 16:].max() < 0.1
    assert cams[1, 24:, 20:].mean() > 0.9 and cams[1, :8, :8].max() < 0.1


def test_branch_shares_match_the_channel_table():
    model = GoogLeNet(1000, variant="imagenet", aux_logits=False)
    rows = branch_shares(model, 224)
    assert [row["module"] for row in rows] == list(INCEPTION_TABLE)
    for row, (_, c1, _, c3, _, c5, pool) in zip(rows, INCEPTION_TABLE.values(), strict=True):
        assert [row[f"{b} channels"] for b in BRANCH_LABELS.values()] == [c1, c3, c5, pool]
    side = 28  # 3a at 224 px
    c_in, c1, c3r, c3, c5r, c5, pool = INCEPTION_TABLE["3a"]
    assert rows[0]["1x1 MACs"] == c_in * c1 * side**2
    assert rows[0]["5x5 MACs"] == (c_in * c5r + 25 * c5r * c5) * side**2


def test_first_layer_filters_are_scaled_images():
    filters = first_layer_filters(GoogLeNet(10, variant="imagenet", width=0.5))
    assert filters.shape == (32, 3, 7, 7) and filters.min() == 0 and filters.max() == 1


# ---------------------------------------------------------------- every plot on a tiny real run


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    make_synthetic_cifar10(root, n_train=400, n_test=100)
    data = load_cifar10(root, verify=False)
    torch.manual_seed(0)
    model = GoogLeNet(10, variant="cifar", width=0.125)
    config = TrainConfig(epochs=2, batch_size=64, lr=0.05, warmup_epochs=0.5, val_size=100, progress=False,
                         run_dir=str(tmp_path_factory.mktemp("run")))  # fmt: skip
    fit(model, data, config)
    return load_run(config.run_dir), model, data


def assert_labelled(fig: Figure) -> None:
    """Plots label both axes (colour bars at least one); image panels sit under a figure title."""
    assert isinstance(fig, Figure)
    for ax in fig.axes:
        if not ax.axison:
            assert fig.get_suptitle() or ax.get_title(), "an image panel with no title anywhere"
        elif ax.get_label() == "<colorbar>":
            assert ax.get_xlabel() or ax.get_ylabel(), "unlabelled colour bar"
        else:
            assert ax.get_xlabel() and ax.get_ylabel(), f"axes {ax.get_title()!r} lack a label"


def test_every_plot_draws_a_tiny_run(tiny_run):
    run, model, data = tiny_run
    predictions = run.predictions
    labels = predictions["labels"]
    probabilities = tta_logits(predictions).softmax(1)
    confusion = confusion_matrix(labels, probabilities.argmax(1), 10)
    images = data.test_images
    x = (images[:1].float() - 128) / 64
    figures = [
        plots.plot_learning_curves(run.history),
        plots.plot_confusion(confusion, data.classes),
        plots.plot_confusion(confusion, data.classes, normalised=False),
        plots.plot_precision_recall(*precision_recall(confusion), data.classes),
        plots.plot_reliability(reliability(probabilities, labels)),
        plots.plot_mistakes(images, confident_mistakes(probabilities, labels, k=8), data.classes),
        plots.plot_head_accuracies(head_accuracies(predictions)),
        plots.plot_feature_maps(
            branch_feature_maps(model.inception3a, module_input(model, "inception3a", x)), images[0]
        ),
        plots.plot_filters(first_layer_filters(model)),
        plots.plot_grad_cam(
            images[:2], grad_cam(model, (images[:2].float() - 128) / 64, model.inception5b), ["a", "b"]
        ),
        plots.plot_branch_shares(branch_shares(model, 32)),
        plots.plot_image_grid(data.train_images, data.train_labels, data.classes, per_class=3),
        plots.plot_class_counts({"train": [40] * 10, "test": [10] * 10}, data.classes),
        plots.plot_augmentations(images[:2], [images[:2], images[:2].flip(3)]),
        plots.draw_inception_module(reduced=True, channels=INCEPTION_TABLE["3a"]),
        plots.draw_inception_module(reduced=False),
        plots.plot_cost_comparison(["3a", "3b"], [1e6, 2e6], [0.5e6, 1e6], "parameters", "millions"),
    ]
    for fig in figures:
        assert_labelled(fig)


def test_plots_never_call_show(monkeypatch, tiny_run):
    run, _, _ = tiny_run
    monkeypatch.setattr(plt, "show", lambda *a, **k: pytest.fail("plt.show() was called"))
    opened = plt.get_fignums()
    plots.plot_learning_curves(run.history)
    assert plt.get_fignums() == opened  # nothing left in pyplot for a notebook to show twice
