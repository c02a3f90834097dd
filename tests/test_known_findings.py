"""Known findings are waivers keyed by scenario or check id, each justified and expiring (as InSpec's)."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from akko_dr.errors import PolicyError
from akko_dr.findings import load_known_findings, match_finding

ROOT = Path(__file__).resolve().parents[1]
WAIVER = """\
- id: policy.rpo.critical-data
  reason: "RPO 1h cannot be met by dumps every 2h"
  justification: the playbook itself
  expires: {expires}
"""


def test_the_project_waivers_are_keyed_by_id_and_justified() -> None:
    findings = load_known_findings(ROOT / "tests" / "known_findings.yaml", "sandbox", date(2026, 11, 29))
    assert findings and all(f.justification and f.expires for f in findings)
    assert all(" " not in f.id and ":" not in f.id for f in findings), [f.id for f in findings]
    assert match_finding(findings, ["policy.rpo.control-plane"]).reason.startswith("RPO 4h")
    assert match_finding(findings, ["Critical data is backed up at least as often as its RPO"]) is None


def test_a_waiver_without_justification_or_expiry_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "k.yaml"
    path.write_text('- scenario: "Critical data"\n  reason: "RPO"\n')
    with pytest.raises(PolicyError, match="expected a mapping with id, reason, justification, expires"):
        load_known_findings(path, "sandbox")


def test_an_expired_waiver_fails_the_run_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "k.yaml"
    path.write_text(WAIVER.format(expires="2026-01-31"))
    with pytest.raises(PolicyError, match="expired on 2026-01-31"):
        load_known_findings(path, "sandbox", date(2026, 11, 29))
    run = subprocess.run([sys.executable, "-m", "pytest", "steps/test_policy_analysis.py", "-q",
                          "-p", "no:cacheprovider", "--evidence-dir", str(tmp_path / "ev"),
                          "--known-findings", str(path)], cwd=ROOT, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == pytest.ExitCode.USAGE_ERROR, run.stdout[-2000:] + run.stderr[-2000:]
    [line] = [ln for ln in run.stderr.splitlines() if "expired" in ln]
    assert "known finding policy.rpo.critical-data expired on 2026-01-31" in line
    assert "Traceback" not in run.stderr
