"""Keycloak in the sandbox (issue 10): the session's sandbox runs the real server once (its start is part
of the sandbox's); without a provisioned Keycloak these tests skip with the reason, and the stand-in's own
test still runs."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from keycloak import KeycloakOpenID
from keycloak.exceptions import KeycloakPostError

from akko_dr.drills.ransomware import RansomwareDrill
from akko_dr.drills.restore_database import RestoreDatabaseDrill
from akko_dr.errors import NotApplicable
from akko_dr.policy import Policy
from akko_dr.ports import Fingerprint, written_by_services
from akko_dr.sandbox import Sandbox, start_sandbox
from akko_dr.sandbox.identity import PostgresLoginRoles
from akko_dr.sandbox.keycloak import LOGIN_CLIENT, REALM, SWITCH, USERS, SandboxKeycloak, keycloak_home
from akko_dr.targets import Target, new_run_id
from akko_dr.wiring import sandbox_target

ADMIN = "akko-admin"
SESSION_SWITCH = os.environ.get(SWITCH)  # as the run was started, before any test changed it


@pytest.fixture
def keycloak(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> SandboxKeycloak:
    """The sandbox's Keycloak; a skip with the reason only when none is provisioned or it is switched off
    for the whole run."""
    if SESSION_SWITCH == "off":
        pytest.skip(f"Keycloak switched off for this run by {SWITCH}=off")
    monkeypatch.delenv(SWITCH)  # tests/conftest.py switches it off for the runs a test starts itself
    home, why = keycloak_home()
    if home is None:
        pytest.skip(why)
    assert sandbox.keycloak is not None, f"Keycloak provisioned in {home} but not serving the sandbox"
    return sandbox.keycloak


def test_the_sandbox_names_keycloak_as_its_identity_provider(keycloak: SandboxKeycloak,
                                                             target: Target) -> None:
    served = target.components["identity-provider"]
    assert served.startswith("Keycloak 26.7.3 (real server") and "its database: keycloak" in served, served
    tables = set(target.db.fingerprint("keycloak"))
    assert {"user_entity", "credential", "realm", "client", "databasechangelog"} <= tables  # Keycloak's own


def test_containment_disables_the_user_revokes_its_sessions_and_the_token_endpoint_refuses_the_old_password(
        keycloak: SandboxKeycloak, target: Target) -> None:
    drill = RansomwareDrill(target, ADMIN, new_run_id())
    drill.steal_credentials()
    openid = KeycloakOpenID(server_url=keycloak.server.url, realm_name="akko", client_id=LOGIN_CLIENT)
    session = openid.token(ADMIN, drill.stolen)  # the attacker's open session
    assert keycloak.identities.sessions(ADMIN) == 1
    assert drill.contain() >= 1
    assert keycloak.identities.enabled(ADMIN) is False
    assert keycloak.identities.sessions(ADMIN) == 0
    with pytest.raises(KeycloakPostError, match="Session not active"):
        openid.refresh_token(session["refresh_token"])
    works, answer = drill.stolen_credentials_work()
    assert not works and "token endpoint of realm akko refused: HTTP 400" in answer, answer
    assert drill.stolen not in answer and drill.stolen not in repr(target.identities)


def test_the_rotated_password_is_keycloaks_own(keycloak: SandboxKeycloak, target: Target) -> None:
    drill = RansomwareDrill(target, ADMIN, new_run_id())
    drill.steal_credentials()
    drill.contain()
    admin = keycloak.identities.admin
    admin.update_user(admin.get_user_id(ADMIN), {"enabled": True})  # re-enabled: only the password differs
    old_works, old_answer = keycloak.identities.can_authenticate(ADMIN, drill.stolen)
    new_works, new_answer = keycloak.identities.can_authenticate(ADMIN, target.identities.credential(ADMIN))
    assert (old_works, new_works) == (False, True), (old_answer, new_answer)
    assert "Invalid user credentials" in old_answer


def test_the_realm_export_restored_into_a_fresh_keycloak_lets_a_user_log_in(keycloak: SandboxKeycloak,
                                                                            target: Target) -> None:
    drill = RansomwareDrill(target, ADMIN, new_run_id())
    drill.steal_credentials()
    drill.contain()
    exported = drill.export_realm()
    assert "realm akko exported to s3://akko-backups/keycloak/akko-realm-" in exported
    restored = drill.restore_realm()
    fresh = keycloak.fresh
    assert fresh is not None and fresh.url in restored and fresh.url != keycloak.server.url
    assert "keycloak_restored" in restored and fresh.database == "keycloak_restored"
    works, answer = drill.restored_realm_login()
    assert works, answer
    assert drill.stolen_credentials_work_on_restored_realm()[0] is False


def test_drill_1_restores_the_keycloak_database_under_the_running_keycloak_and_a_login_works(
        keycloak: SandboxKeycloak, target: Target) -> None:
    pid = keycloak.server.process.pid
    drill = RestoreDatabaseDrill(target, "keycloak", new_run_id())
    drill.run("credential")  # every password of the realm gone from its database
    assert drill.table_exists("credential")
    assert keycloak.server.process.pid == pid and keycloak.server.alive()  # never restarted
    assert "user1 logged in on Keycloak 26.7.3 realm akko" in drill.service_answer, drill.service_answer
    assert any("service answers: caches cleared; user1 logged in" in line for line in drill.log)
    assert keycloak.identities.can_authenticate("user2", keycloak.identities.credential("user2"))[0]


def _untouched(sandbox: Sandbox) -> Fingerprint:
    return {t: v for t, v in sandbox.db.fingerprint("keycloak").items() if not written_by_services(t)}


def test_after_its_database_server_restarts_keycloak_answers_at_once_and_writes_only_its_runtime_tables(
        keycloak: SandboxKeycloak, sandbox: Sandbox) -> None:
    before = _untouched(sandbox)
    sandbox.stop_postgres()  # as the fault "a database server lost during the restore" does
    sandbox.pg_server.ensure_postgres_running()  # back, and nothing waits for Keycloak
    users = keycloak.identities.admin.get_users({"max": 1000})  # its pool lends no dead connection
    assert len(users) >= USERS, users
    works, answer = keycloak.identities.can_authenticate("user1", keycloak.identities.credential("user1"))
    assert works, answer
    sandbox.stop_postgres()
    sandbox.start_postgres()  # the sandbox's own restart returns once Keycloak answers
    assert keycloak.identities.admin.get_realm(REALM)["realm"] == REALM
    after = _untouched(sandbox)
    changed = sorted(t for t in before.keys() | after.keys() if before.get(t) != after.get(t))
    assert not changed, f"expected only Keycloak's runtime tables written; also changed: {changed}"


@pytest.mark.parametrize(("cache", "switch", "why"), [
    ("empty-cache", None, "Keycloak 26.7.3 not provisioned in "),
    (None, "off", "Keycloak switched off by AKKO_DR_KEYCLOAK=off")])
def test_without_keycloak_the_stand_in_serves_and_is_named(policy: Policy, monkeypatch: pytest.MonkeyPatch,
                                                           tmp_path: Path, cache: str | None,
                                                           switch: str | None, why: str) -> None:
    if cache:
        monkeypatch.setenv("AKKO_DR_CACHE", str(tmp_path / cache))
    monkeypatch.delenv(SWITCH)
    if switch:
        monkeypatch.setenv(SWITCH, switch)
    root = Path(tempfile.mkdtemp(prefix="akko-dr-no-keycloak-"))
    try:
        with start_sandbox(policy, root=root / "sandbox", consumers=(), initial_backups=False,
                           real_identity=True) as own:
            target = sandbox_target(own, root)
            served = target.components["identity-provider"]
            assert served.startswith(f"PostgreSQL login roles (stand-in for Keycloak: {why}"), served
            assert own.keycloak is None and isinstance(own.identities, PostgresLoginRoles)
            assert own.runs_job("akko-keycloak-realm-export") is False
            drill = RansomwareDrill(target, ADMIN, new_run_id())
            drill.steal_credentials()
            drill.contain()
            assert drill.stolen_credentials_work()[0] is False
            with pytest.raises(NotApplicable, match="no realm export to restore: PostgreSQL login roles"):
                drill.export_realm()
            assert "keycloak" not in target.service_checks
    finally:
        shutil.rmtree(root, ignore_errors=True)
