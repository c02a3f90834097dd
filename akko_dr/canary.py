"""Canary writes: the proof that a service is writing, and the yardstick of data loss."""

from __future__ import annotations

from datetime import datetime

from akko_dr.measure import wait_for
from akko_dr.ports import Canary

WRITE_DEADLINE = 60.0


def wait_for_write(canary: Canary, database: str, after: datetime | None = None,
                   deadline: float = WRITE_DEADLINE) -> datetime:
    """Wait until ``database`` holds a canary write newer than ``after``; return its time."""

    def newer() -> datetime | None:
        latest = canary.newest_write(database)
        return latest if latest is not None and (after is None or latest > after) else None

    what = f"a canary write in {database}" + (f" after {after.isoformat()}" if after else "")
    return wait_for(what, newer, deadline)
