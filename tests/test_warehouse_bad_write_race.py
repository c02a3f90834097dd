"""The Iceberg drill's bad write racing the warehouse writer, made deterministic: the writer's commit is
forced to land between the drill's look at the table and the bad write's own commit. The table must still
be rolled back to the snapshot the bad write replaced (its parent), the one recorded before the incident."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from akko_dr.adapters.iceberg import WRITER_PROPERTY
from akko_dr.drills.warehouse_corruption import WarehouseCorruptionDrill
from akko_dr.measure import utcnow
from akko_dr.policy import load_policy
from akko_dr.sandbox import Sandbox, start_sandbox
from akko_dr.sandbox.warehouse import EVENTS, WRITER
from akko_dr.targets import Target, new_run_id
from akko_dr.wiring import sandbox_target

BAD_WRITE = "writer == 'seed'"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with start_sandbox(load_policy(), iceberg=True, initial_backups=False) as sandbox:
        sandbox.supervisor.scale(WRITER, 0)  # the race is played by hand below, not left to the clock
        yield sandbox


@pytest.fixture
def target(sandbox: Sandbox, tmp_path: Path) -> Target:
    return sandbox_target(sandbox, tmp_path)


def _writer_commit_staged(sandbox: Sandbox):
    """A commit of the writer, stamped now (by pyiceberg, from ``time.time``) on the current snapshot, through
    a catalog of its own; it lands when its ``commit_transaction`` is called."""
    import pyarrow as pa

    now = utcnow()
    tx = sandbox.warehouse._open().load_table(EVENTS).transaction()
    tx.append(pa.table({"id": pa.array([1, 2], pa.int64()), "writer": [WRITER] * 2,
                        "written_at": pa.array([now] * 2, pa.timestamp("us", tz="UTC"))}),
              snapshot_properties={WRITER_PROPERTY: WRITER})
    return tx


def _land_before_the_next_commit(monkeypatch: pytest.MonkeyPatch, sandbox: Sandbox, tx) -> None:
    """The drill's catalog lets ``tx`` land right before the first commit the drill makes."""
    catalog = sandbox.warehouse._catalog
    real = catalog.commit_table
    landed: list[bool] = []

    def commit_table(table, requirements, updates):
        if not landed:
            landed.append(True)
            tx.commit_transaction()
        return real(table, requirements, updates)

    monkeypatch.setattr(catalog, "commit_table", commit_table)


def test_a_writer_commit_landing_just_before_the_bad_write_does_not_move_the_last_good_snapshot(
        sandbox: Sandbox, target: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    drill = WarehouseCorruptionDrill(target, EVENTS, new_run_id())
    tx = _writer_commit_staged(sandbox)  # stamped before the incident, lands after the drill's check
    _land_before_the_next_commit(monkeypatch, sandbox, tx)
    bad = drill.bad_write(BAD_WRITE)
    monkeypatch.undo()
    drill.declare()
    recovered = drill.recover()
    drill.verify()
    expected = drill.record.snapshot.snapshot_id
    assert recovered.snapshot_id == expected, f"expected snapshot {expected} (last before the incident); " \
                                              f"actual {recovered.snapshot_id}"
    assert bad.parent_id == expected, f"expected the bad write on the recorded snapshot {expected}; " \
                                      f"actual parent {bad.parent_id}"
    assert sandbox.warehouse.history(EVENTS)[-1].snapshot_id == expected


def test_a_writer_with_a_clock_behind_committing_after_the_bad_write_is_not_taken_for_a_good_snapshot(
        sandbox: Sandbox, target: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    import pyiceberg.table.snapshots as snapshots

    drill = WarehouseCorruptionDrill(target, EVENTS, new_run_id())
    bad = drill.bad_write(BAD_WRITE)
    behind = (drill.incident_at - timedelta(seconds=1)).timestamp()
    with monkeypatch.context() as m:  # a writer on a host whose clock is a second behind
        m.setattr(snapshots, "time", SimpleNamespace(time=lambda: behind))
        tx = _writer_commit_staged(sandbox)
    tx.commit_transaction()
    after = sandbox.warehouse.history(EVENTS)[-1]
    assert after.parent_id == bad.snapshot_id and after.committed_at < drill.incident_at, after
    drill.declare()
    recovered = drill.recover()
    drill.verify()
    expected = bad.parent_id
    assert recovered.snapshot_id == expected, f"expected snapshot {expected} (the bad write's parent); " \
                                              f"actual {recovered.snapshot_id}"
