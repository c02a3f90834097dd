"""A plain SQL dump restored section by section as it streams, each table's rows over several connections.

pg_dump writes its sections in order: pre-data (the schema), data (``COPY`` blocks, sequence positions,
large objects), post-data (indexes, constraints, triggers, privileges). The pre-data runs through psql
in one transaction and is committed; then the rows of each ``COPY`` block are cut at line ends into
blocks of about 1 MB and dealt to up to ``jobs`` connections, each loading them with a ``COPY`` of its
own into the same table, so a table as large as the whole database loads on every core. Whatever is
not ``COPY`` rows, and the post-data once every ``COPY`` committed, runs through a second psql, again in
one transaction. Nothing is held whole: a few blocks per connection at most. A table's rows that come
after a statement of their own (``--disable-triggers`` brackets them with ``ALTER TABLE``) stay in that
psql, in order: a lock its transaction holds could otherwise stall the connections.

The restore is no longer one transaction: a failure leaves the database half-restored, and the caller
drops it (the scratch database of a drill). Each psql runs with ``ON_ERROR_STOP``, so the first error
ends the restore, by the same one-line reasons as a single psql would give.
"""

from __future__ import annotations

import queue
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import suppress
from typing import BinaryIO

import psycopg

from akko_dr.adapters.pg_tools import Tool
from akko_dr.errors import DrillError, TargetUnavailable

BLOCK = 1 << 20  # bytes read, and rows dealt to one connection, at a time
QUEUED = 2  # blocks waiting per connection (bounds the memory to jobs * QUEUED * BLOCK)
_HEADER = re.compile(rb"^-- (?:Data for )?Name: .*?; Type: (.*?); Schema: .*?; Owner: .*$")
_DATA = {b"TABLE DATA", b"SEQUENCE SET", b"BLOBS", b"BLOB", b"BLOB METADATA", b"LARGE OBJECT"}
_COPY = re.compile(rb"^COPY .+ FROM stdin;\n$")
_SESSION = re.compile(rb"^(SET |SELECT pg_catalog\.set_config\()")  # the preamble's session settings
_END, _STOP = object(), object()

Connect = Callable[[], psycopg.Connection]
StartPsql = Callable[[], Tool]
Check = Callable[[Tool, int], None]  # raises the one-line reason of a psql that ended with this status


class _Stopped(Exception):
    """A psql stopped reading its input: it failed, and its exit status says why."""


class SectionedRestore:
    """One restore: ``run(reader)`` feeds the dump; ``psql()`` starts a psql on the target database."""

    def __init__(self, name: str, psql: StartPsql, check: Check, connect: Connect, jobs: int) -> None:
        self.name, self._psql, self._check, self._connect, self.jobs = name, psql, check, connect, jobs
        self._preamble: list[bytes] = []
        self._loaders: list[_Loader] = []

    def run(self, reader: BinaryIO) -> None:
        rows = _Rows(reader)
        with self._psql() as schema:
            self._feed(schema, self._schema(rows, schema))
        if rows.done:
            return
        try:
            with self._psql() as rest:
                self._feed(rest, self._rest(rows, rest))
        except BaseException:
            self._stop_loaders(quiet=True)
            raise

    def _feed(self, psql: Tool, feeding: Iterator[None]) -> None:
        """Run a section's feeding into ``psql``, then wait for it; a psql that failed raises its reason."""
        stopped = False
        try:
            for _ in feeding:
                pass
        except _Stopped:
            stopped = True
        self._check(psql, psql.finish())
        if stopped:
            raise DrillError(f"restore into {self.name} failed: psql stopped reading its input")

    def _schema(self, rows: _Rows, psql: Tool) -> Iterator[None]:
        """The preamble and the pre-data, up to the first data entry (pushed back)."""
        seen_entry = False
        for line in rows:
            kind = _entry_type(line)
            if kind in _DATA:
                rows.push(line)
                return
            seen_entry = seen_entry or kind is not None
            if not seen_entry:
                self._preamble.append(line)
            _write(psql, line)
            yield

    def _rest(self, rows: _Rows, psql: Tool) -> Iterator[None]:
        """The data and post-data: rows to the loaders, every other line to the second psql."""
        for line in self._preamble:
            _write(psql, line)
        in_data, bare = True, False  # bare: a TABLE DATA entry with nothing but comments before its COPY
        for line in rows:
            if in_data and bare and _COPY.match(line):
                self._copy(line[:-2], rows)
                bare = False
                continue
            kind = _entry_type(line)
            if in_data and kind is not None and kind not in _DATA:
                in_data = False
                self._stop_loaders()  # every COPY committed before the indexes and constraints
            bare = kind == b"TABLE DATA" or (bare and line.startswith((b"--", b"\n")))
            _write(psql, line)
            yield
        self._stop_loaders()

    def _copy(self, statement: bytes, rows: _Rows) -> None:
        """Deal one COPY block's rows, a block at a time, to the loaders (each begins its COPY on its
        first block); the block ends at the line ``\\.``."""
        started: set[int] = set()
        for n, block in enumerate(rows.copy_blocks()):
            loader = self._loader(n % self.jobs)
            if id(loader) not in started:
                started.add(id(loader))
                loader.put(statement)
            loader.put(block)
        for loader in self._loaders:
            if id(loader) in started:
                loader.put(_END)

    def _loader(self, n: int) -> _Loader:
        """The n-th loader, or an earlier one when the server refuses more connections."""
        if n < len(self._loaders):
            return self._loaders[n]
        try:
            conn = self._connect()
        except TargetUnavailable:
            if not self._loaders:
                raise
            self.jobs = len(self._loaders)  # a server at its connection limit: load with fewer
            return self._loaders[n % self.jobs]
        loader = _Loader(conn, self.name, b"".join(line for line in self._preamble if _SESSION.match(line)))
        self._loaders.append(loader)
        return loader

    def _stop_loaders(self, quiet: bool = False) -> None:
        """Wait for every loader to end; raise the first one's error (unless ``quiet``: the restore
        failed already, and its own reason stands)."""
        loaders, self._loaders = self._loaders, []
        for loader in loaders:
            loader.stop()
        for loader in loaders:
            if loader.error is not None and not quiet:
                raise loader.error


class _Rows:
    """The dump's lines, with a line pushed back, and the rows of a COPY block as whole-line blocks."""

    def __init__(self, reader: BinaryIO) -> None:
        self._reader, self._buffer, self._at, self._back, self.done = reader, b"", 0, [], False

    def push(self, line: bytes) -> None:
        self._back.append(line)

    def __iter__(self) -> Iterator[bytes]:
        while True:
            if self._back:
                yield self._back.pop()
                continue
            cut = self._buffer.find(b"\n", self._at) + 1
            if cut:
                line, self._at = self._buffer[self._at:cut], cut
                yield line
            elif block := self._reader.read(BLOCK):
                self._buffer, self._at = self._buffer[self._at:] + block, 0
            else:
                line, self._buffer, self._at = self._buffer[self._at:], b"", 0
                if line:
                    yield line
                self.done = True
                return

    def copy_blocks(self) -> Iterator[memoryview]:
        """The rows up to the end-of-data line ``\\.`` (consumed), in blocks of whole lines (views of
        what was read: no copy)."""
        pending, self._buffer, self._at = self._buffer[self._at:], b"", 0
        while True:
            if pending.startswith(b"\\.\n"):
                self._buffer = pending[3:]
                return
            cut = pending.rfind(b"\n") + 1
            if end := pending.find(b"\n\\.\n", 0, cut) + 1:
                yield memoryview(pending)[:end]
                self._buffer = pending[end + 3:]
                return
            if cut:
                yield memoryview(pending)[:cut]
            block = self._reader.read(BLOCK)
            if not block:
                raise DrillError("the dump ends inside the rows of a table (no end-of-data line)")
            pending = pending[cut:] + block


class _Loader:
    """A connection loading the COPY blocks it is given, in a thread of its own."""

    def __init__(self, conn: psycopg.Connection, database: str, session: bytes) -> None:
        self._conn, self._database = conn, database
        self.error: Exception | None = None
        if session:
            try:
                conn.execute(session)
            except psycopg.Error as err:
                conn.close()
                raise _reason(err, database) from None
        self._queue: queue.Queue[object] = queue.Queue(QUEUED)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def put(self, item: object) -> None:
        if self.error is None:
            self._queue.put(item)
        else:
            raise self.error

    def stop(self) -> None:
        self._queue.put(_STOP)
        self._thread.join()
        with suppress(psycopg.Error):
            self._conn.close()

    def _run(self) -> None:
        while (item := self._queue.get()) is not _STOP:
            if self.error is not None:
                continue  # drained until stopped
            try:
                self._load(item)
            except psycopg.Error as err:
                self.error = _reason(err, self._database)
            except Exception as err:  # a harness bug: raised as it is (never a refused backup), never hangs
                self.error = err

    def _load(self, statement: object) -> None:
        assert isinstance(statement, bytes), "a loader's COPY begins with its statement"
        with self._conn.cursor().copy(statement) as copy:
            while (block := self._queue.get()) is not _END:
                if block is _STOP:  # stopped mid-block (the restore failed): the COPY is rolled back
                    self._queue.put(_STOP)
                    raise psycopg.errors.QueryCanceled("restore stopped")
                copy.write(block)


def _reason(err: psycopg.Error, database: str) -> DrillError:
    """The one-line reason of a COPY that failed, as psql would give it."""
    if isinstance(err, psycopg.OperationalError) and err.diag.sqlstate is None:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        return TargetUnavailable(f"PostgreSQL unreachable during restore of {database}: {first}")
    message = err.diag.message_primary or (str(err).strip().splitlines() or [type(err).__name__])[0]
    return DrillError(f"restore into {database} failed: ERROR: {message}")


def _entry_type(line: bytes) -> bytes | None:
    """The type of the TOC entry a header line names (``-- Name: x; Type: INDEX; ...``), else None."""
    if not line.startswith(b"-- "):
        return None
    match = _HEADER.match(line.rstrip(b"\n"))
    return match[1] if match else None


def _write(tool: Tool, line: bytes) -> None:
    """Hand a line to a psql; one that stopped reading (it failed) ends the feeding (``_Stopped``)."""
    assert tool.proc.stdin is not None
    try:
        tool.proc.stdin.write(line)
    except (BrokenPipeError, ValueError):
        raise _Stopped from None
