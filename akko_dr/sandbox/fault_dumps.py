"""Bad dumps a drill must refuse: each is uploaded as the newest dump of the database, and removed again
when the fault is cleared (the real backups underneath are never touched)."""

from __future__ import annotations

import gzip
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta

from akko_dr.backup import dump_key, latest_backup
from akko_dr.ports import BackupObject
from akko_dr.targets import Target

Body = Callable[[Target, BackupObject, bytes], bytes]  # (target, newest real dump, its gzip) -> bad gzip
MANIFESTS = ("none", "own", "original")  # no manifest (the job died), the bad dump's own, the real one's


@dataclass
class BadDump:
    """A fault that uploads ``body`` as the newest dump, with a manifest as ``manifest`` says (``own``: the
    job "succeeded" and recorded it; ``original``: bytes damaged after the real one was recorded);
    ``clear`` deletes what was uploaded, never a real backup."""

    body: Body
    manifest: str = "none"
    uploaded: list[tuple[Target, str, str]] = field(default_factory=list)

    def apply(self, target: Target, database: str) -> Target:
        newest = latest_backup(target.policy, target.store, database)
        data = self.body(target, newest, target.store.read(newest.bucket, newest.key))
        taken = newest.taken_at + timedelta(seconds=1)
        bad = BackupObject(database, newest.bucket, dump_key(target.policy, database, taken), taken,
                           size=len(data), job=newest.job, sha256=hashlib.sha256(data).hexdigest())
        target.store.put_bytes(bad.bucket, bad.key, data)
        self.uploaded.append((target, bad.bucket, bad.key))
        if self.manifest != "none":
            recorded = bad if self.manifest == "own" else replace(newest, key=bad.key)
            target.store.put_bytes(bad.bucket, bad.manifest_key, recorded.manifest())
            self.uploaded.append((target, bad.bucket, bad.manifest_key))
        return target

    def clear(self) -> None:
        while self.uploaded:
            target, bucket, key = self.uploaded.pop()
            target.store.delete(bucket, key)


def _sql(change: Callable[[Target, bytes], bytes]) -> Body:
    """A body made from the newest dump's SQL text."""
    return lambda target, newest, gz: gzip.compress(change(target, gzip.decompress(gz)))


def damaged(target: Target, newest: BackupObject, gz: bytes) -> bytes:
    """The newest dump with 16 bytes flipped in the middle, after its manifest recorded its sha256."""
    body, middle = bytearray(gz), len(gz) // 2
    body[middle:middle + 16] = bytes(b ^ 0xFF for b in body[middle:middle + 16])
    return bytes(body)


def truncated(target: Target, newest: BackupObject, gz: bytes) -> bytes:
    """The newest dump cut in half (the job died while uploading)."""
    return gz[: len(gz) // 2]


def other_database(target: Target, newest: BackupObject, gz: bytes) -> bytes:
    """The newest dump of another database, under this one's name."""
    other = next(name for name in target.policy.databases if name != newest.database)
    source = latest_backup(target.policy, target.store, other)
    return target.store.read(source.bucket, source.key)


def garbage(target: Target, newest: BackupObject, gz: bytes) -> bytes:
    """A valid gzip of bytes that are no SQL at all (the job gzipped the wrong file)."""
    return gzip.compress(b"\x7fELF\x02\x01\x01 this is no SQL: the job gzipped the wrong file\n" * 64)


@_sql
def fails_half_way(target: Target, sql: bytes) -> bytes:
    """The real dump with a statement that fails inserted half-way, at a statement boundary."""
    lines = sql.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.startswith((b"CREATE ", b"ALTER ", b"COPY "))]
    cut = next(i for i in starts if i >= len(lines) // 2) if starts[-1] >= len(lines) // 2 else starts[-1]
    broken = b"INSERT INTO dump_broke_off_here VALUES (1);\n"
    return b"".join([*lines[:cut], broken, *lines[cut:]])


@_sql
def newer_server(target: Target, sql: bytes) -> bytes:
    """The real dump as a server one major version newer than the target would write it (its header, and
    a setting the target does not know)."""
    major = int(re.match(r"\d+", target.db.server_version())[0]) + 1
    header = re.sub(rb"^-- Dumped from database version \S+", f"-- Dumped from database version {major}.0"
                    .encode(), sql, count=1, flags=re.M)
    return header.replace(b"SET statement_timeout = 0;", b"SET statement_timeout = 0;\n"
                          b"SET default_toast_compression_level = 3;", 1)


@_sql
def empty(target: Target, sql: bytes) -> bytes:
    """Nothing: a job whose pg_dump wrote no output and still exited 0."""
    return b""


@dataclass
class HiddenBackups:
    """No backup in cold storage: every dump of the database is moved aside for the fault, and moved back
    when it is cleared (a fault never deletes a real backup)."""

    hidden: list[tuple[Target, str, str]] = field(default_factory=list)

    def apply(self, target: Target, database: str) -> Target:
        storage = target.policy.storage
        bucket, prefix = storage.backups_bucket, storage.dump_prefix + database + "_"
        for obj in target.store.list(bucket, prefix):
            target.store.put_bytes(bucket, HIDDEN + obj.key, target.store.read(bucket, obj.key))
            target.store.delete(bucket, obj.key)
            self.hidden.append((target, bucket, obj.key))
        return target

    def clear(self) -> None:
        while self.hidden:
            target, bucket, key = self.hidden.pop()
            target.store.put_bytes(bucket, key, target.store.read(bucket, HIDDEN + key))
            target.store.delete(bucket, HIDDEN + key)


HIDDEN = "fault-hidden/"  # where HiddenBackups keeps the dumps it moved aside
