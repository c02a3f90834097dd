"""The sandbox is a real mini-AKKO: real PostgreSQL, real dumps, an S3 endpoint, a consumer writing."""

import gzip
import os
import secrets
import subprocess
import sys
from pathlib import Path

import psutil

from akko_dr.adapters.postgres import CanaryTable
from akko_dr.backup import latest_backup
from akko_dr.canary import wait_for_write
from akko_dr.measure import wait_for
from akko_dr.policy import Policy, load_policy
from akko_dr.sandbox import Sandbox, start_sandbox


def test_every_policy_database_is_served_with_data(sandbox: Sandbox, policy: Policy) -> None:
    for name in policy.databases:
        tables = sandbox.db.fingerprint(name)
        assert len(tables) >= 3, f"{name} has only {sorted(tables)}"
        assert sum(t.get("rows", 0) for t in tables.values()) > 0, f"{name} holds no rows"
    assert {"dashboards", "slices", "logs"} <= set(sandbox.db.fingerprint("superset_metadata"))


def test_the_backup_job_writes_real_dumps_named_as_the_playbook_expects(sandbox: Sandbox, policy: Policy,
                                                                       tmp_path: Path) -> None:
    run = sandbox.run_job("akko-pg-data-backup")
    assert run.succeeded, run.error
    assert {o.database for o in run.objects} == {"akko_data", "aden"}
    newest = latest_backup(policy, sandbox.store, "akko_data")
    assert newest.key.startswith("pg/akko_data_") and newest.key.endswith(".sql.gz")
    assert newest.fingerprint["transactions"]["rows"] == 5000
    sandbox.store.download(newest.bucket, newest.key, tmp_path / "d.sql.gz")
    sql = gzip.decompress((tmp_path / "d.sql.gz").read_bytes()).decode()
    assert "CREATE TABLE public.transactions" in sql


def test_the_latest_backup_is_chosen_by_the_time_in_its_key(sandbox: Sandbox, policy: Policy) -> None:
    bucket = policy.storage.backups_bucket
    sandbox.store.put_bytes(bucket, "pg/aden_29991231235959.sql.gz.bak", b"not a dump")
    sandbox.store.put_bytes(bucket, "pg/aden_extra_29991231235959.sql.gz", b"another database")
    run = sandbox.run_job("akko-pg-data-backup")
    taken = next(o for o in run.objects if o.database == "aden")
    assert latest_backup(policy, sandbox.store, "aden").key == taken.key  # the newest real dump, any year


def test_the_consumer_keeps_writing(sandbox: Sandbox) -> None:
    first = wait_for_write(CanaryTable(lambda: sandbox.db), "superset_metadata")
    assert wait_for_write(CanaryTable(lambda: sandbox.db), "superset_metadata", after=first) > first


def test_two_sandboxes_side_by_side_do_not_collide(sandbox: Sandbox) -> None:
    with start_sandbox(load_policy(), consumers=()) as other:
        assert other.root != sandbox.root
        assert other.store.endpoint != sandbox.store.endpoint
        assert other.db.dsn("x") != sandbox.db.dsn("x")
        other.db.execute("aden", "DELETE FROM receipts")
        assert other.db.fingerprint("aden")["receipts"]["rows"] == 0
        assert sandbox.db.fingerprint("aden")["receipts"]["rows"] == 1500
        assert other.started_in > 0


def test_a_database_without_a_canary_table_has_no_canary_write(sandbox: Sandbox) -> None:
    """A live database no canary writer serves answers None, not an error (the RPO then says so)."""
    sandbox.db.create("no_canary_here")
    try:
        assert sandbox.db.latest_canary("no_canary_here") is None
    finally:
        sandbox.db.drop("no_canary_here")


def test_what_the_server_acknowledged_just_before_a_crash_survives_it(sandbox: Sandbox) -> None:
    table = f"crash_probe_{secrets.token_hex(4)}"
    sandbox.db.execute("postgres", f"CREATE TABLE {table} (x int)")  # committed asynchronously (sandbox)
    sandbox.stop_postgres()  # at once, as the fault "a database server lost" does
    sandbox.start_postgres()
    try:
        assert table in sandbox.db.fingerprint("postgres"), f"expected {table} kept across the crash; lost"
    finally:
        sandbox.db.execute("postgres", f"DROP TABLE IF EXISTS {table}")


def test_a_consumer_whose_sandbox_died_stops_on_its_own(tmp_path: Path) -> None:
    """A run killed outright (SIGKILL) cannot stop its services: each stops when its parent is gone."""
    out = tmp_path / "consumer.log"
    launcher = (f"{sys.executable} -m akko_dr.sandbox.consumer postgresql://x@127.0.0.1:9/db --interval 0.05 "
                f"> {out} 2>&1 & until [ -s {out} ]; do sleep 0.05; done; echo $!")  # exits once it runs
    started = subprocess.run(["sh", "-c", launcher], capture_output=True, text=True, timeout=60,
                             env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1])))
    consumer = psutil.Process(int(started.stdout))

    def stopped() -> bool:
        return not consumer.is_running() or consumer.status() == psutil.STATUS_ZOMBIE

    wait_for("the orphaned consumer to stop", stopped, 10)
