"""What a dump holds, read from its own text (a custom archive: from its table of contents): the server
it came from, its tables and rows.

A "successful" job can upload a dump that holds nothing (GitLab, 2017): a backup is counted only when it
holds at least one table with rows, and a restore is refused before it starts when the dump cannot
hold the data or comes from a newer server than the restore target.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_DUMPED_FROM = re.compile(rb"^-- Dumped from database version (\d+)(?:\.(\d+))?")
_TABLE = re.compile(rb"^CREATE (?:UNLOGGED )?TABLE ")
_TABLE_ANYWHERE = re.compile(rb"^CREATE (?:UNLOGGED )?TABLE ", re.M)
_COPY = re.compile(rb"^COPY \S.* FROM stdin;")
_INSERT = re.compile(rb"^INSERT INTO ")
_LISTED_FROM = re.compile(r"^;\s+Dumped from database version: (\d+)(?:\.(\d+))?", re.M)
_LISTED_TABLE = re.compile(r"^\d+; \d+ \d+ TABLE ", re.M)
_LISTED_DATA = re.compile(r"^\d+; \d+ \d+ TABLE DATA ", re.M)


@dataclass(frozen=True)
class DumpContent:
    """What the scan found: the source server's version, whether there is a table and a row."""

    server: str | None  # "18.6" from the dump's header, None when the header is missing
    has_table: bool
    has_rows: bool
    sql_bytes: int  # how much SQL was scanned (all of it when no row was found)

    @property
    def server_major(self) -> int | None:
        return int(self.server.split(".")[0]) if self.server else None


def has_table(sql: bytes) -> bool:
    """Whether some line of ``sql`` starts a table definition."""
    return _TABLE_ANYWHERE.search(sql) is not None


def scan(lines: Iterable[bytes]) -> DumpContent:
    """Scan a dump's lines until the first data row (tables come before data in a plain dump)."""
    server, table, size, in_copy = None, False, 0, False
    for line in lines:
        size += len(line)
        if in_copy:
            if line.rstrip(b"\r\n") != b"\\.":
                return DumpContent(server, table, True, size)
            in_copy = False
        elif server is None and (m := _DUMPED_FROM.match(line)):
            server = m[1].decode() + (f".{m[2].decode()}" if m[2] else "")
        elif _TABLE.match(line):
            table = True
        elif _COPY.match(line):
            in_copy = True
        elif _INSERT.match(line):
            return DumpContent(server, table, True, size)
    return DumpContent(server, table, False, size)


def scan_listing(listing: str) -> DumpContent:
    """What a custom-format archive holds, from its table of contents (``pg_restore --list``): the source
    server, whether it defines a table, whether it carries table data (``sql_bytes``: the listing's size)."""
    server = None
    if m := _LISTED_FROM.search(listing):
        server = m[1] + (f".{m[2]}" if m[2] else "")
    return DumpContent(server, _LISTED_TABLE.search(listing) is not None,
                       _LISTED_DATA.search(listing) is not None, len(listing))


def emptiness(content: DumpContent, key: str) -> str | None:
    """Why a dump does not count as a backup (None when it holds a table with rows)."""
    if not content.has_table:
        return f"empty: {key} holds no table ({content.sql_bytes} bytes of SQL)"
    if not content.has_rows:
        return f"schema only: {key} holds tables but no rows"
    return None


def too_new(content: DumpContent, key: str, target_version: str) -> str | None:
    """Why a dump cannot be restored on a server of ``target_version`` (None when it can)."""
    target_major = int(re.match(r"\d+", target_version)[0])
    if content.server_major is not None and content.server_major > target_major:
        return (f"backup {key} was dumped from PostgreSQL {content.server}, newer than the restore target's "
                f"{target_version}: restore it on a server of version {content.server_major} or later")
    return None
