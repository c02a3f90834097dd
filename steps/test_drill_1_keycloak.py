"""Steps of features/drill_1_keycloak.feature (logic: akko_dr/drills/restore_database.py)."""

from __future__ import annotations

import pytest
from pytest_bdd import given, parsers, scenarios, then, when

from akko_dr.backup import latest_backup
from akko_dr.drills.restore_database import RestoreDatabaseDrill, take_backup
from akko_dr.errors import NotApplicable
from akko_dr.evidence.record import ScenarioRecord
from akko_dr.targets import Target

scenarios("drill_1_keycloak.feature")

KEYCLOAK_DATABASE = "keycloak"  # the policy's database of Keycloak


@pytest.fixture
def drill_database() -> str:
    """This feature's Drill 1 restores Keycloak's database."""
    return KEYCLOAK_DATABASE


@given("Keycloak serves the identity provider of the drill target")
def _(target: Target, evidence: ScenarioRecord) -> None:
    served = target.components.get("identity-provider", "not named by the target")
    evidence.details["identity provider"] = served
    if KEYCLOAK_DATABASE not in target.service_checks:
        raise NotApplicable(f"not applicable on {target.name}: its identity provider is not Keycloak "
                            f"({served})")


@given("a recent backup of the Keycloak database is in cold storage")
def _(target: Target, drill_backups: set[str], evidence: ScenarioRecord) -> None:
    if target.fresh_backup:
        backup = take_backup(target, KEYCLOAK_DATABASE)
        drill_backups.add(backup.key)
    else:
        backup = latest_backup(target.policy, target.store, KEYCLOAK_DATABASE)
    evidence.details["backup before the incident"] = backup.key


@when(parsers.parse('someone drops the "{table}" table of the Keycloak database'))
def _(drill_1: RestoreDatabaseDrill, table: str) -> None:
    drill_1.drop_table(table)


@when("the Keycloak database is recovered with Drill 1 while Keycloak keeps running")
def _(drill_1: RestoreDatabaseDrill) -> None:
    drill_1.recover()


@then("a user of the realm logs in through Keycloak on the restored database")
def _(drill_1: RestoreDatabaseDrill) -> None:
    answer = drill_1.service_answer
    assert "logged in" in answer, f"expected a realm user's login through Keycloak; actual: {answer!r}"


@then(parsers.parse('the "{table}" table of the Keycloak database is back'))
def _(drill_1: RestoreDatabaseDrill, table: str) -> None:
    assert drill_1.table_exists(table), f"expected table {table} back in keycloak; actual: still missing"


@then(parsers.parse("the recovery time is within the {klass} RTO"))
def _(drill_1: RestoreDatabaseDrill, evidence: ScenarioRecord, klass: str) -> None:
    evidence.judge(drill_1.rto(), drill_1.target.policy.klass(klass), drill_1.database)
