"""The platform's log collector, as AKKO runs one: each statement a login role runs, as the PostgreSQL
server logged it, becomes an event of the platform's audit trail (the WORM bucket and the logs layer).

The harness never writes an audit event: a drill against a live target reads what the platform's own
collector shipped. This is the sandbox's collector, for rehearsals of that path; it ships only lines the
server wrote (the compromised identity's role logs every statement), never the harness's ``postgres``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from akko_dr.measure import utcnow
from akko_dr.ports import AuditTrail
from akko_dr.sandbox.identity import audit_event

INTERVAL = 0.2  # seconds between two reads of the server's log
SOURCE = "platform log collector (PostgreSQL server log)"
HARNESS_ROLE = "postgres"
_LINE = re.compile(r"^(?P<at>\S+ \S+) (?P<zone>\S+) \[\d+\] (?P<user>[^@\s]+)@(?P<database>\S+) "
                   r"LOG:  statement: (?P<statement>.+)$")  # the sandbox's log_line_prefix '%m [%p] %u@%d '


def _when(match: re.Match[str]) -> datetime:
    """The server's time of the line (UTC); the collector's own time if the log is in another zone."""
    if match["zone"] not in ("UTC", "GMT"):
        return utcnow()
    return datetime.strptime(match["at"], "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)


def statements(lines: list[str]) -> Iterator[tuple[datetime, str, str, str]]:
    """(when, role, database, statement) of each statement line a login role (not the harness) ran."""
    for line in lines:
        match = _LINE.match(line)
        if match and match["user"] != HARNESS_ROLE:
            yield _when(match), match["user"], match["database"], match["statement"].strip()


class LogShipper:
    """Follows the server's log file from its current end, shipping each new statement line."""

    def __init__(self, log: Path, trail: AuditTrail) -> None:
        self.log, self.trail = log, trail
        self.offset = log.stat().st_size if log.is_file() else 0
        self.shipped = 0
        self.error = ""
        self._stop = threading.Event()

    def ship_new(self) -> int:
        """Ship the complete lines written since the last read; return how many events were shipped."""
        if not self.log.is_file():
            return 0
        with self.log.open("rb") as f:
            f.seek(self.offset)
            data = f.read()
        complete = data[:data.rfind(b"\n") + 1]
        self.offset += len(complete)
        found = list(statements(complete.decode(errors="replace").splitlines()))
        for at, user, database, statement in found:
            self.trail.record(audit_event(user, database, statement, SOURCE, at))
        self.shipped += len(found)
        return len(found)

    def run(self) -> None:
        while not self._stop.wait(INTERVAL):
            try:
                self.ship_new()
            except Exception as err:  # the collector keeps the first reason it failed; the test reads it
                self.error = self.error or f"{type(err).__name__}: {err}"

    def stop(self) -> None:
        self._stop.set()


@contextmanager
def collecting(log: Path, trail: AuditTrail) -> Iterator[LogShipper]:
    """Run the collector while the block lasts; the lines written until its end are shipped too."""
    shipper = LogShipper(log, trail)
    thread = threading.Thread(target=shipper.run, name="akko-log-collector", daemon=True)
    thread.start()
    try:
        yield shipper
    finally:
        shipper.stop()
        thread.join()
        shipper.ship_new()
