"""Wiring: builds a ``Target`` for the kind asked for. The one place adapters are chosen."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from akko_dr.adapters.audit_trail import ObjectStoreAuditTrail
from akko_dr.adapters.postgres import CanaryTable
from akko_dr.adapters.s3 import S3BucketInspector, S3ObjectStore
from akko_dr.errors import DrillError
from akko_dr.policy import Policy
from akko_dr.sandbox import Sandbox, start_sandbox
from akko_dr.sandbox.faults import catalogue
from akko_dr.sandbox.identity import SandboxAttacker
from akko_dr.sandbox.job_history import SandboxSource
from akko_dr.sandbox.warehouse import catalog_fault, stop_server_cleanly
from akko_dr.targets import Target

TARGET_KINDS = ("sandbox", "live", "docker")


def docker_engine_unavailable() -> str | None:
    """Why the docker target cannot run here (None when an engine answers)."""
    try:
        import docker

        docker.from_env(timeout=2).ping()
    except Exception as err:
        return f"no Docker engine reachable ({type(err).__name__}); docker target skipped"
    return None


SANDBOX_GAPS = {
    "velero": "no Kubernetes namespace or Velero on the sandbox",
    "eradicator": "no Kubernetes ServiceAccounts or Secrets on the sandbox; the identity itself is "
                  "suspended and rotated",
}
MOTO = "moto S3 emulator (not WORM-compliant: it does not enforce COMPLIANCE retention; no authentication)"
SUPERVISOR = "local process supervisor in place of Kubernetes"


def sandbox_target(sandbox: Sandbox, workdir: Path) -> Target:
    """Every port of the sandbox: real PostgreSQL and jobs, the S3 emulator, a local supervisor."""
    store = sandbox.store
    trail = ObjectStoreAuditTrail(store, sandbox.policy.storage.audit_bucket)
    gaps = dict(SANDBOX_GAPS)
    if sandbox.segregated is None:
        gaps["segregated_db"] = "this sandbox was started without a second PostgreSQL server"
    faults = catalogue(sandbox.stop_postgres, sandbox.start_postgres)
    if sandbox.warehouse is None:
        gaps["warehouse"] = "this sandbox was started without Iceberg tables"
    else:
        fault = catalog_fault(lambda: stop_server_cleanly(sandbox.pg_server), sandbox.start_postgres)
        faults[fault.name] = fault
    return Target(kind="sandbox", name="sandbox", policy=sandbox.policy, db=sandbox.db, store=store,
                  orchestrator=sandbox.supervisor, workdir=workdir, canary=CanaryTable(lambda: sandbox.db),
                  buckets=S3BucketInspector(store), source=SandboxSource(sandbox), jobs=sandbox,
                  platform=sandbox, identities=sandbox.identities,
                  adversary=SandboxAttacker(sandbox.identities, trail), audit_trail=trail,
                  segregated_db=sandbox.segregated,
                  faults=faults,
                  scratch_platform=lambda: scratch_sandbox(sandbox.policy),
                  store_as=lambda user, secret: S3ObjectStore(store.endpoint, access_key=user,
                                                              secret_key=secret),
                  heal=sandbox.heal, gaps=gaps, components=sandbox.components,
                  emulated=[f"object store: {MOTO}", f"orchestrator: {SUPERVISOR}"],
                  emulated_ports={"store": MOTO, "buckets": MOTO, "audit_trail": MOTO,
                                  "orchestrator": SUPERVISOR},
                  destructive_allowed=True, probes_allowed=True, fresh_backup=True,
                  warehouse=sandbox.warehouse)


@contextmanager
def open_sandbox(policy: Policy, scratch: bool = False,
                 iceberg: bool = True) -> Iterator[tuple[Sandbox, Target]]:
    """A sandbox and its target in a fresh folder of their own; everything is removed after.

    ``scratch``: a platform of its own for a drill that destroys it (Drill 2): a service per database,
    no initial backups, no second server, no Iceberg tables (nor with ``iceberg`` False). Not under
    pytest's temporary folders: another pytest session
    resets their permissions, and the PostgreSQL server (running as its own user) would lose its data.
    """
    workdir = Path(tempfile.mkdtemp(prefix="akko-dr-"))
    options = (dict(consumers=tuple(policy.databases), initial_backups=False) if scratch
               else dict(segregated_server=True, iceberg=iceberg))
    try:
        with start_sandbox(policy, root=workdir / "sandbox", **options) as sandbox:
            yield sandbox, sandbox_target(sandbox, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


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
