"""A plain dump restored section by section, each table's rows over several connections (issue 13):
the rows of a COPY block are cut only at line ends whatever the block size (property test, no server);
on the sandbox, a real dump restores equal to its source with a table loaded by two connections, and a
bad row, a gzip error mid-table, a failing statement and a server at its connection limit end as a
single psql's restore would, without hanging."""

from __future__ import annotations

import gzip
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from akko_dr.adapters import pg_sections
from akko_dr.adapters.pg_sections import SectionedRestore, _Rows
from akko_dr.errors import DrillError, TargetUnavailable
from akko_dr.fidelity import compare
from akko_dr.ports import DatabaseFingerprint
from akko_dr.sandbox import Sandbox
from tests.test_dump_and_restore import finishes

DB = "superset_metadata"


class Trickle(io.RawIOBase):
    """A reader handing out at most ``step`` bytes at a time."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data, self._step = data, step

    def read(self, n: int = -1) -> bytes:
        out, self._data = self._data[:min(n, self._step)], self._data[min(n, self._step):]
        return out


ROW = st.text(alphabet="ab\\.\t 1", max_size=6).map(lambda s: s.encode().replace(b"\\", b"\\\\"))


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(ROW, max_size=30), step=st.integers(1, 9), after=st.lists(ROW, max_size=3))
def test_a_copy_block_is_cut_at_line_ends_and_ends_at_its_end_of_data_line(
        rows: list[bytes], step: int, after: list[bytes]) -> None:
    data = b"".join(r + b"\n" for r in rows)
    tail = b"".join(b"-- " + r + b"\n" for r in after)
    reader = _Rows(Trickle(data + b"\\.\n" + tail, step))
    pg_sections.BLOCK, block = step, pg_sections.BLOCK
    try:
        blocks = list(reader.copy_blocks())
        rest = b"".join(reader)
    finally:
        pg_sections.BLOCK = block
    assert b"".join(blocks) == data and all(bytes(b).endswith(b"\n") for b in blocks)
    assert rest == tail


def test_rows_without_an_end_of_data_line_are_refused() -> None:
    reader = _Rows(Trickle(b"1\n2\n", 3))
    with pytest.raises(DrillError, match="ends inside the rows of a table"):
        list(reader.copy_blocks())


@dataclass
class Dump:
    sql: bytes
    source: DatabaseFingerprint


@pytest.fixture
def dump(sandbox: Sandbox, tmp_path: Path) -> Dump:
    """A real plain dump of superset_metadata, its logs table made many blocks long, and the fingerprint
    of the snapshot it holds."""
    sandbox.db.execute(DB, "INSERT INTO logs (action, json) SELECT 'sections', repeat('x', 200) "
                           "FROM generate_series(1, 20000)")
    try:
        source = sandbox.db.dump(DB, tmp_path / "dump.sql.gz")
    finally:
        sandbox.db.execute(DB, "DELETE FROM logs WHERE action = 'sections'")
    return Dump(gzip.decompress((tmp_path / "dump.sql.gz").read_bytes()), source)


def _restore(sandbox: Sandbox, name: str, sql: bytes, jobs: int = 2) -> None:
    sandbox.db.create(name)
    finishes(lambda: sandbox.db.load(name, io.BytesIO(sql), jobs))


def test_a_table_loaded_by_two_connections_equals_its_source(sandbox: Sandbox, scratch, dump: Dump,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pg_sections, "BLOCK", 64 << 10)
    loaders: list[object] = []
    real = SectionedRestore._loader
    monkeypatch.setattr(SectionedRestore, "_loader",
                        lambda self, n: loaders.append(n) or real(self, n))
    name = scratch("sections")
    _restore(sandbox, name, dump.sql)
    assert set(loaders) == {0, 1}
    assert compare(dump.source.tables, dump.source.catalog, sandbox.db.fingerprint(name),
                   sandbox.db.catalog(name)) == []


def _broken(dump: Dump, change: Callable[[bytes], bytes]) -> bytes:
    head, sep, rows = dump.partition(b"COPY public.logs ")
    return head + sep + change(rows)


@pytest.mark.parametrize("what, change, says", [
    ("a bad row", lambda rows: rows.replace(b"\n", b"\nnot-a-number\tx\n", 1), "ERROR: invalid input syntax"),
    ("a failing statement", lambda rows: rows.replace(b"\\.\n", b"\\.\nSELECT * FROM no_such_table;\n", 1),
     'relation "no_such_table" does not exist'),
])
def test_a_failure_in_the_data_ends_the_restore_with_the_server_s_reason(
        sandbox: Sandbox, scratch, dump: Dump, what: str, change: Callable[[bytes], bytes],
        says: str) -> None:
    name = scratch("broken")
    with pytest.raises(DrillError, match=says) as err:
        _restore(sandbox, name, _broken(dump.sql, change))
    assert "\n" not in str(err.value), what


class Failing(io.RawIOBase):
    """A stream failing, as a damaged gzip does, after ``good`` bytes."""

    def __init__(self, data: bytes, good: int) -> None:
        self._data, self._good = data, good

    def read(self, n: int = -1) -> bytes:
        if not self._good:
            raise DrillError("backup x is corrupt or truncated: invalid block type")
        out = self._data[:min(n, self._good)]
        self._data, self._good = self._data[len(out):], self._good - len(out)
        return out


def test_a_stream_failing_mid_table_keeps_its_own_reason(sandbox: Sandbox, scratch, dump: Dump,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pg_sections, "BLOCK", 64 << 10)
    name = scratch("failing")
    sandbox.db.create(name)
    mid_logs = dump.sql.index(b"COPY public.logs ") + len(dump.sql) // 8
    assert mid_logs < len(dump.sql) - 100_000
    with pytest.raises(DrillError, match="corrupt or truncated: invalid block type"):
        finishes(lambda: sandbox.db.load(name, Failing(dump.sql, mid_logs), 2))


def test_a_server_with_room_for_one_more_connection_loads_with_one(sandbox: Sandbox, scratch, dump: Dump,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pg_sections, "BLOCK", 64 << 10)
    real, opened = sandbox.db._connect, []

    def limited(database: str, autocommit: bool = True) -> psycopg.Connection:
        if database == name:
            if opened:
                raise TargetUnavailable("PostgreSQL connection limit reached (test): too many clients")
            opened.append(database)
        return real(database, autocommit)
    name = scratch("limited")
    monkeypatch.setattr(sandbox.db, "_connect", limited)
    _restore(sandbox, name, dump.sql)
    monkeypatch.undo()
    assert opened == [name]
    assert sandbox.db.fingerprint(name) == dump.source.tables


def test_a_dump_of_the_schema_alone_restores_through_one_psql(sandbox: Sandbox, scratch, dump: Dump) -> None:
    schema = dump.sql.split(b"\n--\n-- Data for Name:")[0] + b"\n"
    name = scratch("schema")
    _restore(sandbox, name, schema)
    assert sandbox.db.fingerprint(name)["logs"]["rows"] == 0


def test_rows_bracketed_by_statements_of_their_own_stay_in_order_and_never_stall(
        sandbox: Sandbox, scratch, dump: Dump, monkeypatch: pytest.MonkeyPatch) -> None:
    """pg_dump --disable-triggers brackets a table's rows with ALTER TABLE: those rows stay in the second
    psql, after the statement (a trigger refusing every row proves the order), and its lock never stalls
    another connection's COPY."""
    monkeypatch.setattr(pg_sections, "BLOCK", 64 << 10)
    schema, header, data = dump.sql.partition(b"--\n-- Data for Name:")
    head, copy, rest = (header + data).partition(b"COPY public.logs ")
    rows, end, tail = rest.partition(b"\n\\.\n")
    sql = (schema + REFUSING_TRIGGER + head + b"ALTER TABLE public.logs DISABLE TRIGGER ALL;\n\n" + copy
           + rows + end + b"ALTER TABLE public.logs ENABLE TRIGGER ALL;\n" + tail)
    name = scratch("bracketed")
    _restore(sandbox, name, sql)
    assert sandbox.db.fingerprint(name) == dump.source.tables


REFUSING_TRIGGER = (b"CREATE FUNCTION public.refuse_rows() RETURNS trigger LANGUAGE plpgsql AS "
                    b"$$BEGIN RAISE EXCEPTION 'a trigger fired during the restore'; END$$;\n"
                    b"CREATE TRIGGER refuse BEFORE INSERT ON public.logs FOR EACH ROW "
                    b"EXECUTE FUNCTION public.refuse_rows();\n\n")


def test_a_bug_in_a_loader_is_raised_as_a_harness_error_and_never_hangs(
        sandbox: Sandbox, scratch, dump: Dump, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: object, statement: object) -> None:
        raise RuntimeError("a bug in the loader")
    monkeypatch.setattr(pg_sections, "BLOCK", 64 << 10)
    monkeypatch.setattr(pg_sections._Loader, "_load", broken)
    with pytest.raises(RuntimeError, match="a bug in the loader"):
        _restore(sandbox, scratch("bug"), dump.sql)
