"""PostgreSQL login roles as identities, and Keycloak with the administrator's login role.

Every role but the harness's own must give its password (SCRAM), so a suspended or rotated identity
is really locked out. Passwords live in memory only and never reach a report or a log. The server's
log of a role's statements is read from its file where the harness can reach it (the sandbox); where it
cannot (a live server), the statement log is not applicable, and says why.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
from psycopg import sql as q

from akko_dr.adapters.keycloak import KeycloakIdentities
from akko_dr.adapters.postgres import PostgresDatabase
from akko_dr.errors import DrillError, NotApplicable
from akko_dr.policy import Policy


class PostgresLoginRoles:
    """Identities as PostgreSQL login roles; the sandbox's administrators are superusers."""

    kind = "PostgreSQL login roles (sandbox stand-in for Keycloak)"

    def __init__(self, db: PostgresDatabase, policy: Policy, server_log: Path | None = None) -> None:
        self._db = db
        self._policy = policy
        self._server_log = server_log
        self._secrets: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"PostgresLoginRoles({sorted(self._secrets)})"

    def provision_all(self) -> None:
        """Create the identities the drills name (the policy's compromised identity)."""
        identity = self._policy.drills.get("drill-3", {}).get("compromised_identity")
        if identity:
            self.provision(identity)

    def provision(self, identity: str, secret: str | None = None) -> None:
        """(Re-)create ``identity`` as an active administrator with ``secret`` (a fresh one by default)."""
        secret = secret or secrets.token_urlsafe(18)
        role = q.Identifier(identity)
        if not self.exists(identity):
            self._query(q.SQL("CREATE ROLE {} SUPERUSER").format(role))
        self._query(q.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(role, q.Literal(secret)))
        self._query(q.SQL("ALTER ROLE {} SET log_statement = 'all'").format(role))
        self._secrets[identity] = secret

    def _query(self, statement: str | q.Composable, args: tuple = ()) -> list[tuple]:
        with psycopg.connect(self._db.dsn("postgres"), autocommit=True) as conn:
            cur = conn.execute(statement, args)
            return cur.fetchall() if cur.description else []

    def exists(self, identity: str) -> bool:
        return bool(self._query("SELECT 1 FROM pg_roles WHERE rolname = %s", (identity,)))

    def require(self, identity: str) -> None:
        """Refuse, in one line, an identity the provider does not know."""
        if not self.exists(identity):
            raise DrillError(f"identity {identity!r} does not exist in {self.kind}; nothing was changed")

    def credential(self, identity: str) -> str:
        """The identity's current secret (what an attacker holding it would use)."""
        self.require(identity)
        return self._secrets[identity]

    def dsn(self, identity: str, secret: str, database: str = "postgres") -> str:
        """A DSN logging in as ``identity``; never print it (it holds the secret)."""
        parts = urlsplit(self._db.dsn(database))
        user = f"{quote(identity, safe='')}:{quote(secret, safe='')}"
        return urlunsplit(parts._replace(netloc=f"{user}@{parts.netloc.rpartition('@')[2]}"))

    def act_as(self, identity: str, secret: str, database: str, statement: str) -> None:
        """Run ``statement`` logged in as ``identity`` (the sandbox's simulated attacker)."""
        dsn = self.dsn(identity, secret, database)
        with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
            conn.execute(statement)

    def suspend(self, identity: str) -> int:
        """NOLOGIN, then end its open sessions; return how many were ended."""
        self.require(identity)
        self._query(q.SQL("ALTER ROLE {} NOLOGIN").format(q.Identifier(identity)))
        return len(self._query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s",
                               (identity,)))

    def rotate(self, identity: str) -> None:
        """Give the identity a new random password, kept in memory only."""
        self.require(identity)
        secret = secrets.token_urlsafe(18)
        self._query(q.SQL("ALTER ROLE {} PASSWORD {}").format(q.Identifier(identity), q.Literal(secret)))
        self._secrets[identity] = secret

    def statement_log(self, identity: str) -> list[str]:
        """The server's log lines of ``identity``'s sessions (its statements are logged)."""
        if self._server_log is None:
            raise NotApplicable("the PostgreSQL server's log is not readable by the harness on this target "
                                "(its statements are in the platform's audit trail, read by identify)")
        if not self._server_log.is_file():
            return []
        marker = f" {identity}@"
        return [line for line in self._server_log.read_text(errors="replace").splitlines() if marker in line]

    def can_authenticate(self, identity: str, secret: str) -> tuple[bool, str]:
        """Whether ``identity`` can log in with ``secret``, and the server's answer (secret-free)."""
        try:
            with psycopg.connect(self.dsn(identity, secret), connect_timeout=5) as conn:
                conn.execute("SELECT 1")
        except psycopg.OperationalError as err:
            lines = str(err).strip().splitlines()
            return False, (lines[-1] if lines else type(err).__name__).replace(secret, "***")
        return True, "logged in"


class KeycloakAdministrator:
    """The sandbox's identity provider when Keycloak serves it: the administrator is a user of the real
    Keycloak realm and, with the same password (reused, as a stolen one often is), a PostgreSQL login role
    (how the attacker reached the database). Containment acts on both; the token endpoint answers first."""

    def __init__(self, keycloak: KeycloakIdentities, roles: PostgresLoginRoles) -> None:
        self.keycloak, self.roles = keycloak, roles
        self.kind = f"{keycloak.kind} (real server), with the administrator's PostgreSQL login role"

    def __repr__(self) -> str:
        return f"KeycloakAdministrator({self.keycloak!r}, {self.roles!r})"

    def require(self, identity: str) -> None:
        self.keycloak.require(identity)

    def provision(self, identity: str) -> None:
        """An active Keycloak administrator and its login role, both with one fresh password."""
        self.keycloak.provision(identity)
        self.roles.provision(identity, self.keycloak.credential(identity))

    def credential(self, identity: str) -> str:
        return self.keycloak.credential(identity)

    def suspend(self, identity: str) -> int:
        """Keycloak user disabled and its sessions revoked; the login role NOLOGIN and its sessions ended."""
        return self.keycloak.suspend(identity) + self.roles.suspend(identity)

    def rotate(self, identity: str) -> None:
        """A new password in Keycloak, and a new one (not the same) for the login role."""
        self.keycloak.rotate(identity)
        self.roles.rotate(identity)

    def can_authenticate(self, identity: str, secret: str) -> tuple[bool, str]:
        """Keycloak's token endpoint, then PostgreSQL: works if either lets ``secret`` in."""
        by_token, token_answer = self.keycloak.can_authenticate(identity, secret)
        by_role, role_answer = self.roles.can_authenticate(identity, secret)
        return by_token or by_role, f"Keycloak: {token_answer}; PostgreSQL: {role_answer}"

    def statement_log(self, identity: str) -> list[str]:
        """Keycloak's login events of the identity, then its PostgreSQL statements."""
        return self.keycloak.statement_log(identity) + self.roles.statement_log(identity)

    def act_as(self, identity: str, secret: str, database: str, statement: str) -> None:
        """The attacker signs in to Keycloak with the stolen password, then runs ``statement``."""
        signed_in, answer = self.keycloak.can_authenticate(identity, secret)
        if not signed_in:
            raise DrillError(f"the attacker could not sign in as {identity}: {answer}")
        self.roles.act_as(identity, secret, database, statement)
