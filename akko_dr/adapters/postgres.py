"""PostgreSQL adapter: psycopg for SQL, pg_dump and psql for dumps and restores."""

from __future__ import annotations

import gzip
import re
import shutil
import subprocess
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql as q

from akko_dr.adapters.pg_fingerprint import PgFingerprinter, newest_pg_dump
from akko_dr.adapters.pg_sections import SectionedRestore
from akko_dr.adapters.pg_tools import Tool
from akko_dr.dump_content import DumpContent, scan_listing
from akko_dr.dumpstream import ARCHIVE_MAGIC, gzip_to
from akko_dr.errors import DrillError, TargetUnavailable, UnreadableDump
from akko_dr.ports import CANARY_TABLE, Catalog, DatabaseFingerprint, Fingerprint


def redact(dsn: str) -> str:
    """A DSN without its password, safe for logs and reports."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


class PostgresDatabase:
    """A PostgreSQL server reached through a DSN template (``{db}`` or path = database)."""

    def __init__(self, dsn: str, bin_dir: Path | None = None, admin_db: str = "postgres") -> None:
        self._dsn = dsn
        self._bin = bin_dir
        self._admin = admin_db
        self.fingerprints = PgFingerprinter(self._connect, self.dsn,
                                            self._tool("pg_dump") if bin_dir else newest_pg_dump())

    def __repr__(self) -> str:
        return f"PostgresDatabase({redact(self._dsn)})"

    @property
    def admin_dsn(self) -> str:
        """The DSN of the server's admin database (where the harness keeps its run lock)."""
        return self.dsn(self._admin)

    def dsn(self, name: str) -> str:
        """The URI of database ``name`` on this server (the name percent-encoded: any name is safe)."""
        parts = urlsplit(self._dsn)
        return urlunsplit(parts._replace(path=f"/{quote(name, safe='')}"))

    def _tool(self, name: str) -> str:
        return str(self._bin / name) if self._bin else shutil.which(name) or name

    def _connect(self, name: str, autocommit: bool = True) -> psycopg.Connection:
        try:
            return psycopg.connect(self.dsn(name), autocommit=autocommit, connect_timeout=5)
        except psycopg.OperationalError as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            if "too many clients" in first:
                where = redact(self.dsn(name))
                raise TargetUnavailable(f"PostgreSQL connection limit reached ({where}): the server refuses "
                                        "new connections (too many clients already)") from None
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
        """Row count and row-hash sum of every table, and the populated materialized views (one snapshot)."""
        return self.fingerprints.take(name, catalog=False).tables

    def catalog(self, name: str) -> Catalog:
        """Schema objects, privileges, owners, sequence positions and large objects of ``name``."""
        return self.fingerprints.take(name, tables=False).catalog

    def latest_canary(self, name: str) -> datetime | None:
        """The newest canary row of ``name``; None when it has none, or no canary table at all (a
        database no canary writer serves)."""
        with self._connect(name) as conn:
            if conn.execute("SELECT to_regclass(%s)", (CANARY_TABLE,)).fetchone()[0] is None:
                return None
            return conn.execute(q.SQL("SELECT max(written_at) FROM {}").format(
                q.Identifier(CANARY_TABLE))).fetchone()[0]

    def dump(self, name: str, out: Path | BinaryIO, fmt: str = "plain") -> DatabaseFingerprint:
        """Write a dump of ``name`` to ``out`` (privileges and owners kept) and return the fingerprint of
        the same snapshot, computed while pg_dump runs.

        ``plain``: SQL gzipped by ISA-L on every core (pg_dump's own zlib is one thread), to a file or a
        writer; ``custom``: pg_dump's archive in a file, each table compressed by pg_dump itself,
        restorable in parallel."""
        with self._connect(name, autocommit=False) as conn:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            snapshot = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
            pending = self.fingerprints.begin(name, snapshot)  # alongside pg_dump, same snapshot
            cmd = [self._tool("pg_dump"), f"--snapshot={snapshot}", "-d", self.dsn(name)]
            if fmt == "custom":
                cmd += ["--format=custom", f"--compress={ARCHIVE_COMPRESSION}", "-f", str(out)]
            with Tool(cmd, stdout=fmt != "custom") as tool:
                if fmt != "custom":
                    tool.consume_stdout(lambda stdout: gzip_to(stdout, out))
                fingerprint = pending.result()
                if tool.finish() != 0:
                    raise DrillError(f"pg_dump of {name} failed: {_last_line(tool.stderr)}")
            conn.rollback()
        return fingerprint

    def load(self, name: str, dump: Path | BinaryIO, jobs: int = 1) -> None:
        """Restore a dump into ``name``, stopping at the first error: a custom-format archive through
        ``pg_restore -j jobs``; a file of plain SQL through psql in one transaction; a stream of plain SQL
        the same way with one job, section by section with several (each table's rows over ``jobs``
        connections: akko_dr.adapters.pg_sections)."""
        if isinstance(dump, Path) and is_archive(dump):
            cmd = [self._tool("pg_restore"), "--exit-on-error", f"--jobs={max(jobs, 1)}",
                   "-d", self.dsn(name), str(dump)]
            self._restore(name, cmd, None, jobs, archive=True)
            return
        if not isinstance(dump, Path) and jobs > 1:
            SectionedRestore(name, lambda: Tool(self._psql(name, "-"), stdin=True, env=restore_env(jobs)),
                             lambda tool, code: _raise_for(name, tool, code),
                             lambda: self._connect(name), jobs).run(dump)
            return
        cmd = self._psql(name, str(dump) if isinstance(dump, Path) else "-")
        self._restore(name, cmd, None if isinstance(dump, Path) else dump, jobs)

    def archive_content(self, archive: Path) -> DumpContent | None:
        """What a custom-format archive holds, from ``pg_restore --list`` (no server involved). None when no
        local pg_restore can read its format (none installed, or the archive is of a newer format): the
        restore itself decides then. An archive pg_restore cannot read otherwise raises why, in one line."""
        tool = self._tool("pg_restore")
        if shutil.which(tool) is None:
            return None
        proc = subprocess.run([tool, "--list", str(archive)], capture_output=True, text=True,
                              errors="replace")
        if proc.returncode == 0:
            return scan_listing(proc.stdout)
        line = _last_line(proc.stderr)
        if _NEWER_FORMAT.search(line):
            return None
        raise DrillError(f"is corrupt: pg_restore cannot read it ({line})")

    def _psql(self, name: str, source: str) -> list[str]:
        """psql replaying ``source`` (a file, or ``-``: stdin) into ``name`` in one transaction."""
        return [self._tool("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction",
                "-d", self.dsn(name), "-f", source]

    def _restore(self, name: str, cmd: list[str], stream: BinaryIO | None, jobs: int,
                 archive: bool = False) -> None:
        with Tool(cmd, stdin=stream is not None, env=restore_env(jobs)) as tool:
            if stream is not None:
                tool.feed(stream)
            _raise_for(name, tool, tool.finish(), archive)

    def dump_globals(self, out: Path) -> None:
        """Write the roles and tablespaces (``pg_dumpall --globals-only``), gzipped, to ``out``."""
        cmd = [self._tool("pg_dumpall"), "--globals-only", "-d", self.dsn(self._admin)]
        proc = subprocess.run(cmd, capture_output=True)
        if proc.returncode != 0:
            err = proc.stderr.decode(errors="replace")
            raise DrillError(f"pg_dumpall --globals-only failed: {_last_line(err)}")
        out.write_bytes(gzip.compress(proc.stdout, compresslevel=6))

    def load_globals(self, sql: Path) -> list[str]:
        """Replay a gzipped globals dump; roles that already exist are kept as they are (named in the
        returned notes); any other error refuses with the server's line (never the statement)."""
        cmd = [self._tool("psql"), "-X", "-q", "-d", self.dsn(self._admin)]
        proc = subprocess.run(cmd, input=gzip.decompress(sql.read_bytes()), capture_output=True)
        stderr = proc.stderr.decode(errors="replace")
        errors = [line.split("ERROR:", 1)[1].strip() for line in stderr.splitlines() if "ERROR:" in line]
        existing = [e for e in errors if e.startswith("role ") and e.endswith("already exists")]
        if proc.returncode != 0 or len(existing) < len(errors):
            other = [e for e in errors if e not in existing] or [_last_line(stderr)]
            raise DrillError(f"restoring the roles (globals) failed: {other[0]}")
        return existing


    def copy_database_settings(self, source: str, target: str) -> list[str]:
        """Give ``target`` the database-level owner, privileges (CONNECT, CREATE, TEMPORARY) and
        settings of ``source``, which a per-database dump does not hold; what was applied, one line each."""
        dst = q.Identifier(target)
        with self._connect(self._admin) as conn:
            owner, has_acl = conn.execute(_DB_OWNER, (source,)).fetchone()
            statements = [(f"owner {owner}",
                           q.SQL("ALTER DATABASE {} OWNER TO {}").format(dst, q.Identifier(owner)))]
            if has_acl:
                statements.append(("no default PUBLIC access",
                                   q.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(dst)))
                grants = conn.execute(_DB_GRANTS, (source,)).fetchall()
                statements += [(f"{privilege} to {grantee}", _grant(dst, grantee, privilege, grantable))
                               for grantee, privilege, grantable in grants]
            for (setting,) in conn.execute(_DB_SETTINGS, (source,)).fetchall():
                name, _, value = setting.partition("=")
                statements.append((f"setting {name}", q.SQL("ALTER DATABASE {} SET {} = {}").format(
                    dst, q.Identifier(name), q.Literal(value))))
            for _, statement in statements:
                conn.execute(statement)
        return [done for done, _ in statements]


_DB_OWNER = "SELECT pg_get_userbyid(datdba), datacl IS NOT NULL FROM pg_database WHERE datname = %s"
_DB_GRANTS = ("SELECT CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END, "
              "a.privilege_type, a.is_grantable FROM pg_database d, aclexplode(d.datacl) a "
              "WHERE d.datname = %s")
_DB_SETTINGS = ("SELECT unnest(s.setconfig) FROM pg_db_role_setting s JOIN pg_database d "
                "ON d.oid = s.setdatabase WHERE d.datname = %s AND s.setrole = 0")


def _grant(database: q.Identifier, grantee: str, privilege: str, grantable: bool) -> q.Composed:
    who = q.SQL("PUBLIC") if grantee == "PUBLIC" else q.Identifier(grantee)
    option = q.SQL(" WITH GRANT OPTION" if grantable else "")
    return q.SQL("GRANT {} ON DATABASE {} TO {}{}").format(q.SQL(privilege), database, who, option)


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


def _raise_for(name: str, tool: Tool, code: int, archive: bool = False) -> None:
    """Raise the one-line reason of a restoring tool that ended with ``code`` (nothing when 0); for
    ``archive`` (pg_restore), one it could not read on raises UnreadableDump."""
    if code == 0:
        return
    err = tool.stderr
    if any(sign in err for sign in _UNREACHABLE):
        line = next(line for line in err.splitlines() if any(s in line for s in _UNREACHABLE))
        raise TargetUnavailable(f"PostgreSQL unreachable during restore of {name}: "
                                f"{line.strip().removeprefix('psql: error: ')}")
    line = _last_line(err)
    if archive and _UNREADABLE.search(line):
        raise UnreadableDump(f"pg_restore cannot read it ({line})")
    raise DrillError(f"restore into {name} failed: {line}")


_NEWER_FORMAT = re.compile(r"unsupported version \(1\.\d+\)")  # format 1.x, newer than this pg_restore
# pg_restore's words for an archive it cannot read on (pg_backup_custom.c, compress_*.c, pg_backup_archiver.c)
_UNREADABLE = re.compile(r"could not read from input file|could not (?:un|de)compress|corrupt archive|"
                         r"could not find block ID|unexpected block ID|unrecognized data block type|"
                         r"unexpected end of file|error during file seek|magic string|"
                         r"unsupported version \((?!1\.)")  # 1.x: a format newer than this pg_restore
_UNREACHABLE = ("connection to server", "server closed the connection", "terminating connection",
                "Is the server running")


def _last_line(text: str) -> str:
    """The line of a tool's stderr that says what went wrong: its last error line, else its last line
    (psql follows an error with the statement and a caret)."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    errors = [line for line in lines if any(mark in line for mark in _ERROR_MARKS)]
    causes = [line for line in errors if not line.endswith(_CONSEQUENCES)]
    return (causes or errors or lines or ["no error output"])[-1]


_ERROR_MARKS = ("ERROR:", "FATAL:", "PANIC:", "error:")
_CONSEQUENCES = ("a worker process died unexpectedly",)  # pg_restore -j's leader, after a worker's own error


class CanaryTable:
    """The canary port on a PostgreSQL server: the newest row its canary writer committed.

    ``server`` gives the server in service now (a rebuilt platform has a new one)."""

    def __init__(self, server: Callable[[], PostgresDatabase]) -> None:
        self.server = server

    def newest_write(self, database: str) -> datetime | None:
        return self.server().latest_canary(database)
