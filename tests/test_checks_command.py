"""``akko-dr check`` shows progress and exits non-zero on any failure (run as an operator would)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _check(tmp_path: Path, selection: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "akko_dr.cli", "check", "--target", "sandbox",
                           "--evidence-dir", str(tmp_path / "ev"), "-k", selection],
                          cwd=ROOT, capture_output=True, text=True, check=False)


def test_a_failed_check_exits_non_zero_with_its_reason(tmp_path: Path) -> None:
    run = _check(tmp_path, "control_plane")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "FAIL    Control plane is backed up at least as often as its RPO — RPO " in run.stdout, run.stdout
    assert "akko-dr check: 1 failed" in run.stdout, run.stdout


def test_passing_checks_exit_zero(tmp_path: Path) -> None:
    run = _check(tmp_path, "observability or scope_is_protected")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "[  2/2] PASS" in run.stdout, run.stdout
    assert (tmp_path / "ev" / "latest" / "results.json").is_file()
