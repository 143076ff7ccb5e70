"""What ran a result: the environment record and the CPU's model name."""

import json
import platform

import torch

from googlenet_utils.provenance import ENVIRONMENT, processor, write_environment


def test_processor_reads_the_model_name_of_the_first_cpu(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(
        "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 9R14\n\n"
        "processor\t: 1\nmodel name\t: AMD EPYC 9R14\n"
    )
    assert processor(cpuinfo) == "AMD EPYC 9R14"


def test_processor_falls_back_to_the_platform_without_a_model_name(tmp_path):
    empty = tmp_path / "cpuinfo"
    empty.write_text("processor\t: 0\nmodel name\t:\n")
    expected = platform.processor() or platform.machine() or "unknown"
    assert processor(empty) == expected and processor(tmp_path / "missing") == expected


def test_the_environment_names_the_processor_and_is_written_first(tmp_path):
    env = write_environment(tmp_path / "out", torch.device("cpu"), "abc123")
    written = json.loads((tmp_path / "out" / ENVIRONMENT).read_text())
    assert written == env and env["processor"] == processor() and env["commit"] == "abc123"
    assert env["device"].startswith("cpu (") and env["driver"] == "none"
