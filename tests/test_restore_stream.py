"""Drill 1's stream: the head of a dump is read ahead of the restore (its server and first table decide a
refusal before any scratch database exists) and replayed whole; what only the end of the stream shows
(a checksum, a gzip error, no table restored) still refuses (issue 13): on in-memory fakes of the
ports, and on the sandbox for the refusals that come after a scratch restore."""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from akko_dr.canary import wait_for_write
from akko_dr.drills.restore_database import RestoreDatabaseDrill
from akko_dr.dumpstream import BackupStream, restore_into
from akko_dr.errors import DrillError
from akko_dr.ports import BackupObject
from akko_dr.sandbox.fault_dumps import BadDump
from akko_dr.targets import Target, new_run_id
from tests.test_dumpstream import MemoryStore, RecordingDatabase, backup

HEADER = b"--\n-- PostgreSQL database dump\n--\n\n-- Dumped from database version 17.2\n\nSET x = 0;\n"
TABLE = b"CREATE TABLE public.t (\n    id integer\n);\n\nCOPY public.t (id) FROM stdin;\n"
ROWS = b"".join(b"%d\n" % i for i in range(200_000)) + b"\\.\n"


def opened(sql: bytes, tmp_path: Path, recorded: bytes | None = None) -> BackupStream:
    body = gzip.compress(sql)
    return BackupStream(MemoryStore(body), backup(body, recorded), tmp_path / "spool")


def test_the_head_stops_at_the_first_table_and_the_restore_still_gets_every_byte(tmp_path: Path) -> None:
    sql = HEADER + TABLE + ROWS
    with opened(sql, tmp_path) as stream:
        content, whole = stream.head()
        db = RecordingDatabase()
        restore_into(db, "scratch", stream, jobs=1)
    assert (content.server, content.has_table, whole) == ("17.2", True, False)
    assert db.loaded == sql and stream.sql_bytes == len(sql)


def test_a_dump_with_no_table_is_read_whole_by_its_head(tmp_path: Path) -> None:
    with opened(HEADER, tmp_path) as stream:
        content, whole = stream.head()
    assert (content.has_table, whole, content.sql_bytes) == (False, True, len(HEADER))


def test_a_head_longer_than_the_limit_is_undecided_not_refused(tmp_path: Path) -> None:
    sql = HEADER + b"-- a comment\n" * 100_000 + TABLE + ROWS
    with opened(sql, tmp_path) as stream:
        content, whole = stream.head(limit=64 << 10)
        db = RecordingDatabase()
        restore_into(db, "scratch", stream, jobs=1)
    assert (content.has_table, whole) == (False, False)
    assert db.loaded == sql


def test_a_whole_head_with_changed_bytes_is_named_by_its_checksum(tmp_path: Path) -> None:
    with pytest.raises(DrillError, match=r"is corrupt: sha256 .* differs"), \
            opened(HEADER, tmp_path, recorded=gzip.compress(HEADER + b"-- other\n")) as stream:
        stream.head()


def test_a_truncated_head_is_named_corrupt_or_truncated(tmp_path: Path) -> None:
    body = gzip.compress(HEADER + TABLE)[:-20]
    with pytest.raises(DrillError, match="is corrupt or truncated"), \
            BackupStream(MemoryStore(body), backup(body), tmp_path / "spool") as stream:
        stream.head()


def test_a_checksum_that_differs_at_the_end_of_a_sound_stream_fails_the_restore(tmp_path: Path) -> None:
    sql = HEADER + TABLE + ROWS
    with pytest.raises(DrillError, match=r"is corrupt: sha256 .* differs"), \
            opened(sql, tmp_path, recorded=b"what the manifest recorded") as stream:
        stream.head()
        restore_into(RecordingDatabase(), "scratch", stream, jobs=1)


def test_a_gzip_error_mid_stream_is_corrupt_or_truncated_and_leaves_no_file(tmp_path: Path) -> None:
    body = gzip.compress(HEADER + TABLE + ROWS)
    cut = body[: len(body) * 3 // 4]
    with pytest.raises(DrillError, match="is corrupt or truncated"), \
            BackupStream(MemoryStore(cut), backup(cut), tmp_path / "spool") as stream:
        stream.head()
        restore_into(RecordingDatabase(), "scratch", stream, jobs=1)
    assert list(tmp_path.iterdir()) == []


def test_the_backup_records_the_sha256_and_size_it_streamed(tmp_path: Path) -> None:
    body = gzip.compress(HEADER + TABLE + ROWS)
    obj = backup(body)
    with BackupStream(MemoryStore(body), obj, tmp_path / "spool") as stream:
        stream.head()
        restore_into(RecordingDatabase(), "scratch", stream, jobs=1)
    assert (obj.sha256, obj.size) == (hashlib.sha256(body).hexdigest(), len(body))


# -- on the sandbox: refusals only the end of the stream can find drop the scratch database -----------

def refused_late(target: Target, body: Callable[[Target, BackupObject, bytes], bytes], manifest: str,
                 reason: str) -> RestoreDatabaseDrill:
    """Run Drill 1 against ``body`` uploaded as the newest dump; expect ``reason`` and nothing touched."""
    if target.heal:
        target.heal()
    wait_for_write(target.port("canary"), "superset_metadata")
    bad = BadDump(body, manifest=manifest)
    drill = RestoreDatabaseDrill(bad.apply(target, "superset_metadata"), "superset_metadata", new_run_id())
    try:
        with pytest.raises(DrillError, match=reason) as err:
            drill.run("dashboards")
        bad.clear()
        assert "\n" not in str(err.value)
        assert drill.changes_since_incident() == [], "the damaged database changed during a refused recovery"
        assert drill.leftover_databases() == [] and drill.leftover_files() == []
        assert target.orchestrator.running("akko-superset") == 1
    finally:
        bad.clear()
        if target.heal:  # the table the drill dropped stays dropped after a refusal: put it back for others
            target.heal()
    return drill


def test_a_checksum_that_differs_only_at_the_end_refuses_after_the_restore(target: Target) -> None:
    """The same SQL compressed again: a sound gzip whose bytes are not those the manifest recorded."""
    drill = refused_late(target, lambda _t, _n, gz: gzip.compress(gzip.decompress(gz), compresslevel=9),
                         "original", r"is corrupt: sha256 .* differs")
    assert any("abort: scratch database dropped" in line for line in drill.log), drill.log


def test_a_dump_whose_head_shows_no_table_and_restores_none_is_refused(target: Target) -> None:
    comments = b"-- Dumped from database version 17.2\n" + b"-- nothing but comments\n" * 800_000
    drill = refused_late(target, lambda _t, _n, _gz: gzip.compress(comments), "none", "holds no table")
    assert any("abort: scratch database dropped" in line for line in drill.log), drill.log


# -- custom-format archives: refused by their table of contents, before any scratch database -----------

def archive_of(target: Target, database: str) -> bytes:
    out = target.workdir / f"{database}-{new_run_id()}.dump"
    target.db.dump(database, out, "custom")
    try:
        return out.read_bytes()
    finally:
        out.unlink()


def _empty_archive(target: Target, _newest: BackupObject, _gz: bytes) -> bytes:
    """What a job that dumped an empty database (the wrong one, or one just re-created) uploads."""
    name = f"empty_{new_run_id()}"
    target.db.create(name)
    try:
        return archive_of(target, name)
    finally:
        target.db.drop(name)


def _newer_archive(target: Target, _newest: BackupObject, _gz: bytes) -> bytes:
    """A real archive whose header says a server one major version newer than the target dumped it."""
    version = target.db.server_version()
    major = int(version.split(".")[0])
    newer = f"{major + 1}.{version.split('.', 1)[1]}" if "." in version else str(major + 1)
    return archive_of(target, "superset_metadata").replace(version.encode(), newer.encode(), 1)


@pytest.mark.parametrize("body, reason", [
    (_empty_archive, r"holds no table \(its table of contents lists none\)"),
    (_newer_archive, "newer than the restore target's"),
    (lambda _t, _n, _gz: b"PGDMP" + bytes([9, 0, 0, 4, 8, 1]) + bytes(64),
     r"is corrupt: pg_restore cannot read it \(.*unsupported version \(9\.0\)"),
], ids=["an empty database's archive", "an archive from a newer server", "an archive with a damaged header"])
def test_a_custom_archive_that_cannot_be_restored_is_refused_before_any_scratch_database(
        target: Target, body: Callable[[Target, BackupObject, bytes], bytes], reason: str) -> None:
    drill = refused_late(target, body, "none", reason)
    assert not any("scratch database" in line for line in drill.log), drill.log


def _newer_format(target: Target, _newest: BackupObject, _gz: bytes) -> bytes:
    """A real archive whose header names an archive format newer than any pg_restore here reads."""
    archive = archive_of(target, "superset_metadata")
    return archive[:5] + bytes([1, 99]) + archive[7:]


def test_an_archive_no_local_pg_restore_reads_is_left_to_the_restore_which_refuses_it(target: Target) -> None:
    drill = refused_late(target, _newer_format, "none", r"unsupported version \(1\.99\)")
    assert any("table of contents not read here" in line for line in drill.log), drill.log
    assert any("abort: scratch database dropped" in line for line in drill.log), drill.log
