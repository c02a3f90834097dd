"""Faults a drill must survive: bad backups, an unreachable store, a database lost mid-restore.

Each fault changes the real sandbox (objects in the bucket, the PostgreSQL server) or the target's
wiring; ``apply`` returns the target the drill should use, ``clear`` undoes what can be undone.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO

from akko_dr.adapters.postgres import PostgresDatabase
from akko_dr.adapters.s3 import S3ObjectStore
from akko_dr.backup import dump_key, latest_backup
from akko_dr.ports import BackupObject, Fault
from akko_dr.targets import Target


def _newer_key(target: Target, newest: BackupObject) -> str:
    return dump_key(target.policy, newest.database, newest.taken_at + timedelta(seconds=1))


def _upload_newer(target: Target, database: str, body: bytes, manifest: BackupObject | None) -> None:
    newest = latest_backup(target.policy, target.store, database)
    key = _newer_key(target, newest)
    target.store.put_bytes(newest.bucket, key, body)
    if manifest is not None:
        manifest.key = key
        target.store.put_bytes(newest.bucket, manifest.manifest_key, manifest.manifest())


def remove_backups(target: Target, database: str) -> Target:
    prefix = target.policy.storage.dump_prefix + database + "_"
    for obj in target.store.list(target.policy.storage.backups_bucket, prefix):
        target.store.delete(obj.bucket, obj.key)
    return target


def corrupt_backup(target: Target, database: str) -> Target:
    """A newer dump whose bytes were damaged after the manifest recorded its sha256."""
    newest = latest_backup(target.policy, target.store, database)
    body = bytearray(target.store.read(newest.bucket, newest.key))
    middle = len(body) // 2
    body[middle:middle + 16] = bytes(b ^ 0xFF for b in body[middle:middle + 16])
    _upload_newer(target, database, bytes(body), manifest=newest)
    return target


def truncate_backup(target: Target, database: str) -> Target:
    """A newer dump cut in half, with no manifest (the job died while uploading)."""
    newest = latest_backup(target.policy, target.store, database)
    body = target.store.read(newest.bucket, newest.key)
    _upload_newer(target, database, body[: len(body) // 2], manifest=None)
    return target


def wrong_database_backup(target: Target, database: str) -> Target:
    """A newer dump under this database's name that holds another database."""
    other = next(name for name in target.policy.databases if name != database)
    source = latest_backup(target.policy, target.store, other)
    _upload_newer(target, database, target.store.read(source.bucket, source.key), manifest=None)
    return target


def unreachable_store(target: Target, database: str) -> Target:
    """The same target, its object store pointing at a port where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return replace(target, store=S3ObjectStore(f"http://127.0.0.1:{port}", access_key="x", secret_key="x"))


class ServerLostDuringLoad(PostgresDatabase):
    """The sandbox database, whose server goes down as the restore starts replaying the dump."""

    def __init__(self, inner: PostgresDatabase, stop_server: Callable[[], None]) -> None:
        super().__init__(inner._dsn, inner._bin, inner._admin)
        self._stop_server = stop_server

    def load(self, name: str, sql: Path | BinaryIO, jobs: int = 1) -> None:
        self._stop_server()
        super().load(name, sql, jobs)


class InterruptedDuringLoad(PostgresDatabase):
    """The sandbox database, with an operator pressing Ctrl-C as the restore starts replaying the dump."""

    def __init__(self, inner: PostgresDatabase) -> None:
        super().__init__(inner._dsn, inner._bin, inner._admin)

    def load(self, name: str, sql: Path | BinaryIO, jobs: int = 1) -> None:
        raise KeyboardInterrupt


def catalogue(stop_server: Callable[[], None], start_server: Callable[[], None]) -> dict[str, Fault]:
    """The faults by the names the feature files use."""

    def lose_server(target: Target, database: str) -> Target:
        return replace(target, db=ServerLostDuringLoad(target.db, stop_server))

    faults = [
        Fault("no backup in cold storage", remove_backups),
        Fault("a corrupt backup", corrupt_backup),
        Fault("a truncated backup", truncate_backup),
        Fault("a backup of another database", wrong_database_backup),
        Fault("an unreachable object store", unreachable_store),
        Fault("a database server lost during the restore", lose_server, clear=start_server),
        Fault("an operator interrupting the restore",
              lambda target, database: replace(target, db=InterruptedDuringLoad(target.db))),
    ]
    return {f.name: f for f in faults}

