"""The warehouse checks on in-memory fakes of the Warehouse and ObjectStore ports: each can fail."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import pytest

from akko_dr.checks import CheckResult
from akko_dr.checks.warehouse import (
    WarehouseContext,
    check_files_present,
    check_iceberg_scope,
    check_retention,
    check_snapshots_fresh,
    iceberg_row,
)
from akko_dr.errors import PolicyError
from akko_dr.policy import Policy, _snapshot_retention, load_policy
from akko_dr.ports import FileContent, IcebergFile, IcebergSnapshot, SnapshotRetention, StoredObject

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
WAREHOUSE, REPLICA = "akko-warehouse", "akko-replica"


@dataclass
class FakeStore:
    objects: dict[tuple[str, str], bytes] = field(default_factory=dict)
    endpoint: str = "memory"

    def put_bytes(self, bucket: str, key: str, body: bytes) -> None:
        self.objects[bucket, key] = body

    def read(self, bucket: str, key: str) -> bytes:
        return self.objects[bucket, key]

    def delete(self, bucket: str, key: str) -> None:
        self.objects.pop((bucket, key), None)

    def list(self, bucket: str, prefix: str = "") -> list[StoredObject]:
        return [StoredObject(b, k, len(v), NOW) for (b, k), v in self.objects.items()
                if b == bucket and k.startswith(prefix)]


@dataclass
class FakeWarehouse:
    snapshots: dict[str, list[IcebergSnapshot]]
    files_of: dict[int, list[IcebergFile]]
    kept: dict[str, SnapshotRetention] = field(default_factory=dict)
    catalog: str = "fake catalog"
    bucket: str = WAREHOUSE
    writer: str = "writer"
    canary_table: str = "akko.events"

    def tables(self) -> list[str]:
        return sorted(self.snapshots)

    def history(self, table: str) -> list[IcebergSnapshot]:
        return self.snapshots[table]

    def files(self, table: str, snapshot_id: int) -> list[IcebergFile]:
        return self.files_of[snapshot_id]

    def read_file(self, table: str, file: IcebergFile) -> FileContent:
        return FileContent(file.records or 0, "x")

    def metadata_location(self, table: str) -> str:
        return f"s3://{WAREHOUSE}/{table}/metadata/v1.json"

    def retention(self, table: str) -> SnapshotRetention:
        return self.kept.get(table, SnapshotRetention(timedelta(days=5), 1, False))


def _snap(table: str, sid: int, age: timedelta, parent: int | None = None) -> IcebergSnapshot:
    return IcebergSnapshot(table, sid, parent, NOW - age, "append")


@pytest.fixture
def policy() -> Policy:
    return load_policy()


@pytest.fixture
def world() -> tuple[FakeWarehouse, FakeStore]:
    """One table, two snapshots; its files in the warehouse and the replica with their recorded sizes."""
    files = [IcebergFile(f"s3://{WAREHOUSE}/t/metadata/snap-2.avro", None, "manifest-list"),
             IcebergFile(f"s3://{WAREHOUSE}/t/metadata/m1.avro", 40, "manifest"),
             IcebergFile(f"s3://{WAREHOUSE}/t/data/a.parquet", 100, "data", 5),
             IcebergFile(f"s3://{WAREHOUSE}/t/data/b.parquet", 120, "data", 7)]
    wh = FakeWarehouse({"akko.t": [_snap("akko.t", 1, timedelta(minutes=20)),
                                   _snap("akko.t", 2, timedelta(minutes=5), parent=1)]}, {2: files})
    store = FakeStore()
    for f in files:
        for bucket in (WAREHOUSE, REPLICA):
            store.put_bytes(bucket, f.key, b"x" * (f.size or 10))
    return wh, store


def _ctx(policy: Policy, world: tuple[FakeWarehouse, FakeStore]) -> WarehouseContext:
    return WarehouseContext(policy, world[0], world[1], NOW, timedelta(0))


def test_the_iceberg_row_is_critical_data(policy: Policy) -> None:
    assert iceberg_row(policy).klass.key == "critical-data"


def test_fresh_snapshots_pass(policy: Policy, world) -> None:
    check = check_snapshots_fresh(_ctx(policy, world))
    assert check.ok, check.reason
    assert "5m" in check.reason


def test_a_snapshot_older_than_the_rpo_fails(policy: Policy, world) -> None:
    wh, _ = world
    wh.snapshots["akko.t"] = [_snap("akko.t", 2, timedelta(hours=2))]
    check = check_snapshots_fresh(_ctx(policy, world))
    assert check.status == "failed"
    assert "akko.t's current snapshot is 2h old > RPO 1h" in check.reason


def test_a_table_without_a_snapshot_fails(policy: Policy, world) -> None:
    world[0].snapshots["akko.empty"] = []
    check = check_snapshots_fresh(_ctx(policy, world))
    assert check.status == "failed" and "akko.empty has no current snapshot" in check.reason


def test_a_catalog_without_tables_fails(policy: Policy, world) -> None:
    world[0].snapshots.clear()
    assert "lists no table" in check_snapshots_fresh(_ctx(policy, world)).reason


def test_files_present_everywhere_pass(policy: Policy, world) -> None:
    check = check_files_present(_ctx(policy, world))
    assert check.ok, check.reason


def test_a_data_file_missing_from_the_warehouse_fails(policy: Policy, world) -> None:
    world[1].delete(WAREHOUSE, "t/data/a.parquet")
    check = check_files_present(_ctx(policy, world))
    assert check.status == "failed"
    assert f"data file t/data/a.parquet missing from s3://{WAREHOUSE}" in check.reason


def test_a_replica_copy_of_another_size_fails(policy: Policy, world) -> None:
    world[1].put_bytes(REPLICA, "t/data/b.parquet", b"short")
    check = check_files_present(_ctx(policy, world))
    expected = f"data file t/data/b.parquet in s3://{REPLICA} has 5 bytes, its metadata records 120"
    assert expected in check.reason


def test_a_manifest_missing_from_the_replica_fails(policy: Policy, world) -> None:
    world[1].delete(REPLICA, "t/metadata/m1.avro")
    assert f"manifest file t/metadata/m1.avro missing from s3://{REPLICA}" in check_files_present(
        _ctx(policy, world)).reason


def test_a_missing_manifest_list_fails(policy: Policy, world) -> None:
    world[1].delete(WAREHOUSE, "t/metadata/snap-2.avro")
    check = check_files_present(_ctx(policy, world))
    assert "manifest-list file t/metadata/snap-2.avro missing" in check.reason


def test_a_file_outside_the_warehouse_bucket_fails(policy: Policy, world) -> None:
    world[0].files_of[2].append(IcebergFile("s3://elsewhere/t/data/c.parquet", 9, "data", 1))
    assert "outside the warehouse bucket" in check_files_present(_ctx(policy, world)).reason


def test_the_replica_is_waited_for_up_to_its_deadline(policy: Policy, world) -> None:
    world[1].delete(REPLICA, "t/data/a.parquet")
    ctx = replace(_ctx(policy, world), replica_deadline=timedelta(seconds=0.2))
    check = check_files_present(ctx)
    assert check.status == "failed" and "deadline 0.2s" in str(check.measured["replica_wait"])


def test_default_retention_passes(policy: Policy, world) -> None:
    check = check_retention(_ctx(policy, world))
    assert check.ok, check.reason
    assert "policy: none declared" in check.reason


def test_a_table_expiring_snapshots_within_the_rpo_fails(policy: Policy, world) -> None:
    world[0].kept["akko.t"] = SnapshotRetention(timedelta(minutes=30), 1, True)
    check = check_retention(_ctx(policy, world))
    assert check.status == "failed" and "akko.t expires snapshots older than 30m < 1h" in check.reason


def test_a_policy_retention_shorter_than_the_rpo_fails(policy: Policy, world) -> None:
    check = check_retention(_ctx(replace(policy, snapshot_retention=timedelta(minutes=30)), world))
    assert "the policy's snapshot retention 30m < RPO 1h" in check.reason


def test_a_table_keeping_less_than_the_policy_declares_fails(policy: Policy, world) -> None:
    check = check_retention(_ctx(replace(policy, snapshot_retention=timedelta(days=7)), world))
    assert check.status == "failed" and "akko.t expires snapshots older than 5d < 7d" in check.reason


def test_a_snapshot_log_expired_within_the_rpo_fails(policy: Policy, world) -> None:
    world[0].snapshots["akko.t"] = [_snap("akko.t", 2, timedelta(minutes=5), parent=1)]
    check = check_retention(_ctx(policy, world))
    assert "snapshot log reaches back 5m only" in check.reason


def _artefact(status: str) -> CheckResult:
    return CheckResult("scope.artefact.job", "job", status, f"job {status}")


def test_the_scope_row_passes_on_snapshots_and_replication_naming_what_is_not_applicable(
        policy: Policy, world) -> None:
    check = check_iceberg_scope(_ctx(policy, world), iceberg_row(policy),
                                [_artefact("passed"), _artefact("not-applicable")])
    assert check.ok and "job not-applicable" in check.reason


def test_the_scope_row_fails_when_a_file_is_missing(policy: Policy, world) -> None:
    world[1].delete(WAREHOUSE, "t/data/a.parquet")
    check = check_iceberg_scope(_ctx(policy, world), iceberg_row(policy), [_artefact("passed")])
    assert check.status == "failed" and "missing" in check.reason


def test_the_scope_row_fails_when_an_artefact_fails(policy: Policy, world) -> None:
    check = check_iceberg_scope(_ctx(policy, world), iceberg_row(policy), [_artefact("failed")])
    assert check.status == "failed" and "job failed" in check.reason


def test_the_policy_declares_snapshot_retention() -> None:
    assert _snapshot_retention({"snapshot_retention": "7d"}) == timedelta(days=7)
    assert _snapshot_retention(None) is None
    with pytest.raises(PolicyError, match=r"warehouse\.snapshot_retention"):
        _snapshot_retention({"snapshot_retention": "soon"})
