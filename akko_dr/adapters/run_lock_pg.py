"""The run lock's table on the target's PostgreSQL server (its admin database): one row per target."""

from __future__ import annotations

from datetime import datetime

import psycopg

from akko_dr.errors import TargetUnavailable
from akko_dr.run_lock import LockOwner

TABLE = "akko_dr_run_lock"
_COLUMNS = "target, run_id, pid, host, since, heartbeat"
_CREATE = f"""CREATE TABLE IF NOT EXISTS {TABLE} (target text PRIMARY KEY, run_id text NOT NULL,
  pid integer NOT NULL, host text NOT NULL, since timestamptz NOT NULL, heartbeat timestamptz NOT NULL)"""


class PostgresLockTable:
    """``LockTable`` on a PostgreSQL server: claims are atomic (primary key, ON CONFLICT DO NOTHING)."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn

    def _conn(self) -> psycopg.Connection:
        try:
            return psycopg.connect(self._dsn, autocommit=True, connect_timeout=5)
        except psycopg.OperationalError as err:
            raise TargetUnavailable(f"run lock: PostgreSQL unreachable: {str(err).strip().splitlines()[0]}") \
                from None

    def claim(self, owner: LockOwner) -> LockOwner | None:
        with self._conn() as conn:
            conn.execute(_CREATE)
            row = (owner.target, owner.run_id, owner.pid, owner.host, owner.since, owner.heartbeat)
            claimed = conn.execute(f"INSERT INTO {TABLE} ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s) "
                                   "ON CONFLICT (target) DO NOTHING RETURNING run_id", row).fetchone()
            if claimed:
                return None
            held = conn.execute(f"SELECT {_COLUMNS} FROM {TABLE} WHERE target = %s",
                                (owner.target,)).fetchone()
        return LockOwner(*held) if held else self.claim(owner)

    def take_over(self, stale: LockOwner, owner: LockOwner) -> bool:
        with self._conn() as conn:
            done = conn.execute(
                f"UPDATE {TABLE} SET run_id = %s, pid = %s, host = %s, since = %s, heartbeat = %s "
                "WHERE target = %s AND run_id = %s AND heartbeat = %s RETURNING run_id",
                (owner.run_id, owner.pid, owner.host, owner.since, owner.heartbeat, owner.target,
                 stale.run_id, stale.heartbeat)).fetchone()
        return done is not None

    def beat(self, owner: LockOwner, at: datetime) -> None:
        with self._conn() as conn:
            conn.execute(f"UPDATE {TABLE} SET heartbeat = %s WHERE target = %s AND run_id = %s",
                         (at, owner.target, owner.run_id))

    def release(self, owner: LockOwner) -> None:
        with self._conn() as conn:
            conn.execute(f"DELETE FROM {TABLE} WHERE target = %s AND run_id = %s",
                         (owner.target, owner.run_id))
