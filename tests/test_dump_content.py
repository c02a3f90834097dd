"""An empty or schema-only "successful" dump is not counted as a backup (GitLab, 2017); a dump from a newer
server than the restore target is refused before the restore starts."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta

import pytest

from akko_dr.backup import dump_key
from akko_dr.checks.verification import Dump, judge_newest
from akko_dr.dump_content import emptiness, scan, too_new
from akko_dr.policy import load_policy

HEADER = b"--\n-- PostgreSQL database dump\n--\n\n-- Dumped from database version 18.6\n\nSET x = 0;\n"
SCHEMA = b"CREATE TABLE public.dashboards (\n    id integer NOT NULL\n);\n\n"
DATA = b"COPY public.dashboards (id) FROM stdin;\n1\n2\n\\.\n\n"
EMPTY_TABLE = b"COPY public.dashboards (id) FROM stdin;\n\\.\n\n"


@pytest.mark.parametrize(("sql", "problem"), [
    (HEADER + SCHEMA + DATA, None),
    (HEADER + SCHEMA + b"INSERT INTO public.dashboards VALUES (1);\n", None),
    (b"", "empty: k holds no table (0 bytes of SQL)"),
    (HEADER, f"empty: k holds no table ({len(HEADER)} bytes of SQL)"),
    (HEADER + SCHEMA, "schema only: k holds tables but no rows"),
    (HEADER + SCHEMA + EMPTY_TABLE, "schema only: k holds tables but no rows"),
])
def test_a_dump_counts_only_when_it_holds_a_table_with_rows(sql: bytes, problem: str | None) -> None:
    assert emptiness(scan(sql.splitlines(keepends=True)), "k") == problem


def test_a_dump_from_a_newer_server_is_refused_and_an_older_one_is_not() -> None:
    newer = scan((HEADER.replace(b"18.6", b"19.1") + SCHEMA + DATA).splitlines(keepends=True))
    assert too_new(newer, "k", "18.6") == ("backup k was dumped from PostgreSQL 19.1, newer than the restore "
                                           "target's 18.6: restore it on a server of version 19 or later")
    older = scan((HEADER.replace(b"18.6", b"16.4") + SCHEMA + DATA).splitlines(keepends=True))
    assert too_new(older, "k", "18.6 (Debian 18.6-1)") is None


class _Store:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def read(self, bucket: str, key: str) -> bytes:
        return self.body


@pytest.mark.parametrize(("sql", "problem"), [
    (b"", "empty: {key} holds no table"),
    (HEADER + SCHEMA, "schema only: {key} holds tables but no rows"),
    (HEADER + SCHEMA + DATA, None),
])
def test_the_freshness_check_does_not_count_an_empty_or_schema_only_dump(sql: bytes,
                                                                          problem: str | None) -> None:
    policy, now = load_policy(), datetime.now(UTC)
    taken = now - timedelta(minutes=5)
    key = dump_key(policy, "aden", taken)
    body = gzip.compress(sql)
    dump = Dump("aden", policy.storage.backups_bucket, key, len(body), taken.replace(microsecond=0), now)
    found, figures = judge_newest(policy, _Store(body), "aden", dump, now)
    if problem is None:
        assert found is None, found
    else:
        assert found is not None and found.startswith(problem.format(key=key)), found
    assert figures["key"] == key


def test_a_dump_that_is_not_gzip_is_named_unreadable() -> None:
    policy, now = load_policy(), datetime.now(UTC)
    key = dump_key(policy, "aden", now)
    dump = Dump("aden", policy.storage.backups_bucket, key, 9, now.replace(microsecond=0), now)
    assert judge_newest(policy, _Store(b"not gzip!"), "aden", dump, now)[0] == (
        f"unreadable: {key} is not a whole gzip file")
