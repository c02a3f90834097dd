"""Backups that restore cleanly but lose something: real dumps rewritten entry by entry.

A plain-SQL dump is a list of entries, each under pg_dump's header (``-- Name: x; Type: y; ...``).
Dropping entries gives a dump that replays without an error yet lacks every GRANT, a view, a
function, a trigger, sequence positions, large objects, a table's rows, or every row (schema-only).
The rewritten dump is uploaded as the newest backup, with the original's manifest (what the backup
should have held) or without one (as AKKO's own CronJobs write them).
"""

from __future__ import annotations

import gzip
import hashlib
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

from akko_dr.backup import dump_key, latest_backup
from akko_dr.ports import BackupObject
from akko_dr.targets import Target

Entry = tuple[str, str, str]  # (type, name, text)
_HEADER = re.compile(r"^--\n-- (?:Data for )?Name: (.*?); Type: (.*?); Schema: .*?; Owner: .*?\n--\n", re.M)
_TRAILER = "--\n-- PostgreSQL database dump complete"
DATA_TYPES = ("TABLE DATA", "SEQUENCE SET", "BLOBS", "BLOB METADATA", "MATERIALIZED VIEW DATA")


def entries(sql: str) -> tuple[str, list[Entry], str]:
    """A dump as its preamble, its entries and its trailer."""
    body, sep, trailer = sql.partition(_TRAILER)
    heads = list(_HEADER.finditer(body))
    if not heads:
        return sql, [], ""
    out = [(h[2], h[1], body[h.start(): heads[i + 1].start() if i + 1 < len(heads) else len(body)])
           for i, h in enumerate(heads)]
    return body[: heads[0].start()], out, sep + trailer


def without(sql: str, drop: Callable[[str, str], bool]) -> str:
    """The dump without the entries ``drop(type, name)`` selects."""
    head, items, tail = entries(sql)
    return head + "".join(text for kind, name, text in items if not drop(kind, name)) + tail


Rewrite = Callable[[str], str]  # a dump's text -> the text of a dump that lost something
_OWNER_LINE = re.compile(r"^ALTER .+ OWNER TO .+;\n", re.M)


def losing(drop: Callable[[str, str], bool]) -> Rewrite:
    """A rewrite dropping the entries ``drop(type, name)`` selects."""
    return lambda sql: without(sql, drop)


def named(kind: str, name: str) -> Rewrite:
    """Lose one object: the entry of that type and name (e.g. ``VIEW``, ``published_dashboards``), and
    the grants and comment on it, which a dump without the object could not replay."""
    def drop(k: str, n: str) -> bool:
        itself = k == kind and (n == name or n.startswith(name + "("))
        return itself or (k in ("ACL", "COMMENT") and n.partition(" ")[2] in (name, f"{name}()"))
    return losing(drop)


LOSSES: dict[str, Rewrite] = {
    "every GRANT": losing(lambda kind, name: kind in ("ACL", "DEFAULT ACL")),
    "every owner": lambda sql: _OWNER_LINE.sub("", sql),  # as pg_dump --no-owner writes it
    "sequence positions": losing(lambda kind, name: kind == "SEQUENCE SET"),
    "large objects": losing(lambda kind, name: kind in ("BLOBS", "BLOB METADATA")),
    "every row (schema-only)": losing(lambda kind, name: kind in DATA_TYPES),
}


def upload_losing(target: Target, database: str, rewrite: Rewrite, manifest: bool) -> BackupObject:
    """Re-upload the newest dump of ``database`` rewritten, one second newer, with the original's
    manifest (its sha256 updated to the new bytes) or without a manifest."""
    newest = latest_backup(target.policy, target.store, database)
    sql = gzip.decompress(target.store.read(newest.bucket, newest.key)).decode()
    body = gzip.compress(rewrite(sql).encode())
    key = dump_key(target.policy, database, newest.taken_at + timedelta(seconds=1))
    target.store.put_bytes(newest.bucket, key, body)
    rewritten = replace(newest, key=key, taken_at=newest.taken_at + timedelta(seconds=1), size=len(body),
                        sha256="")
    if manifest:
        rewritten.sha256 = hashlib.sha256(body).hexdigest()
        target.store.put_bytes(newest.bucket, rewritten.manifest_key, rewritten.manifest())
    return rewritten
