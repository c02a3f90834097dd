"""Faults a drill must survive: bad backups, a failing object store, a failing PostgreSQL server.

Each fault changes the real sandbox (objects in the bucket, the PostgreSQL server) or the target's
wiring; ``apply`` returns the target the drill should use, ``clear`` undoes what can be undone.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO

from akko_dr.adapters.postgres import PostgresDatabase
from akko_dr.adapters.s3 import S3ObjectStore
from akko_dr.ports import Fault
from akko_dr.sandbox import fault_dumps, fault_postgres, fault_store
from akko_dr.sandbox.fault_dumps import BadDump
from akko_dr.targets import Target


def corrupt_backup(target: Target, database: str) -> Target:
    """A newer dump whose bytes were damaged after the manifest recorded its sha256 (left in place)."""
    return BadDump(fault_dumps.damaged, manifest="original").apply(target, database)


def truncate_backup(target: Target, database: str) -> Target:
    """A newer dump cut in half, with no manifest (the job died while uploading; left in place)."""
    return BadDump(fault_dumps.truncated).apply(target, database)


def wrong_database_backup(target: Target, database: str) -> Target:
    """A newer dump under this database's name that holds another database (left in place)."""
    return BadDump(fault_dumps.other_database).apply(target, database)


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


def _stateful(name: str, fault: object) -> Fault:
    """A fault object with its own ``apply`` and ``clear`` (what it uploaded, mounted or holds)."""
    return Fault(name, fault.apply, clear=fault.clear)


def catalogue(stop_server: Callable[[], None], start_server: Callable[[], None],
              server_user: str = "postgres") -> dict[str, Fault]:
    """The faults by the names the feature files use. (An operator's Ctrl-C and SIGTERM at every step
    are real signals: tests/test_signals.py.)"""

    def lose_server(target: Target, database: str) -> Target:
        return replace(target, db=ServerLostDuringLoad(target.db, stop_server))

    faults = [
        _stateful("no backup in cold storage", fault_dumps.HiddenBackups()),
        _stateful("a corrupt backup", BadDump(fault_dumps.damaged, manifest="original")),
        _stateful("a truncated backup", BadDump(fault_dumps.truncated)),
        _stateful("a backup of another database", BadDump(fault_dumps.other_database)),
        _stateful("a backup of garbage SQL", BadDump(fault_dumps.garbage)),
        _stateful("a backup that fails half-way", BadDump(fault_dumps.fails_half_way)),
        _stateful("a backup from a newer server", BadDump(fault_dumps.newer_server)),
        _stateful("an empty backup from a successful job", BadDump(fault_dumps.empty, manifest="own")),
        Fault("an unreachable object store", unreachable_store),
        _stateful("an object store refusing the credentials", fault_store.RefusedCredentials()),
        _stateful("an object store that stalls", fault_store.StallingEndpoint()),
        _stateful("a backup vanishing before its download", fault_store.VanishingObject()),
        Fault("a missing backups bucket", fault_store.missing_bucket),
        Fault("a database server lost during the restore", lose_server, clear=start_server),
        _stateful("a full disk under the scratch database", fault_postgres.FullScratchDisk(server_user)),
        _stateful("a server at its connection limit", fault_postgres.ConnectionLimit()),
    ]
    return {f.name: f for f in faults}

