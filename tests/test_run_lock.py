"""One drill run per target: a second run refuses with who holds the lock; a stale lock is taken over."""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from akko_dr.adapters.run_lock_pg import TABLE, PostgresLockTable
from akko_dr.errors import DrillRefused
from akko_dr.evidence.record import RunRecord
from akko_dr.measure import utcnow
from akko_dr.run_lock import STALE_AFTER, LockOwner, RunLock
from akko_dr.targets import Target, new_run_id
from akko_dr.wiring import run_lock

ROOT = Path(__file__).resolve().parents[1]
HOLDER = """
import sys
from akko_dr.adapters.run_lock_pg import PostgresLockTable
from akko_dr.run_lock import RunLock
RunLock(PostgresLockTable(sys.argv[1]), sys.argv[2], "r-first").acquire()
print("held", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def table(target: Target) -> PostgresLockTable:
    return PostgresLockTable(target.db.admin_dsn)


def _holder(target: Target, name: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, target.db.admin_dsn, name], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held", "the first run did not take the lock"
    return proc


def test_a_second_run_refuses_while_the_first_holds_the_lock_then_takes_over_once_it_died(
        target: Target, table: PostgresLockTable) -> None:
    name = f"concurrent-{new_run_id()}"
    first = _holder(target, name)
    try:
        second = RunLock(table, name, "r-second")
        with pytest.raises(DrillRefused) as refused:
            second.acquire()
        since = r"\d{4}-\d\d-\d\dT[\d:]+\+00:00"
        pattern = rf"a drill is already running \(run r-first, since {since}, pid {first.pid}\)"
        assert re.fullmatch(pattern, str(refused.value)), f"expected {pattern!r}, got {str(refused.value)!r}"
    finally:
        first.kill()  # dies without releasing: its lock stays behind, stale
        first.wait()
    with RunLock(table, name, "r-third") as third:
        gone = f"its process {first.pid} on {third.owner.host} is gone"
        assert third.notes == [f"stale run lock of run r-first, since {_since(str(refused.value))}, pid "
                               f"{first.pid} taken over: {gone}"]
    assert table.claim(LockOwner(name, "r-fourth", 1, "h", utcnow(), utcnow())) is None, "not released"
    table.release(LockOwner(name, "r-fourth", 1, "h", utcnow(), utcnow()))


def _since(message: str) -> str:
    return message.split("since ", 1)[1].split(",", 1)[0]


def test_a_lock_whose_heartbeat_stopped_is_taken_over_with_a_note(table: PostgresLockTable) -> None:
    name, old = f"silent-{new_run_id()}", utcnow() - STALE_AFTER - timedelta(seconds=5)
    assert table.claim(LockOwner(name, "r-silent", 4242, "another-host", old, old)) is None
    with RunLock(table, name, "r-new") as lock:
        [note] = lock.notes
    assert note.startswith("stale run lock of run r-silent") and "its last heartbeat was" in note, note


def test_a_live_heartbeat_elsewhere_is_respected(table: PostgresLockTable) -> None:
    name, now = f"alive-{new_run_id()}", utcnow()
    assert table.claim(LockOwner(name, "r-alive", 4242, "another-host", now, now)) is None
    with pytest.raises(DrillRefused, match=r"a drill is already running \(run r-alive, since .*, pid 4242\)"):
        RunLock(table, name, "r-late").acquire()
    table.release(LockOwner(name, "r-alive", 4242, "another-host", now, now))


def test_a_run_that_may_not_write_takes_no_lock(target: Target, table: PostgresLockTable) -> None:
    read_only = replace(target, name=f"read-only-{new_run_id()}", destructive_allowed=False)
    with run_lock(read_only, "r-read-only") as notes:
        holder = table.claim(LockOwner(read_only.name, "r-probe", 1, "h", utcnow(), utcnow()))
    table.release(LockOwner(read_only.name, "r-probe", 1, "h", utcnow(), utcnow()))
    assert holder is None, f"a read-only run wrote a lock: {holder}"
    assert notes[0].startswith("no run lock taken: this run may not write to the target")


def test_this_run_holds_the_lock_of_its_target_and_says_so(target: Target, run_record: RunRecord,
                                                          table: PostgresLockTable) -> None:
    held = f"run lock held in PostgreSQL table {TABLE} for target sandbox"
    assert run_record.components["run lock"] == held
    with pytest.raises(DrillRefused, match=rf"run {run_record.run_id}, since"):
        RunLock(table, target.name, "r-intruder").acquire()
