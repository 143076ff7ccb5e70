"""Checks for the notebooks' "your turn" cells: each compares the learner's code with the package's.

A check raises ``ExerciseError`` with a plain-words reason when something is wrong, and prints
what passed otherwise. When the learner's own code raises, the check catches it and translates
the common mistakes (a missing padding, a pool with stride 2, a missing flatten) into what to
change. In a notebook the failure shows as that one message, without a traceback through the
check's own source. ``unfilled(obj)`` tells whether a skeleton still raises
``NotImplementedError``, so a notebook's solution cell never overwrites a learner's work.
"""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .analysis import expected_calibration_error
from .learner_values import as_number
from .loader import channel_stats
from .model import AuxClassifier, GoogLeNet, InceptionModule, NaiveInceptionModule
from .recipe import lr_factor


class ExerciseError(AssertionError):
    """The learner's code does not do what the exercise asks; the message says what differs."""


def unfilled(build: Callable[[], Any]) -> bool:
    """True while calling ``build()`` (which makes and uses the learner's object) hits NotImplementedError.

    Any other error means the learner has written code: False, so their version stays, and the check
    cell that follows runs it again and explains the error in their terms.
    """
    try:
        build()
    except NotImplementedError:
        return True
    except Exception:  # noqa: BLE001 - the learner's own bug: the check cell names it
        return False
    return False


def _show_only_the_message(
    shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: Any = None
) -> list[str]:
    """IPython handler for ExerciseError: the reason in plain words, no traceback through the check."""
    return [f"\x1b[0;31mNot yet:\x1b[0m {value}"]


def _quiet_in_notebooks() -> None:
    """In IPython, show an ExerciseError as its message alone (other errors keep their traceback)."""
    try:
        from IPython import get_ipython
    except ImportError:  # plain Python: the exception and its traceback, as usual
        return
    shell = get_ipython()
    if shell is not None and not shell.custom_exceptions:
        shell.set_custom_exc((ExerciseError,), _show_only_the_message)


def _fail(message: str) -> None:
    _quiet_in_notebooks()
    raise ExerciseError(message) from None


def _number(what: str, value: Any) -> float:
    """``value`` as a float (``learner_values.as_number``), or a clear failure naming ``what``."""
    number = as_number(value)
    if number is None:
        _fail(f"{what} returns {type(value).__name__} {value!r}; return a number (a float)")
        raise AssertionError  # unreachable: _fail raises
    return number


def _call(
    what: str, make: Callable[[], Any], explain: Callable[[Exception], str | None] | None = None
) -> Any:
    """Run the learner's code; if it raises, say so in their terms (``explain`` names the likely mistake)."""
    try:
        return make()
    except NotImplementedError:
        _fail(
            f"{what} still raises NotImplementedError: "
            "replace the `raise NotImplementedError` lines with your code"
        )
    except ExerciseError:
        raise
    except Exception as error:  # the learner's code failed: translate it
        hint = explain(error) if explain is not None else None
        detail = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        _fail(
            f"{what} failed ({detail}). "
            + (hint or "The error is in your code: call it by itself in a new cell to see the line it names.")
        )


def _layer(module: nn.Module, name: str) -> nn.Module | None:
    found = getattr(module, name, None)
    return found if isinstance(found, nn.Module) else None


# --------------------------------------------------------------------------- notebook 01


def _naive_layout_mistake(module: nn.Module) -> str | None:
    """What is visibly wrong in the layers themselves: kernel sizes, padding, the pool's kind and stride."""
    convs = {name: _layer(module, name) for name in ("conv1x1", "conv3x3", "conv5x5")}
    pool = _layer(module, "pool")
    if any(isinstance(m, nn.Softmax) for m in module.modules()):
        return (
            "your module contains a softmax: an Inception module returns feature maps for the next layer; "
            "only the network's final classifier is followed by a softmax (inside the loss)"
        )
    if isinstance(pool, nn.AvgPool2d):
        return "your pool branch averages (nn.AvgPool2d): the paper's module takes the maximum, nn.MaxPool2d"
    kernels = {name: getattr(conv, "kernel_size", None) for name, conv in convs.items()}
    if kernels.get("conv3x3") == (5, 5) and kernels.get("conv5x5") == (3, 3):
        return "self.conv3x3 has a 5x5 kernel and self.conv5x5 a 3x3 one: swap the two kernel sizes"
    for name, conv in convs.items():
        if isinstance(conv, nn.Conv2d):
            k = conv.kernel_size[0]
            if conv.padding != (k // 2, k // 2):
                return (
                    f"self.{name} has padding {conv.padding[0]}: pad each kernel by k // 2 "
                    f"(padding={k // 2} for a {k}x{k} kernel), so that it keeps the 28 x 28 size"
                )
    if isinstance(pool, nn.MaxPool2d):
        stride = pool.stride if isinstance(pool.stride, int) else pool.stride[0]
        padding = pool.padding if isinstance(pool.padding, int) else pool.padding[0]
        if stride != 1:
            return (
                f"your max-pool has stride {stride}, which shrinks the map; use stride=1 (with padding=1) "
                "so that the pool branch keeps 28 x 28 like the others"
            )
        if padding != 1:
            return "your 3x3 max-pool needs padding=1 to keep 28 x 28 (with stride=1)"
    return None


def _naive_mistake_by_value(
    out: Tensor, x: Tensor, convs: list[nn.Conv2d], widths: list[int], order_names: list[str]
) -> str:
    """Compare the output with the module computed with one typical mistake each; name the one it matches."""
    with torch.no_grad():
        raw = [conv(x) for conv in convs]
        pooled = F.max_pool2d(x, 3, stride=1, padding=1)
        right = [F.relu(r) for r in raw] + [pooled]
        candidates: dict[str, Tensor] = {
            "you apply a ReLU to the pool branch; the paper's pool branch passes the max-pooled input on "
            "as it is (apply the ReLU after each convolution only)": torch.cat(
                [*right[:3], F.relu(pooled)], dim=1
            ),
            "your module ends with a softmax over the channels: an Inception module returns feature maps; "
            "only the network's final classifier is followed by a softmax": torch.cat(right, dim=1).softmax(
                dim=1
            ),
            "your pool branch averages: the paper's module takes the maximum (nn.MaxPool2d)": torch.cat(
                [*right[:3], F.avg_pool2d(x, 3, stride=1, padding=1)], dim=1
            ),
            "your pool branch averages: the paper's module takes the maximum (nn.MaxPool2d) ": torch.cat(
                [*right[:3], F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)], dim=1
            ),
        }
        for k, name in enumerate(order_names[:3]):
            without = [raw[k] if j == k else part for j, part in enumerate(right)]
            candidates[f"your {name} branch has no ReLU: apply F.relu after each convolution"] = torch.cat(
                without, dim=1
            )
        for order in itertools.permutations(range(4)):
            if order != (0, 1, 2, 3):
                named = ", ".join(order_names[i] for i in order)
                candidates[
                    f"your branches are concatenated in the order {named}; use 1x1, 3x3, 5x5, pool "
                    "(the later cells rely on that order)"
                ] = torch.cat([right[i] for i in order], dim=1)
    for reason, candidate in candidates.items():
        if candidate.shape == out.shape and torch.allclose(out, candidate, atol=1e-5):
            return reason.strip()
    return (
        "right shapes and parameters, different values: check that each convolution is followed by a "
        "ReLU, that the pool branch is a plain 3x3 max-pool, and that you concatenate 1x1, 3x3, 5x5, pool"
    )


def _explain_naive_error(module: nn.Module | None) -> Callable[[Exception], str | None]:
    def explain(error: Exception) -> str | None:
        text = str(error)
        layout = _naive_layout_mistake(module) if module is not None else None
        if "Sizes of tensors must match" in text or "size" in text and "cat" in text:
            return (layout or "your branches return maps of different sizes, so torch.cat cannot join them: "
                    "pad each kernel by k // 2 and give the max-pool stride=1, padding=1") + "."  # fmt: skip
        if "channels" in text and ("expected input" in text or "to have" in text):
            return "every branch reads all input channels: each convolution is nn.Conv2d(in_channels, ...)."
        return (layout + ".") if layout else None

    return explain


def check_naive_module(make: Callable[[int, int, int, int], nn.Module]) -> None:
    """``make(in_channels, c1, c3, c5)`` must build the naive module: right channels, size and parameters."""
    in_channels, c1, c3, c5 = 192, 64, 128, 32  # module 3a's widths
    module = _call("building your module", lambda: make(in_channels, c1, c3, c5))
    x = torch.randn(2, in_channels, 28, 28, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = _call(
            "running your module on a 2 x 192 x 28 x 28 batch",
            lambda: module(x),
            _explain_naive_error(module),
        )
    if not isinstance(out, Tensor):
        _fail(f"your module returns {type(out).__name__}; return one tensor: the four branches concatenated")
    expected_channels = c1 + c3 + c5 + in_channels
    layout = _naive_layout_mistake(module)
    if out.shape[1] != expected_channels:
        _fail(
            f"your module returns {out.shape[1]} channels; the naive module concatenates {c1} + {c3} + {c5} "
            f"convolution channels and the {in_channels} max-pooled input channels = {expected_channels} "
            "(concatenate along dim=1, the channel axis)"
        )
    if out.shape[-2:] != x.shape[-2:]:
        _fail(
            layout
            or f"your module turns 28 x 28 maps into {tuple(out.shape[-2:])}: pad each kernel by k // 2 and "
            "give the max-pool stride=1, padding=1"
        )
    if layout is not None:
        _fail(layout)
    expected = sum(p.numel() for p in NaiveInceptionModule(in_channels, c1, c3, c5).parameters())
    found = sum(p.numel() for p in module.parameters())
    if found != expected:
        _fail(
            f"your module has {found:,} parameters, the naive module {expected:,} (1x1, 3x3 and 5x5 kernels "
            "over all input channels, with biases; pooling has none)"
        )
    convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
    if sorted(m.kernel_size[0] for m in convs) != [1, 3, 5]:
        _fail(
            f"your module's convolutions have kernels {[m.kernel_size for m in convs]}; "
            "expected 1x1, 3x3 and 5x5"
        )
    ordered = sorted(convs, key=lambda m: m.kernel_size[0])
    with torch.no_grad():
        branches = [F.relu(conv(x)) for conv in ordered]
        expected_out = torch.cat([*branches, F.max_pool2d(x, 3, stride=1, padding=1)], dim=1)
    if not torch.allclose(out, expected_out, atol=1e-5):
        _fail(
            _naive_mistake_by_value(out, x, ordered, [c1, c3, c5, in_channels], ["1x1", "3x3", "5x5", "pool"])
        )
    print(f"correct: {expected_channels} output channels at 28 x 28, {found:,} parameters, the same values")


# --------------------------------------------------------------------------- notebook 02


def _first_linear_input(head: nn.Module, x: Tensor) -> tuple[int, ...] | None:
    """The shape that reaches the head's first nn.Linear (None if it has none or the run fails before)."""
    linears = [m for m in head.modules() if isinstance(m, nn.Linear)]
    if not linears:
        return None
    seen: list[tuple[int, ...]] = []
    hook = linears[0].register_forward_pre_hook(lambda _m, args: seen.append(tuple(args[0].shape)))
    try:
        with torch.no_grad():
            head(x)
    except Exception:  # the shape is what we want; the error itself is explained by the caller
        pass
    finally:
        hook.remove()
    return seen[0] if seen else None


def _explain_aux_error(head: nn.Module, x: Tensor) -> Callable[[Exception], str | None]:
    def explain(error: Exception) -> str | None:
        if "mat1 and mat2" not in str(error) and "shapes cannot be multiplied" not in str(error):
            return None
        shape = _first_linear_input(head, x)
        if shape is not None and len(shape) == 4:
            return (
                "the first FC layer receives a 4-d map; add nn.Flatten() after the 1x1 convolution's ReLU, "
                f"so that each image becomes one vector of {shape[1]} x {shape[2]} x {shape[3]} values."
            )
        if shape is not None and len(shape) == 2 and shape[1] != 2048:
            return (
                f"the first FC layer receives {shape[1]:,} values per image, not 128 x 4 x 4 = 2,048: the "
                "pooling must turn 14 x 14 into 4 x 4, which nn.AvgPool2d(5, stride=3) does."
            )
        return None

    return explain


def _dropout_position(head: nn.Module) -> str | None:
    """Where a dropout sits in a sequential head, if not just before the last FC."""
    layers = [m for m in head.modules() if not list(m.children())]
    linears = [i for i, m in enumerate(layers) if isinstance(m, nn.Linear)]
    dropouts = [i for i, m in enumerate(layers) if isinstance(m, nn.Dropout)]
    if len(linears) >= 2 and dropouts and not linears[0] < dropouts[0] < linears[-1]:
        return (
            "your dropout sits in another place: the paper drops 70% of the 1,024 outputs of the first FC "
            "layer, after its ReLU and before the last FC"
        )
    return None


def check_aux_head(make: Callable[[int, int], nn.Module]) -> None:
    """``make(in_channels, num_classes)`` must be the paper's auxiliary head, layer for layer.

    Weights are copied from the package's ``AuxClassifier`` by position, so equal outputs prove
    the same computation, not just the same shapes. The comparison runs in evaluation mode and in
    training mode (same random seed): a dropout in the wrong place changes only the latter.
    """
    ours = AuxClassifier(512, 10).eval()
    theirs = _call("building your head", lambda: make(512, 10))
    if not isinstance(theirs, nn.Module):
        _fail(f"your make() returns {type(theirs).__name__}; return an nn.Module (an nn.Sequential)")
    x = torch.randn(3, 512, 14, 14, generator=torch.Generator().manual_seed(0))
    mine = list(ours.parameters())
    yours = list(theirs.parameters())
    if [tuple(p.shape) for p in yours] != [tuple(p.shape) for p in mine]:
        shape = _first_linear_input(theirs.eval(), x)
        hint = _explain_aux_error(theirs, x)(RuntimeError("mat1 and mat2")) if shape is not None else None
        _fail(
            "your head's parameter shapes are "
            f"{[tuple(p.shape) for p in yours]}; the paper's are {[tuple(p.shape) for p in mine]} "
            "(1x1 conv to 128 channels, FC 2048 -> 1024, FC 1024 -> classes)"
            + (f". {hint}" if hint and shape and shape[-1] != 2048 else "")
        )
    with torch.no_grad():
        for target, source in zip(yours, mine, strict=True):
            target.copy_(source)
    theirs.eval()
    with torch.no_grad():
        out = _call(
            "running your head on a 3 x 512 x 14 x 14 map", lambda: theirs(x), _explain_aux_error(theirs, x)
        )
        expected = ours(x)
    if not isinstance(out, Tensor) or tuple(out.shape) != (3, 10):
        shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        _fail(f"your head returns {shape}; expected shape (3, 10): one logit per class")
    if any(isinstance(m, nn.Softmax) for m in theirs.modules()):
        _fail("your head ends with a softmax: return logits; the softmax lives in the loss (cross-entropy)")
    if not torch.allclose(out, expected, atol=1e-5):
        _fail(
            "same weights, different outputs: check the order (5x5 average pool with stride 3, 1x1 conv, "
            "ReLU, flatten, FC, ReLU, dropout, FC) and the pooling window"
        )
    dropouts = [m.p for m in theirs.modules() if isinstance(m, nn.Dropout)]
    if dropouts != [0.7]:
        _fail(
            f"your head's dropout probabilities are {dropouts}; the paper's head has one, of 70%, "
            "before the last FC"
        )
    position = _dropout_position(theirs)
    if position is not None:
        _fail(position)
    ours.train()
    theirs.train()
    with torch.no_grad():
        torch.manual_seed(1)
        expected_train = ours(x)
        torch.manual_seed(1)
        out_train = theirs(x)
    ours.eval()
    theirs.eval()
    if not torch.allclose(out_train, expected_train, atol=1e-5):
        _fail(
            "in evaluation mode your head is right, in training mode it differs: the dropout is in another "
            "place. The paper drops 70% of the 1,024 FC outputs, after the first FC's ReLU"
        )
    print(
        "correct: same parameters and, with the same weights, the same logits as AuxClassifier, "
        "in evaluation and in training mode"
    )


# --------------------------------------------------------------------------- notebook 03


def check_channel_stats(stats: Callable[[Tensor], tuple[Any, Any]]) -> None:
    """``stats(images)`` for uint8 N x 3 x H x W images: per-channel mean and std in pixel units (0-255)."""
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (40, 3, 8, 8), dtype=torch.uint8, generator=generator)
    images[:, 0] //= 2  # channels with different statistics, so a mix-up shows
    images[:, 2] = 255 - images[:, 2] // 4

    def explain(error: Exception) -> str | None:
        if "Byte" in str(error) or "dtype" in str(error):
            return "convert the uint8 images to floats first (images.float()): mean and std need floats."
        return None

    found = _call("your function", lambda: stats(images), explain)
    if not isinstance(found, tuple | list) or len(found) != 2:
        _fail("your function must return two things, (mean, std), each with one value per colour channel")
    mean_expected, std_expected = channel_stats(images)
    for name, value, expected in (("mean", found[0], mean_expected), ("std", found[1], std_expected)):
        value = torch.as_tensor(value, dtype=torch.float64).detach().cpu()
        if value.shape != (3,):
            hint = (
                "one per image and channel: average over the images too (dims 0, 2 and 3)"
                if value.dim() == 2 and value.shape[0] == len(images)
                else "average over images, rows and columns (dims 0, 2, 3), keeping the channel axis (dim 1)"
            )
            _fail(
                f"your {name} has shape {tuple(value.shape)}; expected 3 values, one per colour channel: "
                + hint
            )
        expected = expected.double()
        if torch.allclose(value * 255, expected, rtol=1e-3):
            _fail(
                f"your {name} is in units of 0-1; keep pixel units (0-255): the loader normalises raw pixels"
            )
        if not torch.allclose(value, expected, rtol=2e-3, atol=0.05):
            _fail(
                f"your {name} per channel is {[round(v, 2) for v in value.tolist()]}, expected "
                f"{[round(v, 2) for v in expected.tolist()]}: use all images and pixels of each channel"
            )
    print("correct: the same per-channel mean and standard deviation as the loader's channel_stats")


# --------------------------------------------------------------------------- notebook 04


def _schedule_advice(step: int, total: int, warmup: int, value: float, values: dict[int, float]) -> str:
    """What is wrong at ``step``, in words, from the values already seen (not the formula)."""
    expected = lr_factor(step, total_steps=total, warmup_steps=warmup, schedule="linear")
    where = f"at step {step} of {total} ({'warm-up' if step < warmup else 'decay'}, warmup_steps={warmup})"
    base = f"{where} your factor is {value:.4f}, the recipe's {expected:.4f}"
    if not 0 <= value <= 1:
        return f"{base}: a factor multiplies the peak rate and stays between 0 and 1"
    if step < warmup:
        if step == 0 and value == 0:
            return f"{base}: at 0 the first step would not move the weights; the warm-up starts one step up"
        if math.isclose(value, step / warmup, abs_tol=1e-9):
            return (
                f"{base}: your warm-up is one step behind; it must reach exactly 1 at step warmup_steps - 1"
            )
        return (
            f"{base}: the warm-up rises in equal steps, from 1 / warmup_steps at step 0 to 1 at step "
            + str(warmup - 1)
        )
    if step == warmup:
        return f"{base}: the decay starts at exactly 1, at the first step after the warm-up"
    speed = "slowly" if value > expected else "fast"
    return f"{base}: your decay falls too {speed}; it goes from 1 at step {warmup} to 0 at step {total}"


def check_lr_schedule(schedule: Callable[[int, int, int], float]) -> None:
    """``schedule(step, total_steps, warmup_steps)``: linear warm-up to 1, then linear decay to 0."""
    total, warmup = 100, 10
    seen: dict[int, float] = {}
    for step in (0, 4, 9, 10, 40, 70, 99):
        value = _call(f"your schedule at step {step}", lambda s=step: schedule(s, total, warmup))
        value = _number(f"your schedule at step {step}", value)
        seen[step] = value
        expected = lr_factor(step, total_steps=total, warmup_steps=warmup, schedule="linear")
        if not math.isclose(value, expected, abs_tol=1e-6):
            _fail(_schedule_advice(step, total, warmup, value, seen))
    print("correct: the warm-up and the linear decay match the recipe's schedule at every step checked")


# --------------------------------------------------------------------------- notebook 05


def check_ece(ece: Callable[[Tensor, Tensor, int], Any]) -> None:
    """``ece(probabilities, labels, n_bins)``: the expected calibration error with equal-width bins."""
    generator = torch.Generator().manual_seed(0)
    logits = 3 * torch.randn(400, 10, generator=generator)
    probabilities = logits.softmax(dim=1)
    labels = torch.where(
        torch.rand(400, generator=generator) < 0.6,
        probabilities.argmax(1),
        torch.randint(0, 10, (400,), generator=generator),
    )
    value = _number("your ece", _call("your ece", lambda: ece(probabilities, labels, 15)))
    expected = expected_calibration_error(probabilities, labels, 15)
    if math.isclose(value, expected, abs_tol=1e-6):
        print(f"correct: ECE {value:.4f} on a test set of 400 predictions, as the package computes it")
        return
    confidence, predicted = probabilities.max(dim=1)
    correct = (predicted == labels).double()
    bins = (torch.bucketize(confidence.double(), torch.linspace(0, 1, 16, dtype=torch.float64)) - 1).clamp(
        0, 14
    )
    gaps, signed, counts = [], [], []
    for b in range(15):
        inside = bins == b
        if inside.any():
            gap = correct[inside].mean() - confidence[inside].double().mean()
            gaps.append(abs(float(gap)))
            signed.append(float(gap))
            counts.append(int(inside.sum()))
    if math.isclose(value, sum(gaps) / len(gaps), abs_tol=1e-6):
        _fail("you average the bins' gaps equally; weight each bin's gap by its share of the predictions")
    if math.isclose(
        abs(value), abs(sum(g * c for g, c in zip(signed, counts, strict=True)) / sum(counts)), abs_tol=1e-6
    ):
        _fail(
            "your over- and under-confident bins cancel out (that is the overall accuracy minus the overall "
            "confidence): take the absolute gap |accuracy - confidence| within each bin, then weight the bins"
        )
    _fail(
        f"your ECE is {value:.4f}, the package's {expected:.4f}: bin the top-class confidence into {15} "
        "equal-width bins over (0, 1], and in each bin compare its accuracy with its mean confidence"
    )


# --------------------------------------------------------------------------- notebook 06


def check_without_max_pool(modify: Callable[[nn.Module], nn.Module]) -> None:
    """``modify(model)`` must drop the 3x3 max-pool of every module's pool branch, and change nothing else.

    The pool branch then reads the module's input directly: its 1x1 projection stays, so the
    parameters, the state dict and the multiply-adds are those of the paper's network.
    """
    torch.manual_seed(0)
    model = GoogLeNet(10, variant="cifar", width=0.0625).eval()
    reference = copy.deepcopy(model)
    changed = _call("your function on a GoogLeNet", lambda: modify(model))
    if not isinstance(changed, nn.Module):
        _fail(f"your function returns {type(changed).__name__}; return the model it changed")
    modules = {name: m for name, m in changed.named_modules() if isinstance(m, InceptionModule)}
    pooling = [name for name, m in modules.items() if any(isinstance(p, nn.MaxPool2d) for p in m.modules())]
    if pooling:
        _fail(f"your network still max-pools inside {', '.join(pooling)}: replace each branch_pool[0]")
    if not all(isinstance(getattr(changed, name, None), nn.MaxPool2d) for name in ("pool3", "pool4")):
        _fail("your network lost the max-pools between the stages (pool3, pool4); only the branches' go")
    ours = {k: tuple(v.shape) for k, v in reference.state_dict().items()}
    yours = {k: tuple(v.shape) for k, v in changed.state_dict().items()}
    if ours != yours:
        _fail(
            "your network's parameters differ from the paper's: keep every convolution, remove the pool only"
        )
    x = torch.randn(2, modules["inception3a"].in_channels, 8, 8)
    ref = reference.inception3a
    with torch.no_grad():
        out = changed.inception3a(x)
        parts = [ref.branch1x1(x), ref.branch3x3(x), ref.branch5x5(x), ref.branch_pool[1](x)]
    if not torch.allclose(out, torch.cat(parts, dim=1), atol=1e-5):
        _fail("your module 3a does not compute 1x1, 3x3, 5x5 and the projection of the unpooled input")
    parameters = sum(p.numel() for p in changed.parameters())
    print(
        f"correct: no max-pool in any of the {len(modules)} modules, the same {parameters:,} parameters, "
        "and module 3a's pool branch projects its input directly"
    )
