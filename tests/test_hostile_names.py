"""Hostile names end to end: a database, table, bucket key and identity named with quotes, semicolons,
spaces and unicode are quoted or parameterised, never interpolated into SQL or a shell command."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import replace

import pytest

from akko_dr.backup import backup_database, latest_backup
from akko_dr.drills.restore_database import RestoreDatabaseDrill, quote_ident
from akko_dr.errors import DrillError
from akko_dr.sandbox import Sandbox
from akko_dr.sandbox.seed import CANARY
from akko_dr.targets import Target, new_run_id

HOSTILE_DB = 'we"ird; db ü'
HOSTILE_TABLE = 'ta"ble; DROP TABLE victim; --'
HOSTILE_COLUMN = "wört; \"x\""
HOSTILE_IDENTITY = 'ad"min; DROP ROLE postgres; -- ü'
SERVICE = "akko-weird consumer"


@pytest.fixture
def hostile(sandbox: Sandbox, target: Target) -> Iterator[Target]:
    """The sandbox with one more database, hostile in name, table and column, served by a consumer."""
    db = target.db
    db.drop(HOSTILE_DB)
    db.create(HOSTILE_DB)
    db.execute(HOSTILE_DB, f"CREATE TABLE {quote_ident(HOSTILE_TABLE)} (id int PRIMARY KEY, "
                           f"{quote_ident(HOSTILE_COLUMN)} text); CREATE TABLE victim (id int); "
                           f"INSERT INTO {quote_ident(HOSTILE_TABLE)} VALUES (1, 'it''s; ü'); "
                           "INSERT INTO victim VALUES (1);" + CANARY)
    base = target.policy.database("superset_metadata")
    policy = replace(target.policy, databases={**target.policy.databases,
                                               HOSTILE_DB: replace(base, name=HOSTILE_DB, consumer=SERVICE)})
    argv = [sys.executable, "-m", "akko_dr.sandbox.consumer", db.dsn(HOSTILE_DB), "--writer", SERVICE,
            "--interval", "0.05"]
    sandbox.supervisor.register(SERVICE, argv)  # an argument list: no shell ever sees the name
    sandbox.supervisor.scale(SERVICE, 1)
    try:
        yield replace(target, policy=policy)
    finally:
        sandbox.supervisor.scale(SERVICE, 0)
        for name in db.databases():
            if name.startswith(HOSTILE_DB):
                db.drop(name)


def test_a_hostile_database_is_dumped_to_a_hostile_key_restored_and_swapped_in(hostile: Target) -> None:
    backup = backup_database(hostile.policy, hostile.db, hostile.store, HOSTILE_DB, hostile.workdir)
    assert backup.key == latest_backup(hostile.policy, hostile.store, HOSTILE_DB).key
    assert backup.key.startswith(f"pg/{HOSTILE_DB}_"), backup.key
    before = hostile.db.fingerprint(HOSTILE_DB)
    drill = RestoreDatabaseDrill(hostile, HOSTILE_DB, new_run_id())
    drill.run(HOSTILE_TABLE)
    after = hostile.db.fingerprint(HOSTILE_DB)
    assert after[HOSTILE_TABLE] == before[HOSTILE_TABLE], "the hostile table did not come back as it was"
    assert after["victim"] == before["victim"], "a name was interpolated: the victim table changed"
    assert drill.kept in hostile.db.databases() and drill.leftover_databases() == []


def test_a_hostile_identity_is_provisioned_suspended_and_rotated_by_parameters(sandbox: Sandbox) -> None:
    roles = sandbox.login_roles  # PostgreSQL login roles: where a name could be interpolated into SQL
    roles.provision(HOSTILE_IDENTITY)
    try:
        assert roles.exists(HOSTILE_IDENTITY)
        secret = roles.credential(HOSTILE_IDENTITY)
        assert roles.can_authenticate(HOSTILE_IDENTITY, secret)[0]
        roles.suspend(HOSTILE_IDENTITY)
        assert not roles.can_authenticate(HOSTILE_IDENTITY, secret)[0]
        assert roles.exists("postgres"), "the identity's name was interpolated: postgres was dropped"
    finally:
        sandbox.db.execute("postgres", f"DROP ROLE IF EXISTS {quote_ident(HOSTILE_IDENTITY)}")


def test_a_hostile_identity_keycloak_does_not_accept_is_refused_in_one_line(sandbox: Sandbox) -> None:
    if sandbox.keycloak is None:
        pytest.skip(f"not applicable here: {sandbox.components.get('identity-provider')}")
    try:
        with pytest.raises(DrillError, match="refused to create user") as refused:
            sandbox.identities.provision(HOSTILE_IDENTITY)
    finally:
        sandbox.db.execute("postgres", f"DROP ROLE IF EXISTS {quote_ident(HOSTILE_IDENTITY)}")
    assert "\n" not in str(refused.value)
