"""A stand-in for a platform service (e.g. Superset): keeps committing canary rows to its database.

Each row's ``written_at`` is the commit-time clock, so after a restore the newest surviving row
tells exactly how much data was lost. Reconnects on its own when the database goes away; stops when
the sandbox that started it is gone (its parent process died without stopping it, e.g. a killed run).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time

import psycopg

_stop = False


def _on_term(*_: object) -> None:
    global _stop
    _stop = True


def run(dsn: str, writer: str, interval: float) -> None:
    signal.signal(signal.SIGTERM, _on_term)
    parent = os.getppid()
    conn = None
    while not _stop and os.getppid() == parent:  # orphaned: its sandbox is gone, and so is its database
        try:
            conn = conn or psycopg.connect(dsn, autocommit=True, connect_timeout=3)
            conn.execute("INSERT INTO dr_canary (writer, written_at) VALUES (%s, clock_timestamp())",
                         (writer,))
        except psycopg.Error as err:
            print(f"consumer {writer}: {type(err).__name__}: {str(err).strip()[:200]}", flush=True)
            conn = None
        time.sleep(interval)
    if conn is not None:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dsn")
    parser.add_argument("--writer", default="consumer")
    parser.add_argument("--interval", type=float, default=0.05)
    args = parser.parse_args()
    run(args.dsn, args.writer, args.interval)
    sys.exit(0)


if __name__ == "__main__":
    main()
