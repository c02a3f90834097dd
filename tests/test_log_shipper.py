"""The sandbox's log collector: only statements the server logged for a login role become audit events,
from where the log ended when it started; the harness's own role is never shipped."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from akko_dr.ports import AuditEvent
from akko_dr.sandbox.log_shipper import SOURCE, LogShipper, collecting

ROLE_LINE = '2026-11-29 14:32:07.101 UTC [4242] akko-admin@superset_metadata LOG:  statement: DROP TABLE ' \
            '"dashboards" CASCADE\n'
HARNESS_LINE = "2026-11-29 14:32:07.202 UTC [4243] postgres@superset_metadata LOG:  statement: DROP TABLE x\n"
OTHER_LINE = "2026-11-29 14:32:07.303 UTC [4244] akko-admin@aden LOG:  connection authorized: user=x\n"


class Recorded:
    """An audit trail that keeps what it is given (the collector's only dependency)."""

    def __init__(self) -> None:
        self.events: list[AuditEvent] = []

    def record(self, event: AuditEvent) -> str:
        self.events.append(event)
        return f"event-{len(self.events)}"


def test_only_a_login_role_s_statements_written_after_the_start_are_shipped(tmp_path: Path) -> None:
    log, trail = tmp_path / "log", Recorded()
    log.write_text(ROLE_LINE)  # before the collector started: not its to ship
    shipper = LogShipper(log, trail)
    with log.open("a") as f:
        f.write(HARNESS_LINE + OTHER_LINE + ROLE_LINE[:40])  # a line still being written
    assert shipper.ship_new() == 0 and trail.events == []
    with log.open("a") as f:
        f.write(ROLE_LINE[40:])
    assert shipper.ship_new() == 1
    [event] = trail.events
    assert (event.actor, event.action, event.target, event.source) == (
        "akko-admin", "DROP TABLE", "superset_metadata.dashboards", SOURCE)


def test_the_collector_ships_what_was_written_until_it_stopped(tmp_path: Path) -> None:
    log, trail = tmp_path / "log", Recorded()
    log.write_text("")
    with collecting(log, trail) as shipper:
        log.write_text(ROLE_LINE)
    assert shipper.shipped == 1 and not shipper.error
    assert trail.events[0].at == datetime(2026, 11, 29, 14, 32, 7, 101000, UTC)  # the server's own time
