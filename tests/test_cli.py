"""The command line: every user mistake exits 2 with one message naming the value and the fix."""

import os
import pickle
import signal
import subprocess
import sys

import pytest
import torch
from conftest import smaller, wait_until

from googlenet_utils import cifar10 as cifar10_module
from googlenet_utils import cli as cli_module
from googlenet_utils.cifar10 import BATCH_FOLDER
from googlenet_utils.cli import main
from googlenet_utils.recipe import RECIPES
from googlenet_utils.run_record import load_run
from googlenet_utils.synthetic import make_synthetic_cifar10

SMOKE = ["--synthetic", "--recipe", "smoke"]
ONE_CHEAP_EPOCH = ["--recipe", "smoke", "--epochs", "1", "--width", "0.0625"]  # the wiring, in a few seconds


def fails_with(capsys, argv, *fragments):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    for fragment in fragments:
        assert fragment in err, f"{fragment!r} not in {err!r}"
    return err


@pytest.fixture()
def sorted_dataset(tmp_path):
    """A synthetic set whose test batch is sorted by class, like the JPEG mirror's."""
    root = tmp_path / "data"
    make_synthetic_cifar10(root, n_train=1000, n_test=500, seed=0)
    path = root / BATCH_FOLDER / "test_batch"
    entry = pickle.loads(path.read_bytes())
    order = sorted(range(len(entry["labels"])), key=lambda i: entry["labels"][i])
    entry["labels"] = [entry["labels"][i] for i in order]
    entry["data"] = entry["data"][order]
    path.write_bytes(pickle.dumps(entry))
    return root


@pytest.mark.slow  # trains a run from the command line
def test_the_smoke_recipe_on_real_layout_data_tests_on_every_class(sorted_dataset, tmp_path, capsys):
    out = tmp_path / "run"
    assert main([*ONE_CHEAP_EPOCH, "--data-dir", str(sorted_dataset), "--no-verify", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("recipe 'smoke' (asked for)") and "test accuracy" in printed
    record = load_run(out)
    assert torch.bincount(record.predictions.labels, minlength=10).tolist() == [26] * 6 + [25] * 4  # balanced
    assert record.metrics.recipe == "smoke" and "class-balanced subset" in record.metrics.data_source


def test_without_a_recipe_a_cpu_gets_the_cpu_recipe_and_is_told_why(tmp_path, capsys, monkeypatch):
    seen = {}
    monkeypatch.setattr(
        "googlenet_utils.runspec.fit", lambda model, data, config, **kw: seen.update(config=config, **kw)
    )
    assert main(["--synthetic", "--out", str(tmp_path / "run")]) == 0
    first_line = capsys.readouterr().out.splitlines()[0]
    assert (
        first_line.startswith("recipe 'cpu' (chosen because no GPU is here")
        and "--recipe fast overrides" in first_line
    )
    assert seen["recipe"] == "cpu" and seen["config"].batch_size == 128


@pytest.mark.parametrize(
    ("device", "fragment"),
    [
        ("gpu", "unknown device 'gpu'"),
        ("meta", "cannot train a model"),
        ("", "unknown device ''"),
        ("mps", "needs an Apple-silicon Mac"),
        ("cuda", "needs CUDA"),
        ("cuda:1", "needs CUDA"),
    ],
)
def test_devices_that_are_not_here(capsys, device, fragment):
    fails_with(capsys, [*SMOKE, "--device", device], fragment)


@pytest.mark.parametrize(
    ("flag", "value", "fragment"),
    [
        ("--width", "nan", "width must be > 0 and at most 2"),
        ("--width", "0", "width must be > 0"),
        ("--width", "1e9", "width must be > 0 and at most 2"),
        ("--lr", "nan", "TrainConfig.lr (--lr) must be between"),
        ("--lr", "-1", "TrainConfig.lr (--lr) must be between"),
        ("--momentum", "1", "TrainConfig.momentum (--momentum) must be between 0.0 and 0.999"),
        ("--weight-decay", "inf", "(--weight-decay) must be between 0.0 and 0.1"),
        ("--aux-weight", "-0.3", "(--aux-weight) must be between 0.0 and 10.0"),
        ("--seed", "-1", "(--seed) must be between 0 and 4294967295"),
        ("--seed", "99999999999999999999", "(--seed) must be between 0 and 4294967295"),
        ("--out", "", "(--out) must name a folder"),
        ("--recipe", "fastest", "unknown recipe 'fastest': choose one of fast, best, cpu, smoke"),
        ("--batch-size", "999999", "(--batch-size) must be between 1 and 65536"),
    ],
)
def test_absurd_values_are_refused_up_front(capsys, flag, value, fragment):
    fails_with(capsys, [*SMOKE, flag, value], fragment)


def test_out_that_is_a_file(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    fails_with(capsys, [*SMOKE, "--out", str(tmp_path / "file")], "is a file; choose a folder with --out")


def test_without_data_or_network_says_what_to_do(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cifar10_module, "CIFAR10_URL", "http://127.0.0.1:9/cifar-10-python.tar.gz")
    fails_with(
        capsys,
        ["--data-dir", str(tmp_path), "--out", str(tmp_path / "run")],
        "could not download CIFAR-10",
        "by hand",
        "--synthetic",
    )
    fails_with(capsys, ["--data-dir", str(tmp_path), "--no-download"], "Leave out --no-download")


def test_a_mirror_without_no_verify_is_told_to_use_no_verify(sorted_dataset, capsys):
    err = fails_with(capsys, ["--data-dir", str(sorted_dataset), "--out", "x"], "--no-verify")
    assert "Leave out --no-download" not in err


def test_a_taken_run_directory(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.json").write_text("{}")
    fails_with(
        capsys, [*SMOKE, "--out", str(tmp_path / "run")], "already holds a run (metrics.json)", "--resume"
    )


# Many epochs, so that the interrupt surely arrives mid-run; the test never waits for the end.
CTRL_C = [sys.executable, "-m", "googlenet_utils.train", *SMOKE, "--epochs", "1000", "--out"]


@pytest.mark.slow  # starts processes
def test_ctrl_c_prints_one_line_saying_how_to_resume(tmp_path):
    out = tmp_path / "run"
    worker = subprocess.Popen(
        [*CTRL_C, str(out)], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # a shell's `&` ignores SIGINT
    )  # fmt: skip
    try:
        wait_until((out / "last.pt").exists, worker, "the first epoch's checkpoint")
        worker.send_signal(signal.SIGINT)
        err = worker.communicate(timeout=120)[1]
    finally:
        worker.kill()
    assert worker.returncode == 130
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert f"interrupted: {out} keeps its last finished epoch; run the same command with --resume" in err
    resumed = subprocess.Popen(
        [*CTRL_C, str(out), "--resume"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        first_lines = [resumed.stdout.readline() for _ in range(3)]
    finally:
        resumed.kill()
        resumed.wait()
    assert any(line.startswith(f"resumed {out} after epoch ") for line in first_lines), first_lines


# ---------------------------------------------------------------- messages that say what will happen

B = [*SMOKE, "--no-progress", "--width", "0.0625"]


def no_data_loading(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the data was loaded before the mistake was refused")

    monkeypatch.setattr("googlenet_utils.cli._load_data", refuse)


def never_trains(monkeypatch) -> dict:
    seen = {}
    monkeypatch.setattr(
        "googlenet_utils.runspec.fit", lambda model, data, config, **kw: seen.update(config=config)
    )
    return seen


def test_no_download_hint_only_when_a_download_would_help(tmp_path, capsys):
    make_synthetic_cifar10(tmp_path, n_train=50, n_test=10)
    (tmp_path / BATCH_FOLDER / "data_batch_2").unlink()  # the folder is there: nothing would download
    err = fails_with(
        capsys, ["--data-dir", str(tmp_path), "--no-download", "--no-verify"], "lacks data_batch_2"
    )
    assert "Leave out --no-download" not in err and "--synthetic" in err


@pytest.mark.parametrize("width", ["16", "15.99"])
def test_a_width_beyond_the_maximum_is_refused_before_the_data_loads(capsys, monkeypatch, width):
    no_data_loading(monkeypatch)
    fails_with(capsys, [*B, "--width", width], "width must be > 0 and at most 2", "8 GB")


def test_a_run_too_large_for_the_free_memory_is_refused_with_an_estimate(tmp_path, capsys, monkeypatch):
    seen = never_trains(monkeypatch)
    monkeypatch.setattr("googlenet_utils.cli.free_memory", lambda device: 2_000_000_000)
    out = str(tmp_path / "run")
    fails_with(
        capsys, [*B, "--width", "1", "--out", out], "width 1 with batches of 64 needs about", "GB is free",
        "--batch-size or --width",
    )  # fmt: skip
    assert not seen
    assert main([*B, "--out", out]) == 0 and seen["config"].batch_size == 64  # width 1/16 fits


def test_out_names_too_long_for_the_file_system_and_a_home_folder(tmp_path, capsys, monkeypatch):
    fails_with(capsys, [*B, "--out", str(tmp_path / ("x" * 300))], "is too long for the file system", "--out")
    seen = never_trains(monkeypatch)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert main([*B, "--out=~/runs/x"]) == 0
    assert seen["config"].run_dir == str(tmp_path / "runs" / "x")


def test_a_full_temporary_folder_for_the_synthetic_set_says_disk_full(capsys, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("googlenet_utils.synthetic.pickle.dump", full)
    fails_with(capsys, B, "disk full while writing the synthetic stand-in", "TMPDIR")


def test_ctrl_c_before_any_checkpoint_says_what_the_folder_holds(tmp_path, capsys, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    out = tmp_path / "run"
    monkeypatch.setattr("googlenet_utils.cli._load_data", interrupt)
    assert main([*B, "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert "nothing was written" in err and "keeps its last finished epoch" not in err and not out.exists()

    def first_epoch_interrupted(model, data, config, **kwargs):
        out.mkdir()
        (out / "config.json").write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.undo()
    monkeypatch.setattr("googlenet_utils.runspec.fit", first_epoch_interrupted)
    assert main([*B, "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert f"{out} holds no checkpoint yet" in err and "--resume to start from the first epoch" in err


@pytest.mark.parametrize(("local_rank", "printed"), [("0", True), ("1", False)])
def test_under_torchrun_a_mistake_is_printed_by_the_first_process_only(
    capsys, monkeypatch, local_rank, printed
):
    monkeypatch.setenv("LOCAL_RANK", local_rank)
    monkeypatch.setenv("RANK", local_rank)
    monkeypatch.setattr("googlenet_utils.cli.distributed.start", lambda device: None)  # no process group
    assert main([*B, "--lr", "nan"]) == 2
    assert ("error: TrainConfig.lr (--lr) must be between" in capsys.readouterr().err) == printed


def test_model_flags_are_generated_from_model_config_and_reach_the_network(tmp_path, capsys, monkeypatch):
    seen = {}
    monkeypatch.setattr(
        "googlenet_utils.runspec.fit", lambda model, data, config, **kw: seen.update(model=model.config)
    )
    flags = ["--dropout", "0", "--five-by-five", "3x3x2", "--no-reduce", "--head", "fc", "--norm", "none"]
    assert main([*B, *flags, "--out", str(tmp_path / "run")]) == 0
    model = seen["model"]
    assert (model.dropout, model.five_by_five, model.reduce, model.head, model.norm) == (
        0.0, "3x3x2", False, "fc", "none",
    )  # fmt: skip
    assert model.aux_dropout == 0.7 and not model.batch_norm  # untouched, and norm "none" has no batch norm
    printed = capsys.readouterr().out
    assert "dropout 0.0 (paper: 0.4)" in printed and "five by five '3x3x2' (paper: '5x5')" in printed
    fails_with(capsys, [*B, "--head", "dense"], "head must be one of 'gap', 'fc', got 'dense'")


def test_a_run_resolves_its_device_once_and_passes_it_down(tmp_path, monkeypatch):
    resolved = []
    real = cli_module.pick_device

    def counted(preference):
        resolved.append(preference)
        return real(preference)

    def refuse(preference):
        raise AssertionError(f"the device was resolved again ({preference!r})")

    monkeypatch.setattr(cli_module, "pick_device", counted)
    monkeypatch.setattr("googlenet_utils.trainer.pick_device", refuse)
    monkeypatch.setattr("googlenet_utils.loader.pick_device", refuse)
    monkeypatch.setitem(RECIPES, "smoke", smaller(RECIPES["smoke"]))  # three steps: the wiring is tested
    assert (
        main([*SMOKE, "--no-progress", "--epochs", "1", "--device", "cpu", "--out", str(tmp_path / "run")])
        == 0
    )
    assert resolved == ["cpu"] and load_run(tmp_path / "run").metrics.device.startswith("cpu")
