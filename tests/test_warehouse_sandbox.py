"""The sandbox's real Iceberg warehouse: its tables, the checks on them, and what makes them fail."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from akko_dr.checks.warehouse import (
    WarehouseContext,
    check_files_present,
    check_snapshots_fresh,
    current_files,
)
from akko_dr.measure import utcnow
from akko_dr.policy import load_policy
from akko_dr.ports import CatalogUnreachable
from akko_dr.sandbox import Sandbox, start_sandbox
from akko_dr.sandbox.warehouse import CATALOG_DATABASE, EVENTS, WRITER


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with start_sandbox(load_policy(), iceberg=True, initial_backups=False) as sandbox:
        yield sandbox


def _ctx(sandbox: Sandbox, deadline: float = 30.0) -> WarehouseContext:
    return WarehouseContext(sandbox.policy, sandbox.warehouse, sandbox.store, utcnow(),
                            timedelta(seconds=deadline))


def test_the_catalog_holds_partitioned_tables_with_an_evolved_schema(sandbox: Sandbox) -> None:
    catalog = sandbox.warehouse._catalog
    tables = {t: catalog.load_table(t) for t in sandbox.warehouse.tables()}
    assert set(tables) == {"akko.events", "akko.sales", "akko.customers"}
    assert all(t.spec().fields for t in tables.values()), "every table is partitioned"
    assert "channel" in tables["akko.sales"].schema().column_names
    assert len(tables["akko.sales"].schemas()) == 2, "sales has two schema versions"
    assert "display_name" in tables["akko.customers"].schema().column_names


def test_the_catalog_lives_in_the_polaris_database(sandbox: Sandbox) -> None:
    tables = sandbox.db.fingerprint(CATALOG_DATABASE)
    assert tables["iceberg_catalog.iceberg_tables"]["rows"] == 3


def test_the_writer_keeps_committing(sandbox: Sandbox) -> None:
    from akko_dr.measure import wait_for

    first = sandbox.warehouse.history(EVENTS)[-1].snapshot_id
    newer = wait_for("a new writer snapshot", lambda: (
        s if (s := sandbox.warehouse.history(EVENTS)[-1]).snapshot_id != first else None), 30)
    assert newer.writer == WRITER


def test_the_checks_pass_on_the_running_warehouse(sandbox: Sandbox) -> None:
    for check in (check_snapshots_fresh(_ctx(sandbox)), check_files_present(_ctx(sandbox))):
        assert check.ok, check.reason


def test_a_truncated_data_file_fails_the_files_check(sandbox: Sandbox) -> None:
    data = next(f for f in current_files(sandbox.warehouse, "akko.sales") if f.kind == "data")
    body = sandbox.store.read(data.bucket, data.key)
    sandbox.store.put_bytes(data.bucket, data.key, body[:100])
    try:
        check = check_files_present(_ctx(sandbox, deadline=0))
    finally:
        sandbox.store.put_bytes(data.bucket, data.key, body)
    assert check.status == "failed"
    assert f"{data.key} in s3://{data.bucket} has 100 bytes, its metadata records {data.size}" in check.reason


def test_a_stopped_catalog_is_unreachable(sandbox: Sandbox) -> None:
    sandbox.stop_postgres()
    try:
        with pytest.raises(CatalogUnreachable, match="unreachable"):
            sandbox.warehouse.history(EVENTS)
    finally:
        sandbox.start_postgres()
    assert sandbox.warehouse.history(EVENTS), "the catalog answers again once its server is back"
