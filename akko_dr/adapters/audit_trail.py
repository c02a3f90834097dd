"""The audit trail: JSON-lines events in the Object Lock (WORM) audit bucket.

On the sandbox, the actions a drill simulates write their events here, as the logs layer does on a
cluster. Each event is its own object ``audit/<actor>/<time>-<id>.jsonl``, so the lock protects it
from the moment it is written.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict
from datetime import datetime, timedelta

from akko_dr.measure import utcnow
from akko_dr.ports import AuditEvent, VersionedObjectStore

PREFIX = "audit/"


class ObjectStoreAuditTrail:
    """The audit events in one WORM bucket of a versioned object store."""

    prefix = PREFIX

    def __init__(self, store: VersionedObjectStore, bucket: str) -> None:
        self.store, self.bucket = store, bucket

    def record(self, event: AuditEvent) -> str:
        """Write one event; return its key."""
        key = f"{PREFIX}{event.actor}/{event.at.strftime('%Y%m%dT%H%M%S%f')}-{secrets.token_hex(3)}.jsonl"
        body = json.dumps(asdict(event) | {"at": event.at.isoformat()}) + "\n"
        self.store.put_bytes(self.bucket, key, body.encode())
        return key

    def events(self, actor: str, window: timedelta, now: datetime | None = None) -> list[AuditEvent]:
        """The actor's events in the last ``window`` (the playbook: ``user:"x" AND _time:[72h ago, now]``)."""
        since = (now or utcnow()) - window
        found = []
        for obj in self.store.list(self.bucket, f"{PREFIX}{actor}/"):
            for line in self.store.read(self.bucket, obj.key).decode(errors="replace").splitlines():
                event = _parse(line) or AuditEvent(obj.last_modified, actor, "UNREADABLE EVENT", obj.key)
                if event.actor == actor and event.at >= since:
                    found.append(event)
        return sorted(found, key=lambda e: e.at)


def _parse(line: str) -> AuditEvent | None:
    """One JSON-lines event; None for a line that is not one (e.g. written by an attacker)."""
    try:
        row = json.loads(line)
        return AuditEvent(datetime.fromisoformat(row["at"]), row["actor"], row["action"], row["target"],
                          row.get("source", ""))
    except (ValueError, KeyError, TypeError):
        return None
