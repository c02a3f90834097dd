"""A live target's Iceberg catalog: named in the target file, opened with pyiceberg's REST client; the drill
writes nothing there without the destructive opt-in."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from akko_dr.drills.warehouse_corruption import WarehouseCorruptionDrill
from akko_dr.errors import NotApplicable, PolicyError
from akko_dr.policy import load_policy
from akko_dr.ports import CatalogUnreachable
from akko_dr.targetfile import Credential, live_warehouse, load_target_file
from akko_dr.targets import Target

ICEBERG = """
s3: {endpoint: "http://127.0.0.1:9", access_key: {env: AK}, secret_key: {env: SK}}
iceberg:
  catalog: {uri: "URI", warehouse: akko, credential: {env: POLARIS_CREDENTIAL}, scope: "PRINCIPAL_ROLE:ALL"}
  namespaces: [akko]
  writer: {service: akko-iceberg-writer, table: akko.events}
"""


def _file(tmp_path: Path, text: str, uri: str = "https://polaris.example/api/catalog") -> Path:
    path = tmp_path / "target.yaml"
    path.write_text(text.replace("URI", uri))
    return path


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_target_file_names_the_rest_catalog(tmp_path: Path) -> None:
    ice = load_target_file(_file(tmp_path, ICEBERG)).iceberg
    assert (ice.uri, ice.warehouse) == ("https://polaris.example/api/catalog", "akko")
    assert ice.namespaces == ("akko",)
    assert ice.credential == Credential(env="POLARIS_CREDENTIAL")
    assert (ice.writer, ice.table) == ("akko-iceberg-writer", "akko.events")


def test_a_credential_value_in_the_iceberg_section_is_refused(tmp_path: Path) -> None:
    text = ICEBERG.replace("{env: POLARIS_CREDENTIAL}", "root:s3cr3t")
    with pytest.raises(PolicyError, match="credentials never go in the target file") as err:
        load_target_file(_file(tmp_path, text))
    assert "s3cr3t" not in str(err.value)


def test_a_catalog_without_uri_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"iceberg\.catalog\.uri"):
        load_target_file(_file(tmp_path, "iceberg: {catalog: {warehouse: akko}}\n"))


def test_an_unreachable_rest_catalog_is_reported_in_one_line(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in (("AK", "key"), ("SK", "secret"), ("POLARIS_CREDENTIAL", "client:secret")):
        monkeypatch.setenv(name, value)
    tf = load_target_file(_file(tmp_path, ICEBERG, f"http://127.0.0.1:{_closed_port()}/api/catalog"))
    warehouse = live_warehouse(tf, load_policy(), lambda *ref: "")
    assert warehouse.bucket == "akko-warehouse" and warehouse.writer == "akko-iceberg-writer"
    with pytest.raises(CatalogUnreachable, match="unreachable") as err:
        warehouse.tables()
    assert "client:secret" not in str(err.value) and "\n" not in str(err.value)


class _NoWrites:
    """A warehouse that fails the test if anything writes to it."""

    catalog, bucket, writer, canary_table = "fake", "akko-warehouse", "writer", "akko.events"

    def delete_rows(self, *args: object) -> None:
        raise AssertionError("a write reached the catalog without the opt-in")

    rollback = delete_rows


def test_the_drill_writes_nothing_on_a_live_target_without_the_opt_in(tmp_path: Path) -> None:
    target = Target(kind="live", policy=load_policy(), db=None, store=None, orchestrator=None,
                    workdir=tmp_path, warehouse=_NoWrites())
    drill = WarehouseCorruptionDrill(target, "akko.events", "run")
    with pytest.raises(NotApplicable, match="plan only"):
        drill.bad_write("writer == 'seed'")
    with pytest.raises(NotApplicable, match="plan only"):
        drill.damage_files(1, 0)
    drill.incident = "bad write"
    with pytest.raises(NotApplicable, match="plan only"):
        drill.recover()


def test_a_live_target_without_a_canary_writer_cannot_run_the_drill(tmp_path: Path) -> None:
    warehouse = _NoWrites()
    warehouse.writer = ""
    target = Target(kind="live", policy=load_policy(), db=None, store=None, orchestrator=None,
                    workdir=tmp_path, warehouse=warehouse)
    with pytest.raises(NotApplicable, match=r"iceberg\.writer"):
        WarehouseCorruptionDrill(target, "", "run").wait_for_writer()
