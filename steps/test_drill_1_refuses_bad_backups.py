"""Steps of features/drill_1_refuses_bad_backups.feature (faults: akko_dr/sandbox/faults.py)."""

from __future__ import annotations

import pytest
from pytest_bdd import given, parsers, scenarios, then, when

from akko_dr.canary import wait_for_write
from akko_dr.drills.restore_database import RestoreDatabaseDrill
from akko_dr.errors import DrillError, NotApplicable
from akko_dr.evidence.record import ScenarioRecord
from akko_dr.ports import Fault, Fingerprint, written_by_services
from akko_dr.targets import Target, new_run_id

scenarios("drill_1_refuses_bad_backups.feature")


@pytest.fixture
def fault() -> Fault:
    raise LookupError("no fault chosen: a 'the drill faces …' step must come first")


@pytest.fixture
def drill_target(target: Target, fault: Fault, drill_database: str) -> Target:
    """The target with the chosen fault applied."""
    return fault.apply(target, drill_database)


@pytest.fixture
def originals(target: Target, drill_database: str) -> dict[str, Fingerprint]:
    """Every other database's content (without the canary) before the fault: a fault touches none."""
    return {name: content_of(target, name) for name in target.policy.databases if name != drill_database}


def content_of(target: Target, name: str) -> Fingerprint:
    return {t: v for t, v in target.db.fingerprint(name).items() if not written_by_services(t)}


@given(parsers.parse("the drill faces {name}"), target_fixture="fault")
def _(target: Target, name: str, originals: dict[str, Fingerprint]) -> Fault:
    return target.port("faults")[name]


@when("the Superset metadata database is recovered from the latest backup", target_fixture="refusal")
def _(drill_1: RestoreDatabaseDrill, evidence: ScenarioRecord) -> str:
    try:
        drill_1.recover()
    except NotApplicable:
        raise  # the target cannot run the drill: a coverage gap, not a refusal
    except DrillError as err:
        evidence.details["drill outcome"] = f"refused: {err}"
        return str(err)
    return ""


@when("the fault is cleared and the drill cleans up after itself")
def _(drill_1: RestoreDatabaseDrill, fault: Fault) -> None:
    fault.clear()
    drill_1.abort()


@then(parsers.parse('the recovery is refused because "{reason}"'))
def _(refusal: str, reason: str) -> None:
    assert refusal, f"the recovery went through; expected a refusal because {reason!r}"
    assert reason in refusal, f"refused for another reason: expected {reason!r} in {refusal!r}"
    assert "\n" not in refusal, f"the reason is not one line: {refusal!r}"


@then("the Superset metadata database is as the incident left it")
def _(drill_1: RestoreDatabaseDrill) -> None:
    changed = drill_1.changes_since_incident()
    assert not changed, f"{drill_1.database} changed during a refused recovery: {', '.join(changed)}"


@then("no scratch database is left behind")
def _(drill_1: RestoreDatabaseDrill) -> None:
    left = drill_1.leftover_databases()
    assert not left, f"scratch database left behind: {', '.join(left)}"


@then("the Superset service is running again")
def _(drill_1: RestoreDatabaseDrill, target: Target) -> None:
    consumer = drill_1.info.consumer
    assert target.orchestrator.running(consumer) >= 1, f"{consumer} is not running"
    wait_for_write(target.port("canary"), drill_1.database, after=drill_1.last_write_before_incident)


@then("every other database is as it was before the fault")
def _(target: Target, originals: dict[str, Fingerprint]) -> None:
    changed = sorted(name for name, before in originals.items() if content_of(target, name) != before)
    assert not changed, f"databases changed by a refused recovery: expected none, got {', '.join(changed)}"


@then("no file of the drill is left behind")
def _(drill_1: RestoreDatabaseDrill) -> None:
    left = drill_1.leftover_files()
    assert not left, f"files left behind: expected none, got {', '.join(map(str, left))}"


@then("a second recovery, without the fault, succeeds")
def _(target: Target, drill_1: RestoreDatabaseDrill, evidence: ScenarioRecord) -> None:
    again = RestoreDatabaseDrill(target, drill_1.database, new_run_id())
    again.dropped_table = drill_1.dropped_table
    try:
        again.recover()
    finally:
        again.discard_files()
    evidence.details["second recovery, without the fault"] = f"validated: {again.verified_how}"
    table = drill_1.dropped_table
    assert again.table_exists(table), f"{table}: expected back after the second recovery, still missing"
