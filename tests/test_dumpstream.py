"""A backup streams from the object store into the restore: no decompressed file, its sha256 checked as it
passes, a damaged stream named as such (issue 13). Runs on in-memory fakes of the ports."""

from __future__ import annotations

import gzip
import hashlib
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import pytest

from akko_dr.drills.full_rebuild import largest_first, restore_jobs
from akko_dr.dumpstream import BackupStream, cores, restore_into
from akko_dr.errors import DrillError, TargetUnavailable
from akko_dr.ports import BackupObject

SQL = b"".join(b"INSERT INTO t VALUES (%d, 'row %d');\n" % (i, i) for i in range(50_000))


class MemoryStore:
    """An object store holding one object in memory, counting how much of it was read."""

    endpoint = "memory"

    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, bucket: str, key: str) -> BinaryIO:
        return io.BytesIO(self.body)


class RecordingDatabase:
    """A database whose load reads what it is given, as psql would, and remembers it."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.loaded, self.given, self.fail_after = b"", None, fail_after

    def load(self, name: str, dump: Path | BinaryIO, jobs: int = 1) -> None:
        self.given = dump
        if isinstance(dump, Path):
            self.loaded = dump.read_bytes()
            return
        while chunk := dump.read(1 << 16):
            self.loaded += chunk
            if self.fail_after is not None and len(self.loaded) > self.fail_after:
                raise DrillError(f"restore into {name} failed: ERROR:  syntax error")


def backup(body: bytes, recorded: bytes | None = None) -> BackupObject:
    sha = hashlib.sha256(recorded if recorded is not None else body).hexdigest()
    return BackupObject("db", "bucket", "pg/db_20260101000000.sql.gz", datetime(2026, 1, 1, tzinfo=UTC),
                        sha256=sha if recorded is not None else "")


def restore(body: bytes, tmp_path: Path, obj: BackupObject, db: RecordingDatabase | None = None):
    db = db or RecordingDatabase()
    with BackupStream(MemoryStore(body), obj, tmp_path / "spool") as stream:
        restore_into(db, "scratch", stream, jobs=2)
    return db


def test_a_gzipped_dump_streams_into_the_restore_without_a_decompressed_file(tmp_path: Path) -> None:
    body = gzip.compress(SQL)
    obj = backup(body, recorded=body)
    db = restore(body, tmp_path, obj)
    assert not isinstance(db.given, Path), f"expected a stream, got the file {db.given}"
    assert db.loaded == SQL
    assert list(tmp_path.iterdir()) == []
    assert (obj.sha256, obj.size) == (hashlib.sha256(body).hexdigest(), len(body))


def test_a_dump_of_several_gzip_members_streams_whole(tmp_path: Path) -> None:
    body = gzip.compress(SQL[:1000]) + gzip.compress(SQL[1000:])
    assert restore(body, tmp_path, backup(body)).loaded == SQL


def test_bytes_changed_after_the_manifest_are_named_corrupt(tmp_path: Path) -> None:
    body = gzip.compress(SQL)
    damaged = body[:-12] + bytes(b ^ 0xFF for b in body[-12:-8]) + body[-8:]
    with pytest.raises(DrillError, match="is corrupt"):
        restore(damaged, tmp_path, backup(damaged, recorded=body))


def test_a_truncated_dump_without_a_manifest_is_named_corrupt_or_truncated(tmp_path: Path) -> None:
    body = gzip.compress(SQL)[:-5000]
    with pytest.raises(DrillError, match="is corrupt or truncated"):
        restore(body, tmp_path, backup(body))


def test_a_restore_failing_on_a_damaged_backup_names_the_backup_not_the_sql_error(tmp_path: Path) -> None:
    body = gzip.compress(SQL)
    other = gzip.compress(SQL + b"-- changed\n")
    with pytest.raises(DrillError, match=r"is corrupt: sha256 .* differs"):
        restore(other, tmp_path, backup(other, recorded=body), RecordingDatabase(fail_after=1000))


def test_a_restore_failing_on_a_sound_backup_keeps_its_own_reason(tmp_path: Path) -> None:
    body = gzip.compress(SQL)
    with pytest.raises(DrillError, match="syntax error"):
        restore(body, tmp_path, backup(body, recorded=body), RecordingDatabase(fail_after=1000))


def test_bytes_that_are_no_dump_are_refused_before_any_restore(tmp_path: Path) -> None:
    with pytest.raises(DrillError, match="neither gzip nor a pg_dump archive"):
        restore(b"<html>not found</html>", tmp_path, backup(b"x"))


def test_a_custom_format_archive_is_spooled_still_compressed_and_removed_after(tmp_path: Path) -> None:
    body = b"PGDMP" + bytes(range(256)) * 100
    db = restore(body, tmp_path, backup(body, recorded=body))
    assert isinstance(db.given, Path) and db.loaded == body
    assert list(tmp_path.iterdir()) == []


def test_a_lost_connection_mid_stream_is_the_store_unavailable_not_a_corrupt_backup(tmp_path: Path) -> None:
    class Dropping(MemoryStore):
        def stream(self, bucket: str, key: str) -> BinaryIO:
            inner = io.BytesIO(self.body)

            class Body:
                def read(self, n: int = -1) -> bytes:
                    if inner.tell() > 10_000:
                        raise TargetUnavailable("object store connection lost at memory")
                    return inner.read(min(n, 4096) if n > 0 else 4096)

                def close(self) -> None:
                    inner.close()
            return Body()

    body = gzip.compress(SQL)
    with pytest.raises(TargetUnavailable, match="connection lost"), \
            BackupStream(Dropping(body), backup(body), tmp_path / "spool") as stream:
        restore_into(RecordingDatabase(), "scratch", stream, jobs=1)


def test_drill_2_starts_the_biggest_dump_first_and_shares_the_cores() -> None:
    assert largest_first({"small": 10, "big": 1000, "mid": 100, "also_mid": 100}) == [
        "big", "also_mid", "mid", "small"]
    assert restore_jobs(1) == cores()
    assert restore_jobs(cores() * 4) == 1
