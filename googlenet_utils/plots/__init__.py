"""Figures for the course. Each function returns a matplotlib ``Figure`` with labelled axes.

None of them calls ``plt.show()`` or touches pyplot's global state: a notebook displays the
returned figure (once), a script saves it with ``fig.savefig``. One module per subject:
``data`` (notebook 03), ``architecture`` (01, 02), ``network`` (the whole network, 02),
``training`` (04, 05), ``inside`` (05), ``design`` (06).
"""

from .architecture import draw_inception_module, plot_branch_shares, plot_cost_comparison, plot_gradient_norms
from .common import HEAD_COLOURS
from .data import plot_augmentations, plot_channel_histograms, plot_class_counts, plot_image_grid
from .design import plot_design_choice
from .inside import (
    plot_branch_ablation,
    plot_branch_energy,
    plot_feature_maps,
    plot_filter_structure,
    plot_filters,
    plot_grad_cam,
)
from .network import draw_network, stage_shapes
from .training import (
    plot_confusion,
    plot_head_accuracies,
    plot_learning_curves,
    plot_lr_schedule,
    plot_mistakes,
    plot_precision_recall,
    plot_reliability,
)

__all__ = [
    "HEAD_COLOURS",
    "draw_inception_module",
    "draw_network",
    "plot_augmentations",
    "plot_branch_ablation",
    "plot_branch_energy",
    "plot_branch_shares",
    "plot_channel_histograms",
    "plot_class_counts",
    "plot_confusion",
    "plot_cost_comparison",
    "plot_design_choice",
    "plot_feature_maps",
    "plot_filter_structure",
    "plot_filters",
    "plot_grad_cam",
    "plot_gradient_norms",
    "plot_head_accuracies",
    "plot_image_grid",
    "plot_learning_curves",
    "plot_lr_schedule",
    "plot_mistakes",
    "plot_precision_recall",
    "plot_reliability",
    "stage_shapes",
]
