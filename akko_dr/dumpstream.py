"""A backup's bytes on their way from the object store into PostgreSQL, never held whole.

A gzipped plain-SQL dump streams: object store → sha256 → gunzip (ISA-L, in a thread of its own) →
psql's stdin, so download and restore overlap and no decompressed file is written. A custom-format
archive is spooled to disk as it is (its tables stay compressed inside) because ``pg_restore -j`` needs
a file it can seek in. The sha256 recorded at backup time is compared once every byte has passed.
"""

from __future__ import annotations

import hashlib
import os
import zlib
from pathlib import Path
from typing import IO, BinaryIO

from isal import igzip_threaded, isal_zlib

from akko_dr import dump_content
from akko_dr.dump_content import DumpContent
from akko_dr.errors import DrillError, TargetUnavailable, UnreadableDump
from akko_dr.ports import BackupObject, Database, ObjectStore

CHUNK = 1 << 20
GZIP_MAGIC = b"\x1f\x8b"
ARCHIVE_MAGIC = b"PGDMP"
# ISA-L level 1 on every core: faster than `gzip -1` on one, at a similar ratio (benchmarks/README).
GZIP_LEVEL = 1
_GZIP_ERRORS = (EOFError, OSError, ValueError, zlib.error, isal_zlib.error)
HEAD_LIMIT = 16 << 20  # SQL read ahead of the restore to find the dump's header and first table


def cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def gzip_to(reader: IO[bytes], out: Path, level: int = GZIP_LEVEL) -> None:
    """Compress ``reader`` to a gzip file ``out``, blocks compressed in parallel on every core."""
    with igzip_threaded.open(out, "wb", compresslevel=level, threads=cores()) as gz:
        while chunk := reader.read(CHUNK):
            gz.write(chunk)


class HashingWriter:
    """A writer that hashes and counts what passes through it to ``raw``."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw, self.sha256, self.size = raw, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.size += len(data)
        return self.raw.write(data)

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        self.raw.flush()


class SealedReader:
    """The read end of a pipe whose end of file counts only once the writer ``seal``-ed it: a producer
    that died half-way makes the reader raise, so an upload reading it aborts instead of completing a
    truncated object."""

    def __init__(self, fd: int, what: str) -> None:
        self._raw, self._what, self.sealed = open(fd, "rb"), what, False  # noqa: SIM115 - closed by close()

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        if not data and not self.sealed:
            raise DrillError(f"{self._what} stopped before it was complete; upload aborted")
        return data

    def close(self) -> None:
        self._raw.close()


class _Hashing:
    """A reader that hashes and counts what passes through it; the first bytes can be peeked."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw, self.sha256, self.size = raw, hashlib.sha256(), 0
        self._head = b""

    def peek(self, n: int) -> bytes:
        while len(self._head) < n and (more := self.raw.read(n - len(self._head))):
            self._head += more
        return self._head[:n]

    def read(self, n: int = -1) -> bytes:
        data, self._head = self._head, b""
        if n < 0 or len(data) < n:
            data += self.raw.read(-1 if n < 0 else n - len(data))
        self.sha256.update(data)
        self.size += len(data)
        return data

    def readinto(self, buffer: memoryview) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def readable(self) -> bool:
        return True


class BackupStream:
    """One backup opened for a restore: ``sql`` (plain, streamed) or ``archive`` (custom, spooled)."""

    def __init__(self, store: ObjectStore, backup: BackupObject, spool: Path) -> None:
        self.backup, self.spool = backup, spool
        self.archive: Path | None = None
        self._raw = store.stream(backup.bucket, backup.key)
        self._in = _Hashing(self._raw)
        self._gz: IO[bytes] | None = None
        self._head, self.sql_bytes = b"", 0  # SQL read ahead (replayed first); SQL handed to the restore
        head = self._in.peek(len(ARCHIVE_MAGIC))
        if head.startswith(GZIP_MAGIC):
            self._gz = igzip_threaded.open(self._in, "rb")
        elif head == ARCHIVE_MAGIC:
            self._spool_archive()
        else:
            self.close()
            raise DrillError(f"backup {backup.key} is corrupt: neither gzip nor a pg_dump archive")

    @property
    def format(self) -> str:
        return "custom" if self.archive else "plain"

    @property
    def sql(self) -> BinaryIO:
        """The plain SQL, decompressed as it downloads; a damaged stream raises a one-line DrillError."""
        return _Checked(self)

    def read_sql(self, n: int) -> bytes:
        if self._head:
            data, self._head = self._head[:n], self._head[n:]
        else:
            data = self._decompress(n)
        self.sql_bytes += len(data)
        return data

    def _decompress(self, n: int) -> bytes:
        assert self._gz is not None, "a custom-format archive has no SQL stream"
        try:
            return self._gz.read(n)
        except _GZIP_ERRORS as err:
            reason = f"backup {self.backup.key} is corrupt or truncated: {err}"
        self.check()  # bytes changed after the manifest recorded them: named by their sha256
        raise DrillError(reason)

    def head(self, limit: int = HEAD_LIMIT) -> tuple[DumpContent, bool]:
        """Read the plain SQL ahead up to its first table (at most ``limit`` bytes, kept and replayed first
        by ``sql``): what it holds so far, and whether that was the whole dump (then its sha256 is
        checked too)."""
        while not dump_content.has_table(self._head) and len(self._head) < limit:
            if not (chunk := self._decompress(CHUNK)):
                self.check()
                return dump_content.scan(self._head.splitlines(keepends=True)), True
            self._head += chunk
        return dump_content.scan(self._head.splitlines(keepends=True)), False

    def _spool_archive(self) -> None:
        self.archive = self.spool
        with open(self.spool, "wb") as out:
            while chunk := self._in.read(CHUNK):
                out.write(chunk)
        self.check()

    def check(self) -> None:
        """Read what the restore left unread, then compare the bytes with the sha256 recorded at backup
        time (when a manifest recorded one); record the actual sha256 and size on the backup."""
        if self._gz is not None:
            self._gz.close()
            self._gz = None
        while self._in.read(CHUNK):
            pass
        actual, backup = self._in.sha256.hexdigest(), self.backup
        if backup.sha256 and actual != backup.sha256:
            raise DrillError(f"backup {backup.key} is corrupt: sha256 {actual[:12]}… differs from the "
                             f"{backup.sha256[:12]}… recorded at backup time")
        backup.sha256, backup.size = actual, self._in.size

    def close(self) -> None:
        if self._gz is not None:
            self._gz.close()
            self._gz = None
        self._raw.close()
        self.spool.unlink(missing_ok=True)

    def __enter__(self) -> BackupStream:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


class _Checked:
    """``BackupStream.sql`` as a file-like reader."""

    def __init__(self, stream: BackupStream) -> None:
        self._stream = stream

    def read(self, n: int = CHUNK) -> bytes:
        return self._stream.read_sql(n if n > 0 else CHUNK)


def restore_into(db: Database, name: str, stream: BackupStream, jobs: int) -> None:
    """Restore an opened backup into the (empty) database ``name``; a restore that failed on a damaged
    backup is reported as the damaged backup, not as the SQL error it caused."""
    try:
        db.load(name, stream.archive or stream.sql, jobs)
    except TargetUnavailable:
        raise
    except UnreadableDump as err:
        stream.check()
        raise DrillError(f"backup {stream.backup.key} is corrupt or truncated: {err}") from None
    except DrillError:
        stream.check()
        raise
    stream.check()
