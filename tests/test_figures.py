"""The figures this issue changed: what each shows is computed, readable (>= 9 pt) and on one scale."""

import matplotlib
import numpy as np
import pytest
import torch
from conftest import assert_labelled

from googlenet_utils import plots
from googlenet_utils.recipe import lr_factor

matplotlib.use("Agg")


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
