"""The figures of googlenet_utils.plots: what each shows is computed, readable (>= 9 pt) and on one scale."""

import matplotlib
import numpy as np
import pytest
import torch
from conftest import Tiny, assert_labelled
from matplotlib.patches import Rectangle

from googlenet_utils import plots
from googlenet_utils.probes import branch_ablation, filter_structure
from googlenet_utils.recipe import lr_factor

matplotlib.use("Agg")  # no display in CI


def schedule(total, warmup, lr=0.1):
    return [
        lr * lr_factor(s, total_steps=total, warmup_steps=warmup, schedule="linear") for s in range(total)
    ]


def test_the_warm_up_zoom_is_a_real_zoom_with_a_computed_title():
    fig = plots.plot_lr_schedule(schedule(1560, 312), warmup_steps=312, steps_per_epoch=312, reference=None)
    assert_labelled(fig)
    run_ax, zoom_ax = fig.axes
    assert "312 warm-up" in run_ax.get_title() and "312-step warm-up" in zoom_ax.get_title()
    assert zoom_ax.get_xlim()[1] < 20  # a few steps, each visible, not three times the warm-up
    assert zoom_ax.get_ylim()[1] < 0.1 * run_ax.get_ylim()[1]  # zoomed on the rate too
    assert "each step adds 0.000321" in zoom_ax.get_title()  # 0.1 / 312


def test_a_short_warm_up_is_shown_whole():
    fig = plots.plot_lr_schedule(schedule(30, 6), warmup_steps=6, steps_per_epoch=10)
    assert "the whole 6-step warm-up" in fig.axes[1].get_title()


def test_filters_share_one_scale_and_readable_notes():
    fig = plots.plot_filters(torch.rand(9, 3, 3, 3), notes=[f"edge {k}\ncolour {k}" for k in range(9)])
    assert "one scale for all" in fig.get_suptitle()
    assert all(ax.title.get_fontsize() >= 9 for ax in fig.axes)


def test_branch_energy_prints_the_number_its_colour_encodes():
    shares = torch.tensor([[0.3, 0.5, 0.1, 0.1], [0.2, 0.5, 0.2, 0.1]])
    fig = plots.plot_branch_energy({"3a": shares}, ["a", "b"], {"3a": [0.25, 0.5, 0.125, 0.125]})
    assert_labelled(fig)
    ax = fig.axes[0]
    deviations = 100 * (shares - shares.mean(dim=0, keepdim=True))
    printed = [float(text.get_text()) for text in ax.texts]
    assert printed == pytest.approx(deviations.flatten().tolist(), abs=0.05)
    assert np.allclose(ax.get_images()[0].get_array(), deviations.numpy())  # the colour is that number
    assert all(text.get_fontsize() >= 9 for text in ax.texts)
    assert all(label.get_fontsize() >= 9 for label in ax.get_xticklabels() + ax.get_yticklabels())


def test_grad_cam_titles_are_readable():
    images = torch.randint(0, 256, (8, 3, 8, 8), dtype=torch.uint8)
    fig = plots.plot_grad_cam(images, torch.rand(8, 8, 8), [f"class {k}\nin box 50%" for k in range(8)])
    titled = [ax for ax in fig.axes if ax.get_title()]
    assert len(titled) == 8 and all(ax.title.get_fontsize() >= 9 for ax in titled)


def test_gradient_norms_draw_the_summed_gradient_too():
    norms = {"case": {"main": [1.0, 2.0], "aux": [0.3, 0.0], "total": [1.05, 2.0]}}
    fig = plots.plot_gradient_norms(norms, ["conv1", "5b"])
    assert_labelled(fig)
    assert len(fig.axes[0].patches) == 5  # main 2, aux 1 (a zero is written, not drawn), total 2
    assert "all heads together (what SGD follows)" in [t.get_text() for t in fig.legends[0].get_texts()]


# ---------------------------------------------------------------- the figures notebook 05 draws with them


CLASSES = [f"class {k}" for k in range(10)]


def test_head_accuracy_bars_start_at_zero_and_mark_guessing():
    fig = plots.plot_head_accuracies({"main": 0.9, "main + flip TTA": 0.91, "aux1": 0.8, "aux2": 0.85}, 0.1)
    assert_labelled(fig)
    ax = fig.axes[0]
    assert ax.get_xlim()[0] == 0
    assert [bar.get_width() for bar in ax.patches] == pytest.approx([0.9, 0.91, 0.8, 0.85])
    assert any(line.get_xdata()[0] == 0.1 for line in ax.lines)  # the guessing line


def test_feature_maps_share_one_colour_scale():
    maps = {"branch1x1": torch.rand(1, 3, 8, 8), "branch5x5": 5 * torch.rand(1, 2, 8, 8)}
    fig = plots.plot_feature_maps(maps, torch.randint(0, 256, (3, 8, 8), dtype=torch.uint8), channels=3)
    assert_labelled(fig)
    maps_drawn = [image for ax in fig.axes for image in ax.get_images() if image.get_array().ndim == 2]
    assert len(maps_drawn) == 5  # the RGB input image is not a map
    limits = {image.get_clim() for image in maps_drawn}
    assert len(limits) == 1  # one scale for every map
    low, high = limits.pop()
    assert low == 0 and high == pytest.approx(float(maps["branch5x5"].max()))
    assert any(ax.get_label() == "<colorbar>" for ax in fig.axes)


def test_filters_form_a_square_grid_with_notes():
    filters = torch.rand(9, 3, 3, 3)
    fig = plots.plot_filters(filters, notes=[f"n{k}" for k in range(9)])
    assert_labelled(fig)
    assert [ax.get_title() for ax in fig.axes] == [f"n{k}" for k in range(9)]  # 3 x 3, none left over


def test_grad_cam_draws_boxes_and_a_colour_bar():
    images = torch.randint(0, 256, (3, 3, 8, 8), dtype=torch.uint8)
    fig = plots.plot_grad_cam(images, torch.rand(3, 8, 8), ["a", "b", "c"], [(0, 0, 4, 4)] * 3, columns=2)
    assert_labelled(fig)
    assert sum(isinstance(p, Rectangle) for ax in fig.axes for p in ax.patches) == 6  # on image and map
    assert any(ax.get_label() == "<colorbar>" for ax in fig.axes)


def test_the_ablation_figure_draws_each_rows_change_in_points():
    rows = branch_ablation(Tiny(), [(torch.ones(2, 1, 4, 4), torch.tensor([1, 1]))], ["inception3a"])
    fig = plots.plot_branch_ablation(rows)
    assert_labelled(fig)
    ax = fig.axes[0]
    bars = ax.patches  # one per row, in the rows' order, the first row at the top
    assert [bar.get_width() for bar in bars] == pytest.approx([100 * row["change"] for row in rows])
    assert [bar.get_y() for bar in bars] == sorted((bar.get_y() for bar in bars), reverse=True)
    assert [t.get_text() for t in ax.get_yticklabels()] == [f"{r['module']}: {r['branch']}" for r in rows]


def test_the_filter_figure_marks_each_networks_mean_and_the_random_weights_average():
    weights = torch.randn(16, 3, 3, 3, generator=torch.Generator().manual_seed(0))
    measures = {"trained": filter_structure(weights), "untrained": filter_structure(weights.flip(2))}
    chance = {"edge fit": 0.25, "colour share": 2 / 3}
    fig = plots.plot_filter_structure(measures, chance)
    assert_labelled(fig)
    for ax, quantity in zip(fig.axes, chance, strict=True):
        means = [line.get_xdata()[0] for line in ax.lines if line.get_color() == "black"]
        expected = [float(result[quantity][~result[quantity].isnan()].mean()) for result in measures.values()]
        assert means == pytest.approx(expected, abs=1e-6)
        dots = [line for line in ax.lines if line.get_marker() == "o"]
        assert [len(d.get_xdata()) for d in dots] == [
            int((~r[quantity].isnan()).sum()) for r in measures.values()
        ]
        assert any(
            line.get_linestyle() == "--" and line.get_xdata()[0] == chance[quantity] for line in ax.lines
        )


def span(patch) -> tuple[float, float]:
    """The x extent of an axvspan: a Rectangle (matplotlib 3.9 on) or a Polygon (before)."""
    if isinstance(patch, Rectangle):
        return patch.get_x(), patch.get_x() + patch.get_width()
    xs = patch.get_xy()[:, 0]
    return float(xs.min()), float(xs.max())


def test_learning_curves_shade_the_epochs_trained_on_smaller_images():
    history = [
        {"epoch": e, "resolution": side, "train_loss_main": 2.0 / e, "val_loss": 1.9 / e,
         "val_accuracy": 0.1 * e, "train_accuracy": 0.1 * e, "lr": 0.1}
        for e, side in enumerate((16, 16, 24, 32), start=1)
    ]  # fmt: skip
    fig = plots.plot_learning_curves(history)
    loss_ax, acc_ax, _ = fig.axes
    for ax in (loss_ax, acc_ax):
        labels = [label for label in ax.get_legend_handles_labels()[1] if label.startswith("trained at")]
        assert labels == ["trained at 16 px (validated at 32 px)", "trained at 24 px (validated at 32 px)"]
        bands = [patch for patch in ax.patches if patch.get_alpha() is not None]
        spans = sorted(span(patch) for patch in bands)
        assert len(bands) == 3 and spans[0][0] == 0 and spans[-1][1] == 3  # epochs 1-3, not epoch 4
    assert not any(
        label.startswith("trained at")
        for label in plots.plot_learning_curves([{**row, "resolution": 32} for row in history])
        .axes[1]
        .get_legend_handles_labels()[1]
    )  # one resolution: no bands
