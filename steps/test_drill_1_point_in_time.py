"""Steps of features/drill_1_point_in_time.feature (logic: akko_dr/drills/point_in_time.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pytest
from pytest_bdd import given, parsers, scenarios, then, when

from akko_dr.canary import wait_for_write
from akko_dr.drills.point_in_time import PointInTimeDrill
from akko_dr.errors import DrillError, NotApplicable
from akko_dr.evidence.record import ScenarioRecord
from akko_dr.ports import BaseBackup, Fault, Fingerprint
from akko_dr.targets import Target, new_run_id

scenarios("drill_1_point_in_time.feature")

FUNCTIONAL_DATA = "akko_data"  # the playbook's "PostgreSQL Data (functional)"


@pytest.fixture
def drill_database() -> str:
    """This feature's database: the functional data (overrides Drill 1's Superset metadata)."""
    return FUNCTIONAL_DATA


@pytest.fixture
def pitr(target: Target, evidence: ScenarioRecord) -> Iterator[PointInTimeDrill]:
    """One run; whatever happens, no recovery server, scratch database or stopped service is left."""
    drill = PointInTimeDrill(target, FUNCTIONAL_DATA, new_run_id())
    yield drill
    if drill.swap.validated_at is None:
        evidence.details["cleaned up"] = drill.abort()
    else:
        evidence.details["cleaned up"] = drill.discard()
    if not target.destructive_allowed:
        evidence.details["plan (not executed: destructive steps need --allow-destructive)"] = drill.plan()
    evidence.details.update(drill.evidence())


@given("the data API is writing to the functional data database", target_fixture="write_seen")
def _(target: Target) -> datetime:
    consumer = target.policy.database(FUNCTIONAL_DATA).consumer
    assert target.orchestrator.running(consumer) >= 1, f"{consumer} is not running"
    return wait_for_write(target.port("canary"), FUNCTIONAL_DATA)


@given("a base backup of the functional data database is in the WAL archive", target_fixture="base_backup")
def _(target: Target, pitr: PointInTimeDrill, evidence: ScenarioRecord) -> BaseBackup:
    """The newest base backup; the drill takes one first where the target asks it (the sandbox, or a
    live target run with --fresh-backup)."""
    if target.fresh_backup:
        run = target.port("jobs").run_job(pitr.wal_job.name)
        if not run.succeeded:
            raise DrillError(f"base backup by {run.job} failed: {run.error}")
    backups = target.port("wal_archive").base_backups()
    assert backups, f"no base backup in the WAL archive {pitr.location}"
    newest = max(backups, key=lambda b: b.end_time)
    evidence.details["base backup before the incident"] = newest.provenance()
    return newest


@given("the data API has written new data since that base backup")
def _(target: Target, base_backup: BaseBackup) -> None:
    wait_for_write(target.port("canary"), FUNCTIONAL_DATA, after=base_backup.end_time)


@pytest.fixture
def faults_applied() -> Iterator[list[Fault]]:
    """Faults a scenario applied; cleared after it (a new base backup closes the broken chain)."""
    applied: list[Fault] = []
    yield applied
    for fault in applied:
        fault.clear()


@given("a WAL segment written after the base backup is missing from the archive")
def _(target: Target, base_backup: BaseBackup, faults_applied: list[Fault]) -> None:
    fault = target.port("faults").get("a WAL segment missing from the archive")
    if fault is None:
        raise NotApplicable(f"not applicable on {target.name}: no WAL segment can be removed here")
    faults_applied.append(fault)
    fault.apply(target, FUNCTIONAL_DATA)


@when(parsers.parse('someone drops the "{table}" table of the functional data database'))
def _(pitr: PointInTimeDrill, table: str) -> None:
    pitr.drop_table(table)


@when("the incident is declared with its time")
def _(pitr: PointInTimeDrill, evidence: ScenarioRecord) -> None:
    pitr.declare_incident()
    evidence.details["incident"] = f"declared; recovery target {pitr.recovery_target().isoformat()}"


@when("the data API is stopped")
def _(pitr: PointInTimeDrill) -> None:
    pitr.swap.stop_consumer()


@when("the changes written up to the incident are in the WAL archive")
def _(pitr: PointInTimeDrill) -> None:
    pitr.archive_incident_wal()


@when("the database is restored on a segregated server to just before the incident")
def _(pitr: PointInTimeDrill, evidence: ScenarioRecord) -> None:
    recovery = pitr.recover()
    evidence.details["WAL replay time"] = f"{recovery.replay.total_seconds():.2f}s"


@when("the database is restored on a segregated server to just before the incident, or refused",
      target_fixture="refusal")
def _(pitr: PointInTimeDrill, evidence: ScenarioRecord) -> str:
    pitr.archive_incident_wal()
    return _refusal(lambda: pitr.recover(), evidence)


@when("the database is asked to be restored to a time before its oldest base backup",
      target_fixture="refusal")
def _(pitr: PointInTimeDrill, target: Target, evidence: ScenarioRecord) -> str:
    oldest = min(target.port("wal_archive").base_backups(), key=lambda b: b.begin_time)
    pitr.before_incident = pitr.swap.content()
    return _refusal(lambda: pitr.recover(oldest.begin_time - timedelta(seconds=1)), evidence)


def _refusal(attempt: Callable[[], object], evidence: ScenarioRecord) -> str:
    try:
        attempt()
    except NotApplicable:
        raise
    except DrillError as err:
        evidence.details["drill outcome"] = f"refused: {err}"
        return str(err)
    return ""


@when("the restored copy holds the functional data as it was just before the incident")
def _(pitr: PointInTimeDrill) -> None:
    pitr.verify_recovered()


@when("the restored copy replaces the damaged database, which is kept for sign-off")
def _(pitr: PointInTimeDrill) -> None:
    pitr.bring_back()


@when("the data API is restarted")
def _(pitr: PointInTimeDrill) -> None:
    pitr.swap.restart_consumer()


@then("the data API is validated on the restored database")
def _(pitr: PointInTimeDrill) -> None:
    pitr.swap.validate_service()


@then(parsers.parse('the "{table}" table is back'))
def _(pitr: PointInTimeDrill, table: str) -> None:
    assert pitr.swap.table_exists(table), f"table {table} is still missing from {pitr.database}"


@then("the restore ran on a server segregated from the platform's own server")
def _(pitr: PointInTimeDrill) -> None:
    segregated, where = pitr.segregation()
    assert segregated, f"expected a restore segregated from the source (DORA Art. 12(3)); actual: {where}"


@then(parsers.parse("the recovery time is within the {klass} RTO"))
def _(pitr: PointInTimeDrill, evidence: ScenarioRecord, klass: str) -> None:
    evidence.judge(pitr.rto(), pitr.target.policy.klass(klass), pitr.database)


@then(parsers.parse("the data loss is within the {klass} RPO"))
def _(pitr: PointInTimeDrill, evidence: ScenarioRecord, klass: str) -> None:
    evidence.details["dump-based RPO of the same database"] = pitr.dump_based_rpo()
    evidence.judge_rpo(pitr.rpo(), pitr.rpo_worst_case(), pitr.rpo_basis(), pitr.target.policy.klass(klass),
                       pitr.database)


@then("the restore is refused, naming the missing WAL segment and the time it could reach")
def _(refusal: str) -> None:
    assert refusal, "the restore went through; expected it to stop at the missing WAL segment"
    assert "WAL segment" in refusal and "is missing" in refusal and "could reach" in refusal, (
        f"expected the missing segment and the time reached to be named; actual: {refusal!r}")


@then(parsers.parse('the restore is refused because "{reason}"'))
def _(refusal: str, reason: str) -> None:
    assert refusal, f"the restore went through; expected a refusal because {reason!r}"
    assert reason in refusal, f"refused for another reason: expected {reason!r} in {refusal!r}"


@then("the functional data database is as the incident left it")
def _(pitr: PointInTimeDrill) -> None:
    changed = pitr.swap.changes_since_incident()
    assert not changed, f"{pitr.database} changed during a refused restore: {', '.join(changed)}"


@then("the functional data database is untouched")
def _(pitr: PointInTimeDrill) -> None:
    now: Fingerprint = pitr.swap.content()
    before = pitr.before_incident
    changed = sorted(t for t in set(now) | set(before) if now.get(t) != before.get(t))
    assert not changed, f"{pitr.database} changed during a refused restore: {', '.join(changed)}"
