"""Object store faults: credentials refused, an endpoint that stalls, an object that vanishes between the
listing and the download, a bucket that is missing. None of them deletes a real backup."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO

from akko_dr.adapters.s3 import S3ObjectStore
from akko_dr.backup import latest_backup
from akko_dr.sandbox.emulator import start_emulator
from akko_dr.sandbox.fault_dumps import BadDump
from akko_dr.targets import Target

STALL_DEADLINE = timedelta(seconds=2)  # the policy's object-store deadline while the endpoint stalls


@dataclass
class RefusedCredentials:
    """An S3 endpoint that checks credentials (a second emulator with authentication on), reached with
    credentials it does not know."""

    servers: list[object] = field(default_factory=list)

    def apply(self, target: Target, database: str) -> Target:
        server = start_emulator(enforce_auth=True)
        self.servers.append(server)
        return replace(target, store=S3ObjectStore(server.endpoint, access_key="AKIAREVOKED0000000000",
                                                   secret_key="revoked"))

    def clear(self) -> None:
        while self.servers:
            self.servers.pop().stop()


class _Stalling:
    """A TCP endpoint that accepts connections and never answers (a hung load balancer)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.held: list[socket.socket] = []
        self.endpoint = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                self.held.append(self.sock.accept()[0])
            except OSError:
                return

    def stop(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


@dataclass
class StallingEndpoint:
    """The object store stalls; the policy's object-store deadline (shortened to STALL_DEADLINE so the
    case runs in seconds) ends the wait."""

    endpoints: list[_Stalling] = field(default_factory=list)

    def apply(self, target: Target, database: str) -> Target:
        stall = _Stalling()
        self.endpoints.append(stall)
        deadlines = dict(target.policy.deadlines, object_store=STALL_DEADLINE)
        policy = replace(target.policy, deadlines=deadlines)
        store = S3ObjectStore(stall.endpoint, access_key="sandbox", secret_key="sandbox",
                              timeout=STALL_DEADLINE.total_seconds())
        return replace(target, policy=policy, store=store)

    def clear(self) -> None:
        while self.endpoints:
            self.endpoints.pop().stop()


class _VanishingStore:
    """The store, where the newest dump is deleted by someone else just before it is downloaded."""

    def __init__(self, inner: S3ObjectStore, key: str) -> None:
        self.inner, self.key = inner, key

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def download(self, bucket: str, key: str, path: Path) -> None:
        if key == self.key:
            self.inner.delete(bucket, key)
        self.inner.download(bucket, key, path)

    def stream(self, bucket: str, key: str) -> BinaryIO:
        if key == self.key:
            self.inner.delete(bucket, key)
        return self.inner.stream(bucket, key)


@dataclass
class VanishingObject:
    """A copy of the newest dump is listed, then vanishes before the download (a lifecycle rule or an
    operator deleting it); only that copy is ever deleted."""

    copy: BadDump = field(default_factory=lambda: BadDump(lambda target, newest, gz: gz, manifest="own"))

    def apply(self, target: Target, database: str) -> Target:
        self.copy.apply(target, database)
        newest = latest_backup(target.policy, target.store, database)
        return replace(target, store=_VanishingStore(target.store, newest.key))

    def clear(self) -> None:
        self.copy.clear()


def missing_bucket(target: Target, database: str) -> Target:
    """The policy's backups bucket does not exist on the endpoint (deleted, or a wrong name)."""
    storage = replace(target.policy.storage, backups_bucket=f"{target.policy.storage.backups_bucket}-missing")
    return replace(target, policy=replace(target.policy, storage=storage))
