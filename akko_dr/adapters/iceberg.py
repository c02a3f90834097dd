"""Iceberg adapter: tables, snapshots and the files their manifests record, read and rolled back through
pyiceberg (a SQL catalog on PostgreSQL, or a REST catalog such as Polaris); files read with pyarrow."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import cached_property
from urllib.parse import quote, urlsplit, urlunsplit

from akko_dr.errors import DrillError
from akko_dr.ports import CatalogUnreachable, FileContent, IcebergFile, IcebergSnapshot, SnapshotRetention

WRITER_PROPERTY = "akko.writer"  # the summary property a canary writer sets on its commits
MAX_AGE = "history.expire.max-snapshot-age-ms"
MIN_SNAPSHOTS = "history.expire.min-snapshots-to-keep"
ICEBERG_DEFAULT_MAX_AGE = timedelta(days=5)  # Iceberg's defaults when a table sets neither property
ICEBERG_DEFAULT_MIN_SNAPSHOTS = 1


def s3_properties(endpoint: str | None, access_key: str | None, secret_key: str | None,
                  region: str = "us-east-1") -> dict[str, str]:
    """pyiceberg FileIO settings for an S3-compatible endpoint, path-style (MinIO, the emulator)."""
    props = {"s3.region": region, "s3.force-virtual-addressing": "false",
             "py-io-impl": "pyiceberg.io.pyarrow.PyArrowFileIO"}
    if endpoint:
        props["s3.endpoint"] = endpoint
    if access_key and secret_key:
        props |= {"s3.access-key-id": access_key, "s3.secret-access-key": secret_key}
    return props


def sql_catalog_uri(postgres_dsn: str, schema: str) -> str:
    """The SQLAlchemy URI of a SQL catalog in ``schema`` of a PostgreSQL database (psycopg 3 driver)."""
    parts = urlsplit(postgres_dsn)
    query = "&".join(q for q in (parts.query, f"options={quote(f'-csearch_path={schema}')}") if q)
    return urlunsplit(parts._replace(scheme="postgresql+psycopg", query=query))


def open_sql_catalog(name: str, uri: str, warehouse: str, s3: dict[str, str]):
    """pyiceberg's SQL catalog (its tables are created when missing)."""
    from pyiceberg.catalog.sql import SqlCatalog

    return SqlCatalog(name, uri=uri, warehouse=warehouse, **s3)


def open_rest_catalog(name: str, uri: str, warehouse: str, s3: dict[str, str],
                      credential: str | None = None, scope: str | None = None, token_uri: str = ""):
    """pyiceberg's REST catalog client (Polaris); ``credential`` is ``client_id:client_secret``, exchanged
    at ``token_uri`` (default: Polaris's ``<uri>/v1/oauth/tokens``)."""
    from pyiceberg.catalog.rest import RestCatalog

    props = {"uri": uri, "warehouse": warehouse, **s3,
             "oauth2-server-uri": token_uri or f"{uri.rstrip('/')}/v1/oauth/tokens"}
    if credential:
        props["credential"] = credential
    if scope:
        props["scope"] = scope
    return RestCatalog(name, **props)


def _unreachable(err: Exception) -> bool:
    names = {c.__name__ for c in type(err).__mro__}
    return bool(names & {"OperationalError", "InterfaceError", "ConnectionError", "Timeout",
                         "ServiceUnavailableError", "SignInError"})


def canonical_checksum(rows: list[dict]) -> str:
    """A checksum of rows independent of their order and of the file's encoding."""
    lines = sorted(json.dumps(r, sort_keys=True, default=str) for r in rows)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


class IcebergWarehouse:
    """The ``Warehouse`` port over a pyiceberg catalog, opened lazily by ``open_catalog``."""

    def __init__(self, open_catalog: Callable[[], object], bucket: str, catalog: str,
                 namespaces: tuple[str, ...] | None = None, writer: str = "", canary_table: str = "") -> None:
        self._open, self.bucket, self.catalog = open_catalog, bucket, catalog
        self._namespaces, self.writer, self.canary_table = namespaces, writer, canary_table
        self._entries: dict[tuple[str, int], list[IcebergFile]] = {}  # manifests never change once written

    def __repr__(self) -> str:
        return f"IcebergWarehouse({self.catalog})"

    @cached_property
    def _catalog(self):
        return self._call("open the catalog", self._open)

    def _call(self, what: str, fn: Callable, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except DrillError:
            raise
        except Exception as err:
            if _unreachable(err):
                first = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
                raise CatalogUnreachable(f"Iceberg catalog {self.catalog} unreachable ({what}): "
                                         f"{type(err).__name__}: {first}") from None
            raise

    def _table(self, table: str):
        return self._call(f"load {table}", self._catalog.load_table, table)

    def tables(self) -> list[str]:
        spaces = self._namespaces or tuple(".".join(n) for n in
                                           self._call("list namespaces", self._catalog.list_namespaces))
        return sorted(".".join(ident) for ns in spaces
                      for ident in self._call(f"list tables of {ns}", self._catalog.list_tables, ns))

    def history(self, table: str) -> list[IcebergSnapshot]:
        tbl = self._table(table)
        current = tbl.metadata.current_snapshot_id
        chain, by_id = [], {s.snapshot_id: s for s in tbl.metadata.snapshots}
        while current is not None and current in by_id:
            chain.append(_snapshot(table, by_id[current]))
            current = by_id[current].parent_snapshot_id
        return chain[::-1]

    def files(self, table: str, snapshot_id: int) -> list[IcebergFile]:
        tbl = self._table(table)
        snap = tbl.metadata.snapshot_by_id(snapshot_id)
        if snap is None:
            raise DrillError(f"{table} has no snapshot {snapshot_id}")
        io = tbl.io
        out = [IcebergFile(snap.manifest_list, None, "manifest-list")]
        for manifest in self._call(f"read the manifest list of {table}", snap.manifests, io):
            out.append(IcebergFile(manifest.manifest_path, manifest.manifest_length, "manifest"))
            out += self._data_files(manifest, io)
        return out

    def _data_files(self, manifest, io) -> list[IcebergFile]:
        """The live data files a manifest records; read once per manifest (Iceberg never rewrites one)."""
        key = (manifest.manifest_path, manifest.manifest_length)
        if key not in self._entries:
            entries = manifest.fetch_manifest_entry(io, discard_deleted=True)
            self._entries[key] = [IcebergFile(e.data_file.file_path, e.data_file.file_size_in_bytes, "data",
                                              e.data_file.record_count) for e in entries]
        return self._entries[key]

    def read_file(self, table: str, file: IcebergFile) -> FileContent:
        import pyarrow.parquet as pq

        io = self._table(table).io
        try:
            with io.new_input(file.uri).open() as stream:
                rows = pq.read_table(stream).to_pylist()
        except Exception as err:
            raise DrillError(f"{file.uri} unreadable: {type(err).__name__}: "
                             f"{(str(err).splitlines() or [''])[0][:160]}") from None
        return FileContent(len(rows), canonical_checksum(rows))

    def metadata_location(self, table: str) -> str:
        return self._table(table).metadata_location

    def rollback(self, table: str, snapshot_id: int) -> str:
        tbl = self._table(table)
        replaced = tbl.metadata_location
        manage = tbl.manage_snapshots().rollback_to_snapshot(snapshot_id)
        self._call(f"roll back {table}", manage.commit)
        return replaced

    def delete_rows(self, table: str, row_filter: str, base_snapshot: int) -> IcebergSnapshot:
        tbl = self._table(table)
        if tbl.metadata.current_snapshot_id != base_snapshot:
            raise DrillError(f"{table} moved on from snapshot {base_snapshot}")
        from pyiceberg.exceptions import CommitFailedException

        _commit_once(tbl)  # pyiceberg would re-apply the delete on a commit that landed meanwhile
        try:
            self._call(f"delete rows of {table}", tbl.delete, row_filter)
        except CommitFailedException:
            raise DrillError(f"{table} moved on from snapshot {base_snapshot} during the commit") from None
        return _snapshot(table, tbl.current_snapshot())

    def retention(self, table: str) -> SnapshotRetention:
        props = self._table(table).properties
        age = props.get(MAX_AGE)
        keep = props.get(MIN_SNAPSHOTS)
        return SnapshotRetention(
            timedelta(milliseconds=int(age)) if age else ICEBERG_DEFAULT_MAX_AGE,
            int(keep) if keep else ICEBERG_DEFAULT_MIN_SNAPSHOTS, declared=bool(age or keep))


def _commit_once(tbl) -> None:
    """This table object commits on the snapshot it was loaded at or not at all: no retry re-applying its
    change on top of a commit that landed in between (pyiceberg's default is 4 retries)."""
    from pyiceberg.table import TableProperties

    props = {**tbl.metadata.properties, TableProperties.COMMIT_NUM_RETRIES: "0"}
    tbl.metadata = tbl.metadata.model_copy(update={"properties": props})


def _snapshot(table: str, snap) -> IcebergSnapshot:
    summary = dict(snap.summary.additional_properties) if snap.summary else {}
    operation = snap.summary.operation.value if snap.summary else ""
    return IcebergSnapshot(table, snap.snapshot_id, snap.parent_snapshot_id,
                           datetime.fromtimestamp(snap.timestamp_ms / 1000, UTC), operation,
                           summary.get(WRITER_PROPERTY, ""), summary)

