"""Drill 2 as a library: one corrupt backup among many fails the rebuild by name, the others come back."""

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from akko_dr.drills.full_rebuild import FullRebuildDrill, replay_workers
from akko_dr.errors import DrillError
from akko_dr.policy import Policy
from akko_dr.sandbox import faults, start_sandbox
from akko_dr.targets import Target, new_run_id
from akko_dr.wiring import sandbox_target


@pytest.fixture
def own_target(policy: Policy) -> Iterator[Target]:
    """A sandbox of its own (no services: the replay is what is tested), with its initial backups."""
    root = Path(tempfile.mkdtemp(prefix="akko-dr-test-drill-2-"))
    try:
        with start_sandbox(policy, root=root / "sandbox", consumers=()) as own:
            yield sandbox_target(own, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_one_corrupt_backup_fails_the_rebuild_by_name_and_the_others_come_back(own_target: Target,
                                                                             target: Target) -> None:
    faults.corrupt_backup(own_target, "airflow")
    drill = FullRebuildDrill(own_target, new_run_id())
    old_data = own_target.platform.pg_server.pgdata
    drill.lose_platform()
    hot = own_target.policy.storage.hot_buckets[0]
    assert target.store.list(hot), f"losing a sandbox of its own emptied the shared sandbox's {hot}"
    drill.declare_incident()
    drill.provision_platform()
    back = drill.replay_databases()
    assert sorted(back) == sorted(set(own_target.policy.databases) - {"airflow"})
    assert drill.mismatches(skip=("airflow",)) == []
    expected = r"7 of 8 databases restored; not restored: airflow: .*is corrupt"
    with pytest.raises(DrillError, match=expected) as err:
        drill.require_complete()
    assert "\n" not in str(err.value)
    assert not [name for name in drill.target.db.databases() if "__restore_" in name]
    assert (Path(old_data) / "PG_VERSION").is_file(), "the lost server's data must be kept until sign-off"


def test_the_replay_is_bounded_by_the_cores() -> None:
    assert replay_workers() == (os.cpu_count() or 1)

