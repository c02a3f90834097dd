"""Drill 1 as a library: a full run measures RTO and RPO; a failed run leaves the original untouched."""

from dataclasses import replace

import pytest

from akko_dr.canary import wait_for_write
from akko_dr.drills.restore_database import RestoreDatabaseDrill
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
