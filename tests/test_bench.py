"""The benchmark's arithmetic (peak FLOPs by GPU name, FLOPs per training image, its rate) and a real run."""

import json

import pytest
import torch
from torch import nn

from googlenet_utils.bench import _rate, main, peak_flops, train_flops_per_image


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


def test_bench_train_times_the_fused_step_against_the_recipes_in_the_same_run(tmp_path, capsys):
    out = tmp_path / "bench.json"
    argv = ["train", "--device", "cpu", "--recipe", "smoke", "--width", "0.0625", "--batch-size", "32"]
    assert main([*argv, "--images", "256", "--steps", "1", "--warmup", "1", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["fused_1x1_ratio"] == pytest.approx(
        result["fused_1x1_images_per_s"] / result["eager_images_per_s"]
    )
    assert (
        result["fused_1x1_images_per_s"] > 0 and result["compiled_images_per_s"] is None
    )  # no compile on a CPU
    assert "the same step with fused 1x1 convolutions" in capsys.readouterr().out
