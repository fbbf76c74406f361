"""The spark-submit entry points under `jobs/`: one per registered step, each the same
command as `cdp run NAME` (checked through `--help`, which starts no JVM)."""

from __future__ import annotations

import ast
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from app.registry import steps

ROOT = Path(__file__).resolve().parent.parent


def _step_of(script: Path) -> str:
    call = next(n for n in ast.walk(ast.parse(script.read_text())) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "submit")
    return call.args[0].value  # type: ignore[attr-defined]


def test_every_step_has_an_entry_point_that_runs_it(monkeypatch, capsys):
    scripts = sorted(p for p in (ROOT / "jobs").glob("*.py") if p.name != "__init__.py")
    assert {_step_of(p) for p in scripts} == set(steps()) | {"pipeline"}
    # One script as spark-submit starts it: its own folder first on the path, elsewhere.
    first = scripts[0]
    run = subprocess.run([sys.executable, str(first), "--help"], capture_output=True, text=True, cwd="/", timeout=120)
    assert run.returncode == 0, run.stderr
    assert f"Usage: cdp run {_step_of(first)} " in run.stdout
    # The others in this process (the imports are paid once), each as `__main__`.
    for script in scripts[1:]:
        monkeypatch.setattr(sys, "argv", [str(script), "--help"])
        with pytest.raises(SystemExit) as exited:
            runpy.run_path(str(script), run_name="__main__")
        assert exited.value.code in (0, None), script
        assert f"Usage: cdp run {_step_of(script)} " in capsys.readouterr().out, script
