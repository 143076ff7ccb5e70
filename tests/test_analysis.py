"""Analysis on inputs whose answers are worked out by hand, and every plot on a tiny real run."""

import dataclasses

import matplotlib
import matplotlib.pyplot as plt
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


def test_every_plot_draws_a_tiny_run(tiny_run):
    run, model, data = tiny_run
    predictions = run.predictions
    labels = predictions.labels
    probabilities = predictions.combined().softmax(1)
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
