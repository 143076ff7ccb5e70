"""Which precision "auto" picks on each device, and a CPU run in bf16."""

import json

import pytest
import torch
from conftest import quick_config, tiny_model

from googlenet_utils.devices import has_native_bf16, pick_precision
from googlenet_utils.errors import ConfigError
from googlenet_utils.trainer import fit

CPU = torch.device("cpu")


@pytest.mark.parametrize(
    ("avx512_bf16", "amx", "expected"),
    [(True, False, "bf16"), (False, True, "bf16"), (False, False, "fp32")],
)
def test_auto_is_bf16_on_a_cpu_only_where_it_is_native(monkeypatch, avx512_bf16, amx, expected):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    assert has_native_bf16(CPU) == (expected == "bf16")
    assert pick_precision("auto", CPU) == expected
    assert pick_precision("fp32", CPU) == "fp32" and pick_precision("bf16", CPU) == "bf16"  # asked for: kept


def test_a_cpu_without_the_private_checks_counts_as_without_native_bf16(monkeypatch):
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported")
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported")
    assert pick_precision("auto", CPU) == "fp32"


@pytest.mark.parametrize(("precision", "message"), [("fp16", "needs a GPU"), ("fp8", "must be one of")])
def test_a_precision_the_cpu_cannot_run_is_refused(precision, message):
    with pytest.raises(ConfigError, match=message):
        pick_precision(precision, CPU)


def test_a_cpu_run_trains_and_is_recorded_in_bf16(small, tmp_path):
    record = fit(tiny_model(), small, quick_config(tmp_path, precision="bf16", device="cpu"))
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["precision"] == "bf16" and 0 <= record.test_accuracy <= 1
    assert torch.isfinite(torch.tensor(metrics["test_loss"]))
