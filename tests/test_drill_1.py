"""Drill 1 as a library: a full run measures RTO and RPO; a failed run leaves the original untouched."""

from dataclasses import replace

import pytest

from akko_dr.canary import wait_for_write
from akko_dr.drills.restore_database import RestoreDatabaseDrill, take_backup
from akko_dr.errors import DrillError, NotApplicable
from akko_dr.sandbox import Sandbox, faults
from akko_dr.targets import Target, new_run_id


@pytest.fixture
def healthy(target: Target) -> Target:
    if target.heal:
        target.heal()
    wait_for_write(target.port("canary"), "superset_metadata")
    assert target.jobs.run_job("akko-pg-backup").succeeded
    return target


def test_a_full_run_measures_real_rto_and_rpo(healthy: Target) -> None:
    floor = wait_for_write(healthy.port("canary"), "superset_metadata")
    wait_for_write(healthy.port("canary"), "superset_metadata", after=floor)
    drill = RestoreDatabaseDrill(healthy, "superset_metadata", new_run_id())
    drill.run("slices")
    rto, rpo = drill.rto(), drill.rpo()
    assert rto.measured.total_seconds() > 0 and rto.met
    assert rpo.measured.total_seconds() > 0 and rpo.met
    assert drill.newest_surviving_write < drill.last_write_before_incident
    assert drill.kept in healthy.db.databases()
    assert drill.table_exists("slices")


def test_a_failed_restore_keeps_the_original_and_restarts_the_service(healthy: Target) -> None:
    drill = RestoreDatabaseDrill(faults.truncate_backup(healthy, "superset_metadata"), "superset_metadata",
                                 new_run_id())
    with pytest.raises(DrillError, match="corrupt or truncated") as err:
        drill.run("logs")
    assert "\n" not in str(err.value)
    assert drill.changes_since_incident() == []
    assert not drill.leftover_databases()
    assert healthy.orchestrator.running("akko-superset") == 1


def test_a_lost_server_mid_restore_is_named_and_cleaned_up_once_it_is_back(healthy: Target,
                                                                           sandbox: Sandbox) -> None:
    catalogue = faults.catalogue(sandbox.stop_postgres, sandbox.start_postgres)
    fault = catalogue["a database server lost during the restore"]
    drill = RestoreDatabaseDrill(fault.apply(healthy, "superset_metadata"), "superset_metadata", new_run_id())
    with pytest.raises(DrillError, match="PostgreSQL unreachable during restore"):
        drill.run("dashboards")
    fault.clear()
    drill.abort()
    assert not drill.leftover_databases()
    assert drill.changes_since_incident() == []


def test_destructive_steps_are_refused_without_opt_in(healthy: Target) -> None:
    guarded = replace(healthy, kind="live", name="live", destructive_allowed=False)
    drill = RestoreDatabaseDrill(guarded, "superset_metadata", new_run_id())
    with pytest.raises(NotApplicable, match="not run on live: plan only, destructive step not allowed"):
        drill.drop_table("dashboards")
    assert drill.table_exists("dashboards")
    assert any(drill.kept in step for step in drill.plan())


def test_the_evidence_says_where_the_restore_went_and_what_the_rpo_stands_for(healthy: Target) -> None:
    """Issue 8: a scratch database on the source server is not segregated; a backup the drill took
    itself shows the restore path, and the schedule's worst case is what is judged."""
    backup = take_backup(healthy, "superset_metadata")
    drill = RestoreDatabaseDrill(healthy, "superset_metadata", new_run_id(), drill_backups={backup.key})
    drill.run("slices")
    segregated, where = drill.segregation()
    assert not segregated and where.endswith("same server as superset_metadata: not segregated")
    assert drill.evidence()["segregated_restore"] is False
    basis = drill.rpo_basis()
    assert basis.startswith("backup taken by the drill ") and "not the schedule" in basis
    interval = healthy.policy.database("superset_metadata").job.interval()
    assert drill.rpo_worst_case().measured == interval > drill.rpo().measured


def test_a_restore_on_the_second_server_is_segregated_and_leaves_the_source_alone(healthy: Target) -> None:
    drill = RestoreDatabaseDrill(healthy, "superset_metadata", new_run_id())
    before = drill.content()
    assert drill.restore_segregated()["tables"] > 0
    assert drill.segregation() == (True, f"second PostgreSQL server {healthy.segregated_db!r}: segregated "
                                         "from the source")
    assert drill.content() == before and drill.scratch not in healthy.segregated_db.databases()
    assert drill.rpo_basis().startswith("newest scheduled backup by akko-pg-backup")
