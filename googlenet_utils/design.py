"""The design choices notebook 06 measures: each variant of the network, and the question it answers.

A ``Variant`` is a name, a one-line reason and the ``ModelConfig`` / ``TrainConfig`` settings that
differ from the course's network (width and recipe come from the sweep). A ``Choice`` groups the
variants that answer one question, names the paper's choice among them (the reference of every
paired difference) and says what the paper or the seed blog post claims, with the section.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# The smallest difference in test accuracy (percentage points) this course counts as "matters", fixed
# before any run: the paper's own gain from global pooling (about 0.6 points on ImageNet) lies below it.
MATTERS_PP = 1.0


@dataclass(frozen=True)
class Variant:
    """One network and recipe of a sweep: settings that differ from the course's network."""

    name: str
    reason: str
    model: dict[str, Any] = field(default_factory=dict)  # ModelConfig fields
    train: dict[str, Any] = field(default_factory=dict)  # TrainConfig fields

    def describe(self) -> str:
        """``"norm='lrn', aux_weight=1.0"``: what this variant changes, or ``"nothing"``."""
        changes = {**self.model, **self.train}
        return ", ".join(f"{k}={v!r}" for k, v in changes.items()) or "nothing (the course's network)"


_VARIANTS = (
    Variant("baseline", "the course's network: the paper's choices, with batch norm"),
    Variant("aux-0", "no auxiliary heads (an auxiliary loss weight of 0)", {"aux_logits": False}),
    Variant("aux-1", "auxiliary losses weighted like the main loss (1.0)", train={"aux_weight": 1.0}),
    Variant("lrn", "the paper's normalisation: LRN in the stem, no batch norm", {"norm": "lrn"}),
    Variant(
        "lrn-aux-0", "the paper's normalisation, no auxiliary heads", {"norm": "lrn", "aux_logits": False}
    ),
    Variant(
        "lrn-aux-1", "the paper's normalisation, auxiliary weight 1.0", {"norm": "lrn"}, {"aux_weight": 1.0}
    ),
    Variant("norm-none", "neither batch norm nor LRN", {"norm": "none"}),
    Variant("3x3", "a 3x3 kernel in the 5x5 branch (torchvision's googlenet)", {"five_by_five": "3x3"}),
    Variant(
        "3x3x2", "two stacked 3x3 kernels in the 5x5 branch (Inception-v2/v3)", {"five_by_five": "3x3x2"}
    ),
    Variant("naive", "the naive module: no 1x1 reductions before the 3x3 and 5x5", {"reduce": False}),
    Variant("fc-head", "flatten the last map into the linear layer instead of pooling", {"head": "fc"}),
    Variant("dropout-0", "no dropout before the final linear layer", {"dropout": 0.0}),
)
VARIANTS: dict[str, Variant] = {variant.name: variant for variant in _VARIANTS}


@dataclass(frozen=True)
class Choice:
    """One design question: the paper's variant, its alternatives, and the claim under test."""

    name: str
    question: str
    reference: str  # the paper's choice: every difference is alternative minus this
    alternatives: tuple[str, ...]
    claim: str  # what the paper or the seed blog post says, with where it says it

    @property
    def variants(self) -> tuple[str, ...]:
        return (self.reference, *self.alternatives)


CHOICES: tuple[Choice, ...] = (
    Choice(
        "aux heads (batch norm)",
        "Do the auxiliary classifiers, and their weight, change the final accuracy?",
        "baseline",
        ("aux-0", "aux-1"),
        "The auxiliary losses are added with a weight of 0.3, to encourage discrimination in the lower "
        "stages, add gradient signal and regularise (Szegedy et al. 2015, Section 5); the seed blog post "
        "repeats the gradient and regularisation reasons (its fourth advantage).",
    ),
    Choice(
        "aux heads (no batch norm)",
        "Do the auxiliary classifiers matter more in the paper's network, which has no batch norm?",
        "lrn",
        ("lrn-aux-0", "lrn-aux-1"),
        "The extra gradient signal was a concern for a deep network trained without batch norm "
        "(Szegedy et al. 2015, Section 5); batch norm appeared later (Ioffe & Szegedy 2015).",
    ),
    Choice(
        "5x5 branch",
        "Does the real 5x5 kernel matter, against a 3x3 or two stacked 3x3?",
        "baseline",
        ("3x3", "3x3x2"),
        "The filter sizes 1x1, 3x3 and 5x5 were chosen 'more on convenience rather than necessity' "
        "(Szegedy et al. 2015, Section 4); the seed blog post reads them as receptive fields that grow "
        "with depth (its second advantage). Two 3x3 cover a 5x5 window at less cost (Szegedy et al. "
        "2016, Rethinking the Inception Architecture, Section 3.1).",
    ),
    Choice(
        "1x1 reductions",
        "What do the 1x1 reductions cost in accuracy, and what do they save?",
        "baseline",
        ("naive",),
        "1x1 convolutions reduce dimensions before the expensive 3x3 and 5x5 convolutions, where the "
        "computation would otherwise blow up (Szegedy et al. 2015, Section 4, Figure 2); the seed blog "
        "post: the reduced module cuts the amount of computation.",
    ),
    Choice(
        "head",
        "Does global average pooling beat flattening the last map into the linear layer?",
        "baseline",
        ("fc-head",),
        "Moving from fully connected layers to average pooling improved top-1 accuracy by about 0.6% on "
        "ImageNet (Szegedy et al. 2015, Section 5); the seed blog post: far fewer parameters, and even a "
        "higher top-1 accuracy (its third advantage).",
    ),
    Choice(
        "normalisation",
        "Batch norm, the paper's LRN, or neither?",
        "lrn",
        ("baseline", "norm-none"),
        "The paper's stem uses local response normalisation (Szegedy et al. 2015, Figure 3); batch norm, "
        "introduced for an Inception network, reached its accuracy in 14 times fewer training steps "
        "(Ioffe & Szegedy 2015, abstract).",
    ),
    Choice(
        "dropout",
        "Does dropout 0.4 before the final layer still matter with global average pooling?",
        "baseline",
        ("dropout-0",),
        "The use of dropout remained essential even after removing the fully connected layers "
        "(Szegedy et al. 2015, Section 5); the seed blog post: dropout stays (its third advantage).",
    ),
)


def choice_variants(choices: tuple[Choice, ...] = CHOICES) -> list[str]:
    """Every variant the choices need, in the order they first appear."""
    return list(dict.fromkeys(name for choice in choices for name in choice.variants))
