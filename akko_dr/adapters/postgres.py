"""PostgreSQL adapter: psycopg for SQL, pg_dump and psql for dumps and restores."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql as q

from akko_dr.adapters.pg_tools import Tool
from akko_dr.dumpstream import ARCHIVE_MAGIC, gzip_to
from akko_dr.errors import DrillError, TargetUnavailable
from akko_dr.ports import CANARY_TABLE, Fingerprint

_TABLES = """
SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1, 2
"""


def redact(dsn: str) -> str:
    """A DSN without its password, safe for logs and reports."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


def fingerprint_with(conn: psycopg.Connection) -> Fingerprint:
    """Row count and content checksum of every user table, in the connection's snapshot."""
    out: Fingerprint = {}
    for schema, table in conn.execute(_TABLES).fetchall():
        ident = q.Identifier(schema, table)
        rows, checksum = conn.execute(q.SQL(
            "SELECT count(*), coalesce(md5(string_agg(md5(t::text), '' ORDER BY md5(t::text))), '')"
            " FROM {} t").format(ident)).fetchone()
        name = table if schema == "public" else f"{schema}.{table}"
        out[name] = {"rows": rows, "checksum": checksum}
    return out


class PostgresDatabase:
    """A PostgreSQL server reached through a DSN template (``{db}`` or path = database)."""

    def __init__(self, dsn: str, bin_dir: Path | None = None, admin_db: str = "postgres") -> None:
        self._dsn = dsn
        self._bin = bin_dir
        self._admin = admin_db

    def __repr__(self) -> str:
        return f"PostgresDatabase({redact(self._dsn)})"

    def dsn(self, name: str) -> str:
        parts = urlsplit(self._dsn)
        return urlunsplit(parts._replace(path=f"/{name}"))

    def _tool(self, name: str) -> str:
        return str(self._bin / name) if self._bin else shutil.which(name) or name

    def _connect(self, name: str, autocommit: bool = True) -> psycopg.Connection:
        try:
            return psycopg.connect(self.dsn(name), autocommit=autocommit, connect_timeout=5)
        except psycopg.OperationalError as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise TargetUnavailable(f"PostgreSQL unreachable ({redact(self.dsn(name))}): {first}") from None

    def _admin_execute(self, statement: q.Composable) -> None:
        with self._connect(self._admin) as conn:
            conn.execute(statement)

    def server_version(self) -> str:
        with self._connect(self._admin) as conn:
            return conn.execute("SHOW server_version").fetchone()[0]

    def databases(self) -> list[str]:
        with self._connect(self._admin) as conn:
            rows = conn.execute("SELECT datname FROM pg_database WHERE NOT datistemplate ORDER BY 1")
            return [r[0] for r in rows.fetchall()]

    def exists(self, name: str) -> bool:
        return name in self.databases()

    def create(self, name: str) -> None:
        self._admin_execute(q.SQL("CREATE DATABASE {}").format(q.Identifier(name)))

    def drop(self, name: str) -> None:
        self._admin_execute(q.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(q.Identifier(name)))

    def rename(self, old: str, new: str) -> None:
        """Rename a database, closing any session still connected to it."""
        with self._connect(self._admin) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                         " WHERE datname = %s AND pid <> pg_backend_pid()", (old,))
            conn.execute(q.SQL("ALTER DATABASE {} RENAME TO {}").format(
                q.Identifier(old), q.Identifier(new)))

    def execute(self, name: str, sql: str) -> None:
        with self._connect(name) as conn:
            conn.execute(sql)

    def fingerprint(self, name: str) -> Fingerprint:
        with self._connect(name) as conn:
            return fingerprint_with(conn)

    def latest_canary(self, name: str) -> datetime | None:
        """The newest canary row of ``name``; None when it has none, or no canary table at all (a
        database no canary writer serves)."""
        with self._connect(name) as conn:
            if conn.execute("SELECT to_regclass(%s)", (CANARY_TABLE,)).fetchone()[0] is None:
                return None
            return conn.execute(q.SQL("SELECT max(written_at) FROM {}").format(
                q.Identifier(CANARY_TABLE))).fetchone()[0]

    def dump(self, name: str, out: Path | BinaryIO, fmt: str = "plain") -> Fingerprint:
        """Write a dump of ``name`` to ``out`` (privileges and owners kept) and return the fingerprint of
        the same snapshot, computed while pg_dump runs.

        ``plain``: SQL gzipped by ISA-L on every core (pg_dump's own zlib is one thread), to a file or a
        writer; ``custom``: pg_dump's archive in a file, each table compressed by pg_dump itself,
        restorable in parallel."""
        with self._connect(name, autocommit=False) as conn:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
            cmd = [self._tool("pg_dump"), f"--snapshot={snapshot}", "-d", self.dsn(name)]
            if fmt == "custom":
                cmd += ["--format=custom", f"--compress={ARCHIVE_COMPRESSION}", "-f", str(out)]
            with Tool(cmd, stdout=fmt != "custom") as tool:
                if fmt != "custom":
                    tool.consume_stdout(lambda stdout: gzip_to(stdout, out))
                fingerprint = fingerprint_with(conn)
                if tool.finish() != 0:
                    raise DrillError(f"pg_dump of {name} failed: {_last_line(tool.stderr)}")
            conn.rollback()
        return fingerprint

    def load(self, name: str, dump: Path | BinaryIO, jobs: int = 1) -> None:
        """Restore a dump into ``name``, stopping at the first error: a stream or file of plain SQL
        through psql in one transaction, a custom-format archive through ``pg_restore -j jobs``."""
        if isinstance(dump, Path) and is_archive(dump):
            cmd = [self._tool("pg_restore"), "--exit-on-error", f"--jobs={max(jobs, 1)}",
                   "-d", self.dsn(name), str(dump)]
            self._restore(name, cmd, None, jobs)
            return
        cmd = [self._tool("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction",
               "-d", self.dsn(name), "-f", str(dump) if isinstance(dump, Path) else "-"]
        self._restore(name, cmd, None if isinstance(dump, Path) else dump, jobs)

    def _restore(self, name: str, cmd: list[str], stream: BinaryIO | None, jobs: int) -> None:
        with Tool(cmd, stdin=stream is not None, env=restore_env(jobs)) as tool:
            if stream is not None:
                tool.feed(stream)
            if tool.finish() == 0:
                return
        err = tool.stderr
        if any(sign in err for sign in _UNREACHABLE):
            line = next(line for line in err.splitlines() if any(s in line for s in _UNREACHABLE))
            raise TargetUnavailable(f"PostgreSQL unreachable during restore of {name}: "
                                    f"{line.strip().removeprefix('psql: error: ')}")
        raise DrillError(f"restore into {name} failed: {_last_line(err)}")


def restore_env(jobs: int) -> dict[str, str]:
    """Session settings of a restore given ``jobs`` cores: index builds get memory, and parallel workers
    for the cores beyond their own (none when several restores share the cores)."""
    workers = max(jobs - 1, 0)
    return {"PGOPTIONS": f"-c maintenance_work_mem=256MB -c max_parallel_maintenance_workers={workers}"}


ARCHIVE_COMPRESSION = "gzip:1"  # custom format: pg_dump compresses each table itself (zlib level 1)


def is_archive(path: Path) -> bool:
    """Whether ``path`` is a pg_dump custom-format archive (or a directory-format dump)."""
    if path.is_dir():
        return (path / "toc.dat").exists()
    with open(path, "rb") as fh:
        return fh.read(len(ARCHIVE_MAGIC)) == ARCHIVE_MAGIC


_UNREACHABLE = ("connection to server", "server closed the connection", "terminating connection",
                "Is the server running")


def _last_line(text: str) -> str:
    """The line of a tool's stderr that says what went wrong: its last error line, else its last line
    (psql follows an error with the statement and a caret)."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    errors = [line for line in lines if any(mark in line for mark in _ERROR_MARKS)]
    return (errors or lines or ["no error output"])[-1]


_ERROR_MARKS = ("ERROR:", "FATAL:", "PANIC:", "error:")


class CanaryTable:
    """The canary port on a PostgreSQL server: the newest row its canary writer committed.

    ``server`` gives the server in service now (a rebuilt platform has a new one)."""

    def __init__(self, server: Callable[[], PostgresDatabase]) -> None:
        self.server = server

    def newest_write(self, database: str) -> datetime | None:
        return self.server().latest_canary(database)
