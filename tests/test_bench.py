"""The benchmark's arithmetic (peak FLOPs by GPU name, FLOPs per training image, its rate) and a real run."""

import json

import pytest
import torch
from torch import nn

from googlenet_utils.bench import _rate, main, peak_flops, step_images_per_s, train_flops_per_image
from googlenet_utils.model import BasicConv2d
from googlenet_utils.recipe import RECIPES
from googlenet_utils.runspec import describe_run
from googlenet_utils.trainer import Trainer


def test_peak_flops_match_gpu_names_exactly():
    assert peak_flops("NVIDIA H100 80GB HBM3") == 989e12 and peak_flops("NVIDIA H100 PCIe") == 756e12
    assert peak_flops("NVIDIA H100") is None  # a name that is not in the table is not guessed


def test_a_training_image_costs_three_forward_passes_of_two_flops_per_multiply_add():
    model = nn.Sequential(nn.Conv2d(3, 4, 1, bias=False), nn.Flatten(), nn.Linear(4 * 8 * 8, 2, bias=False))
    forward_macs = 3 * 4 * 8 * 8 + 4 * 8 * 8 * 2  # the 1x1 convolution, then the linear layer
    assert train_flops_per_image(model, size=8) == 3 * 2 * forward_macs


def test_the_rate_counts_only_the_timed_batches(monkeypatch):
    clock = iter([10.0, 12.0])  # start and end of the timed part: 2 s
    monkeypatch.setattr("googlenet_utils.bench.time.perf_counter", lambda: next(clock))
    seen = []
    rate = _rate(iter(range(100)), seen.append, warmup=3, count=8, device=torch.device("cpu"))
    assert rate == pytest.approx(8 / 2.0) and seen == list(range(11))  # 3 untimed, then 8 timed


def test_step_images_per_s_times_the_specs_own_step_at_the_side_asked(tmp_path, monkeypatch):
    spec = describe_run(
        RECIPES["cpu"], width=0.0625, batch_size=16, device="cpu", run_dir=str(tmp_path / "run")
    )
    steps = []  # per step: the images' shape and whether they are channels-last, as the recipe trains
    real_step = Trainer.train_step

    def seen(self, images, labels, step=0):
        steps.append((images.shape, images.is_contiguous(memory_format=torch.channels_last)))
        return real_step(self, images, labels, step)

    def four_batches_a_second(batches, step, warmup, count, device):
        for _ in range(warmup + count):
            step(next(batches))
        return 4.0

    monkeypatch.setattr(Trainer, "train_step", seen)
    monkeypatch.setattr("googlenet_utils.bench._rate", four_batches_a_second)
    kept = []  # the process-wide allocator setting, recorded instead of made (it cannot be undone)
    monkeypatch.setattr("googlenet_utils.bench.keep_freed_memory", lambda: kept.append(True))
    assert step_images_per_s(spec, size=16, steps=2, warmup=1) == 4.0 * 16  # batches/s times the batch
    assert steps == [(torch.Size([16, 3, 16, 16]), True)] * 3 and kept == [True]  # 1 untimed, 2 timed
    assert not (tmp_path / "run").exists()  # timing writes no run folder
    with pytest.raises(ValueError, match="size must be 12 to 32"):
        step_images_per_s(spec, size=64)


def test_bench_train_times_the_fused_and_nchw_steps_against_the_recipes_in_the_same_run(
    tmp_path, capsys, monkeypatch
):
    sides = []
    real_step = Trainer.train_step

    norms = []  # per step: do the odd-width batch norms run in NCHW?

    def seen(self, images, labels, step=0):
        sides.append((images.shape[-1], images.is_contiguous(memory_format=torch.channels_last)))
        norms.append(any(m.nchw_norm for m in self.model.modules() if isinstance(m, BasicConv2d)))
        return real_step(self, images, labels, step)

    monkeypatch.setattr(Trainer, "train_step", seen)
    kept = []  # the process-wide allocator setting, recorded instead of made (it cannot be undone)
    monkeypatch.setattr("googlenet_utils.bench.freed_memory_kept", lambda: bool(kept))
    monkeypatch.setattr("googlenet_utils.bench.keep_freed_memory", lambda: kept.append(len(sides)))
    out = tmp_path / "bench.json"
    argv = ["train", "--device", "cpu", "--recipe", "smoke", "--width", "0.0625", "--batch-size", "32"]
    argv += ["--size", "16", "--images", "256", "--steps", "1", "--warmup", "1", "--json", str(out)]
    assert main(argv) == 0
    result = json.loads(out.read_text())
    assert kept == [2]  # after the first measurement (two steps), before the recipe's own
    assert result["kept_memory_ratio"] == pytest.approx(
        result["eager_images_per_s"] / result["default_allocator_images_per_s"]
    )
    assert result["default_allocator_page_faults_per_step"] >= 0 and result["page_faults_per_step"] >= 0
    for name in ("fused_1x1", "nchw"):
        assert result[f"{name}_ratio"] == pytest.approx(
            result[f"{name}_images_per_s"] / result["eager_images_per_s"]
        )
    assert result["nchw_norm_ratio"] == pytest.approx(
        result["eager_images_per_s"] / result["channels_last_norm_images_per_s"]
    )
    assert result["compiled_images_per_s"] is None and result["size"] == 16  # no compile on a CPU
    # The step before keeping memory, the recipe's step, the step with every norm channels-last and the
    # fused step see channels-last 16 px batches, the NCHW step the same in the default layout.
    assert {side for side, _ in sides} == {16} and [last for _, last in sides] == [True] * 8 + [False] * 2
    assert norms == [True] * 4 + [False] * 2 + [True] * 4
    printed = capsys.readouterr().out
    assert (
        "the same step with fused 1x1 convolutions" in printed
        and "the same step in the NCHW layout" in printed
        and "every batch norm channels-last" in printed
        and "freed memory returned to the OS" in printed
    )
    assert "16x16 images" in printed


def test_bench_train_times_a_bf16_step_against_the_same_step_in_fp32(tmp_path, capsys, monkeypatch):
    dtypes = []
    real_step = Trainer.train_step

    def seen(self, images, labels, step=0):
        dtypes.append(self.dtype)
        return real_step(self, images, labels, step)

    monkeypatch.setattr(Trainer, "train_step", seen)
    monkeypatch.setattr("googlenet_utils.bench.freed_memory_kept", lambda: True)  # as after a run here
    out = tmp_path / "bench.json"
    argv = ["train", "--device", "cpu", "--recipe", "smoke", "--width", "0.0625", "--batch-size", "32"]
    argv += ["--size", "16", "--images", "256", "--steps", "1", "--warmup", "1", "--json", str(out)]
    assert main([*argv, "--precision", "bf16"]) == 0
    result = json.loads(out.read_text())
    assert result["precision"] == "bf16"
    assert result["fp32_ratio"] == pytest.approx(result["eager_images_per_s"] / result["fp32_images_per_s"])
    # Two bf16 steps, then two in fp32, then the channels-last-norm, fused and NCHW steps in bf16 again.
    assert dtypes[:4] == [torch.bfloat16] * 2 + [None] * 2 and set(dtypes[4:]) == {torch.bfloat16}
    assert "the same step in fp32" in capsys.readouterr().out
    assert main(argv) == 0  # the smoke recipe is fp32: nothing to compare with
    assert json.loads(out.read_text())["fp32_ratio"] is None
    assert "the same step in fp32" not in capsys.readouterr().out
