"""Analysis on inputs whose answers are worked out by hand, and every plot on a tiny real run."""

import dataclasses

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from conftest import assert_labelled, make_metrics
from torch import nn

from googlenet_utils import (
    CIFAR10Data,
    GoogLeNet,
    ModelConfig,
    RunDir,
    load_run,
    model_from_checkpoint,
    plots,
)
from googlenet_utils.analysis import (
    ablation_table,
    confident_mistakes,
    confusion_matrix,
    differing_settings,
    expected_calibration_error,
    flip_logits,
    format_table,
    head_accuracies,
    most_confused_pairs,
    paired_run_change,
    precision_recall,
    reliability,
    row_normalised,
    run_test_data,
    stage_summary,
)
from googlenet_utils.evaluation import Predictions
from googlenet_utils.loader import random_crop_flip
from googlenet_utils.model import INCEPTION_TABLE
from googlenet_utils.probes import (
    BRANCH_LABELS,
    branch_feature_maps,
    branch_shares,
    first_layer_filters,
    grad_cam,
    module_input,
)

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


def test_head_accuracies_include_aux_heads():
    labels = torch.tensor([0, 1, 1, 0])
    hit = torch.tensor([[2.0, 0.0], [0.0, 2.0], [0.0, 2.0], [2.0, 0.0]])
    half = torch.tensor([[2.0, 0.0], [2.0, 0.0], [0.0, 2.0], [0.0, 2.0]])
    predictions = Predictions(labels, hit, aux={"aux1": half, "aux2": hit})
    assert head_accuracies(predictions) == {"main": 1.0, "aux1": 0.5, "aux2": 1.0}
    with pytest.raises(ValueError, match="tta='none'"):
        flip_logits(predictions)
    both = dataclasses.replace(predictions, flipped=half, tta=half)
    assert head_accuracies(both, tta="flip+translate") == {
        "main": 1.0,
        "main + flip TTA": pytest.approx(0.75),
        "main + flip+translate TTA": 0.5,
        "aux1": 0.5,
        "aux2": 1.0,
    }


# ---------------------------------------------------------------- run directories


def write_fake_run(
    run_dir, *, aux: bool, accuracy: float, epochs: int, seconds: float, params: tuple[int, int]
):
    run = RunDir(run_dir)
    run.prepare()
    model = ModelConfig(num_classes=10, variant="cifar", aux_logits=aux)
    run.write_config(
        {
            "train": {"epochs": epochs},
            "model": model.to_dict(),
            "data": {},
            "normalisation": {"mean": [1, 2, 3], "std": [4, 5, 6]},
        }
    )
    run.write_history(
        [
            {
                "epoch": e,
                "val_accuracy": accuracy - 0.01 * (epochs - e),
                "train_loss_aux1": 1.0 / e if aux else None,
                "lr": 0.1 / e,
            }
            for e in range(1, epochs + 1)
        ]
    )
    run.write_metrics(
        make_metrics(
            test_accuracy=accuracy,
            test_accuracy_no_tta=accuracy - 0.002,
            best_val_accuracy=accuracy + 0.001,
            best_epoch=epochs,
            epochs=epochs,
            train_seconds=seconds,
            parameters={"train": params[0], "inference": params[1]},
            device="NVIDIA H100 80GB HBM3",
            data={"source": "CIFAR-10 (official files, md5-verified)"},
        )
    )
    logits = torch.zeros(2, 10)
    heads = {"aux1": logits, "aux2": logits} if aux else {}
    labels = torch.zeros(2, dtype=torch.long)
    run.write_predictions(Predictions(labels, logits, flipped=logits, aux=heads), ["a"] * 10)


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


def test_a_run_reads_back_through_the_run_directory(tmp_path):
    write_fake_run(tmp_path / "run", aux=False, accuracy=0.9, epochs=2, seconds=1.0, params=(1, 1))
    record = load_run(tmp_path / "run")
    assert record.history[0] == {
        "epoch": 1,
        "val_accuracy": pytest.approx(0.89),
        "train_loss_aux1": None,
        "lr": 0.1,
    }
    assert record.model_config.aux_logits is False and record.stats[0].tolist() == [1, 2, 3]


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
    model = GoogLeNet(10, variant="imagenet", width=0.5)
    each = first_layer_filters(model, one_scale=False)  # every kernel stretched on its own
    assert each.shape == (32, 3, 7, 7) and each.min() == 0 and each.max() == 1
    shared = first_layer_filters(model)  # one scale: grey is zero, the strongest weight reaches 0 or 1
    weights = model.stem.conv1.conv.weight.detach()
    assert 0 <= shared.min() and shared.max() <= 1
    assert torch.isclose((shared - 0.5).abs().max(), torch.tensor(0.5))
    torch.testing.assert_close(shared - 0.5, weights / (2 * weights.abs().max()))


# ---------------------------------------------------------------- every plot on a tiny real run


@pytest.fixture(scope="module")
def tiny_run(finished_run, synthetic):
    record = load_run(finished_run.run_dir)
    model = model_from_checkpoint(finished_run.run_dir / "best.pt")
    return record, model, synthetic


@pytest.fixture(scope="module")
def scores(tiny_run):
    """The run's test labels, its (TTA) probabilities and their confusion matrix."""
    run, _, _ = tiny_run
    labels = run.predictions.labels
    probabilities = run.predictions.combined().softmax(1)
    return labels, probabilities, confusion_matrix(labels, probabilities.argmax(1), 10)


def rgb(pixels: torch.Tensor) -> np.ndarray:
    """What an image panel must hold: C x H x W pixels (uint8, or float in [0, 1]) as H x W x C in [0, 1]."""
    array = pixels.detach().permute(1, 2, 0).double().numpy()
    return array / 255 if pixels.dtype == torch.uint8 else array


def shown(ax) -> np.ndarray:
    (image,) = ax.get_images()
    return np.asarray(image.get_array())


def panels(fig, rows: int, columns: int) -> np.ndarray:
    """A figure's grid of subplots as rows x columns (colour bars, added last, left out)."""
    return np.array(fig.axes[: rows * columns], dtype=object).reshape(rows, columns)


def heights(bars) -> list[float]:
    return [bar.get_height() for bar in bars]


def centres(bars) -> list[float]:
    return [bar.get_x() + bar.get_width() / 2 for bar in bars]


def tick_texts(labels) -> list[str]:
    return [label.get_text() for label in labels]


def test_learning_curves_draw_each_history_column_against_the_epoch(tiny_run):
    run, _, _ = tiny_run
    fig = plots.plot_learning_curves(run.history)
    assert_labelled(fig)
    loss_ax, acc_ax, lr_ax = fig.axes
    epochs = [row["epoch"] for row in run.history]
    assert epochs == [1, 2, 3]
    plotted = {
        loss_ax: {
            "train, main head": "train_loss_main",
            "train, aux1 head": "train_loss_aux1",
            "train, aux2 head": "train_loss_aux2",
            "validation, main head": "val_loss",  # every epoch validated: no "(k of n epochs)"
        },
        acc_ax: {
            "train (augmented), main": "train_accuracy",
            "validation, main": "val_accuracy",
            "validation, aux1": "val_accuracy_aux1",
            "validation, aux2": "val_accuracy_aux2",
        },
    }
    for ax, columns in plotted.items():
        lines = {line.get_label(): line for line in ax.lines}
        assert set(lines) == set(columns)
        for label, column in columns.items():
            assert list(lines[label].get_xdata()) == epochs
            assert list(lines[label].get_ydata()) == pytest.approx([row[column] for row in run.history])
    (lr_line,) = lr_ax.lines  # without config=: the rate recorded at the end of each epoch
    assert list(lr_line.get_xdata()) == epochs
    assert list(lr_line.get_ydata()) == pytest.approx([row["lr"] for row in run.history])


@pytest.mark.parametrize("normalised", [True, False])
def test_the_confusion_image_is_the_matrix_with_its_cells_printed(tiny_run, scores, normalised):
    _, _, data = tiny_run
    *_, confusion = scores
    fig = plots.plot_confusion(confusion, data.classes, normalised=normalised)
    assert_labelled(fig)
    ax, _colourbar = fig.axes
    expected = (row_normalised(confusion) if normalised else confusion).numpy()
    np.testing.assert_allclose(shown(ax), expected)
    if normalised:
        np.testing.assert_allclose(shown(ax).sum(axis=1), 1)  # rows (true classes), not columns, sum to 1
    cells = {(round(t.get_position()[1]), round(t.get_position()[0])): t.get_text() for t in ax.texts}
    assert cells == {
        (i, j): f"{value:.0%}" if normalised else str(int(value))
        for (i, j), value in np.ndenumerate(expected)
        if value  # empty cells stay blank
    }
    assert tick_texts(ax.get_xticklabels()) == tick_texts(ax.get_yticklabels()) == data.classes


def test_precision_and_recall_bars_are_the_computed_shares(tiny_run, scores):
    _, _, data = tiny_run
    *_, confusion = scores
    precision, recall = precision_recall(confusion)
    assert not torch.equal(precision, recall)  # a swapped pair of series would fail
    fig = plots.plot_precision_recall(precision, recall, data.classes)
    assert_labelled(fig)
    ax = fig.axes[0]
    precision_bars, recall_bars = ax.containers
    assert heights(precision_bars) == pytest.approx(precision.tolist())
    assert heights(recall_bars) == pytest.approx(recall.tolist())
    assert centres(precision_bars) == pytest.approx(np.arange(10) - 0.2)  # left of each class tick
    assert centres(recall_bars) == pytest.approx(np.arange(10) + 0.2)
    zeros = int((precision == 0).sum() + (recall == 0).sum())
    assert [t.get_text() for t in ax.texts] == ["0"] * zeros
    assert tick_texts(ax.get_xticklabels()) == data.classes
    assert ax.get_legend_handles_labels()[1] == [
        "precision (right among predicted)",
        "recall (found among true)",
    ]


def test_the_reliability_diagram_draws_each_bins_accuracy_and_count(scores):
    labels, probabilities, _ = scores
    bins = reliability(probabilities, labels)
    fig = plots.plot_reliability(bins)
    assert_labelled(fig)
    ax, count_ax = fig.axes
    middles = ((bins.edges[:-1] + bins.edges[1:]) / 2).tolist()
    used = bins.counts > 0
    assert 1 < int(used.sum()) < len(used)  # some bins empty, so leaving them out is checked too
    assert centres(ax.patches) == pytest.approx([m for m, u in zip(middles, used, strict=True) if u])
    assert heights(ax.patches) == pytest.approx(bins.accuracy[used].tolist())
    assert [bar.get_width() for bar in ax.patches] == pytest.approx([1 / 15] * int(used.sum()))
    assert centres(count_ax.patches) == pytest.approx(middles)
    assert heights(count_ax.patches) == bins.counts.tolist()
    (diagonal,) = ax.lines
    assert list(diagonal.get_xdata()) == list(diagonal.get_ydata()) == [0, 1]
    assert f"ECE = {bins.ece:.3f} ({len(used)} bins, {int(used.sum())} with images)" in ax.get_title()


def test_the_mistake_gallery_shows_each_mistake_with_its_true_and_predicted_class(tiny_run, scores):
    _, _, data = tiny_run
    labels, probabilities, _ = scores
    mistakes = confident_mistakes(probabilities, labels, k=8)
    assert len(mistakes) == 8
    fig = plots.plot_mistakes(data.test_images, mistakes, data.classes)
    assert_labelled(fig)
    drawn = [ax for ax in fig.axes if ax.get_images()]
    assert len(drawn) == len(mistakes)  # one panel per mistake
    for ax, (index, true, predicted, confidence) in zip(drawn, mistakes, strict=True):
        np.testing.assert_allclose(shown(ax), rgb(data.test_images[index]), atol=1e-6)
        assert ax.get_title() == f"{data.classes[true]}\n→ {data.classes[predicted]} ({confidence:.0%})"


def test_head_accuracy_bars_are_each_heads_accuracy_first_on_top(tiny_run):
    run, _, _ = tiny_run
    accuracies = head_accuracies(run.predictions)
    assert list(accuracies) == ["main", "main + flip TTA", "aux1", "aux2"]
    assert len(set(accuracies.values())) == 4  # distinct, so bars in another order would fail
    fig = plots.plot_head_accuracies(accuracies)
    assert_labelled(fig)
    ax = fig.axes[0]
    assert [bar.get_width() for bar in ax.patches] == pytest.approx(list(accuracies.values()))
    rows = [bar.get_y() + bar.get_height() / 2 for bar in ax.patches]
    assert rows == sorted(rows, reverse=True) and list(ax.get_yticks()) == pytest.approx(rows)
    assert tick_texts(ax.get_yticklabels()) == list(accuracies)
    assert [t.get_text() for t in ax.texts] == [f"{value:.2%}" for value in accuracies.values()]


def test_feature_maps_are_each_branchs_first_channels_on_one_scale(tiny_run):
    _, model, data = tiny_run
    image = data.test_images[0]
    x = (data.test_images[:1].float() - 128) / 64
    maps = branch_feature_maps(model.inception3a, module_input(model, "inception3a", x))
    widths = [tensor.shape[1] for tensor in maps.values()]
    assert min(widths) < 8  # some branches fill fewer than the 8 columns shown
    fig = plots.plot_feature_maps(maps, image)
    assert_labelled(fig)
    grid = panels(fig, len(maps), 1 + 8)  # the input image, then 8 channels per branch
    np.testing.assert_allclose(shown(grid[0, 0]), rgb(image), atol=1e-6)
    assert not any(ax.get_images() for ax in grid[1:, 0])
    top = max(float(tensor[0, :8].max()) for tensor in maps.values())
    for row, (branch, tensor) in enumerate(maps.items()):
        assert [t.get_text() for t in grid[row, 1].texts] == [f"{BRANCH_LABELS[branch]} branch"]
        for k, ax in enumerate(grid[row, 1:]):
            if k >= tensor.shape[1]:
                assert not ax.get_images()  # a branch with fewer channels leaves its cell blank
                continue
            np.testing.assert_allclose(shown(ax), tensor[0, k].detach().numpy(), rtol=1e-6)
            assert ax.get_images()[0].get_clim() == pytest.approx((0, top))
    for k in range(8):  # every column drawn is headed once, on its top map
        headed = [ax.get_title() for ax in grid[:, k + 1] if ax.get_title()]
        assert headed == ([f"channel {k}"] if k < max(widths) else [])
    assert fig.get_suptitle().startswith(f"Up to the first {min(8, max(widths))} channels of each branch")


def test_filter_panels_are_the_first_layer_kernels(tiny_run):
    _, model, _ = tiny_run
    filters = first_layer_filters(model)
    assert len(filters) == model.stem.conv1.conv.out_channels
    fig = plots.plot_filters(filters)
    assert_labelled(fig)
    drawn = [ax for ax in fig.axes if ax.get_images()]
    assert len(drawn) == len(filters)
    for k, (ax, kernel) in enumerate(zip(drawn, filters, strict=True)):
        np.testing.assert_allclose(shown(ax), rgb(kernel), atol=1e-6)
        assert ax.get_title() == f"#{k}"
    assert fig.get_suptitle().startswith(f"The {len(filters)} first-layer filters (3x3 weights")


def test_grad_cam_overlays_each_heat_map_on_its_own_image(tiny_run):
    _, model, data = tiny_run
    images = data.test_images[:2]
    heatmaps = grad_cam(model, (images.float() - 128) / 64, model.inception5b)
    assert not torch.equal(heatmaps[0], heatmaps[1])  # so swapped maps would fail
    fig = plots.plot_grad_cam(images, heatmaps, ["a", "b"])
    assert_labelled(fig)
    grid = panels(fig, 2, 2)  # images on top, their Grad-CAM below
    for k in range(2):
        np.testing.assert_allclose(shown(grid[0, k]), rgb(images[k]), atol=1e-6)
        assert grid[0, k].get_title() == "ab"[k]
        below, heat = grid[1, k].get_images()
        np.testing.assert_allclose(np.asarray(below.get_array()), rgb(images[k]), atol=1e-6)
        np.testing.assert_allclose(np.asarray(heat.get_array()), heatmaps[k].numpy())
        assert heat.get_clim() == (0, 1) and heat.get_alpha() == 0.5


def test_branch_share_bars_stack_each_branchs_share_of_channels_and_macs(tiny_run):
    _, model, _ = tiny_run
    rows = branch_shares(model, 32)
    fig = plots.plot_branch_shares(rows)
    assert_labelled(fig)
    modules = [row["module"] for row in rows]
    for ax, quantity in zip(fig.axes, ("channels", "MACs"), strict=True):
        values = np.array([[row[f"{b} {quantity}"] for b in BRANCH_LABELS.values()] for row in rows])
        shares = values / values.sum(axis=1, keepdims=True)  # modules x branches
        assert len(ax.containers) == len(BRANCH_LABELS)
        for j, (bars, branch) in enumerate(zip(ax.containers, BRANCH_LABELS.values(), strict=True)):
            assert bars.get_label() == branch
            assert heights(bars) == pytest.approx(shares[:, j])
            assert [bar.get_y() for bar in bars] == pytest.approx(shares[:, :j].sum(axis=1))  # stacked
        assert tick_texts(ax.get_xticklabels()) == modules
    # 3a at width 1/16: 4 + 8 + 2 + 2 channels, so the 1x1 branch carries a quarter of them
    assert fig.axes[0].containers[0][0].get_height() == pytest.approx(4 / 16)


def test_the_image_grid_shows_the_first_images_of_each_class_in_its_row(synthetic):
    data = synthetic
    fig = plots.plot_image_grid(data.train_images, data.train_labels, data.classes, per_class=3)
    assert_labelled(fig)
    assert sum(bool(ax.get_images()) for ax in fig.axes) == len(data.classes) * 3
    grid = panels(fig, len(data.classes), 3)
    for row, name in enumerate(data.classes):
        assert grid[row, 0].get_title(loc="left") == name
        members = torch.nonzero(data.train_labels == row).flatten()[:3]
        for ax, index in zip(grid[row], members.tolist(), strict=True):
            np.testing.assert_allclose(shown(ax), rgb(data.train_images[index]), atol=1e-6)


def test_class_count_bars_are_each_splits_distance_from_an_equal_share(synthetic):
    train = torch.bincount(synthetic.train_labels).tolist()
    skewed = [30 + 2 * k for k in range(10)]  # 390 images: class 0 has 7.69%, class 9 12.31%
    fig = plots.plot_class_counts({"train": train, "skewed": skewed}, synthetic.classes)
    assert_labelled(fig)
    ax = fig.axes[0]
    train_bars, skewed_bars = ax.containers
    assert heights(train_bars) == pytest.approx([0.0] * 10)  # 60 of each: an equal share, not a count
    expected = [100 * n / 390 - 10 for n in skewed]  # percentage points from 10%
    assert heights(skewed_bars) == pytest.approx(expected)
    assert list(ax.lines[1].get_ydata()) == pytest.approx(expected)  # the dots that show a zero too
    assert centres(train_bars) == pytest.approx(np.arange(10) - 0.2)
    assert ax.get_legend_handles_labels()[1] == ["train: largest 0.00 pp", "skewed: largest 2.31 pp"]
    assert tick_texts(ax.get_xticklabels()) == synthetic.classes


def test_augmentation_rows_show_each_original_then_its_augmented_versions(synthetic):
    originals = synthetic.test_images[:2]
    shifted = random_crop_flip(originals, torch.tensor([[0, 0], [8, 8]]), torch.tensor([False, False]))
    flipped = random_crop_flip(originals, torch.tensor([[4, 4], [4, 4]]), torch.tensor([True, True]))
    assert not torch.equal(shifted, originals) and not torch.equal(flipped, originals)
    fig = plots.plot_augmentations(originals, [shifted, flipped], ["shifted", "flipped"])
    assert_labelled(fig)
    grid = panels(fig, 2, 3)
    for row in range(2):
        for ax, batch in zip(grid[row], (originals, shifted, flipped), strict=True):
            np.testing.assert_allclose(shown(ax), rgb(batch[row]), atol=1e-6)
    assert [ax.get_title() for ax in grid[0]] == ["original", "shifted", "flipped"]


def test_the_reduced_inception_module_prints_the_channel_table():
    assert INCEPTION_TABLE["3a"] == (192, 64, 96, 128, 16, 32, 32)
    fig = plots.draw_inception_module(reduced=True, channels=INCEPTION_TABLE["3a"])
    assert_labelled(fig)
    (ax,) = fig.axes
    assert sorted(t.get_text() for t in ax.texts) == sorted(
        [
            "previous layer\n(192)",
            "1x1 conv\n(64)",
            "1x1 conv, reduce\n(96)",
            "3x3 conv\n(128)",
            "1x1 conv, reduce\n(16)",
            "5x5 conv\n(32)",
            "3x3 max pool\n(192)",  # pooling keeps the input's channels
            "1x1 conv, projection\n(32)",
            "filter concatenation\n(256)",  # 64 + 128 + 32 + 32
        ]
    )
    assert len(ax.patches) == 9 + 11  # 9 boxes; arrows: 2 up the 1x1 column, 3 up each other


def test_the_naive_inception_module_has_no_reductions():
    fig = plots.draw_inception_module(reduced=False)
    assert_labelled(fig)
    (ax,) = fig.axes
    names = ["previous layer", "1x1 conv", "3x3 conv", "5x5 conv", "3x3 max pool", "filter concatenation"]
    assert sorted(t.get_text() for t in ax.texts) == sorted(names)  # no channel numbers when none given
    wide = plots.draw_inception_module(reduced=False, channels=INCEPTION_TABLE["3a"])
    assert "filter concatenation\n(416)" in [t.get_text() for t in wide.axes[0].texts]  # 64 + 128 + 32 + 192


def test_cost_bars_are_the_given_values_in_the_given_unit():
    naive, reduced = [1.5, 2.5], [0.4, 0.6]  # already in millions: the function draws values as given
    fig = plots.plot_cost_comparison(["3a", "3b"], naive, reduced, "parameters", "millions")
    assert_labelled(fig)
    ax = fig.axes[0]
    naive_bars, reduced_bars = ax.containers
    assert heights(naive_bars) == naive and heights(reduced_bars) == reduced
    assert centres(naive_bars) == pytest.approx([-0.2, 0.8]) and centres(reduced_bars) == pytest.approx(
        [0.2, 1.2]
    )
    assert ax.get_legend_handles_labels()[1] == ["naive", "with 1x1 reductions"]
    assert tick_texts(ax.get_xticklabels()) == ["3a", "3b"] and ax.get_ylabel() == "parameters (millions)"
    assert ax.get_ylim()[1] == pytest.approx(1.25 * 2.5)


def test_plots_never_call_show(monkeypatch, tiny_run):
    run, _, _ = tiny_run
    monkeypatch.setattr(plt, "show", lambda *a, **k: pytest.fail("plt.show() was called"))
    opened = plt.get_fignums()
    plots.plot_learning_curves(run.history)
    assert plt.get_fignums() == opened  # nothing left in pyplot for a notebook to show twice


# ---------------------------------------------------------------- which images a run was tested on


def _data() -> CIFAR10Data:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (30, 3, 32, 32), dtype=torch.uint8, generator=generator)
    labels = torch.arange(30) % 2
    return CIFAR10Data(images[:20], labels[:20], images[20:], labels[20:], ["even", "odd"], "two classes")


def test_run_test_data_finds_the_data_or_the_recorded_subset():
    data = _data()
    assert run_test_data(data, data.fingerprint()) is data
    subset = data.subset(8, 4)
    found = run_test_data(data, subset.fingerprint())  # the sizes it records lead to the subset
    assert found is not None and torch.equal(found.test_images, subset.test_images)
    assert found.test_labels.tolist() == [0, 1, 0, 1]  # class-balanced: 2 + 2 of the 10 test images
    other = {**subset.fingerprint(), "digest": "0" * 24}
    assert run_test_data(data, other) is None
    assert run_test_data(data, {**data.fingerprint(), "digest": "0" * 24}) is None


def test_two_runs_are_compared_by_settings_and_image_by_image(finished_run):
    record = load_run(finished_run.run_dir)
    train = {**record.config["train"], "lr": 0.5, "run_dir": "elsewhere", "device": "cuda"}
    other = dataclasses.replace(record, config={**record.config, "train": train})
    assert differing_settings(record, other) == ["train.lr"]  # where and on what it ran do not count
    older = {key: value for key, value in train.items() if key != "wall_limit"}  # recorded before it existed
    older_model = {key: value for key, value in record.config["model"].items() if key != "head"}
    before = dataclasses.replace(record, config={**record.config, "train": older, "model": older_model})
    assert differing_settings(record, before) == ["train.lr"]  # a setting not recorded had its default
    assert paired_run_change(record, other) == (0.0, 0.0)
    labels = record.predictions.labels
    wrong = dataclasses.replace(
        record.predictions, tta=torch.nn.functional.one_hot((labels + 1) % 10, 10).float()
    )
    change, error = paired_run_change(record, dataclasses.replace(record, predictions=wrong))
    right = (record.predictions.combined().argmax(1) == labels).double().mean().item()
    assert change == pytest.approx(-right) and error > 0
    elsewhere = dataclasses.replace(record, config={**record.config, "data": {"digest": "other"}})
    assert paired_run_change(record, elsewhere) is None


def test_the_stage_summary_cuts_the_history_where_the_image_side_changes():
    def row(epoch, side, train, val):
        aux1 = None if val is None else val - 0.1
        return {"epoch": epoch, "resolution": side, "train_accuracy": train, "val_accuracy": val,
                "val_accuracy_aux1": aux1, "val_accuracy_aux2": None}  # fmt: skip

    history = [row(1, 16, 0.3, None), row(2, 16, 0.4, 0.35), row(3, 24, 0.5, 0.45), row(4, 32, 0.7, 0.6)]
    first, second, third = stage_summary(history)
    assert (first["image side"], first["epochs"], first["train accuracy"]) == ("16 px", "1-2", 0.4)
    assert first["train - val"] == pytest.approx(0.05) and first["aux1"] == pytest.approx(0.25)
    assert (second["epochs"], third["image side"], third["val accuracy (main)"]) == ("3", "32 px", 0.6)
    unvalidated = stage_summary([row(1, 32, 0.3, None)])[0]
    assert unvalidated["val accuracy (main)"] is None and unvalidated["train - val"] is None
