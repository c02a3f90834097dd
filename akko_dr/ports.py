"""The interfaces a drill or a check talks to, and the types they pass; each target supplies adapters.

Drills, checks and steps import from here, never from ``akko_dr.adapters`` or ``akko_dr.sandbox``;
``akko_dr.wiring`` is the one place that chooses an adapter for each port.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from akko_dr.dump_content import DumpContent
from akko_dr.errors import DrillError

Fingerprint = dict[str, dict[str, object]]  # table -> {"rows": int, "checksum": str}; matview -> POPULATED
POPULATED = {"materialized view": "populated"}  # its rows are derived: a restore refreshes them
HASHED_AS_TEXT = {"hashed": "as text"}  # added to a table's entry whose rows were hashed by their text form
Catalog = dict[str, dict[str, str]]  # category -> object -> digest (or position) of its normalised definition
DUMP_SUFFIXES = (".sql.gz", ".dump", ".sql", ".tar")  # what a dump key may end with (its format)
CANARY_TABLE = "dr_canary"  # where a canary writer commits its heartbeat rows; never part of a comparison
ICEBERG_CATALOG_SCHEMA = "iceberg_catalog"  # where the SQL catalog's running writer commits (like the canary)


# What Keycloak 26 writes while it serves, measured on its database: login and admin events, and the sessions
# it persists (an admin's token renewal adds one, a logout removes it).
KEYCLOAK_RUNTIME_TABLES = frozenset({"event_entity", "admin_event_entity", "offline_user_session",
                                     "offline_client_session"})


def written_by_services(table: str) -> bool:
    """Whether a running service keeps writing this table (the canary, the Iceberg catalog's pointers,
    Keycloak's events and sessions): the comparisons of "untouched" content leave it out."""
    return (table == CANARY_TABLE or table.startswith(f"{ICEBERG_CATALOG_SCHEMA}.")
            or table in KEYCLOAK_RUNTIME_TABLES)
# What a dump written by the sandbox's job ends with, by format: plain SQL gzipped (what AKKO's jobs
# write) or pg_dump's custom archive (restored in parallel by pg_restore -j).
FORMAT_SUFFIXES = {"plain": ".sql.gz", "custom": ".dump"}


def dump_stem(key: str) -> str:
    """A dump key without its format suffix."""
    for suffix in DUMP_SUFFIXES:
        if key.endswith(suffix):
            return key.removesuffix(suffix)
    return key


# -- types passed through the ports ---------------------------------------------------------------
@dataclass(frozen=True)
class StoredObject:
    """An object in the object store, as listed."""

    bucket: str
    key: str
    size: int
    last_modified: datetime


@dataclass(frozen=True)
class BucketLock:
    """A bucket's Object Lock default retention (None fields when the lock has no default rule)."""

    enabled: bool
    mode: str | None
    retention: timedelta | None


@dataclass
class BackupObject:
    """Provenance of one dump in the object store: what an auditor needs to trace a restore."""

    database: str
    bucket: str
    key: str
    taken_at: datetime
    size: int = 0
    sha256: str = ""
    job: str = ""
    fingerprint: Fingerprint = field(default_factory=dict)
    catalog: Catalog = field(default_factory=dict)  # everything but table rows (empty in older manifests)
    unparsed: tuple[str, ...] = ()  # keys beside it that match no dump name of the policy (reported)

    @property
    def manifest_key(self) -> str:
        return dump_stem(self.key) + ".manifest.json"

    def manifest(self) -> bytes:
        data = asdict(self) | {"taken_at": self.taken_at.isoformat()}
        data.pop("unparsed")
        return json.dumps(data, indent=2, sort_keys=True).encode()

    def provenance(self) -> dict[str, object]:
        """The fields the evidence shows (no fingerprint detail)."""
        out: dict[str, object] = {
            "database": self.database, "uri": f"s3://{self.bucket}/{self.key}", "key": self.key,
            "size": self.size, "sha256": self.sha256, "taken_at": self.taken_at.isoformat(), "job": self.job}
        if self.unparsed:
            out["keys not parsed as dumps"] = list(self.unparsed)
        return out


@dataclass(frozen=True)
class DatabaseFingerprint:
    """What a service depends on in one database, taken in one snapshot: the rows of every table,
    which materialized views are populated, and the catalog (schema objects, privileges, owners,
    sequences, large objects)."""

    tables: Fingerprint
    catalog: Catalog


@dataclass
class JobRun:
    """One execution of a backup job, as the job runner reports it."""

    job: str
    started_at: datetime
    finished_at: datetime | None = None
    succeeded: bool = False
    error: str = ""
    objects: list[BackupObject] = field(default_factory=list)
    copied: list[str] = field(default_factory=list)
    last_log_line: str = ""
    globals_key: str = ""  # the roles dumped beside the databases (pg-dump jobs)


@dataclass(frozen=True)
class JobStatus:
    """The platform's view of one backup job (a CronJob's status, or the sandbox's runs)."""

    job: str
    found: bool
    schedule: str | None = None  # as deployed; None where the target has no scheduler
    last_success: datetime | None = None
    last_run: datetime | None = None
    last_failed: bool = False
    last_error: str = ""
    suspended: bool = False
    time_zone: str | None = None


@dataclass(frozen=True)
class VeleroBackup:
    """A ``velero.io/v1`` Backup, as listed."""

    name: str
    phase: str
    completed_at: datetime | None
    ttl: timedelta | None
    schedule: str | None = None  # label velero.io/schedule-name
    namespaces: tuple[str, ...] = ()  # spec.includedNamespaces ("*" for all)
    errors: int = 0
    warnings: int = 0
    started_at: datetime | None = None

    def includes(self, namespace: str) -> bool:
        """Whether the backup covers ``namespace`` (no list, or ``*``, means every namespace)."""
        return not self.namespaces or "*" in self.namespaces or namespace in self.namespaces


@dataclass(frozen=True)
class VeleroSchedule:
    """A ``velero.io/v1`` Schedule, as listed."""

    name: str
    schedule: str
    paused: bool
    phase: str
    last_backup: datetime | None
    ttl: timedelta | None
    namespaces: tuple[str, ...] = ()


@dataclass(frozen=True)
class VeleroRestore:
    """A ``velero.io/v1`` Restore, as Velero reports it (counts and reasons; details stay in Velero)."""

    name: str
    backup: str
    phase: str
    namespace_mapping: tuple[tuple[str, str], ...] = ()
    warnings: int = 0
    errors: int = 0
    failure_reason: str = ""
    validation_errors: tuple[str, ...] = ()
    started_at: datetime | None = None
    completed_at: datetime | None = None

    @property
    def succeeded(self) -> bool:
        return self.phase == "Completed"

    def summary(self) -> str:
        """One line: the phase, the counts, and Velero's reasons when it did not complete."""
        mapping = ", ".join(f"{a} -> {b}" for a, b in self.namespace_mapping)
        line = (f"Velero restore {self.name} of backup {self.backup} ({mapping}): "
                f"{self.phase or 'no phase'}, {self.errors} errors, {self.warnings} warnings")
        reasons = [r for r in (self.failure_reason, *self.validation_errors) if r]
        return line + (f": {'; '.join(reasons)}" if reasons else "")


def drill_namespace(source: str, run_id: str) -> str:
    """The scratch namespace a drill restores ``source`` into: ``<source>-drill-<run>``, a DNS label."""
    return f"{source}-drill-{run_id}".lower().replace("_", "-")[:63].rstrip("-")


@dataclass(frozen=True)
class ExportLocation:
    """Where a target keeps its Keycloak realm exports (from the live target file)."""

    bucket: str
    prefix: str
    realm: str


@dataclass(frozen=True)
class AuditEvent:
    """Who did what to what, when (UTC), as the audit trail holds it."""

    at: datetime
    actor: str
    action: str
    target: str
    source: str = ""

    def line(self) -> str:
        return f"{self.at.isoformat(timespec='seconds')} {self.actor} {self.action} {self.target}"


@dataclass
class Fault:
    """A named fault a drill must survive; ``apply`` returns the target the drill should use."""

    name: str
    apply: Callable[[Any, str], Any]  # (target, database) -> target
    clear: Callable[[], None] = lambda: None


class StoreRefused(DrillError):
    """The object store answered a request with an error: its code and message travel with it."""

    def __init__(self, what: str, code: str, message: str = "", status: int = 0, server: str = "") -> None:
        super().__init__(f"object store refused {what}: {code}")
        self.code, self.message, self.status = code, message, status
        self.server = server  # the store's Server header ("MinIO", "AmazonS3"): codes differ between them


# -- the ports ------------------------------------------------------------------------------------
class Database(Protocol):
    """A PostgreSQL server holding the platform databases."""

    def databases(self) -> list[str]: ...
    def exists(self, name: str) -> bool: ...
    def fingerprint(self, name: str) -> Fingerprint: ...
    def catalog(self, name: str) -> Catalog: ...
    def dump(self, name: str, out: Path | BinaryIO, fmt: str = "plain") -> DatabaseFingerprint: ...
    def dump_globals(self, out: Path) -> None: ...
    def load_globals(self, sql: Path) -> list[str]: ...
    def copy_database_settings(self, source: str, target: str) -> list[str]: ...
    def load(self, name: str, dump: Path | BinaryIO, jobs: int = 1) -> None: ...
    def archive_content(self, archive: Path) -> DumpContent | None: ...
    def create(self, name: str) -> None: ...
    def drop(self, name: str) -> None: ...
    def rename(self, old: str, new: str) -> None: ...
    def execute(self, name: str, sql: str) -> None: ...
    def latest_canary(self, name: str) -> datetime | None: ...
    def server_version(self) -> str: ...


class ObjectStore(Protocol):
    """An S3-compatible object store."""

    endpoint: str

    def put(self, bucket: str, key: str, path: Path, metadata: dict[str, str] | None = None) -> None: ...
    def put_bytes(self, bucket: str, key: str, body: bytes) -> None: ...
    def put_stream(self, bucket: str, key: str, body: BinaryIO,
                   metadata: dict[str, str] | None = None) -> None: ...
    def download(self, bucket: str, key: str, path: Path) -> None: ...
    def stream(self, bucket: str, key: str) -> BinaryIO: ...
    def read(self, bucket: str, key: str) -> bytes: ...
    def list(self, bucket: str, prefix: str = "") -> list[StoredObject]: ...
    def delete(self, bucket: str, key: str) -> None: ...


class VersionedObjectStore(ObjectStore, Protocol):
    """An object store with versions and Object Lock retention (the WORM audit bucket)."""

    def versions(self, bucket: str, prefix: str = "") -> list[tuple[str, str]]: ...
    def read_version(self, bucket: str, key: str, version: str) -> bytes: ...
    def delete_version(self, bucket: str, key: str, version: str) -> None: ...
    def retention(self, bucket: str, key: str, version: str) -> tuple[str, datetime | None]: ...
    def set_retention(self, bucket: str, key: str, version: str, mode: str, until: datetime) -> None: ...

    def put_locked(self, bucket: str, key: str, body: bytes, mode: str, until: datetime) -> str:
        """Write an object locked in ``mode`` until ``until``; its version id. Refusals: StoreRefused."""


class BucketInspector(Protocol):
    """What the object store says about its own buckets: Object Lock and lifecycle rules (read-only)."""

    def lock(self, bucket: str) -> BucketLock: ...
    def expiry(self, bucket: str, key_prefix: str) -> timedelta | None: ...


class Orchestrator(Protocol):
    """Runs the platform's services (Kubernetes deployments, or local processes)."""

    kind: str

    def scale(self, service: str, replicas: int) -> None: ...
    def running(self, service: str) -> int: ...


class JobRunner(Protocol):
    """Triggers the platform's backup jobs (a Job from a CronJob's template, or the sandbox's own job)."""

    def run_job(self, job: str) -> JobRun: ...


class PlatformSource(Protocol):
    """Read-only questions the checks ask the platform about its backup jobs and Velero."""

    kind: str
    realm_exports: ExportLocation | None

    def no_runs(self, job: object) -> str | None:
        """Why this target keeps no runs of ``job`` (None when it does)."""

    def no_scheduler(self) -> str | None:
        """Why this target has no schedule to compare (None when it has one)."""

    def job_status(self, job: object) -> JobStatus: ...

    def no_velero(self) -> str | None:
        """Why this target has no Velero backups to read (None when it has)."""

    def velero_backups(self) -> list[VeleroBackup]: ...
    def velero_schedules(self) -> list[VeleroSchedule]: ...


class Platform(Protocol):
    """The platform as a whole (Drill 2): lost at once, then provisioned again from nothing."""

    def lose_platform(self) -> list[str]: ...
    def provision_platform(self) -> Database: ...
    def kept_for_signoff(self) -> list[str]: ...


class IdentityProvider(Protocol):
    """Who may log in (Keycloak on a cluster; PostgreSQL login roles on the sandbox). Secrets stay inside."""

    kind: str

    def require(self, identity: str) -> None: ...
    def provision(self, identity: str) -> None: ...
    def credential(self, identity: str) -> str: ...
    def suspend(self, identity: str) -> int: ...
    def rotate(self, identity: str) -> None: ...
    def can_authenticate(self, identity: str, secret: str) -> tuple[bool, str]: ...
    def statement_log(self, identity: str) -> list[str]: ...


class Adversary(Protocol):
    """Acts as an identity with a credential it holds (Drill 3's simulated attacker)."""

    def act_as(self, identity: str, secret: str, database: str, statement: str) -> None: ...


class AuditTrail(Protocol):
    """The WORM audit trail: events by actor, and the versions that prove nothing was altered."""

    bucket: str
    prefix: str
    store: VersionedObjectStore

    def record(self, event: AuditEvent) -> str: ...
    def events(self, actor: str, window: timedelta, now: datetime | None = None) -> list[AuditEvent]: ...


class Canary(Protocol):
    """The newest write a service made: the yardstick of data loss."""

    def newest_write(self, database: str) -> datetime | None: ...


class Eradicator(Protocol):
    """Removes what an attacker left behind (ServiceAccounts, Secrets); says what it removed."""

    def attacker_objects(self, identity: str) -> list[str]: ...
    def remove(self, identity: str) -> list[str]: ...


class VeleroRestorer(Protocol):
    """Velero through its CRDs: its Backups, and Restores into a namespace that is never the source."""

    def backups(self) -> list[VeleroBackup]: ...
    def newest_completed(self, schedule: str, namespace: str) -> VeleroBackup: ...
    def restore(self, backup: VeleroBackup, namespace_mapping: dict[str, str]) -> str: ...
    def wait(self, restore: str) -> VeleroRestore: ...


# -- the Iceberg warehouse (issue 15) -------------------------------------------------------------
@dataclass(frozen=True)
class IcebergSnapshot:
    """One snapshot of an Iceberg table, as its metadata records it."""

    table: str
    snapshot_id: int
    parent_id: int | None
    committed_at: datetime
    operation: str
    writer: str = ""  # the ``akko.writer`` summary property of the commit, when the writer set one
    summary: dict[str, str] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class IcebergFile:
    """A file a snapshot references, with the size (and, for a data file, the rows) its metadata records."""

    uri: str  # s3://bucket/key
    size: int | None  # as the metadata records it (None: nothing records it, the manifest list)
    kind: str  # "data" | "manifest" | "manifest-list"
    records: int | None = None  # rows, for a data file

    @property
    def bucket(self) -> str:
        return self.uri.removeprefix("s3://").partition("/")[0]

    @property
    def key(self) -> str:
        return self.uri.removeprefix("s3://").partition("/")[2]


@dataclass(frozen=True)
class FileContent:
    """What reading a data file gave: its rows and a checksum of their content (encoding-independent)."""

    rows: int
    checksum: str


@dataclass(frozen=True)
class SnapshotRetention:
    """A table's expire-snapshots settings, as its properties give them (Iceberg's defaults otherwise)."""

    max_age: timedelta
    min_snapshots: int
    declared: bool  # False: the table sets nothing, Iceberg's defaults apply


class CatalogUnreachable(DrillError):
    """The Iceberg catalog did not answer: nothing was read or changed through it."""


class Warehouse(Protocol):
    """Iceberg tables through their catalog (Polaris over REST; a SQL catalog standing in on the sandbox)."""

    catalog: str  # what the evidence calls the catalog (never a credential)
    bucket: str  # the warehouse bucket its files live in
    writer: str  # the service committing the canary snapshots ("" when the target names none)
    canary_table: str  # the table it commits them to

    def tables(self) -> list[str]: ...
    def history(self, table: str) -> list[IcebergSnapshot]:
        """The current snapshot and its ancestors, oldest first (empty: the table has no snapshot)."""

    def files(self, table: str, snapshot_id: int) -> list[IcebergFile]:
        """Every file the snapshot references: manifest list, manifests and live data files."""

    def read_file(self, table: str, file: IcebergFile) -> FileContent:
        """Read one data file through the table's FileIO; DrillError when it is missing or unreadable."""

    def metadata_location(self, table: str) -> str: ...
    def rollback(self, table: str, snapshot_id: int) -> str:
        """Make ``snapshot_id`` (an ancestor) current; return the metadata pointer it replaced."""

    def delete_rows(self, table: str, row_filter: str, base_snapshot: int) -> IcebergSnapshot:
        """Commit a snapshot deleting the rows matching ``row_filter`` on top of ``base_snapshot``
        (refused if another commit came first); the new snapshot."""

    def retention(self, table: str) -> SnapshotRetention: ...


# -- point-in-time recovery (WAL archive) ---------------------------------------------------------
@dataclass(frozen=True)
class WalSegment:
    """One archived WAL segment (or history/backup-label file), as the archive lists it."""

    name: str  # 24 hex digits for a segment: timeline, log, segment
    last_modified: datetime
    size: int

    @property
    def is_segment(self) -> bool:
        return len(self.name) == 24 and all(c in "0123456789ABCDEF" for c in self.name)


@dataclass(frozen=True)
class BaseBackup:
    """A base backup in the archive, with the WAL it needs to become consistent."""

    id: str
    begin_wal: str
    end_wal: str
    begin_time: datetime
    end_time: datetime
    status: str = "DONE"
    location: str = ""

    def provenance(self) -> dict[str, object]:
        return {"base backup": self.id, "uri": self.location, "begin_wal": self.begin_wal,
                "end_wal": self.end_wal, "taken_at": self.begin_time.isoformat(),
                "ended_at": self.end_time.isoformat()}


@dataclass(frozen=True)
class ArchiverStats:
    """``pg_stat_archiver`` of the archiving server: what archive_command achieved and where it failed."""

    archived_count: int
    last_archived_wal: str | None
    last_archived_time: datetime | None
    failed_count: int
    last_failed_wal: str | None
    last_failed_time: datetime | None
    pending: int | None = 0  # segments waiting for archive_command (.ready); None: not readable (pg_monitor)

    @property
    def failing(self) -> bool:
        """The last attempt failed: no success since the newest failure."""
        return self.last_failed_time is not None and (
            self.last_archived_time is None or self.last_failed_time > self.last_archived_time)


@dataclass
class Recovery:
    """A point-in-time recovery on a server of its own: what it reached and how long replay took."""

    database: Database
    target_time: datetime
    backup: BaseBackup
    server: str  # where it ran, for the evidence
    replay: timedelta = timedelta(0)
    promoted: bool = False
    reached: datetime | None = None  # the last transaction replayed
    missing_segment: str | None = None  # the segment the archive could not supply, when it stopped early
    restored_segments: list[str] = field(default_factory=list)
    log: list[str] = field(default_factory=list)


class WalArchive(Protocol):
    """A WAL archive in Barman's cloud layout, and the archiver of the server writing it (read-only)."""

    location: str  # s3://bucket/prefix/server, for the evidence

    def base_backups(self) -> list[BaseBackup]: ...
    def segments(self) -> list[WalSegment]: ...
    def archiver(self) -> ArchiverStats: ...


class PointInTimeRecovery(Protocol):
    """Replays a base backup and archived WAL up to a target time on a second server."""

    def switch_wal(self, deadline: float) -> str:
        """Close the current WAL segment on the source and wait until it is archived; its name."""

    def recover(self, backup: BaseBackup, target_time: datetime, name: str) -> Recovery: ...
    def discard(self, recovery: Recovery) -> None: ...
class RealmRestorer(Protocol):
    """Drill 3: an identity provider rebuilt from a realm export, on a fresh server of its own."""

    kind: str

    def restore(self, bucket: str, key: str) -> str: ...  # returns what now serves the restored realm
    def user_login(self) -> tuple[bool, str]: ...  # a realm user's real login there, and its answer
    def can_authenticate(self, identity: str, secret: str) -> tuple[bool, str]: ...  # on the restored realm
