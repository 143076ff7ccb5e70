"""The same trainer under torchrun: two CPU processes (gloo) train exactly what one process trains."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import wait_until
from distributed_worker import train

from googlenet_utils import distributed, make_synthetic_cifar10
from googlenet_utils.checkpoint import load_checkpoint
from googlenet_utils.errors import ConfigError

HERE = Path(__file__).resolve().parent
WORKER = str(HERE / "distributed_worker.py")
# fp32 after one epoch (3 steps): two processes add the gradient halves in another order than one;
# measured: at most 2.5e-6 on any weight.
TOLERANCE = 1e-5
RUN_FILES = {
    "config.json",
    "history.csv",
    "metrics.json",
    "test_predictions.pt",
    "last.pt",
    "best.pt",
    ".lock",
}


def torchrun(*args: str, processes: int = 2, wait: bool = True):
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={processes}",
        WORKER,
        *args,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # two processes share two cores
    if not wait:
        return subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def final_weights(run_dir: Path) -> dict:
    return load_checkpoint(run_dir / "last.pt", "training")["model"]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    make_synthetic_cifar10(root, n_train=292, n_test=100, seed=0)  # 192 training images: 3 steps of 64
    return root


@pytest.fixture(scope="module")
def two_processes(data_root, tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("ddp") / "run"
    result = torchrun(str(data_root), str(run_dir), "3")
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir


@pytest.mark.slow  # starts processes
def test_after_one_epoch_two_processes_hold_the_weights_of_one(data_root, two_processes, tmp_path):
    one = tmp_path / "one"
    train(str(data_root), one, 3)  # one plain process: this test's own
    ours = torch.load(two_processes.parent / "run-epoch1.pt")
    theirs = torch.load(tmp_path / "one-epoch1.pt")
    for name, tensor in theirs.items():
        assert torch.allclose(ours[name], tensor, atol=TOLERANCE, rtol=0), name
    single = json.loads((one / "metrics.json").read_text())
    double = json.loads((two_processes / "metrics.json").read_text())
    assert single.keys() == double.keys() and double["processes"] == 2 and single["processes"] == 1
    assert double["data"] == single["data"] and double["epochs"] == single["epochs"] == 3
    assert double["test_accuracy"] == pytest.approx(single["test_accuracy"], abs=0.011)  # one image at most


@pytest.mark.slow  # starts processes
def test_each_training_index_is_seen_once_per_epoch_across_ranks(two_processes):
    parts = [
        json.loads((two_processes.parent / f"run-rank{r}.json").read_text())["first_epoch_indices"]
        for r in (0, 1)
    ]
    seen = [index for part in parts for batch in part for index in batch]
    assert len(seen) == len(set(seen)) == 3 * 64  # disjoint, covering the three full batches
    assert all(len(batch) == 32 for part in parts for batch in part)  # the global batch of 64, halved


@pytest.mark.slow  # starts processes
def test_only_one_set_of_run_files_is_written(two_processes):
    assert {p.name for p in two_processes.iterdir()} == RUN_FILES
    history = (two_processes / "history.csv").read_text().splitlines()
    assert len(history) == 4  # a header and three epochs, written once


@pytest.mark.slow  # starts processes
def test_a_killed_rank_resumes_under_torchrun_to_the_same_weights(data_root, two_processes, tmp_path):
    run_dir = tmp_path / "killed"
    launcher = torchrun(str(data_root), str(run_dir), "3", wait=False)
    try:
        wait_until((run_dir / "last.pt").exists, launcher, "the first epoch's checkpoint")
        rank1 = json.loads((tmp_path / "killed-rank1.json").read_text())["pid"]
        os.kill(rank1, signal.SIGKILL)
        launcher.wait(timeout=120)
    finally:
        launcher.kill()
    assert launcher.returncode != 0
    assert load_checkpoint(run_dir / "last.pt", "training")["epoch"] < 3, "the run finished before the kill"
    resumed = torchrun(str(data_root), str(run_dir), "3")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    for name, tensor in final_weights(two_processes).items():
        assert torch.equal(final_weights(run_dir)[name], tensor), name


@pytest.mark.slow  # starts processes
def test_resuming_on_another_number_of_processes_says_so(data_root, two_processes, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(two_processes, copy)
    train(str(data_root), copy, 3)  # one plain process resumes what two processes trained
    assert "1 process(es) now, 2 before: the data stream is the same" in capsys.readouterr().out


@pytest.mark.slow  # starts processes
def test_ranks_started_with_other_settings_are_refused(data_root, tmp_path):
    # Two processes with the environment torchrun gives its workers, without its launcher (seconds saved).
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    common = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    command = [sys.executable, WORKER, str(data_root), str(tmp_path / "odd"), "1", "--odd-rank-lr"]
    ranks = [
        subprocess.Popen(
            command,
            env={**common, "RANK": str(r), "LOCAL_RANK": str(r), "WORLD_SIZE": "2"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for r in (0, 1)
    ]
    errors = [rank.communicate(timeout=300)[1] for rank in ranks]
    assert all(rank.returncode != 0 for rank in ranks)
    assert any("processes [1] were started with other settings than process 0" in e for e in errors), errors


def test_a_missing_backend_is_named(monkeypatch):
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "1")
    monkeypatch.setattr(distributed.dist, "is_gloo_available", lambda: False)
    with pytest.raises(ConfigError, match="gloo, the CPU backend, is missing"):
        distributed.start("cpu")
    monkeypatch.setattr(distributed.dist, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="no torch.distributed: run without torchrun"):
        distributed.start("cpu")


def test_a_plain_process_never_touches_torch_distributed(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert distributed.start("auto") is None and not torch.distributed.is_initialized()


def test_more_processes_than_gpus_are_refused_alike_on_every_process(monkeypatch):
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "0")  # has a GPU, yet refuses like local rank 1: one message
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    monkeypatch.setattr(distributed.torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(distributed.torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(distributed.dist, "is_nccl_available", lambda: True)
    with pytest.raises(
        ConfigError, match=r"2 processes on this node, but it has 1 GPU\(s\).*--nproc_per_node"
    ):
        distributed.start("auto")


SMOKE_RUN = [
    sys.executable,
    "-m",
    "googlenet_utils.train",
    "--synthetic",
    "--recipe",
    "smoke",
    "--no-progress",
]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--sync-batch-norm"], "error: sync_batch_norm needs GPUs"),
        (["--batch-size", "63"], "error: the batch of 63 images cannot be split evenly over 2 processes"),
    ],
)
def test_a_user_error_under_torchrun_is_printed_once_and_every_process_exits_2(tmp_path, flags, message):
    # The environment torchrun gives its workers, without its launcher: each process's exit status shows.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    common = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
    command = [*SMOKE_RUN, "--width", "0.0625", "--device", "cpu", "--out", str(tmp_path / "run"), *flags]
    ranks = [
        subprocess.Popen(
            command,
            env={**common, "RANK": str(r), "LOCAL_RANK": str(r), "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for r in (0, 1)
    ]
    errors = "".join(rank.communicate(timeout=300)[1] for rank in ranks)
    assert [rank.returncode for rank in ranks] == [2, 2]
    assert errors.count("error: ") == 1 and message in errors and "Traceback" not in errors
