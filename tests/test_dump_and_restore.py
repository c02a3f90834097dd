"""pg_dump, psql and pg_restore on the sandbox's real server: a tool writing more than a pipe's worth of
warnings never blocks the job (issue 12 item 4); dumps keep privileges and owners in both formats;
the custom format restores with pg_restore -j (issue 13)."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO

import pytest

from akko_dr.adapters.postgres import PostgresDatabase
from akko_dr.backup import backup_database
from akko_dr.drills.restore_database import RestoreDatabaseDrill
from akko_dr.errors import DrillError
from akko_dr.sandbox import Sandbox
from akko_dr.targets import Target, new_run_id

DEADLINE = 120.0  # seconds a small dump or restore may take here, even on a loaded machine
WARNINGS = 20_000  # lines of about 60 bytes: over a megabyte, far more than a pipe holds (64 KiB)


def finishes(fn: Callable[[], object]) -> object:
    """``fn()``'s result, failing (instead of hanging the suite) when it has not returned by DEADLINE."""
    out: dict[str, object] = {}

    def run() -> None:
        try:
            out["value"] = fn()
        except BaseException as err:
            out["error"] = err
    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(DEADLINE)
    assert not worker.is_alive(), f"expected to finish within {DEADLINE:.0f}s, still blocked: a pipe deadlock"
    if "error" in out:
        raise out["error"]
    return out.get("value")


def noisy_pg_dump(sandbox: Sandbox, tmp_path: Path) -> PostgresDatabase:
    """The sandbox server, its pg_dump writing a megabyte of warnings to stderr before it dumps."""
    real = sandbox.db._tool("pg_dump")
    script = tmp_path / "pg_dump"
    script.write_text(f'#!/bin/sh\nfor i in $(seq {WARNINGS}); do\n'
                      f'  echo "pg_dump: warning: statistics of a table were not found ($i)" >&2\ndone\n'
                      f'exec "{real}" "$@"\n')
    script.chmod(0o755)
    for tool in ("psql", "pg_restore"):
        os.symlink(sandbox.db._tool(tool), tmp_path / tool)
    return PostgresDatabase(sandbox.db._dsn, tmp_path)


@pytest.mark.parametrize("fmt", ["plain", "custom"])
def test_a_dump_writing_a_megabyte_of_warnings_does_not_block(sandbox: Sandbox, tmp_path: Path,
                                                                fmt: str) -> None:
    db = noisy_pg_dump(sandbox, tmp_path)
    out = tmp_path / f"dump.{fmt}"
    fingerprint = finishes(lambda: db.dump("superset_metadata", out, fmt)).tables
    assert "dashboards" in fingerprint and out.stat().st_size > 0


def test_a_restore_raising_many_notices_does_not_block(sandbox: Sandbox, scratch, tmp_path: Path) -> None:
    sql = tmp_path / "noisy.sql"
    sql.write_text("DO $$ BEGIN FOR i IN 1..20000 LOOP RAISE NOTICE 'restoring, step % of many', i; END LOOP;"
                   " END $$;\nCREATE TABLE done (id int);\n")
    name = scratch("noisy")
    sandbox.db.create(name)
    finishes(lambda: sandbox.db.load(name, sql))
    assert "done" in sandbox.db.fingerprint(name)


def test_a_failed_restore_reports_the_error_after_many_notices(sandbox: Sandbox, scratch,
                                                               tmp_path: Path) -> None:
    sql = tmp_path / "failing.sql"
    sql.write_text("DO $$ BEGIN FOR i IN 1..20000 LOOP RAISE NOTICE 'step %', i; END LOOP; END $$;\n"
                   "SELECT * FROM no_such_table;\n")
    name = scratch("failing")
    sandbox.db.create(name)
    with pytest.raises(DrillError, match='relation "no_such_table" does not exist'):
        finishes(lambda: sandbox.db.load(name, sql))


@pytest.fixture
def granted(sandbox: Sandbox) -> Iterator[str]:
    """A service role granted SELECT on superset_metadata.dashboards (as AKKO's service roles are)."""
    role = "akko_superset_reader"
    sandbox.db.execute("postgres", f"DO $$ BEGIN CREATE ROLE {role}; "
                                   "EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    sandbox.db.execute("superset_metadata", f"GRANT SELECT ON dashboards TO {role}")
    yield role
    sandbox.db.execute("superset_metadata", f"REVOKE ALL ON dashboards FROM {role}")


@pytest.mark.parametrize("fmt", ["plain", "custom"])
def test_a_restored_dump_keeps_privileges_and_owners(target: Target, sandbox: Sandbox, granted: str,
                                                     fmt: str) -> None:
    policy = replace(target.policy, storage=replace(target.policy.storage, dump_format=fmt))
    obj = backup_database(policy, sandbox.db, sandbox.store, "superset_metadata", sandbox.root)
    assert obj.key.endswith(".sql.gz" if fmt == "plain" else ".dump")
    drill = RestoreDatabaseDrill(replace(target, policy=policy), "superset_metadata", new_run_id())
    try:
        drill.pull_latest_backup()
        drill.restore_to_scratch()
        drill.verify_scratch()
        with sandbox.db._connect(drill.scratch) as conn:
            can = conn.execute("SELECT has_table_privilege(%s, 'dashboards', 'SELECT')",
                               (granted,)).fetchone()[0]
        assert can, f"expected {granted} to keep SELECT on dashboards after a {fmt} restore"
    finally:
        drill.abort()
        for key in (obj.key, obj.manifest_key):
            sandbox.store.delete(obj.bucket, key)
    assert not drill.leftover_databases()


class DumpDyingHalfWay:
    """A database whose pg_dump writes 20 MB (multipart territory) and then fails."""

    def dump(self, name: str, out: Path | BinaryIO, fmt: str = "plain") -> dict:
        for _ in range(20):
            out.write(os.urandom(1 << 20))
        raise DrillError(f"pg_dump of {name} failed: server closed the connection unexpectedly")


def test_a_dump_failing_half_way_leaves_no_object_behind(target: Target, sandbox: Sandbox) -> None:
    policy = target.policy
    before = {o.key for o in sandbox.store.list(policy.storage.backups_bucket)}
    with pytest.raises(DrillError, match="pg_dump of superset_metadata failed"):
        finishes(lambda: backup_database(policy, DumpDyingHalfWay(), sandbox.store, "superset_metadata",
                                         sandbox.root))
    after = {o.key for o in sandbox.store.list(policy.storage.backups_bucket)}
    assert after == before, f"expected no new object, found {sorted(after - before)}"


def test_an_upload_refused_stops_the_dump_with_the_store_s_reason(target: Target, sandbox: Sandbox) -> None:
    policy = replace(target.policy, storage=replace(target.policy.storage, backups_bucket="no-such-bucket"))
    with pytest.raises(DrillError, match="NoSuchBucket"):
        finishes(lambda: backup_database(policy, sandbox.db, sandbox.store, "superset_metadata",
                                         sandbox.root))


def test_a_directory_format_dump_restores_in_parallel(sandbox: Sandbox, scratch, tmp_path: Path) -> None:
    out = tmp_path / "dir"
    subprocess.run([sandbox.db._tool("pg_dump"), "-Fd", "-j2", "-d", sandbox.db.dsn("akko_data"),
                    "-f", str(out)], check=True)
    name = scratch("from_directory")
    sandbox.db.create(name)
    finishes(lambda: sandbox.db.load(name, out, jobs=2))
    expected = {t: v for t, v in sandbox.db.fingerprint("akko_data").items() if t != "dr_canary"}
    restored = {t: v for t, v in sandbox.db.fingerprint(name).items() if t != "dr_canary"}
    assert restored == expected, f"expected {expected}, got {restored}"
