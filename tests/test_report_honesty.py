"""The audit report claims only what the run proved: gaps are no PASS, rehearsals fill no blank."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from akko_dr.evidence import audit, objectives, register
from akko_dr.evidence.record import RunRecord, ScenarioRecord
from akko_dr.policy import format_duration, load_policy

KEY = {"kind": "ephemeral", "key_id": "0123456789abcdef", "public_key": "AAAA", "algorithm": "Ed25519"}


def _run(target: str = "sandbox", *scenarios: ScenarioRecord) -> RunRecord:
    run = RunRecord("20261129t090000z_aaaa", Path("unused"), target=target, policy_name="AKKO",
                    policy_version="2026.04")
    run.declared = objectives.declare(load_policy(), {"drill-3": "control-plane"})
    run.scenarios.extend(scenarios)
    return run


def _render(run: RunRecord, owners: dict | None = None, signer: dict | None = None) -> str:
    inputs = audit.AuditInputs(run, objectives.checklist(run, load_policy()), [], signer or KEY, None,
                               register=owners or {})
    return audit.render(inputs)


def _drill_1(status: str = "passed", **kw) -> ScenarioRecord:
    rec = ScenarioRecord("n1", feature="Drill 1", feature_file="drill_1_restore_database.feature",
                         name="Restore a dropped table", tags=["drill-1", "class-critical-data"],
                         status=status, rto_seconds=0.8, rto_target_seconds=7200.0, rpo_seconds=3.0,
                         rpo_target_seconds=3600.0, target_class="Critical data", **kw)
    rec.details["database"] = "superset_metadata"
    return rec


def _first_page(html: str) -> str:
    return html.split("<div class='page'>")[0]


def _section(html: str, title: str) -> str:
    return html.split(f"<h2>{title}</h2>")[1].split("<h2>")[0]


def test_a_sandbox_run_leaves_the_playbook_blank_open() -> None:
    html = _render(_run("sandbox", _drill_1()))
    line = _section(html, "The playbook's record lines")
    assert f"Record your number here: <b>{audit.BLANK}</b> — rehearsal: 0.8s " in line, line
    assert "(sandbox, not for the annex)" in line


def test_a_live_run_fills_the_playbook_blank() -> None:
    run = _run("live", _drill_1())
    line = _section(_render(run), "The playbook's record lines")
    assert f"Record your number here: <b>0.8s (RPO 3.0s, passed), run {run.run_id}</b>" in line, line
    assert "rehearsal" not in line


@pytest.mark.parametrize(("status", "error", "word"), [
    ("inconclusive", "inconclusive (emulator): moto accepted the delete", "INCONCLUSIVE (emulator)"),
    ("not-applicable", "not applicable on sandbox: no replica", "NOT APPLICABLE")])
def test_a_gap_is_never_a_pass_in_the_verdict_or_checklist(status: str, error: str, word: str) -> None:
    rec = ScenarioRecord("n", feature="Verification", name="A locked record cannot be deleted",
                         tags=["verification"], status=status, error=error)
    drill = ScenarioRecord("d", feature="Drill 3", name="Cannot delete", tags=["drill-3"], status=status,
                           error=error)
    run = _run("sandbox", rec, drill)
    first = _first_page(_render(run))
    verdict = first.split("id='verdict'")[1].split("</table>")[0]
    assert word in verdict and "PASS" not in verdict, verdict
    assert "NOT PROVEN" in first and "every scenario passed" not in first
    [item] = [c for c in objectives.checklist(run, load_policy()) if "Drill 3" in c.text]
    assert item.status == ("inconclusive (emulator)" if status == "inconclusive" else "not applicable")


def test_results_count_each_status_apart() -> None:
    recs = [ScenarioRecord(str(i), status=s) for i, s in enumerate(
        ("passed", "failed", "inconclusive", "not-applicable", "skipped"))]
    summary = _run("sandbox", *recs).to_json()["summary"]
    assert summary == {"passed": 1, "failed": 1, "inconclusive": 1, "not-applicable": 1, "skipped": 1,
                       "not run": 0}


def test_findings_stay_apart_from_coverage_gaps_and_carry_their_owner() -> None:
    failed = ScenarioRecord("f", feature="Verification", name="Shorten", status="failed",
                            error="not WORM: retention shortened")
    failed.details["checks"] = ["verification.worm.shorten: failed"]
    gap = ScenarioRecord("g", feature="Verification", feature_file="verification.feature",
                         name="Replica", status="inconclusive", error="inconclusive (emulator): moto")
    owners = {"verification.worm.shorten": {"severity": "high", "owner": "Platform team",
                                            "due": "2026-12-31", "root_cause": "no COMPLIANCE lock",
                                            "retest": "2027-Q1 drill"}}
    html = _render(_run("sandbox", failed, gap), owners)
    findings = html.split("id='findings'")[1].split("</table>")[0]
    gaps = html.split("id='gaps'")[1].split("</table>")[0]
    assert "verification.worm.shorten" in findings and "Platform team" in findings
    assert "2026-12-31" in findings and "no COMPLIANCE lock" in findings and "2027-Q1 drill" in findings
    assert "Replica" not in findings and "verification/replica" in gaps and "Shorten" not in gaps
    bare = _render(_run("sandbox", failed)).split("id='findings'")[1].split("</table>")[0]
    assert bare.count(register.UNASSIGNED) == len(register.FIELDS)


def test_segregation_is_rendered_as_the_drill_recorded_it() -> None:
    same = _drill_1()
    same.details |= {"segregation": "separate database, same server: not segregated",
                     "segregated_restore": False}
    first = _first_page(_render(_run("sandbox", same)))
    assert "separate database, same server: not segregated — segregated: no" in first
    assert "segregated: yes" not in first
    other = _drill_1()
    other.details |= {"segregation": "second PostgreSQL server /tmp/seg: segregated",
                      "segregated_restore": True}
    assert "second PostgreSQL server /tmp/seg: segregated — segregated: yes" in _first_page(
        _render(_run("sandbox", other)))
    guessed = _drill_1()
    guessed.details["segregation"] = "second server"  # no flag: never "yes"
    assert "segregated: yes" not in _render(_run("sandbox", guessed))


def test_the_worst_case_rpo_is_judged_and_the_measured_one_shown_with_its_basis() -> None:
    basis = "backup taken by the drill 3 s before the incident"
    rec = _drill_1(rpo_worst_case_seconds=7200.0, rpo_basis=basis)
    first = _first_page(_render(_run("sandbox", rec)))
    row = first.split("id='verdict'")[1].split("</table>")[0]
    assert re.search(r"worst case by schedule 2h(0m)? / 1h(0m)? <span class='fail'>missed</span>", row), row
    assert f"restore path {format_duration(3.0)} (backup taken by the drill 3 s before the incident)" in row
    assert "RPO basis: backup taken by the drill 3 s before the incident" in first


def test_every_backup_replayed_and_the_integrity_check_are_in_the_basis() -> None:
    rec = ScenarioRecord("d2", feature="Drill 2", name="Rebuild", tags=["drill-2"], status="passed",
                         rto_seconds=10.0)
    rec.details["backups"] = [{"key": "pg/a_1.dump", "taken_at": "t1"},
                              {"key": "pg/b_1.dump", "taken_at": "t2"}]
    rec.details["integrity check"] = "pg_restore --list of every dump"
    first = _first_page(_render(_run("sandbox", rec)))
    basis = first.split("<p>Basis:</p>")[1]
    assert "2 backups replayed: pg/a_1.dump taken t1, pg/b_1.dump taken t2" in basis
    assert "integrity check: pg_restore --list of every dump" in basis


def test_drill_objectives_come_from_the_drill_and_drill_3_declares_its_targets() -> None:
    policy = load_policy()
    declared = {d["drill"]: d for d in objectives.declare(policy, {"drill-3": "control-plane"})}
    one = declared["drill-1"]
    assert "restore one database, superset_metadata" in one["objective"]
    assert one["objective"] != policy.database("superset_metadata").klass.scenario
    three = declared["drill-3"]
    klass = policy.klass("control-plane")
    assert three["rto_target_seconds"] == klass.rto.total_seconds()
    assert f"RTO ≤ {format_duration(klass.rto)} ({klass.title})" in three["criteria"]


def test_an_ephemeral_key_reads_as_unsigned() -> None:
    first = _first_page(_render(_run("sandbox", _drill_1())))
    assert "unsigned rehearsal: no trusted key" in first


def test_a_passed_rehearsal_is_no_green_pass() -> None:
    html = _render(_run("sandbox", _drill_1()))
    overall = html.split("<p class='overall'>")[1].split("</p>")[0]
    assert "REHEARSED" in overall and "class='pass'" not in overall, overall
    assert "<body class='rehearsal'>" in html and ".rehearsal .pass" in html
    live = _render(_run("live", _drill_1())).split("<p class='overall'>")[1].split("</p>")[0]
    assert "<span class='pass'>PASS</span> — every scenario passed" in live
