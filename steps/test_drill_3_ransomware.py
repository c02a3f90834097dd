"""Steps of features/drill_3_ransomware.feature (logic: akko_dr/drills/ransomware.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from pytest_bdd import given, parsers, scenarios, then, when

from akko_dr.attestation import Answers, attest_step, record_not_applicable
from akko_dr.drills import ransomware
from akko_dr.drills.ransomware import RansomwareDrill
from akko_dr.errors import DrillError, Inconclusive, NotApplicable
from akko_dr.evidence.record import RunRecord, ScenarioRecord
from akko_dr.measure import utcnow
from akko_dr.policy import Policy
from akko_dr.ports import VersionedObjectStore
from akko_dr.targets import Target, new_run_id
from akko_dr.worm import Attempt

scenarios("drill_3_ransomware.feature")


@pytest.fixture
def compromised_identity(policy: Policy) -> str:
    """The identity the policy's Drill 3 declares compromised (the playbook: akko-admin)."""
    return policy.drill("drill-3")["compromised_identity"]


@pytest.fixture
def drill_3(target: Target, compromised_identity: str, drill_backups: set[str],
            evidence: ScenarioRecord) -> Iterator[RansomwareDrill]:
    """One Drill 3 run; a recovery that did not finish is undone."""
    drill = RansomwareDrill(target, compromised_identity, new_run_id(), drill_backups=drill_backups)
    yield drill
    if drill.recovery is not None and drill.recovery.validated_at is None:
        drill.recovery.abort()
    if not target.destructive_allowed:
        evidence.details["plan (not executed: destructive steps need --allow-destructive)"] = drill.plan()
    evidence.details.update(drill.evidence())
    if drill.recovery is not None and drill.recovery.backup:
        evidence.backup = drill.recovery.backup.provenance()


@pytest.fixture
def bundle_dir(run_record: RunRecord, drill_3: RansomwareDrill) -> Path:
    """Where this run's Drill 3 evidence bundle goes: inside the run's evidence folder."""
    return run_record.run_dir / f"drill-3-evidence-bundle-{drill_3.run_id}"


@pytest.fixture
def attacker_store(target: Target, drill_3: RansomwareDrill,
                   evidence: ScenarioRecord) -> VersionedObjectStore:
    """The object store as the compromised identity reaches it, with its own access key and secret."""
    store_as = target.port("store_as")
    if emulator := target.emulator_of("audit_trail"):
        evidence.details["credentials"] = f"{emulator}: any refusal comes from Object Lock alone"
    key, secret = target.port("object_keys")(drill_3.identity)
    evidence.details["acting as"] = f"access key {key}, the compromised identity's own"
    return store_as(key, secret)


@given("an attacker holds the credentials of the compromised identity")
def _(drill_3: RansomwareDrill) -> None:
    drill_3.steal_credentials()


@given(parsers.parse('the attacker drops the "{table}" table of the Superset metadata database'))
def _(drill_3: RansomwareDrill, drill_database: str, table: str) -> None:
    drill_3.attack(drill_database, table)


@when("the compromised identity is suspended and its credentials rotated")
def _(drill_3: RansomwareDrill) -> None:
    drill_3.contain()


@then("the attacker's credentials no longer work")
def _(drill_3: RansomwareDrill, evidence: ScenarioRecord) -> None:
    works, answer = drill_3.stolen_credentials_work()
    evidence.details["login with the stolen credentials"] = answer
    assert not works, f"expected the stolen credentials of {drill_3.identity} refused; actual: {answer}"


@when("the audit trail and the restore receipts are preserved in an evidence bundle")
def _(drill_3: RansomwareDrill, bundle_dir: Path) -> None:
    drill_3.preserve(bundle_dir)


@then("every file of the evidence bundle has its sha256 recorded")
def _(drill_3: RansomwareDrill, bundle_dir: Path) -> None:
    assert drill_3.bundle, f"the evidence bundle {bundle_dir} is empty"
    wrong = drill_3.unhashed_bundle_files(bundle_dir)
    assert not wrong, f"expected a matching sha256 for every bundle file; actual: {', '.join(wrong)} differ"


@when("the compromised identity's actions in the audit window are listed from the audit trail")
def _(drill_3: RansomwareDrill) -> None:
    drill_3.identify()


@then(parsers.parse('the dropping of the "{table}" table is among them'))
def _(drill_3: RansomwareDrill, drill_database: str, table: str) -> None:
    wanted = f"{drill_database}.{table}"
    found = [e.line() for e in drill_3.identified]
    assert any(e.action == "DROP TABLE" and e.target == wanted for e in drill_3.identified), (
        f"expected DROP TABLE {wanted} among the actions of {drill_3.identity}; actual: {found}")


@then(parsers.parse("the identity provider's log of the compromised identity shows the dropping of the "
                    '"{table}" table'))
def _(drill_3: RansomwareDrill, table: str, request: pytest.FixtureRequest, evidence: ScenarioRecord) -> None:
    if drill_3.statement_gap:
        record_not_applicable(request, evidence, "identity provider's statement log", drill_3.statement_gap)
        return
    wanted = f'DROP TABLE "{table}"'
    assert any(wanted in line for line in drill_3.statements), (
        f"expected {wanted} in the log of {drill_3.identity}; actual: not in {len(drill_3.statements)} lines")


@when("the attacker's service accounts and secrets are removed")
def _(drill_3: RansomwareDrill, request: pytest.FixtureRequest, evidence: ScenarioRecord) -> None:
    drill_3.require_preserved()
    try:
        evidence.details["removed"] = drill_3.eradicate()
    except NotApplicable as err:
        record_not_applicable(request, evidence, "eradicate", str(err))


@when("the Superset metadata database is recovered with Drill 1")
def _(drill_3: RansomwareDrill) -> None:
    drill_3.recover()


@then(parsers.parse('the "{table}" table of the Superset metadata database is back'))
def _(drill_3: RansomwareDrill, table: str) -> None:
    assert drill_3.recovery is not None and drill_3.recovery.table_exists(table), (
        f"expected table {table} back; actual: still missing")


@then(parsers.parse("the recovery time is within the {klass} RTO"))
def _(drill_3: RansomwareDrill, evidence: ScenarioRecord, klass: str) -> None:
    evidence.judge(drill_3.recover_figure("rto"), drill_3.target.policy.klass(klass), "the database")


@then(parsers.parse("the data loss is within the {klass} RPO"))
def _(drill_3: RansomwareDrill, evidence: ScenarioRecord, judge_rpo: Callable, klass: str) -> None:
    named = drill_3.target.policy.klass(klass)
    if drill_3.rebuild is not None:
        rebuild = drill_3.rebuild
        evidence.judge_rpo(rebuild.rpo(), rebuild.rpo_worst_case(), rebuild.rpo_basis(), named, "platform")
    else:
        judge_rpo(drill_3.recovery, named)



# -- WORM proof -------------------------------------------------------------------------------
@given("the audit trail holds actions of the compromised identity", target_fixture="versions_before")
def _(drill_3: RansomwareDrill, evidence: ScenarioRecord) -> dict:
    events = drill_3.audit.events(drill_3.identity, drill_3.window)
    if not events:  # nothing is ever written to an audit trail to have something to test
        raise NotApplicable(f"not run on {drill_3.target.name}: the audit trail holds no action of "
                            f"{drill_3.identity} in the last {drill_3.window}; no event is invented")
    before = ransomware.audit_versions(drill_3.audit)
    evidence.details["audit object versions before"] = len(before)
    return before


@when("the compromised identity tries to delete every audit object version and to overwrite one",
      target_fixture="deleted")
def _(drill_3: RansomwareDrill, attacker_store: VersionedObjectStore, versions_before: dict,
      evidence: ScenarioRecord) -> list[str]:
    bucket = drill_3.audit.bucket
    drill_3.target.require_destructive(f"try to delete every audit object version in s3://{bucket} and "
                                       "overwrite one, as the compromised identity")
    attempts = ransomware.try_delete(attacker_store, bucket, list(versions_before))
    key = next(iter(versions_before))[0]
    attacker_store.put_bytes(bucket, key, b'{"tampered": true}\n')
    evidence.details["deletion attempts"] = [a.line() for a in attempts]
    return attempts


def _judge_worm(target: Target, attempts: list[Attempt], what: str) -> None:
    """Every attempt refused because of the lock, on the real store; an emulator, or an answer that is not
    a lock refusal, leaves the proof inconclusive (never PASS), and an accepted attempt fails it."""
    accepted, unclear = ransomware.worm_verdict(attempts)
    if emulator := target.emulator_of("audit_trail"):
        raise Inconclusive(f"inconclusive (emulator): {len(accepted)} of {len(attempts)} {what} accepted on "
                           f"the {emulator}, whose Object Lock is not the real store's")
    assert not accepted, (f"expected every attempt refused by the lock; actual: {len(accepted)} of "
                          f"{len(attempts)} {what} accepted ({', '.join(accepted[:3])})")
    if unclear:
        raise Inconclusive(f"inconclusive: {len(unclear)} of {len(attempts)} {what} were not refused by the "
                           f"lock: {unclear[0]}")


@then("every deletion is refused")
def _(deleted: list[Attempt], target: Target) -> None:
    _judge_worm(target, deleted, "deletions")


@then("every audit object version that existed before is still there, byte for byte")
def _(drill_3: RansomwareDrill, versions_before: dict) -> None:
    after = ransomware.audit_versions(drill_3.audit)
    changed = ransomware.changed_versions(versions_before, after)
    assert not changed, f"expected every earlier version unchanged; actual: changed {', '.join(changed)}"


@when("the compromised identity tries to shorten the retention of every audit object version",
      target_fixture="shortened")
def _(drill_3: RansomwareDrill, attacker_store: VersionedObjectStore, versions_before: dict, policy: Policy,
      evidence: ScenarioRecord) -> list[str]:
    until = utcnow() + timedelta(days=1)
    drill_3.target.require_destructive(f"try to shorten the retention of every audit object version in "
                                       f"s3://{drill_3.audit.bucket}, as the compromised identity")
    attempts = ransomware.try_shorten(attacker_store, drill_3.audit.bucket, list(versions_before),
                                      policy.storage.audit_lock_mode, until)
    evidence.details["retention shortening attempts"] = [a.line() for a in attempts]
    return attempts


@then("every attempt to shorten the retention is refused")
def _(shortened: list[Attempt], target: Target) -> None:
    _judge_worm(target, shortened, "retention shortenings")


# -- bad input --------------------------------------------------------------------------------
@when(parsers.parse('the identity "{identity}" is suspended and its credentials rotated'),
      target_fixture="refusal")
def _(target: Target, identity: str, evidence: ScenarioRecord) -> str:
    try:
        RansomwareDrill(target, identity, new_run_id()).contain()
    except NotApplicable:
        raise  # the target cannot contain anyone: a coverage gap, not a refusal
    except DrillError as err:
        evidence.details["drill outcome"] = f"refused: {err}"
        return str(err)
    return ""


@then(parsers.parse('the containment is refused because "{reason}"'))
def _(refusal: str, reason: str) -> None:
    assert refusal, f"the containment went through; expected a refusal because {reason!r}"
    assert reason in refusal and "\n" not in refusal, f"expected one line, {reason!r}; actual: {refusal!r}"


# -- tabletop ---------------------------------------------------------------------------------
@then("who decided to contain the identity and to recover is attested")
def _(request: pytest.FixtureRequest, evidence: ScenarioRecord, answers: Answers) -> None:
    attest_step(request, evidence, answers, "drill-3-decision",
                "Who decided to contain the identity and to recover, when, on what evidence?")


@then("the communication to management is attested")
def _(request: pytest.FixtureRequest, evidence: ScenarioRecord, answers: Answers) -> None:
    attest_step(request, evidence, answers, "drill-3-management",
                "Who informed management, when, and what was said?")


@then("the crisis communication to clients and authorities is attested")
def _(request: pytest.FixtureRequest, evidence: ScenarioRecord, answers: Answers) -> None:
    attest_step(request, evidence, answers, "drill-3-crisis-communication",
                "DORA Art. 14: who communicated to clients, counterparts and the "
                "competent authority, when, and through which channel?")


# -- lessons learned --------------------------------------------------------------------------
@pytest.fixture
def drill_3_records(run_record: RunRecord, evidence: ScenarioRecord) -> list[ScenarioRecord]:
    """This run's Drill 3 scenarios before this one."""
    return [r for r in run_record.scenarios if "drill-3" in r.tags and r is not evidence]


@when("an ADR is written from this run's Drill 3 evidence", target_fixture="adr")
def _(run_record: RunRecord, drill_3_records: list[ScenarioRecord], evidence: ScenarioRecord) -> str:
    path = run_record.run_dir / f"ADR-drill-3-{run_record.run_id}.md"
    evidence.details["ADR"] = str(path)
    return ransomware.write_adr(path, run_record.run_id, drill_3_records)


@then("the ADR has every Drill 3 scenario of this run with its outcome")
def _(adr: str, drill_3_records: list[ScenarioRecord]) -> None:
    missing = [r.name for r in drill_3_records if f"{r.name}: **{r.status}**" not in adr]
    assert not missing, f"expected every Drill 3 scenario in the ADR; actual: missing {', '.join(missing)}"


@then("the ADR names every Drill 3 failure with its reason")
def _(adr: str, drill_3_records: list[ScenarioRecord]) -> None:
    missing = [r.name for r in drill_3_records if r.status == "failed" and f"{r.name}: {r.error}" not in adr]
    assert not missing, f"expected every failure named with its reason; actual: missing {', '.join(missing)}"


# -- the identity provider rebuilt from its realm export ---------------------------------------
@when("the realm is exported and the export restored into a fresh identity provider")
def _(drill_3: RansomwareDrill, evidence: ScenarioRecord) -> None:
    evidence.details["realm export"] = drill_3.export_realm()
    evidence.details["fresh identity provider"] = drill_3.restore_realm()


@then("a user of the realm logs in on the fresh identity provider")
def _(drill_3: RansomwareDrill, evidence: ScenarioRecord) -> None:
    works, answer = drill_3.restored_realm_login()
    evidence.details["login on the fresh identity provider"] = answer
    assert works, f"expected a realm user to log in on the fresh identity provider; actual: {answer}"


@then("the attacker's credentials do not work on the fresh identity provider")
def _(drill_3: RansomwareDrill, evidence: ScenarioRecord) -> None:
    works, answer = drill_3.stolen_credentials_work_on_restored_realm()
    evidence.details["stolen credentials on the fresh identity provider"] = answer
    assert not works, f"expected the stolen credentials refused there; actual: {answer}"
