"""A database unlike AKKO's restores equal to its source by every path Drill 1 takes (issue 13): plain SQL
section by section over two connections, plain SQL through one psql, and a custom-format archive through
pg_restore -j2. Its schema holds what a COPY splitter or a fingerprint can trip on: partitions, generated
columns, large objects, quoted and non-ASCII names, rows holding tabs, backslashes and a lone ``\\.``,
a table without columns, inheritance, enums, domains, arrays, bytea, jsonb, unlogged tables, row-level
security, comments, a populated materialized view, and enums inside composites, domains, ranges and
arrays (whose values hash by OIDs a restore changes)."""

from __future__ import annotations

import gzip
import io
from collections.abc import Callable
from pathlib import Path

import pytest

from akko_dr.adapters import pg_sections
from akko_dr.fidelity import compare
from akko_dr.sandbox import Sandbox
from tests.test_dump_and_restore import finishes

SCHEMA = r"""
CREATE TYPE mood AS ENUM ('calm', 'tense', 'on fire');
CREATE DOMAIN positive AS integer CHECK (VALUE > 0);
CREATE TABLE events (id bigint, at date NOT NULL, body jsonb, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
CREATE TABLE events_2026 PARTITION OF events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
INSERT INTO events SELECT g, date '2025-06-01' + (g % 400), jsonb_build_object('n', g, 'tag', 'e' || g)
  FROM generate_series(1, 30000) g;
CREATE TABLE "Odd ""Name"" Ünïcode" ("tab	col" text, "Größe" positive, m mood, tags text[], raw bytea,
  total integer GENERATED ALWAYS AS ("Größe" * 2) STORED);
INSERT INTO "Odd ""Name"" Ünïcode" ("tab	col", "Größe", m, tags, raw)
  SELECT CASE g % 5 WHEN 0 THEN E'\\.' WHEN 1 THEN E'a\tb\\c\nnext' WHEN 2 THEN '' WHEN 3 THEN NULL
         ELSE repeat('ü', g % 50) END,
         g, (ARRAY['calm', 'tense', 'on fire']::mood[])[1 + g % 3], ARRAY['x', NULL, E'q"\\'],
         decode(md5(g::text), 'hex')
  FROM generate_series(1, 20000) g;
CREATE TYPE pair AS (m mood, n int);
CREATE DOMAIN chosen_mood AS mood;
CREATE TYPE mood_span AS RANGE (subtype = mood);
CREATE TABLE moods (p pair, c chosen_mood, span mood_span, seen mood[], rels regclass[]);
INSERT INTO moods SELECT ROW('tense', g)::pair, 'calm', mood_span('calm', 'on fire'),
  ARRAY['on fire']::mood[], ARRAY['events'::regclass] FROM generate_series(1, 100) g;
CREATE TABLE shapes (at point, doc json);
INSERT INTO shapes SELECT point(g, -g), json_build_object('g', g) FROM generate_series(1, 500) g;
CREATE TABLE no_columns ();
INSERT INTO no_columns SELECT FROM generate_series(1, 7);
CREATE TABLE parent (id int, note text);
CREATE TABLE child (extra int) INHERITS (parent);
INSERT INTO parent VALUES (1, 'parent row');
INSERT INTO child VALUES (2, 'child row', 3);
CREATE UNLOGGED TABLE scratchpad (k text PRIMARY KEY, v text);
INSERT INTO scratchpad SELECT 'k' || g, repeat('v', g % 300) FROM generate_series(1, 5000) g;
CREATE TABLE guarded (owner_name text, secret text);
ALTER TABLE guarded ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON guarded USING (owner_name = current_user);
INSERT INTO guarded VALUES ('postgres', 'visible to its owner');
COMMENT ON TABLE guarded IS 'rows behind a policy';
CREATE MATERIALIZED VIEW event_days AS SELECT at, count(*) AS n FROM events GROUP BY at;
SELECT lo_from_bytea(0, convert_to(repeat('large object ', 1000), 'UTF8'));
"""


@pytest.fixture(scope="module")
def awkward(sandbox: Sandbox) -> str:
    name = "awkward_source"
    sandbox.db.drop(name)
    sandbox.db.create(name)
    sandbox.db.execute(name, SCHEMA)
    yield name
    sandbox.db.drop(name)


def _plain(sandbox: Sandbox, source: str, into: str, tmp_path: Path, jobs: int) -> None:
    sandbox.db.load(into, io.BytesIO(gzip.decompress((tmp_path / "dump.sql.gz").read_bytes())), jobs)


def _custom(sandbox: Sandbox, source: str, into: str, tmp_path: Path, jobs: int) -> None:
    sandbox.db.load(into, tmp_path / "dump.custom", jobs)


@pytest.mark.parametrize("fmt, load, jobs", [
    ("plain", _plain, 2), ("plain", _plain, 1), ("custom", _custom, 2),
], ids=["plain, section by section on two connections", "plain, one psql", "custom, pg_restore -j2"])
def test_an_awkward_database_restores_equal_to_its_source(
        sandbox: Sandbox, awkward: str, scratch: Callable[[str], str], tmp_path: Path, monkeypatch,
        fmt: str, load: Callable[..., None], jobs: int) -> None:
    monkeypatch.setattr(pg_sections, "BLOCK", 16 << 10)  # many blocks per table, on both connections
    out = tmp_path / ("dump.sql.gz" if fmt == "plain" else "dump.custom")
    source = sandbox.db.dump(awkward, out, fmt)
    name = scratch("awkward")
    sandbox.db.create(name)
    finishes(lambda: load(sandbox, awkward, name, tmp_path, jobs))
    restored = sandbox.db.fingerprint(name)
    assert compare(source.tables, source.catalog, restored, sandbox.db.catalog(name)) == []
    assert {"events_2025", "no_columns", "child", "guarded", "event_days", "moods"} <= set(restored)
    assert restored["moods"]["hashed"] == "as text" and "hashed" not in restored["events_2025"]
