"""The `cdp` command line (no JVM needed for these paths)."""

from __future__ import annotations

from cdp.cli import main


def test_generate_prints_counts(tmp_path, capsys):
    assert main(["generate", "--customers", "20", "--seed", "1", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "sales_orders" in out and "total" in out
    assert (tmp_path / "truth" / "mentions.csv").exists()


def test_unknown_job_is_rejected(capsys):
    assert main(["run", "nope"]) == 2
    assert "choose a job from ingest, resolve, features, train_segments, segment, reminders, audiences, train_winback, winback, pipeline" in capsys.readouterr().err


def test_configuration_error_is_reported_with_file(tmp_path, capsys):
    assert main(["run", "ingest", "--conf", str(tmp_path / "missing.yaml")]) == 2
    assert f"{tmp_path}/missing.yaml: cannot read config file" in capsys.readouterr().err
