import json

import pytest
import torch
from conftest import make_metrics

from googlenet_utils.evaluation import Predictions
from googlenet_utils.run_record import load_run
from googlenet_utils.run_schema import RunFileError, RunMetrics, predictions_from_file, predictions_to_file
from googlenet_utils.rundir import RunDir, RunDirError


def test_metrics_round_trip_through_the_file(tmp_path):
    folder = RunDir(tmp_path)
    metrics = make_metrics(test_accuracy=0.8125, time_budget={"epochs": 3}, stopped_early="wall clock")
    folder.write_metrics(metrics)
    assert folder.read_metrics() == metrics
    assert json.loads((tmp_path / "metrics.json").read_text())["test_accuracy"] == 0.8125


def test_metrics_from_before_time_budgets_read_with_none():
    old = make_metrics().to_dict()
    for name in ("planned_epochs", "time_budget", "stopped_early"):
        del old[name]
    metrics = RunMetrics.from_dict(old, "old run")
    assert (metrics.planned_epochs, metrics.time_budget, metrics.stopped_early) == (None, None, None)


def test_metrics_with_missing_or_unknown_keys_are_refused_by_name(tmp_path):
    values = make_metrics().to_dict()
    del values["best_epoch"]
    expected = "where is not the metrics a run writes: it lacks best_epoch and has unknown acc"
    with pytest.raises(RunFileError, match=expected):
        RunMetrics.from_dict({**values, "acc": 1.0}, "where")
    (tmp_path / "metrics.json").write_text(json.dumps(values))
    with pytest.raises(RunDirError, match=r"metrics.json is not the metrics a run writes.*damaged"):
        RunDir(tmp_path).read_metrics()


def test_predictions_round_trip_with_and_without_optional_views():
    labels, logits = torch.tensor([0, 1]), torch.randn(2, 10)
    for predictions in (
        Predictions(labels, logits),
        Predictions(labels, logits, flipped=logits + 1, tta=logits + 2, aux={"aux1": logits - 1}),
    ):
        content = predictions_to_file(predictions, ["a", "b"])
        assert set(content) == {"logits", "logits_flipped", "logits_tta", "aux1", "aux2", "labels", "classes"}
        back, classes = predictions_from_file(content, "here")
        assert classes == ["a", "b"] and back.aux.keys() == predictions.aux.keys()
        for name in ("labels", "logits", "flipped", "tta"):
            mine, theirs = getattr(back, name), getattr(predictions, name)
            assert (mine is None and theirs is None) or torch.equal(mine, theirs)


def test_a_predictions_file_without_logits_is_refused():
    with pytest.raises(RunFileError, match="here does not hold the test predictions"):
        predictions_from_file({"labels": torch.zeros(2)}, "here")


def test_fit_returns_what_load_run_reads(finished_run):
    record = load_run(finished_run.run_dir)
    assert record.metrics == finished_run.metrics and record.classes == finished_run.classes
    assert record.config == finished_run.config and record.history == finished_run.history
    assert torch.equal(record.predictions.tta, finished_run.predictions.tta)
