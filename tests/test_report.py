"""The auditor's report, the history store, the metrics and the machine-readable outputs of a run."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from akko_dr.cli import main
from akko_dr.evidence import audit, context, history, integrity, objectives
from akko_dr.evidence.record import RunRecord, ScenarioRecord
from akko_dr.policy import format_duration, load_policy

FEATURE = """\
@drill-1 @class-control-plane @dora-12.3
Feature: Figures probe
  Scenario: A restore measured against the policy
    Given the incident is declared
    When the database comes back
    Then the recovery time and data loss are recorded

  Scenario: A restore that is refused
    Given the incident is declared
    When the backup cannot be trusted
"""

STEPS = """\
import time
from datetime import timedelta
from pytest_bdd import given, scenarios, then, when
from akko_dr.errors import DrillError
from akko_dr.measure import Measurement
from akko_dr.policy import load_policy

scenarios("figures.feature")

@given("the incident is declared", target_fixture="declared")
def _():
    return time.monotonic()

@when("the database comes back", target_fixture="elapsed")
def _(declared):
    return timedelta(seconds=time.monotonic() - declared)

@when("the backup cannot be trusted")
def _():
    raise DrillError("backup of superset_metadata is corrupt")

@then("the recovery time and data loss are recorded")
def _(evidence, elapsed):
    policy = load_policy()
    database = policy.drill("drill-1")["database"]
    klass = policy.database(database).klass
    evidence.details["database"] = database
    evidence.measure(Measurement("RTO", elapsed, klass.rto, klass))
    evidence.measure(Measurement("RPO", elapsed / 2, klass.rpo, klass))
    evidence.details["attestations"] = [{"key": "tabletop", "who": "B. Ops", "role": "ops lead"}]
    evidence.details["not applicable"] = {"Then the replica is promoted": "the sandbox has no replica"}
"""

INI = """\
[pytest]
markers =
    drill-1: Drill 1
    class-control-plane: Control plane targets
    dora-12.3: DORA Art. 12(3) — restoration into segregated systems
"""


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    """The probe run twice into one evidence folder; returns the folder and each run's results.json."""
    root = tmp_path_factory.mktemp("figures")
    (root / "figures.feature").write_text(FEATURE)
    (root / "test_figures.py").write_text(STEPS)
    (root / "pytest.ini").write_text(INI)
    results = []
    for _ in range(2):
        run = subprocess.run([sys.executable, "-m", "pytest", "-p", "akko_dr.evidence.plugin",
                              "--evidence-dir", "ev", "--no-audit-pdf", "--trigger", "after-change",
                              "--participant", "A. Owner (test owner)", "-p", "no:cacheprovider"],
                             cwd=root, capture_output=True, text=True, timeout=120)
        assert "1 failed, 1 passed" in run.stdout, run.stdout[-2000:] + run.stderr[-2000:]
        results.append(json.loads((root / "ev" / "latest" / "results.json").read_text()))
    return root / "ev", results


def _measured(results: dict) -> dict:
    return next(s for s in results["scenarios"] if s["rto_seconds"] is not None)


def test_every_run_appends_its_figures_to_the_history(two_runs) -> None:
    evidence, results = two_runs
    rows = history.read(evidence)
    assert [r["run_id"] for r in rows] == [results[0]["run_id"]] * 2 + [results[1]["run_id"]] * 2
    for res in results:
        measured = _measured(res)
        [row] = [r for r in rows if r["run_id"] == res["run_id"] and r["status"] == "passed"]
        assert (row["rto_seconds"], row["rpo_seconds"]) == (measured["rto_seconds"], measured["rpo_seconds"])
        assert row["rto_target_seconds"] == load_policy().klass("control-plane").rto.total_seconds()
        assert (row["drill"], row["database"]) == ("drill-1", load_policy().drill("drill-1")["database"])


def test_the_report_charts_each_run_against_the_target_line(two_runs) -> None:
    evidence, results = two_runs
    report = (evidence / "latest" / "audit-report.html").read_text()
    [svg] = re.findall(r"<svg .*?</svg>", report, re.S)
    runs = {r["run_id"] for r in results}
    points = re.findall(r"<circle [^>]*><title>(\S+): (RTO|RPO) ", svg)
    assert {run for run, _ in points} == runs and len(points) == 4
    klass = load_policy().klass("control-plane")
    assert f"RTO target {format_duration(klass.rto)}" in svg
    assert f"RPO target {format_duration(klass.rpo)}" in svg


def test_the_first_page_names_the_test_and_states_the_verdict(two_runs) -> None:
    evidence, results = two_runs
    report = (evidence / "latest" / "audit-report.html").read_text()
    first = report.split("<div class='page'>")[0]
    policy = load_policy()
    rto = format_duration(_measured(results[1])["rto_seconds"])
    for expected in (results[1]["run_id"], f"{policy.name} {policy.version}", "after-change",
                     "rehearsal, not production", context.ntp_state(), "id='verdict'",
                     rto, format_duration(policy.klass("control-plane").rto),
                     "FAIL", "backup of superset_metadata is corrupt"):
        assert expected in first, f"first page lacks {expected!r}"


def test_the_report_declares_objectives_and_fills_the_playbook_lines(two_runs) -> None:
    evidence, results = two_runs
    report = (evidence / "latest" / "audit-report.html").read_text()
    declared = results[1]["declared"]
    assert declared == objectives.declare(load_policy())
    assert results[1]["declared_at"] <= results[1]["scenarios"][0]["started_at"]
    for drill in declared:
        for criterion in drill["criteria"]:
            assert criterion in report.replace("&#x27;", "'")
    rto = format_duration(_measured(results[1])["rto_seconds"])
    assert f"Record your number here: <b>{audit.BLANK}</b> — rehearsal: {rto} " in report
    assert "(sandbox, not for the annex)" in report
    assert "DORA Art. 12(3) — restoration into segregated systems" in report
    assert "A. Owner (test owner)" in report and "B. Ops (ops lead), attested tabletop" in report


def test_the_checklist_and_deficiencies_name_what_is_open(two_runs) -> None:
    evidence, _ = two_runs
    report = (evidence / "latest" / "audit-report.html").read_text()
    deficiencies = report.split("<h2>Deficiencies register</h2>")[1].split("<h2>")[0]
    assert "backup of superset_metadata is corrupt" in deficiencies
    assert "Run Drill 2 on a scratch cluster and record RTO" in deficiencies
    assert "Sign-off by compliance officer" in deficiencies
    assert "Then the replica is promoted</td><td>not applicable</td><td>the sandbox has no replica" \
        in deficiencies
    assert deficiencies.count("<th>Owner</th>") == 1 and "Due date" in deficiencies


def test_metrics_are_written_in_prometheus_text_format(two_runs) -> None:
    evidence, results = two_runs
    text = (evidence / "latest" / "metrics.prom").read_text()
    samples = {s.name: s for f in text_string_to_metric_families(text) for s in f.samples}
    measured = _measured(results[1])
    database = load_policy().drill("drill-1")["database"]
    assert samples["akko_dr_restore_duration_seconds"].labels == {
        "drill": "drill-1", "database": database, "target": "sandbox"}
    assert samples["akko_dr_restore_duration_seconds"].value == measured["rto_seconds"]
    assert samples["akko_dr_rpo_seconds"].value == measured["rpo_seconds"]
    success = samples["akko_dr_last_success_timestamp_seconds"].value
    assert success == datetime.fromisoformat(results[1]["finished_at"]).timestamp()


def test_junit_and_cucumber_outputs_sit_beside_the_report(two_runs) -> None:
    evidence, _ = two_runs
    run = (evidence / "latest").resolve()
    suite = ET.parse(run / "junit.xml").getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures")) == ("2", "1")
    [feature] = json.loads((run / "cucumber.json").read_text())
    assert [e["name"] for e in feature["elements"]] == ["A restore measured against the policy",
                                                        "A restore that is refused"]
    assert {t["name"] for t in feature["tags"]} == {"drill-1", "class-control-plane", "dora-12.3"}
    manifest = json.loads((run / integrity.MANIFEST).read_text())
    assert {"junit.xml", "cucumber.json", "metrics.prom"} <= set(manifest["files"])


def test_the_second_run_is_chained_to_the_first(two_runs) -> None:
    evidence, results = two_runs
    manifest = json.loads((evidence / results[1]["run_id"] / integrity.MANIFEST).read_text())
    first = evidence / results[0]["run_id"] / integrity.MANIFEST
    assert manifest["previous"] == {"run_id": results[0]["run_id"],
                                    "manifest_sha256": integrity.sha256_file(first)}


def test_deleting_the_newest_run_is_named_through_the_history(two_runs, tmp_path: Path, capsys) -> None:
    evidence, results = two_runs
    copy = tmp_path / "ev"
    shutil.copytree(evidence, copy, symlinks=True)
    assert main(["verify", str(copy)]) == 0
    shutil.rmtree(copy / results[1]["run_id"])
    assert main(["verify", str(copy)]) == 1
    newest = results[1]["run_id"]
    assert f"run {newest} is in the history store but its sealed folder is missing" in capsys.readouterr().out


def test_a_live_production_run_names_its_cluster_on_the_first_page() -> None:
    run = RunRecord("20261127t090000z_aaaa", Path("unused"), target="live", production=True,
                    components={"kubernetes": "https://k8s.example:6443, context prod, namespace akko-prod"})
    page = audit.identification(run)
    assert "live — PRODUCTION" in page
    assert "cluster https://k8s.example:6443, context prod, namespace akko-prod" in page


@pytest.mark.parametrize(("target", "status"), [("sandbox", "rehearsed"), ("live", "covered")])
def test_a_passed_drill_covers_its_checklist_item_only_on_a_live_target(target: str, status: str) -> None:
    run = RunRecord("20261127t090000z_aaaa", Path("unused"), target=target)
    drill = ScenarioRecord("n", tags=["drill-1"], status="passed", rto_seconds=1.0)
    run.scenarios.append(drill)
    [item] = [c for c in objectives.checklist(run, load_policy()) if c.text.startswith("Run Drill 1")]
    assert item.status == status
