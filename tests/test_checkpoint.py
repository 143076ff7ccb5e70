"""Checkpoints: checksummed, typed, atomic, written off the training thread, refused when they do not fit."""

import threading

import pytest
import torch
from conftest import tiny_model
from torch import nn

from googlenet_utils import checkpoint as checkpoint_module
from googlenet_utils.checkpoint import (
    BackgroundWriter,
    CheckpointError,
    atomic_write,
    host_copy,
    load_checkpoint,
    load_weights,
    model_from_checkpoint,
    save_checkpoint,
)


def small_state(value: float = 1.0) -> dict:
    return {"model": {"w": torch.full((1000,), value)}, "epoch": 1}


def test_a_checkpoint_loads_back_and_torch_load_still_reads_it(tmp_path):
    path = tmp_path / "last.pt"
    save_checkpoint(path, small_state(2.0), "training")
    state = load_checkpoint(path, "training")
    assert state["kind"] == "training" and torch.equal(state["model"]["w"], torch.full((1000,), 2.0))
    plain = torch.load(path, weights_only=True)  # an ordinary torch.save file underneath
    assert torch.equal(plain["model"]["w"], state["model"]["w"])


@pytest.mark.parametrize("where", [0.3, 0.6, 0.9, -10])
def test_a_single_flipped_byte_is_refused(tmp_path, where):
    path = tmp_path / "last.pt"
    save_checkpoint(path, small_state(), "training")
    raw = bytearray(path.read_bytes())
    raw[int(len(raw) * where) if where > 0 else where] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="damaged|checksum"):
        load_checkpoint(path)


def test_a_truncated_or_foreign_file_is_refused(tmp_path):
    path = tmp_path / "last.pt"
    save_checkpoint(path, small_state(), "training")
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(CheckpointError, match="no googlenet_utils checksum|damaged"):
        load_checkpoint(path)
    torch.save(small_state(), tmp_path / "plain.pt")  # written without our checksum
    with pytest.raises(CheckpointError, match="no googlenet_utils checksum"):
        load_checkpoint(tmp_path / "plain.pt")
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "missing.pt")


def test_a_checkpoint_of_the_other_kind_names_both_kinds(tmp_path):
    save_checkpoint(tmp_path / "best.pt", small_state(), "weights")
    with pytest.raises(
        CheckpointError, match="is a 'weights' checkpoint, but a 'training' checkpoint belongs here"
    ):
        load_checkpoint(tmp_path / "best.pt", "training")
    with pytest.raises(ValueError, match="kind must be one of"):
        save_checkpoint(tmp_path / "x.pt", small_state(), "everything")


def test_a_crash_while_saving_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(path, small_state(1.0), "training")

    def crash_half_way(obj, file):
        file.write(b"PK\x03\x04 half a zip")
        raise OSError("power cut")

    monkeypatch.setattr(checkpoint_module.torch, "save", crash_half_way)
    with pytest.raises(OSError, match="power cut"):
        save_checkpoint(path, small_state(0.0), "training")
    monkeypatch.undo()
    assert torch.equal(load_checkpoint(path)["model"]["w"], torch.ones(1000))
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left behind


def test_disk_full_says_so_and_keeps_the_last_good_file(tmp_path):
    path = tmp_path / "last.pt"
    save_checkpoint(path, small_state(1.0), "training")

    def fill_the_disk(file):
        file.write(b"partial")
        raise OSError(28, "No space left on device")

    with pytest.raises(
        CheckpointError, match="disk full while writing .*last.pt.*previous last.pt .* is intact"
    ):
        atomic_write(path, fill_the_disk)
    assert torch.equal(load_checkpoint(path)["model"]["w"], torch.ones(1000))
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_concurrent_writers_never_share_a_temporary_file(tmp_path):
    path, errors = tmp_path / "metrics.json", []

    def write(text):
        try:
            for _ in range(20):
                atomic_write(path, lambda file, t=text: file.write(t * 1000), "w")
        except Exception as error:  # noqa: BLE001 - collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=write, args=(c,)) for c in "ab"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and path.read_text() in ("a" * 1000, "b" * 1000)


def test_the_background_writer_runs_jobs_in_order_and_reports_errors():
    done = []
    with BackgroundWriter() as writer:
        writer.submit(lambda: done.append(1))
        writer.submit(lambda: done.append(2))
        writer.wait()
        assert done == [1, 2]
        writer.submit(lambda: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            writer.wait()
        writer.submit(lambda: done.append(3))
    assert done == [1, 2, 3]  # leaving the block waits for the last job


def test_host_copy_is_independent_of_the_live_tensors():
    live = {"w": torch.ones(3), "nested": [torch.zeros(2)], "n": 4}
    copy = host_copy(live)
    live["w"].add_(1)
    live["nested"][0].add_(1)
    assert (
        torch.equal(copy["w"], torch.ones(3))
        and torch.equal(copy["nested"][0], torch.zeros(2))
        and copy["n"] == 4
    )


def test_wrong_models_are_refused_and_left_untouched(tmp_path):
    model = tiny_model()
    save_checkpoint(
        tmp_path / "best.pt", {"model_config": model.config.to_dict(), "model": model.state_dict()}, "weights"
    )
    state = load_checkpoint(tmp_path / "best.pt")
    wider = tiny_model(width=0.125)
    before = {k: v.clone() for k, v in wider.state_dict().items()}
    with pytest.raises(
        CheckpointError, match=r"different GoogLeNet \(width: 0.0625 in the checkpoint, 0.125"
    ):
        load_weights(wider, state)
    assert all(torch.equal(before[k], v) for k, v in wider.state_dict().items())
    with pytest.raises(CheckpointError, match="does not fit this model: missing 0.bias"):
        load_weights(nn.Sequential(nn.Linear(3, 3)), state)
    rebuilt = model_from_checkpoint(tmp_path / "best.pt")
    assert rebuilt.config == model.config and not rebuilt.training
    assert all(
        torch.equal(a, b)
        for a, b in zip(rebuilt.state_dict().values(), model.state_dict().values(), strict=True)
    )


def test_a_damaged_checkpoint_says_what_deleting_it_would_not_do(tmp_path):
    path = tmp_path / "last.pt"
    save_checkpoint(path, small_state(), "training")
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="damaged") as error:
        load_checkpoint(path)
    message = str(error.value)
    assert "resumes from its last intact checkpoint" not in message  # no older checkpoint is kept
    assert "No older copy is kept" in message and "new --out" in message


def test_an_unreadable_checkpoint_is_a_message_not_a_traceback(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(path, small_state(), "training")

    def refuse(self):  # chmod does not stop root, who runs CI containers
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr("pathlib.Path.read_bytes", refuse)
    with pytest.raises(CheckpointError, match=r"cannot read checkpoint .*last.pt \(Permission denied\)"):
        load_checkpoint(path, "training")
