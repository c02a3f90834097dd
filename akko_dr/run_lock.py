"""One drill run at a time per target: a lock with an owner and a heartbeat, kept on the target itself.

A second run refuses with "a drill is already running (run <id>, since <time>, pid <n>)". A lock whose
owner is gone (its process is dead on this host, or its heartbeat is older than ``STALE_AFTER``) is taken
over, and the run's evidence says so. Taking the lock is a write on the target: on a live target it is
taken only when destructive steps are allowed (a read-only run cannot collide with a restore).
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

import psutil

from akko_dr.errors import DrillError, DrillRefused
from akko_dr.measure import utcnow

HEARTBEAT_EVERY = timedelta(seconds=10)
STALE_AFTER = timedelta(seconds=60)  # six missed heartbeats: the owner is gone


@dataclass(frozen=True)
class LockOwner:
    """Who holds the lock: the run, its process and host, since when, and its last sign of life."""

    target: str
    run_id: str
    pid: int
    host: str
    since: datetime
    heartbeat: datetime

    def describe(self) -> str:
        return f"run {self.run_id}, since {self.since.isoformat(timespec='seconds')}, pid {self.pid}"

    def stale(self, now: datetime) -> str | None:
        """Why this owner is gone (None while it is alive)."""
        if self.host == socket.gethostname() and not psutil.pid_exists(self.pid):
            return f"its process {self.pid} on {self.host} is gone"
        if now - self.heartbeat > STALE_AFTER:
            silent = int((now - self.heartbeat).total_seconds())
            return f"its last heartbeat was {silent}s ago (> {int(STALE_AFTER.total_seconds())}s)"
        return None


class LockTable(Protocol):
    """Where the lock lives (the target's PostgreSQL): atomic claim, takeover, heartbeat, release."""

    def claim(self, owner: LockOwner) -> LockOwner | None: ...  # None: claimed; else the holder
    def take_over(self, stale: LockOwner, owner: LockOwner) -> bool: ...  # False: someone else was faster
    def beat(self, owner: LockOwner, at: datetime) -> None: ...
    def release(self, owner: LockOwner) -> None: ...


class RunLock:
    """The lock of one run on one target; ``acquire`` refuses while another live run holds it."""

    def __init__(self, table: LockTable, target: str, run_id: str) -> None:
        self.table = table
        now = utcnow()
        self.owner = LockOwner(target, run_id, os.getpid(), socket.gethostname(), now, now)
        self.notes: list[str] = []
        self._stop = threading.Event()
        self._beating: threading.Thread | None = None

    def acquire(self) -> RunLock:
        """Claim the lock (taking over a stale one, noted); refuse while a live run holds it."""
        holder = self.table.claim(self.owner)
        while holder is not None:
            why = holder.stale(utcnow())
            if why is None:
                raise DrillRefused(f"a drill is already running ({holder.describe()})")
            if self.table.take_over(holder, self.owner):
                self.notes.append(f"stale run lock of {holder.describe()} taken over: {why}")
                break
            holder = self.table.claim(self.owner)
        self._beating = threading.Thread(target=self._beat, name="akko-dr-run-lock", daemon=True)
        self._beating.start()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_EVERY.total_seconds()):
            try:
                self.table.beat(self.owner, utcnow())
            except DrillError:  # the server is down for a moment (a fault, a restart): beat again later
                continue

    def release(self) -> None:
        self._stop.set()
        if self._beating is not None:
            self._beating.join()
        try:
            self.table.release(self.owner)
        except DrillError as err:  # left behind; the next run finds it stale (dead pid) and takes it over
            self.notes.append(f"run lock not released: {err}")

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
