"""The sandbox's identity provider and its simulated attacker.

The embedded server trusts the ``postgres`` superuser on its Unix socket; every other role must
give its password (SCRAM), so a suspended or rotated identity is really locked out. The identities
themselves are ``akko_dr.adapters.login_roles``' (PostgreSQL login roles, or Keycloak with them).
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from akko_dr.adapters.login_roles import KeycloakAdministrator, PostgresLoginRoles
from akko_dr.measure import utcnow
from akko_dr.ports import AuditEvent, AuditTrail

__all__ = ["KeycloakAdministrator", "PostgresLoginRoles", "SandboxAttacker", "audit_event", "password_hba"]

_HBA = "local all postgres trust\nlocal all all scram-sha-256\n"


def password_hba(path: Path) -> None:
    """Put password authentication for every role but ``postgres`` first in ``pg_hba.conf``."""
    text = path.read_text()
    if not text.startswith(_HBA):
        path.write_text(_HBA + text)


_STATEMENT = re.compile(r'^\s*(DROP TABLE|TRUNCATE|DELETE FROM|ALTER TABLE|SELECT)\s+"?([\w.]+)?"?', re.I)


def audit_event(identity: str, database: str, statement: str, source: str,
                at: datetime | None = None) -> AuditEvent:
    """The audit event a logs layer makes of one statement (run ``at``, default now): its action and the
    table it names."""
    match = _STATEMENT.match(statement)
    action = match.group(1).upper() if match else (statement.split() or ["?"])[0].upper()
    what = f"{database}.{match.group(2)}" if match and match.group(2) else database
    return AuditEvent(at or utcnow(), identity, action, what, source)


class SandboxAttacker:
    """Drill 3's simulated attacker on the sandbox. Like a platform's logs layer, the sandbox records
    each real login and statement of the attacker in the audit trail, as it happens; nothing else."""

    def __init__(self, roles: PostgresLoginRoles | KeycloakAdministrator, trail: AuditTrail) -> None:
        self.roles, self.trail = roles, trail

    def act_as(self, identity: str, secret: str, database: str, statement: str) -> None:
        at = utcnow()
        self.roles.act_as(identity, secret, database, statement)
        self.trail.record(AuditEvent(at, identity, "login", database, "sandbox logs layer"))
        self.trail.record(audit_event(identity, database, statement, "sandbox logs layer"))
