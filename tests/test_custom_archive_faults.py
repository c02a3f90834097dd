"""Drill 1's refusals hold for custom-format archives as for .sql.gz (issue 13): each class of bad backup
in the sandbox's fault catalogue, made from a real archive the backup job wrote, is refused with a
one-line reason and nothing but the scratch database is touched."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace

import pytest

from akko_dr.backup import backup_database
from akko_dr.canary import wait_for_write
from akko_dr.drills.restore_database import RestoreDatabaseDrill
from akko_dr.errors import DrillError
from akko_dr.ports import BackupObject
from akko_dr.sandbox.fault_dumps import BadDump
from akko_dr.sandbox.platform import Sandbox
from akko_dr.targets import Target, new_run_id
from tests.test_restore_stream import archive_of


@pytest.fixture
def custom(target: Target, sandbox: Sandbox) -> Iterator[Target]:
    """The target with ``storage.dump_format: custom``, its newest superset_metadata backup an archive."""
    policy = replace(target.policy, storage=replace(target.policy.storage, dump_format="custom"))
    wait_for_write(target.port("canary"), "superset_metadata")
    obj = backup_database(policy, sandbox.db, sandbox.store, "superset_metadata", sandbox.root)
    yield replace(target, policy=policy)
    for key in (obj.key, obj.manifest_key):
        sandbox.store.delete(obj.bucket, key)


def _truncated(_t: Target, _n: BackupObject, archive: bytes) -> bytes:
    """The archive cut in half (the job died while uploading, its manifest recorded what it uploaded)."""
    return archive[: len(archive) // 2]


def _flipped(_t: Target, _n: BackupObject, archive: bytes) -> bytes:
    """16 bytes flipped in the middle of the archive's compressed table data."""
    body, middle = bytearray(archive), len(archive) // 2
    body[middle:middle + 16] = bytes(b ^ 0xFF for b in body[middle:middle + 16])
    return bytes(body)


def _other_database(target: Target, newest: BackupObject, _archive: bytes) -> bytes:
    """A real archive of another database, under this one's name."""
    other = next(name for name in target.policy.databases if name != newest.database)
    return archive_of(target, other)


def _header_only(_t: Target, _n: BackupObject, _archive: bytes) -> bytes:
    """Only an archive's first five bytes, then no archive at all."""
    return b"PGDMP" + b"\x00" * 3 + b"no archive at all, only its first five bytes\n" * 64


CASES = [
    (_truncated, "own", r"is corrupt or truncated: pg_restore cannot read it \(.*(end of file|block ID)"),
    (_flipped, "original", r"is corrupt: sha256 .* differs"),
    (_flipped, "own", r"is corrupt or truncated: pg_restore cannot read it \(.*could not uncompress"),
    (_other_database, "none", r"does not match superset_metadata: .* missing"),
    (_header_only, "none", r"is corrupt: pg_restore cannot read it \(.*unsupported version \(0\.0\)"),
]


@pytest.mark.parametrize("body, manifest, reason", CASES, ids=[
    "truncated, its manifest recording it", "damaged after the manifest recorded it",
    "damaged, its manifest recording it", "another database's archive", "a header and no archive"])
def test_a_bad_custom_archive_is_refused_and_nothing_else_is_touched(
        custom: Target, body: Callable[[Target, BackupObject, bytes], bytes], manifest: str,
        reason: str) -> None:
    bad = BadDump(body, manifest=manifest)
    drill = RestoreDatabaseDrill(bad.apply(custom, "superset_metadata"), "superset_metadata", new_run_id())
    try:
        with pytest.raises(DrillError, match=reason) as err:
            drill.run("dashboards")
        assert "\n" not in str(err.value)
        assert drill.changes_since_incident() == []
        assert drill.leftover_databases() == [] and drill.leftover_files() == []
        assert custom.orchestrator.running("akko-superset") == 1
    finally:
        bad.clear()
        if custom.heal:
            custom.heal()
