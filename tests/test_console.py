"""What an operator sees: a line per scenario, a summary, where the report is; no traceback, no internals."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
INTERNALS = ("Traceback", "Target(", "def _(", "\nE   ", "fixture", "site-packages", "conftest.py")


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "akko_dr.cli", *args, "--evidence-dir", str(tmp_path / "ev")]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)


def _no_internals(run: subprocess.CompletedProcess[str]) -> None:
    out = run.stdout + run.stderr
    leaked = [word for word in INTERNALS if word in out]
    assert not leaked, f"{leaked} on the console:\n{out[-3000:]}"


def test_a_failing_drill_prints_one_line_and_where_the_report_is(tmp_path: Path) -> None:
    run = _cli(tmp_path, "drill", "-k", "control_plane_is_backed_up")  # a finding of the playbook itself
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]
    _no_internals(run)
    [line] = [ln for ln in run.stdout.splitlines() if ln.startswith("[  1/1]")]
    assert "FAIL" in line and "Control plane is backed up at least as often as its RPO" in line
    assert " — " in line, "the line carries the one-line reason"
    assert "akko-dr drill: 1 failed in " in run.stdout
    assert "Report:   " in run.stdout and "audit-report.html" in run.stdout
    assert "Verify:   akko-dr verify " in run.stdout


def test_a_failing_check_prints_no_internals(tmp_path: Path) -> None:
    run = _cli(tmp_path, "check", "-k", "control_plane")
    assert run.returncode == 1, run.stdout + run.stderr
    _no_internals(run)
    assert "[  1/1] FAIL    Control plane is backed up at least as often as its RPO — RPO 4h" in run.stdout


def test_verbose_gives_pytests_own_output(tmp_path: Path) -> None:
    run = _cli(tmp_path, "check", "-k", "control_plane", "-v")
    assert run.returncode == 1
    assert "steps/test_policy_analysis.py::" in run.stdout and "FAILED" in run.stdout
