"""The main job as an operator runs it: ``akko-dr drill`` on the sandbox, and the docker target skipped."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict]:
    evidence = tmp_path / "evidence"
    proc = subprocess.run([sys.executable, "-m", "akko_dr.cli", "drill", "--evidence-dir", str(evidence),
                           *args], cwd=ROOT, capture_output=True, text=True, timeout=600)
    results = evidence / "latest" / "results.json"
    assert results.exists(), proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc, json.loads(results.read_text())


def test_drill_1_on_the_sandbox_leaves_measured_evidence(tmp_path: Path) -> None:
    proc, results = _run(tmp_path, "-k", "dropped_table")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "Report:   " in proc.stdout and "audit-report.html" in proc.stdout
    [drill] = results["scenarios"]
    assert drill["status"] == "passed"
    assert 0 < drill["rto_seconds"] <= drill["rto_target_seconds"]
    assert 0 < drill["rpo_seconds"] <= drill["rpo_target_seconds"]
    assert drill["backup"]["key"].startswith("pg/superset_metadata_")
    assert len(drill["backup"]["sha256"]) == 64
    assert results["target"] == "sandbox" and results["policy_version"] == "2026.04"


def test_the_docker_target_is_skipped_with_its_reason_where_no_engine_runs(tmp_path: Path) -> None:
    from akko_dr.wiring import docker_engine_unavailable

    reason = docker_engine_unavailable()
    proc, results = _run(tmp_path, "--target", "docker", "-k", "dropped_table")
    assert proc.returncode == 0
    [drill] = results["scenarios"]
    if reason is None:  # an engine answers here: the docker adapters decide
        assert drill["status"] in ("passed", "skipped")
    else:
        assert drill["status"] == "skipped" and "Docker engine" in drill["error"]
