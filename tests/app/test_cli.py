"""The `cdp` command line: help, typos, exit codes, values checked before Spark starts.
No test here starts a JVM."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from app.cli import main
from cdp.errors import EXIT_CODES

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _jvm_free(no_spark):
    """Every test here fails if it would start a SparkSession."""


@pytest.fixture
def profile(tmp_path):
    conf = tmp_path / "conf"
    conf.mkdir()
    raw = yaml.safe_load((ROOT / "conf" / "local.yaml").read_text())
    raw["lake"] = {"root": str(tmp_path / "lake"), "raw_root": str(tmp_path / "raw")}
    raw["mlflow"] = {"tracking_uri": f"sqlite:///{tmp_path}/mlflow.db", "artifact_root": str(tmp_path / "mlruns")}
    (conf / "local.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True))
    for name in ("feeds.yaml", "campaigns.yaml"):
        if (ROOT / "conf" / name).exists():
            shutil.copy(ROOT / "conf" / name, conf / name)
    return str(conf / "local.yaml")


def test_generate_prints_counts(tmp_path, capsys):
    assert main(["generate", "--customers", "20", "--seed", "1", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "sales_orders" in out and "total" in out
    assert (tmp_path / "truth" / "mentions.csv").exists()


def test_help_lists_every_command_with_a_description(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("run", "customer", "segments", "audience", "winback", "reminders", "model", "privacy", "link", "runs"):
        line = next(line for line in out.splitlines() if line.strip().startswith(command + " "))
        assert len(line.split(None, 1)[1]) > 10, line


def test_version(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("cdp, version ")


def test_step_help_is_its_own(capsys):
    assert main(["run", "pipeline", "--help"]) == 0
    out = capsys.readouterr().out
    assert "Usage: cdp run pipeline" in out and "--from" in out and "--only" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["rnu"], "No such command 'rnu'. Did you mean 'run'?"),
        (["run", "ingset"], "No such command 'ingset'. Did you mean 'ingest'?"),
        (["run", "ingest", "--feeds", "x"], "No such option '--feeds'. Did you mean '--feed'?"),
        (["run", "pipeline", "--only", "segmnet"], "no pipeline step 'segmnet': did you mean 'segment'?"),
        (["run", "pipeline", "--from", "winback", "--to", "ingest"], "--from winback comes after --to ingest"),
        (["run", "pipeline", "--incremental", "--from", "features"], "--incremental changes how resolve runs, and the steps selected leave resolve out"),
    ],
)
def test_unknown_names_are_named_with_the_closest_match(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_a_typo_in_a_feed_is_an_error_before_spark_starts(profile, capsys):
    assert main(["run", "ingest", "--feed", "sales_order", "--conf", profile]) == 2
    assert "no feed 'sales_order' in the feeds file: did you mean 'sales_orders'?" in capsys.readouterr().err


def test_a_typo_in_a_campaign_is_an_error_before_spark_starts(profile, capsys):
    assert main(["run", "audiences", "--campaign", "birthday_wechta", "--conf", profile]) == 2
    assert "no campaign 'birthday_wechta' in the campaigns file: did you mean 'birthday_wechat'?" in capsys.readouterr().err


def test_configuration_error_is_reported_with_file(tmp_path, capsys):
    assert main(["run", "ingest", "--conf", str(tmp_path / "missing.yaml")]) == 3
    assert f"{tmp_path}/missing.yaml: cannot read config file" in capsys.readouterr().err


def test_read_only_commands_on_an_empty_lake_say_what_to_run(profile, capsys):
    assert main(["winback", "show", "--conf", profile]) == 4
    assert "no win-back list yet: run `cdp run winback` first" in capsys.readouterr().err
    assert main(["segments", "list", "--conf", profile]) == 4
    assert "no segments yet" in capsys.readouterr().err
    assert main(["customer", "show", "CU0", "--conf", profile]) == 4
    assert "missing gold/customers: run `cdp run resolve` first" in capsys.readouterr().err
    assert main(["runs", "--conf", profile]) == 0
    assert "no runs recorded yet" in capsys.readouterr().out


def test_vacuum_under_168_hours_is_refused_without_the_override(profile, capsys):
    assert main(["privacy", "vacuum", "--retention-hours", "0", "--conf", profile]) == 2
    err = capsys.readouterr().err
    assert "retention 0 h is under 168 h" in err and "--allow-short-retention" in err
    config = yaml.safe_load(Path(profile).read_text())
    config.setdefault("activation", {}).setdefault("privacy", {})["vacuum_retention_hours"] = 24
    Path(profile).write_text(yaml.safe_dump(config, allow_unicode=True))
    assert main(["privacy", "erase", "--mobile", "13800138000", "--vacuum", "--conf", profile]) == 2
    assert "retention 24 h is under 168 h" in capsys.readouterr().err


def test_exit_codes_are_documented_in_the_readme():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for code, meaning in EXIT_CODES.items():
        assert f"| {code} | {meaning} |" in readme


def test_feeds_check_maps_each_file_onto_its_contract(profile, tmp_path, capsys):
    raw = tmp_path / "raw"
    (raw / "contact_preferences").mkdir(parents=True)
    (raw / "contact_preferences" / "prefs.csv").write_bytes(
        "mobile,id_number,channel,opt_in,updated_at,备注\n13800138000,,短信,true,2025-01-01 00:00:00,老客户\n".encode("gbk")
    )
    (raw / "sales_orders").mkdir()
    (raw / "sales_orders" / "so.csv").write_text("order_id,dealer_code,order_date,customer_type,vin,price,mobil\n", encoding="utf-8")
    assert main(["feeds", "check", "--feed", "contact_preferences", "--conf", profile]) == 0
    out = capsys.readouterr().out
    assert "prefs.csv  ok" in out
    assert "bytes that are not UTF-8; it reads as gbk (set csv.encoding: gbk)" in out
    assert "extra column 备注: ignored" in out
    assert main(["feeds", "check", "--feed", "sales_orders", "--conf", profile]) == 5
    captured = capsys.readouterr()
    assert "so.csv  WOULD NOT LOAD" in captured.out and "missing required: customer_name" in captured.out
    assert "extra column mobil: ignored (rename to mobile?)" in captured.out
    assert "1 of 1 file(s) would not load" in captured.err
    assert main(["feeds", "check", "--feed", "sales_order", "--conf", profile]) == 2
    assert "did you mean 'sales_orders'" in capsys.readouterr().err.lower()
