"""Steps of features/drill_1_restore_database.feature (logic: akko_dr/drills/restore_database.py)."""

from __future__ import annotations

from collections.abc import Callable

from pytest_bdd import given, parsers, scenarios, then, when

from akko_dr.backup import BackupObject
from akko_dr.canary import wait_for_write
from akko_dr.drills.restore_database import RestoreDatabaseDrill
from akko_dr.evidence.record import ScenarioRecord
from akko_dr.targets import Target

scenarios("drill_1_restore_database.feature")


@given("the Superset service has written new data since that backup")
def _(target: Target, recent_backup: BackupObject) -> None:
    wait_for_write(target.port("canary"), recent_backup.database, after=recent_backup.taken_at)


@when("the incident is declared")
def _(drill_1: RestoreDatabaseDrill) -> None:
    drill_1.declare_incident()


@when("the Superset service is stopped")
def _(drill_1: RestoreDatabaseDrill) -> None:
    drill_1.stop_consumer()


@when("the latest backup is pulled from cold storage and checked")
def _(drill_1: RestoreDatabaseDrill, evidence: ScenarioRecord) -> None:
    evidence.backup = drill_1.pull_latest_backup().provenance()


@when("the backup is restored into a separate scratch database")
def _(drill_1: RestoreDatabaseDrill, evidence: ScenarioRecord) -> None:
    drill_1.restore_to_scratch()
    evidence.backup = drill_1.backup.provenance()  # its sha256 and size, checked once it streamed whole


@when("the scratch database matches what the backup recorded")
def _(drill_1: RestoreDatabaseDrill, evidence: ScenarioRecord) -> None:
    evidence.details["integrity check"] = drill_1.verify_scratch()["method"]


@when("the scratch database replaces the damaged one, which is kept for sign-off")
def _(drill_1: RestoreDatabaseDrill) -> None:
    drill_1.swap_in()


@when("the Superset service is restarted")
def _(drill_1: RestoreDatabaseDrill) -> None:
    drill_1.restart_consumer()


@then("the Superset service is validated on the restored database")
def _(drill_1: RestoreDatabaseDrill) -> None:
    drill_1.validate_service()


@then(parsers.parse('the "{table}" table is back'))
def _(drill_1: RestoreDatabaseDrill, table: str) -> None:
    assert drill_1.table_exists(table), f"table {table} is still missing from {drill_1.database}"


@then(parsers.parse("the recovery time is within the {klass} RTO"))
def _(drill_1: RestoreDatabaseDrill, evidence: ScenarioRecord, klass: str) -> None:
    evidence.judge(drill_1.rto(), drill_1.target.policy.klass(klass), drill_1.database)


@then(parsers.parse("the data loss is within the {klass} RPO"))
def _(drill_1: RestoreDatabaseDrill, judge_rpo: Callable, klass: str) -> None:
    judge_rpo(drill_1, drill_1.target.policy.klass(klass))



@when("the latest backup is restored on a segregated server and checked against what it recorded",
      target_fixture="untouched")
def _(drill_1: RestoreDatabaseDrill, evidence: ScenarioRecord) -> dict:
    before = drill_1.content()
    verified = drill_1.restore_segregated()
    evidence.backup = drill_1.backup.provenance() if drill_1.backup else None
    evidence.details["integrity check"] = verified["method"]
    evidence.details["restore and check time"] = f"{drill_1.restore_time().total_seconds():.2f}s"
    return before


@then("the restored copy is segregated from the platform's own server")
def _(drill_1: RestoreDatabaseDrill) -> None:
    segregated, where = drill_1.segregation()
    assert segregated, f"expected a restore segregated from the source (DORA Art. 12(3)); actual: {where}"


@then("the platform's own Superset metadata database was not touched")
def _(drill_1: RestoreDatabaseDrill, untouched: dict) -> None:
    changed = sorted(t for t in set(untouched) | set(drill_1.content())
                     if untouched.get(t) != drill_1.content().get(t))
    assert not changed, f"the source database changed during a segregated restore: {', '.join(changed)}"
