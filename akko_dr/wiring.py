"""Wiring: builds a ``Target`` for the kind asked for. The one place adapters are chosen."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from akko_dr.adapters.audit_trail import ObjectStoreAuditTrail
from akko_dr.adapters.postgres import CanaryTable
from akko_dr.adapters.s3 import S3BucketInspector, S3ObjectStore
from akko_dr.adapters.s3_sites import SitedBucketInspector, SitedObjectStore
from akko_dr.adapters.victorialogs import LogsLayerAuditTrail
from akko_dr.adapters.wal_archive import BarmanCloudArchive
from akko_dr.docker_target import PING_TIMEOUT, ContainerMinio, ContainerServers, DockerImages, remove_orphans
from akko_dr.errors import DrillError, NotApplicable
from akko_dr.policy import Policy
from akko_dr.ports import Fault
from akko_dr.run_lock import RunLock
from akko_dr.sandbox import Sandbox, start_sandbox
from akko_dr.sandbox.faults import catalogue
from akko_dr.sandbox.identity import SandboxAttacker
from akko_dr.sandbox.job_history import SandboxSource
from akko_dr.sandbox.keycloak import DATABASE as KEYCLOAK_DB
from akko_dr.sandbox.keycloak import SandboxRealmRestore
from akko_dr.sandbox.platform import SANDBOX_KEY, RealServers
from akko_dr.sandbox.processes import binary
from akko_dr.sandbox.wal import WalSource, missing_segment, start_wal_archiving
from akko_dr.sandbox.warehouse import catalog_fault, stop_server_cleanly
from akko_dr.targets import Target

TARGET_KINDS = ("sandbox", "live", "docker")


def docker_engine_unavailable() -> str | None:
    """Why the docker target cannot run here (None when an engine answers)."""
    try:
        import docker

        docker.from_env(timeout=PING_TIMEOUT).ping()
    except Exception as err:
        why = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        return f"no Docker engine reachable ({why}); docker target skipped"
    return None


SANDBOX_GAPS = {
    "velero": "no Kubernetes namespace or Velero on the sandbox",
    "eradicator": "no Kubernetes ServiceAccounts or Secrets on the sandbox; the identity itself is "
                  "suspended and rotated",
}
MOTO = "moto S3 emulator (not WORM-compliant: it does not enforce COMPLIANCE retention; no authentication)"
SUPERVISOR = "local process supervisor in place of Kubernetes"
NO_LOGS_LAYER = ("none: audit events are read back from the WORM bucket's JSON objects "
                 "(VictoriaLogs not provisioned: scripts/real-services.sh)")


def real_servers() -> RealServers:
    """The real servers provisioned by scripts/real-services.sh (``$AKKO_DR_BIN``); absent ones are
    served by the emulator (MinIO) or not at all (the logs layer), and the evidence says which."""
    return RealServers(minio=binary("minio"), victoria_logs=binary("victoria-logs"))


def _object_storage(sandbox: Sandbox):
    """The store, its bucket inspector, what an identity's own keys are, and the emulator if any."""
    store = sandbox.store
    if isinstance(store, SitedObjectStore):
        return store, SitedBucketInspector(store), sandbox.s3_users.breach_keys, None
    return store, S3BucketInspector(store), lambda identity: (identity, SANDBOX_KEY), MOTO


def _emulated(store_emulator: str | None) -> dict[str, str]:
    """What an emulator serves, by component (the evidence's list)."""
    return ({"object store": store_emulator} if store_emulator else {}) | {"orchestrator": SUPERVISOR}


def _emulated_ports(store_emulator: str | None) -> dict[str, str]:
    """The ports whose behaviour is an emulator's (a proof resting on them is inconclusive)."""
    ports = dict.fromkeys(("store", "buckets", "audit_trail"), store_emulator) if store_emulator else {}
    return ports | {"orchestrator": SUPERVISOR}


def _audit_trail(sandbox: Sandbox, store):
    trail = ObjectStoreAuditTrail(store, sandbox.policy.storage.audit_bucket)
    return trail if sandbox.logs is None else LogsLayerAuditTrail(trail, sandbox.logs.client)


def sandbox_target(sandbox: Sandbox, workdir: Path) -> Target:
    """Every port of the sandbox: real PostgreSQL and jobs, real MinIO (with its off-site replica) where
    provisioned else the S3 emulator, the logs layer where provisioned, a local supervisor."""
    store, buckets, object_keys, emulator = _object_storage(sandbox)
    trail = _audit_trail(sandbox, store)
    gaps = dict(SANDBOX_GAPS)
    if sandbox.segregated is None:
        gaps["segregated_db"] = "this sandbox was started without a second PostgreSQL server"
    faults = catalogue(sandbox.stop_postgres, sandbox.start_postgres, sandbox.pg_server.system_user)
    if sandbox.warehouse is None:
        gaps["warehouse"] = "this sandbox was started without Iceberg tables"
    else:
        fault = catalog_fault(lambda: stop_server_cleanly(sandbox.pg_server), sandbox.start_postgres)
        faults[fault.name] = fault
    keycloak = sandbox.keycloak
    if keycloak is None:
        gaps["realm_restore"] = f"no realm export to restore: {sandbox.components.get('identity-provider')}"
    return Target(kind="sandbox", name="sandbox", policy=sandbox.policy, db=sandbox.db, store=store,
                  orchestrator=sandbox.supervisor, workdir=workdir, canary=CanaryTable(lambda: sandbox.db),
                  buckets=buckets, source=SandboxSource(sandbox), jobs=sandbox,
                  platform=sandbox, identities=sandbox.identities,
                  adversary=SandboxAttacker(sandbox.identities, trail), audit_trail=trail,
                  segregated_db=sandbox.segregated,
                  faults=faults,
                  scratch_platform=lambda: scratch_sandbox(sandbox.policy),
                  store_as=lambda user, secret: S3ObjectStore(store.endpoint, access_key=user,
                                                              secret_key=secret),
                  object_keys=object_keys, heal=sandbox.heal, gaps=gaps,
                  components={**sandbox.components, "logs layer": sandbox.components.get("logs layer",
                                                                                          NO_LOGS_LAYER)},
                  emulated=[f"{port}: {what}" for port, what in _emulated(emulator).items()],
                  emulated_ports=_emulated_ports(emulator),
                  destructive_allowed=True, probes_allowed=True, fresh_backup=True,
                  warehouse=sandbox.warehouse,
                  service_checks={KEYCLOAK_DB: keycloak.serves_logins} if keycloak else {},
                  realm_restore=keycloak and SandboxRealmRestore(keycloak, sandbox.segregated or sandbox.db,
                                                                 store))


@contextmanager
def open_sandbox(policy: Policy, scratch: bool = False, servers: RealServers | None = None,
                 iceberg: bool = True) -> Iterator[tuple[Sandbox, Target]]:
    """A sandbox and its target in a fresh folder of their own; everything is removed after.

    ``scratch``: a platform of its own for a drill that destroys it (Drill 2): a service per database,
    no initial backups, no second server, no Iceberg tables (nor with ``iceberg`` False). ``servers``: the
    real servers to run (default: those provisioned, :func:`real_servers`). Not under pytest's temporary
    folders: another pytest session
    resets their permissions, and the PostgreSQL server (running as its own user) would lose its data.
    """
    workdir = Path(tempfile.mkdtemp(prefix="akko-dr-"))
    options = (dict(consumers=tuple(policy.databases), initial_backups=False) if scratch
               else dict(segregated_server=True, iceberg=iceberg, real_identity=True))
    try:
        with start_sandbox(policy, root=workdir / "sandbox", servers=servers or real_servers(),
                           **options) as sandbox:
            target = sandbox_target(sandbox, workdir)
            yield sandbox, target if scratch else with_wal_archive(sandbox, target)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def with_wal_archive(sandbox: Sandbox, target: Target) -> Target:
    """The sandbox's WAL archive (Barman cloud commands), or the reason it has none as a gap."""
    wal = start_wal_archiving(sandbox)
    if isinstance(wal, str):
        target.gaps.update(wal_archive=wal, pitr=wal)
        return target
    cloud = wal.cloud
    target.wal_archive = BarmanCloudArchive(sandbox.store, cloud.bucket, cloud.prefix, cloud.server,
                                            sandbox.db.dsn("postgres"))
    target.pitr, target.jobs, target.source = wal, wal, WalSource(sandbox, wal)
    fault = missing_segment(wal, sandbox.store)
    target.faults = {**(target.faults or {}), fault.name: fault}
    return target


@contextmanager
def scratch_sandbox(policy: Policy) -> Iterator[Target]:
    """A sandbox of its own for a drill that destroys its platform (Drill 2)."""
    with open_sandbox(policy, scratch=True) as (_, target):
        yield target


def live_target(policy: Policy, target_file: Path | None, allow_destructive: str | None = None,
                approved_by: str | None = None, fresh_backup: bool = False,
                allow_probes: bool = False) -> Target:
    """A real AKKO cluster from a target file (``akko_dr.targetfile``); credentials from env or Secrets.

    Destructive steps run only when ``allow_destructive`` repeats the target's namespace, and on a
    production target only with the name of who approved it."""
    from akko_dr.targetfile import load_target_file, open_live

    if target_file is None:
        raise DrillError("the live target needs --target-file (kube context, namespace, endpoints)")
    tf = load_target_file(target_file, policy.namespace)
    destructive = destructive_opt_in(tf.namespace, tf.production, allow_destructive, approved_by)
    target = open_live(policy, tf, destructive, allow_probes)
    target.fresh_backup = fresh_backup
    if destructive and approved_by:
        target.components["destructive steps approved by"] = approved_by
    return target


def destructive_opt_in(namespace: str, production: bool, allow: str | None, approved_by: str | None) -> bool:
    """Whether destructive steps may run; a wrong or incomplete opt-in is refused in one line."""
    if allow is None:
        return False
    if allow != namespace:
        raise DrillError(f"--allow-destructive={allow} does not name the target's namespace {namespace!r}: "
                         "nothing destructive runs; repeat the namespace to opt in")
    if production and not approved_by:
        raise DrillError(f"namespace {namespace!r} is a production target: destructive steps also need "
                         '--approved-by "<name>"')
    return True


DOCKER_GAPS = {
    "platform": "Drill 2 is not wired on the docker target (its rebuilt platform would be an embedded "
                "server, not a container); it runs on the sandbox target",
    "scratch_platform": "Drill 2 is not wired on the docker target (its platform of its own would be an "
                        "embedded server, not a container); it runs on the sandbox target",
}
S3_PORTS = ("store", "buckets", "audit_trail")
NO_MINIO_USERS = ("the compromised identity has no MinIO user of its own on the docker target (its "
                  "identities are PostgreSQL roles), so nothing can act on MinIO with its credentials")


FULL_DISK = "a full disk under the scratch database"


def _docker_faults(faults: dict[str, Fault]) -> dict[str, Fault]:
    """The sandbox's faults, but the full disk: its small tablespace is a host folder the container's
    server cannot reach (a gap that says why, never a harness error)."""

    def not_here(target: Target, database: str) -> Target:
        raise NotApplicable("not applicable on docker: the scratch database's disk is inside the PostgreSQL "
                            "container; a small host tablespace cannot be mounted into it here")

    return {**faults, FULL_DISK: Fault(FULL_DISK, not_here)}


@contextmanager
def open_docker(policy: Policy, images: DockerImages) -> Iterator[tuple[Sandbox, Target]]:
    """The sandbox's platform with its PostgreSQL servers (and MinIO, when its image is given) in
    containers started through testcontainers; everything is removed after."""
    remove_orphans()
    workdir = Path(tempfile.mkdtemp(prefix="akko-dr-docker-"))
    servers, minio = ContainerServers(images.postgres), None
    try:
        minio = ContainerMinio(images.minio) if images.minio else None
        with start_sandbox(policy, root=workdir / "sandbox", segregated_server=True, start_pg=servers,
                           store=minio.store() if minio else None) as sandbox:
            yield sandbox, docker_target(sandbox, workdir, servers, minio)
    finally:
        if minio is not None:
            minio.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def docker_target(sandbox: Sandbox, workdir: Path, servers: ContainerServers,
                  minio: ContainerMinio | None) -> Target:
    """The sandbox's ports, with the containers named as what serves PostgreSQL (and S3)."""
    own, segregated = servers.started
    target = sandbox_target(sandbox, workdir)
    components = sandbox.components
    components["postgresql"] = own.describe()
    components["segregated restores"] = f"a second PostgreSQL container: {segregated.describe()}"
    if minio is not None:
        components["object-store"] = minio.describe()
    else:
        components["object-store"] += " (no minio image in the docker target file)"
    s3_real = minio is not None
    gaps = {**target.gaps, **DOCKER_GAPS, **({"store_as": NO_MINIO_USERS} if s3_real else {})}
    return replace(
        target, kind="docker", name="docker", platform=None, scratch_platform=None,
        store_as=None if s3_real else target.store_as,
        faults=_docker_faults(catalogue(own.crash, own.ensure_postgres_running)), gaps=gaps,
        components=components,
        emulated=[e for e in target.emulated if not (s3_real and e.startswith("object store"))],
        emulated_ports={k: v for k, v in target.emulated_ports.items() if not (s3_real and k in S3_PORTS)})


@contextmanager
def run_lock(target: Target, run_id: str) -> Iterator[list[str]]:
    """Hold the target's run lock (in its PostgreSQL) while the run lasts; yields what the evidence says
    about it. A second run refuses (DrillRefused). On a target where destructive steps are not allowed
    no lock is taken: it is a write, and a read-only run cannot collide with a restore."""
    if not target.destructive_allowed:
        yield ["no run lock taken: this run may not write to the target (a lock is a write; "
               "--allow-destructive takes it)"]
        return
    from akko_dr.adapters.run_lock_pg import TABLE, PostgresLockTable

    with RunLock(PostgresLockTable(target.db.admin_dsn), target.name, run_id) as lock:
        yield [f"run lock held in PostgreSQL table {TABLE} for target {target.name}", *lock.notes]
