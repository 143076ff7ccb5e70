"""The GPU report runs end to end on a CPU in smoke mode, so it works the first time a GPU appears."""

import json

import pytest

from googlenet_utils import gpu_report, recipe


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    assert gpu_report.main(["run", "--smoke", "--out", str(out), "--commit", "abc1234"]) == 0
    return out


def test_the_report_writes_environment_bench_run_and_summary(report_dir):
    assert {p.name for p in report_dir.iterdir()} == {
        "environment.json",
        "bench.json",
        "smoke",
        "report.json",
    }
    assert {p.name for p in (report_dir / "smoke").iterdir()} == {
        "config.json",
        "history.csv",
        "metrics.json",
    }
    env = json.loads((report_dir / "environment.json").read_text())
    assert env["commit"] == "abc1234" and env["device"].startswith("cpu") and env["torch"]
    bench = json.loads((report_dir / "bench.json").read_text())
    assert bench["eager_images_per_s"] > 0 and bench["ratio"] > 0 and bench["model_flop_utilisation"] is None
    report = json.loads((report_dir / "report.json").read_text())
    assert set(report["time_to_val_accuracy"]) == {"0.90", "0.93", "0.94", "0.95"}
    assert 0 <= report["test_accuracy_no_tta"] <= 1 and report["recipe"] == "smoke"


def test_publish_copies_the_report_and_regenerates_the_table(report_dir, tmp_path, monkeypatch):
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{gpu_report.TABLE_START}\nold\n{gpu_report.TABLE_END}\n\nafter\n")
    measured = tmp_path / "measured.json"
    monkeypatch.setattr(gpu_report, "MEASURED", measured)
    monkeypatch.setattr(recipe, "MEASURED", measured)
    target = gpu_report.publish(report_dir, "cpu-smoke", tmp_path / "results", readme)
    assert (target / "README.md").read_text().startswith("# smoke") and "commit: abc1234" in (
        target / "README.md"
    ).read_text()
    text = readme.read_text()
    report = json.loads((report_dir / "report.json").read_text())
    assert "old" not in text and text.endswith("after\n")
    assert (
        f"{report['test_accuracy']:.2%} / {report['test_accuracy_no_tta']:.2%}" in text
        and "peak unknown" in text
    )
    assert recipe.RECIPES["smoke"].expected.startswith(f"{report['test_accuracy']:.2%} test accuracy")
    assert recipe.RECIPES["fast"].expected == "not measured yet"
    with pytest.raises(SystemExit, match="exists"):
        gpu_report.publish(report_dir, "cpu-smoke", tmp_path / "results", readme)


def test_peak_flops_match_gpu_names_exactly():
    from googlenet_utils.bench import peak_flops

    assert peak_flops("NVIDIA H100 80GB HBM3") == 989e12 and peak_flops("NVIDIA H100 PCIe") == 756e12
    assert peak_flops("NVIDIA H100") is None  # a name that is not in the table is not guessed
