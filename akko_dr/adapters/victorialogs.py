"""The logs layer: VictoriaLogs over its HTTP API (JSON-lines ingestion, LogsQL queries).

Audit events are shipped to it as they happen, and kept as well in the WORM audit bucket (the archive the
lock protects). Drill 3 identifies the attacker's actions with the playbook's own query, run through
``/select/logsql/query``.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from akko_dr.errors import DrillError, TargetUnavailable
from akko_dr.measure import utcnow
from akko_dr.policy import format_duration
from akko_dr.ports import AuditEvent, AuditTrail

# The playbook, Drill 3 step 3: `audit_type:* AND user:"compromised-user" AND _time:[72h ago, now]`
PLAYBOOK_QUERY = 'audit_type:* AND user:"{user}" AND _time:[{window} ago, now]'
# The same filter as LogsQL writes a relative range (VictoriaLogs refuses "72h ago" inside brackets)
LOGSQL_QUERY = 'audit_type:* AND user:"{user}" AND _time:[now-{window}, now]'
TIMEOUT = 10.0


def audit_type(event: AuditEvent) -> str:
    return "login" if event.action == "login" else "statement"


@dataclass
class QueryRun:
    """One query sent to the logs layer and what it answered."""

    query: str
    rows: list[dict] = field(default_factory=list)
    refused: str = ""  # the logs layer's reason when it would not run the query

    def line(self) -> str:
        return f"{self.query}: " + (f"refused ({self.refused})" if self.refused else f"{len(self.rows)} rows")


class VictoriaLogs:
    """A VictoriaLogs server at ``url`` (``http://127.0.0.1:9428``)."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def __repr__(self) -> str:
        return f"VictoriaLogs({self.url})"

    def _call(self, what: str, path: str, body: bytes, content_type: str) -> bytes:
        req = urllib.request.Request(f"{self.url}{path}", data=body, method="POST",
                                     headers={"Content-Type": content_type})
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
                return resp.read()
        except urllib.error.HTTPError as err:
            reason = " ".join(err.read().decode(errors="replace").split())[:300]
            raise DrillError(f"VictoriaLogs refused {what}: HTTP {err.code} {reason}") from None
        except (urllib.error.URLError, OSError) as err:
            raise TargetUnavailable(f"VictoriaLogs unreachable at {self.url} ({what}): {err}") from None

    def ship(self, event: AuditEvent) -> None:
        """Ingest one event (JSON line) and make it searchable at once."""
        row = {"_time": event.at.isoformat(), "_msg": event.line(), "audit_type": audit_type(event),
               "user": event.actor, "action": event.action, "target": event.target, "source": event.source}
        self._call("ingesting an audit event", "/insert/jsonline?_stream_fields=audit_type,user",
                   json.dumps(row).encode() + b"\n", "application/stream+json")
        # the sandbox asks for the rows to be flushed now rather than within the next second
        self._call("flushing ingested events", "/internal/force_flush", b"", "text/plain")

    def query(self, logsql: str) -> QueryRun:
        """Run a LogsQL query; a query the server cannot parse comes back refused, with its reason."""
        body = urllib.parse.urlencode({"query": logsql}).encode()
        try:
            out = self._call(f"the query {logsql}", "/select/logsql/query", body,
                             "application/x-www-form-urlencoded")
        except TargetUnavailable:
            raise
        except DrillError as err:
            return QueryRun(logsql, refused=str(err))
        return QueryRun(logsql, [json.loads(line) for line in out.decode().splitlines() if line.strip()])


def window_text(window: timedelta) -> str:
    """72h as the playbook writes it."""
    hours, rest = divmod(int(window.total_seconds()), 3600)
    return f"{hours}h" if not rest else format_duration(window)


class LogsLayerAuditTrail:
    """The audit trail as a platform keeps it: each event archived in the WORM bucket (``archive``) and
    shipped to the logs layer; the actor's events are read back from the logs layer with the playbook's
    query. Only events that were recorded are ever returned: nothing is made up from a query."""

    def __init__(self, archive: AuditTrail, logs: VictoriaLogs) -> None:
        self.archive, self.logs = archive, logs
        self.bucket, self.prefix, self.store = archive.bucket, archive.prefix, archive.store
        self.queries: list[QueryRun] = []

    def record(self, event: AuditEvent) -> str:
        key = self.archive.record(event)
        self.logs.ship(event)
        return key

    def events(self, actor: str, window: timedelta, now: datetime | None = None) -> list[AuditEvent]:
        """The playbook's query for ``actor``; when the logs layer refuses its syntax, the same filter
        in LogsQL's own syntax (both runs are kept in ``queries`` for the evidence)."""
        since = (now or utcnow()) - window
        run = self.logs.query(PLAYBOOK_QUERY.format(user=actor, window=window_text(window)))
        self.queries.append(run)
        if run.refused:
            run = self.logs.query(LOGSQL_QUERY.format(user=actor, window=window_text(window)))
            self.queries.append(run)
            if run.refused:
                raise DrillError(f"the logs layer refused the audit query: {run.refused}")
        found = [_event(row) for row in run.rows]
        return sorted((e for e in found if e.actor == actor and e.at >= since), key=lambda e: e.at)


def _event(row: dict) -> AuditEvent:
    return AuditEvent(datetime.fromisoformat(row["_time"].replace("Z", "+00:00")), row.get("user", ""),
                      row.get("action", ""), row.get("target", ""), row.get("source", "") or "logs layer")
