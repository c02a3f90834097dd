"""Steps of features/drill_1_refuses_bad_backups.feature (faults: akko_dr/faults.py)."""

from __future__ import annotations

import pytest
from pytest_bdd import given, parsers, scenarios, then, when

from akko_dr.canary import wait_for_write
from akko_dr.drills.restore_database import RestoreDatabaseDrill
from akko_dr.errors import DrillError, NotApplicable
from akko_dr.evidence.record import ScenarioRecord
from akko_dr.ports import Fault
from akko_dr.targets import Target

scenarios("drill_1_refuses_bad_backups.feature")


@pytest.fixture
def fault() -> Fault:
    raise LookupError("no fault chosen: a 'the drill faces …' step must come first")


@pytest.fixture
def drill_target(target: Target, fault: Fault, drill_database: str) -> Target:
    """The target with the chosen fault applied."""
    return fault.apply(target, drill_database)


@given(parsers.parse("the drill faces {name}"), target_fixture="fault")
def _(target: Target, name: str) -> Fault:
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
