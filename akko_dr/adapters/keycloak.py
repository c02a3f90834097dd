"""Keycloak as the identity provider (``IdentityProvider``), through ``python-keycloak``'s admin API.

Containment disables the user, ends its sessions and rotates its password; whether a password still
works is asked of the realm's token endpoint itself (a real password-grant token request). Passwords
live in memory only and never reach a report, a log or an exception.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from keycloak import KeycloakAdmin, KeycloakOpenID, KeycloakOpenIDConnection
from keycloak.exceptions import KeycloakError, KeycloakPostError

from akko_dr.errors import DrillError, TargetUnavailable
from akko_dr.measure import wait_for

REALM_ADMIN_ROLE = ("realm-management", "realm-admin")
ADMIN_TIMEOUT = 300  # seconds: a realm import on a loaded machine takes minutes


def token_error(err: KeycloakError, secret: str = "") -> str:
    """A one-line, secret-free account of what Keycloak answered."""
    body = err.response_body.decode(errors="replace") if isinstance(err.response_body, bytes) else ""
    text = f"HTTP {err.response_code} {body or err.error_message}".strip()
    return text.replace(secret, "***") if secret else text


class _AdminConnection(KeycloakOpenIDConnection):
    """The admin API session; logs in again when its session is gone (e.g. Keycloak's database was
    restored under it, taking the session away) instead of failing on the refresh."""

    def refresh_token(self) -> None:
        try:
            super().refresh_token()
        except KeycloakPostError:
            self.get_token()


class KeycloakIdentities:
    """The users of one Keycloak realm; ``login_client``: a public client allowed the password grant."""

    def __init__(self, url: str, realm: str, admin_user: str, admin_password: str, login_client: str,
                 version: str = "", timeout: int = ADMIN_TIMEOUT) -> None:
        self.url, self.realm, self.login_client = url, realm, login_client
        self.kind = f"Keycloak {version} realm {realm} at {url}".replace("  ", " ")
        # no retries: a retried POST after a slow answer would be refused as a duplicate (HTTP 409)
        self._admin = KeycloakAdmin(connection=_AdminConnection(
            server_url=url, username=admin_user, password=admin_password, realm_name=realm,
            user_realm_name="master", client_id="admin-cli", timeout=timeout, max_retries=0))
        self._secrets: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"KeycloakIdentities({self.url}, realm={self.realm})"

    @property
    def admin(self) -> KeycloakAdmin:
        return self._admin

    def remember(self, identity: str, secret: str) -> None:
        """Keep the password the sandbox gave ``identity`` (in memory only)."""
        self._secrets[identity] = secret

    def _user_id(self, identity: str) -> str | None:
        try:
            return self._admin.get_user_id(identity)
        except KeycloakError as err:
            raise TargetUnavailable(f"Keycloak admin API at {self.url}: {token_error(err)}") from None

    def exists(self, identity: str) -> bool:
        return self._user_id(identity) is not None

    def require(self, identity: str) -> str:
        """The user's id; refuses, in one line, a user the realm does not know."""
        user_id = self._user_id(identity)
        if user_id is None:
            raise DrillError(f"identity {identity!r} does not exist in {self.kind}; nothing was changed")
        return user_id

    def provision(self, identity: str, admin: bool = True) -> None:
        """(Re-)create ``identity`` as an active user (a realm administrator) with a fresh password."""
        secret = secrets.token_urlsafe(18)
        try:
            user_id = self._user_id(identity) or self._admin.create_user(
                {"username": identity, "email": f"{identity}@akko.example", "emailVerified": True,
                 "firstName": identity, "lastName": "AKKO", "enabled": True})
        except KeycloakError as err:  # e.g. a name Keycloak does not accept: refused, in one line
            raise DrillError(f"{self.kind} refused to create user {identity!r}: "
                             f"{' '.join(token_error(err).split())}") from None
        self._admin.update_user(user_id, {"enabled": True})
        self._admin.set_user_password(user_id, secret, temporary=False)
        if admin:
            client = self._admin.get_client_id(REALM_ADMIN_ROLE[0])
            role = self._admin.get_client_role(client, REALM_ADMIN_ROLE[1])
            self._admin.assign_client_role(user_id, client, [role])
        self._secrets[identity] = secret

    def credential(self, identity: str) -> str:
        """The identity's current password (what an attacker holding it would use)."""
        self.require(identity)
        if identity not in self._secrets:
            raise DrillError(f"the password of {identity!r} in {self.kind} is not known to the harness")
        return self._secrets[identity]

    def sessions(self, identity: str) -> int:
        return len(self._admin.get_sessions(self.require(identity)))

    def suspend(self, identity: str) -> int:
        """Disable the user, then end its sessions; return how many sessions were open."""
        user_id = self.require(identity)
        open_sessions = len(self._admin.get_sessions(user_id))
        self._admin.update_user(user_id, {"enabled": False})
        self._admin.user_logout(user_id)
        left = len(self._admin.get_sessions(user_id))
        if left:
            raise DrillError(f"{left} sessions of {identity} still open in {self.kind} after logout")
        return open_sessions

    def rotate(self, identity: str) -> None:
        """A new random password, kept in memory only."""
        user_id = self.require(identity)
        secret = secrets.token_urlsafe(18)
        self._admin.set_user_password(user_id, secret, temporary=False)
        self._secrets[identity] = secret

    def enabled(self, identity: str) -> bool:
        return bool(self._admin.get_user(self.require(identity)).get("enabled"))

    def can_authenticate(self, identity: str, secret: str) -> tuple[bool, str]:
        """Ask the realm's token endpoint for a token with ``secret``; its answer, secret-free. Only a
        refusal (HTTP 4xx) is an answer: no answer, or a server error, raises TargetUnavailable."""
        openid = KeycloakOpenID(server_url=self.url, realm_name=self.realm, client_id=self.login_client,
                                timeout=30)
        try:
            token = openid.token(identity, secret)
        except KeycloakError as err:
            answer = token_error(err, secret)
            if not err.response_code or err.response_code >= 500:
                raise TargetUnavailable(f"token endpoint of {self.realm} gave no answer: {answer}") from None
            return False, f"token endpoint of realm {self.realm} refused: {answer}"
        openid.logout(token["refresh_token"])
        return True, f"token endpoint of realm {self.realm} issued a token"

    def wait_for_login(self, identity: str, deadline: float) -> str:
        """Wait until ``identity`` logs in with its known password (a service serving logins again)."""
        secret = self.credential(identity)
        answers: list[str] = []

        def works() -> bool:
            try:
                ok, answer = self.can_authenticate(identity, secret)
            except TargetUnavailable as err:  # e.g. connections to a database swapped under it
                ok, answer = False, str(err)
            answers.append(answer)
            return ok
        try:
            wait_for(f"a login of {identity} on {self.kind}", works, deadline, interval=0.5)
        except DrillError as err:
            raise DrillError(f"{err}; last answer: {answers[-1] if answers else 'none'}") from None
        return f"{identity} logged in on {self.kind} ({answers[-1]})"

    def statement_log(self, identity: str) -> list[str]:
        """The realm's stored login events of ``identity`` (events must be enabled on the realm); none for
        a user the realm does not know."""
        user_id = self._user_id(identity)
        if user_id is None:
            return []
        try:
            events = self._admin.get_events({"user": user_id})
        except KeycloakError as err:
            raise TargetUnavailable(f"Keycloak events of {identity} unreadable: {token_error(err)}") from None
        return [f"{datetime.fromtimestamp(e['time'] / 1000, UTC).isoformat(timespec='milliseconds')} "
                f"keycloak {self.realm} {e.get('type')} {identity} client={e.get('clientId')} "
                f"ip={e.get('ipAddress')}{' error=' + e['error'] if e.get('error') else ''}"
                for e in sorted(events, key=lambda e: e["time"])]
