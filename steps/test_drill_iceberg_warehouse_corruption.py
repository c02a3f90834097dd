"""Steps of features/drill_iceberg_warehouse_corruption.feature.

Logic: akko_dr/drills/warehouse_corruption.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytest_bdd import given, parsers, scenarios, then, when

from akko_dr.drills.warehouse_corruption import WarehouseCorruptionDrill
from akko_dr.errors import DrillError, NotApplicable
from akko_dr.evidence.record import ScenarioRecord
from akko_dr.ports import Fault
from akko_dr.targets import Target, new_run_id

scenarios("drill_iceberg_warehouse_corruption.feature")

BAD_WRITE = "writer == 'seed'"  # the rows a faulty job deletes: the table's first rows
CATALOG_FAULT = "an unreachable catalog"
RPO_BASIS = ("the warehouse writer's newest commit before the declaration, against the newest of its commits "
             "in the recovered snapshot's history")


@pytest.fixture
def iceberg_drill(target: Target, evidence: ScenarioRecord) -> Iterator[WarehouseCorruptionDrill]:
    """One run of the drill; whatever happens, the writer runs again afterwards."""
    warehouse = target.port("warehouse")
    drill = WarehouseCorruptionDrill(target, warehouse.canary_table, new_run_id())
    yield drill
    drill.abort()
    evidence.details.update(drill.evidence())
    if undone := drill.undo_rehearsal():
        evidence.details["rehearsal undone after the scenario"] = undone


@given("the AKKO warehouse is running on the drill target")
def _(target: Target, evidence: ScenarioRecord) -> None:
    evidence.details["catalog"] = target.port("warehouse").catalog


@given("the warehouse writer is committing to its table")
def _(iceberg_drill: WarehouseCorruptionDrill) -> None:
    iceberg_drill.wait_for_writer()


@when("a faulty job commits a change deleting rows of the writer's table it should not")
def _(iceberg_drill: WarehouseCorruptionDrill) -> None:
    iceberg_drill.bad_write(BAD_WRITE)


@when("data files of the writer's table are deleted and corrupted in the warehouse")
def _(iceberg_drill: WarehouseCorruptionDrill) -> None:
    iceberg_drill.damage_files(deleted=1, corrupted=1)


@when(parsers.parse("the data files of the {which} are lost in the warehouse and in the replica"))
def _(iceberg_drill: WarehouseCorruptionDrill, which: str) -> None:
    iceberg_drill.damage_files(deleted=1, corrupted=0, which=which, from_replica=True)


@when("the incident is declared and the warehouse writer stopped")
def _(iceberg_drill: WarehouseCorruptionDrill) -> None:
    iceberg_drill.declare()


@when("the incident is declared as having begun before the oldest snapshot the table keeps")
def _(iceberg_drill: WarehouseCorruptionDrill) -> None:
    oldest = iceberg_drill.wh.history(iceberg_drill.table)[0].committed_at
    iceberg_drill.declare(incident_at=oldest)


@when("the table is recovered")
def _(iceberg_drill: WarehouseCorruptionDrill) -> None:
    iceberg_drill.recover()


@when("the recovery of the table is attempted", target_fixture="refusal")
def _(iceberg_drill: WarehouseCorruptionDrill, evidence: ScenarioRecord) -> str:
    try:
        iceberg_drill.recover()
    except NotApplicable:
        raise
    except DrillError as err:
        evidence.details["refused"] = str(err)
        return str(err)
    return ""


@pytest.fixture
def catalog_faults() -> Iterator[list[Fault]]:
    """Faults applied by the scenario; cleared afterwards whatever happens."""
    applied: list[Fault] = []
    yield applied
    while applied:
        applied.pop().clear()


@when("the catalog stops answering")
def _(target: Target, iceberg_drill: WarehouseCorruptionDrill, catalog_faults: list[Fault]) -> None:
    fault = target.port("faults")[CATALOG_FAULT]
    fault.apply(target, iceberg_drill.table)
    catalog_faults.append(fault)


@when("the catalog answers again")
def _(catalog_faults: list[Fault]) -> None:
    while catalog_faults:
        catalog_faults.pop().clear()


@when("every data file of the recovered table matches what was recorded before the incident")
def _(iceberg_drill: WarehouseCorruptionDrill, evidence: ScenarioRecord) -> None:
    evidence.details["integrity check"] = iceberg_drill.verify()["method"]


@when("the warehouse writer is restarted")
def _(iceberg_drill: WarehouseCorruptionDrill) -> None:
    iceberg_drill.restart_writer()


@then("the table is back at the last snapshot before the incident")
def _(iceberg_drill: WarehouseCorruptionDrill) -> None:
    expected, actual = iceberg_drill.record.snapshot.snapshot_id, iceberg_drill.recovered.snapshot_id
    assert actual == expected, f"expected snapshot {expected} (last before the incident); actual {actual}"


@then("the table is back at the newest snapshot whose files are all intact")
def _(iceberg_drill: WarehouseCorruptionDrill) -> None:
    expected, actual = iceberg_drill.record.snapshot.parent_id, iceberg_drill.recovered.snapshot_id
    assert actual == expected, f"expected snapshot {expected} (before the lost files); actual {actual}"


@then("the damaged files came back from the replica")
def _(iceberg_drill: WarehouseCorruptionDrill) -> None:
    found, copied = sorted(iceberg_drill.damaged), sorted(iceberg_drill.copied)
    assert found and copied == found, f"expected the damaged files {found} copied back; copied {copied}"


@then("what the recovery replaced is kept for sign-off")
def _(iceberg_drill: WarehouseCorruptionDrill) -> None:
    kept = [line.rsplit(" ", 1)[-1] for line in iceberg_drill.kept]
    assert kept, "expected what the recovery replaced to be kept; nothing was"
    store = iceberg_drill.target.store
    gone = [uri for uri in kept if not store.list(*uri.removeprefix("s3://").split("/", 1))]
    assert not gone, f"expected every replaced file kept until sign-off; gone: {gone}"


@then(parsers.parse('the recovery is refused because "{reason}"'))
def _(refusal: str, reason: str) -> None:
    assert reason in refusal, f"expected a refusal because {reason!r}; actual: {refusal or 'not refused'}"


@then("the table is as the incident left it")
def _(iceberg_drill: WarehouseCorruptionDrill) -> None:
    expected = iceberg_drill.pointer_after_incident
    actual = iceberg_drill.wh.metadata_location(iceberg_drill.table)
    assert actual == expected, f"expected the metadata pointer the incident left {expected}; actual {actual}"
    assert not iceberg_drill.kept, f"expected nothing replaced; actual {iceberg_drill.kept}"


@then(parsers.parse("the recovery time is within the {klass} RTO"))
def _(iceberg_drill: WarehouseCorruptionDrill, evidence: ScenarioRecord, klass: str) -> None:
    evidence.judge(iceberg_drill.rto(), iceberg_drill.target.policy.klass(klass), iceberg_drill.table)


@then(parsers.parse("the data loss is within the {klass} RPO"))
def _(iceberg_drill: WarehouseCorruptionDrill, evidence: ScenarioRecord, klass: str) -> None:
    evidence.rpo_basis = RPO_BASIS
    evidence.judge(iceberg_drill.rpo(), iceberg_drill.target.policy.klass(klass), iceberg_drill.table)
