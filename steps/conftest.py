"""Steps shared by several features: the platform, its services, its backups."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime

import pytest
from pytest_bdd import given, parsers, when

from akko_dr.backup import BackupObject, latest_backup
from akko_dr.canary import wait_for_write
from akko_dr.drills.restore_database import RestoreDatabaseDrill, take_backup
from akko_dr.evidence.record import ScenarioRecord
from akko_dr.policy import Policy, TargetClass
from akko_dr.targets import Target, new_run_id


@pytest.fixture
def drill_database(policy: Policy) -> str:
    """The database Drill 1 restores, named by the policy (the playbook: superset_metadata)."""
    return policy.drill("drill-1")["database"]


@pytest.fixture
def drill_target(target: Target) -> Target:
    """The target a drill runs against; a fault step may replace it."""
    return target


@pytest.fixture
def drill_1(drill_target: Target, drill_database: str, drill_backups: set[str],
            evidence: ScenarioRecord) -> Iterator[RestoreDatabaseDrill]:
    """One Drill 1 run; whatever happens, it leaves no half-done restore behind."""
    drill = RestoreDatabaseDrill(drill_target, drill_database, new_run_id(), drill_backups=drill_backups)
    yield drill
    if drill.validated_at is None:
        drill.abort()
    drill.discard_files()
    if not drill_target.destructive_allowed:
        evidence.details["plan (not executed: destructive steps need --allow-destructive)"] = drill.plan()
    evidence.details.update(drill.evidence())
    if drill.backup:
        evidence.backup = drill.backup.provenance()


@given("the AKKO platform is running on the drill target")
def _(target: Target, drill_database: str, evidence: ScenarioRecord) -> None:
    if target.heal and (healed := target.heal()):
        evidence.details["re-seeded before the scenario"] = healed
    assert drill_database in target.db.databases(), f"{drill_database} is missing on the {target.name} target"


@given("the Superset service is writing to the Superset metadata database", target_fixture="write_seen")
def _(target: Target, drill_database: str) -> datetime:
    consumer = target.policy.database(drill_database).consumer
    assert target.orchestrator.running(consumer) >= 1, f"{consumer} is not running"
    return wait_for_write(target.port("canary"), drill_database)


@pytest.fixture
def drill_backups() -> set[str]:
    """Keys of the backups this scenario's drill took itself (their RPO shows the restore path only)."""
    return set()


@given("a recent backup of the Superset metadata database is in cold storage", target_fixture="recent_backup")
def _(target: Target, drill_database: str, write_seen: datetime, drill_backups: set[str],
      evidence: ScenarioRecord) -> BackupObject:
    """The newest scheduled backup; the drill takes one of its own first only where the target asks it
    (the sandbox, or a live target run with --fresh-backup)."""
    if target.fresh_backup:
        backup = take_backup(target, drill_database)
        drill_backups.add(backup.key)
    else:
        backup = latest_backup(target.policy, target.store, drill_database)
    how = "taken by the drill" if backup.key in drill_backups else "newest scheduled"
    evidence.details["backup before the incident"] = f"{how}: {backup.key}"
    return backup


@pytest.fixture
def judge_rpo(evidence: ScenarioRecord) -> Callable[[RestoreDatabaseDrill, TargetClass], None]:
    """The measured RPO shows the restore path; the worst case the schedule allows is what is judged."""

    def judge(drill: RestoreDatabaseDrill, named: TargetClass) -> None:
        evidence.judge_rpo(drill.rpo(), drill.rpo_worst_case(), drill.rpo_basis(), named, drill.database)

    return judge


@given(parsers.parse('someone drops the "{table}" table of the Superset metadata database'))
@when(parsers.parse('someone drops the "{table}" table of the Superset metadata database'))
def _(drill_1: RestoreDatabaseDrill, table: str) -> None:
    drill_1.drop_table(table)
