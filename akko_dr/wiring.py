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
from akko_dr.sandbox.job_history import SandboxSource
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
    "eradicator": "no Kubernetes ServiceAccounts or Secrets on the sandbox; the identity itself is "
                  "suspended and rotated",
}
MOTO = "moto S3 emulator (does not enforce COMPLIANCE retention, does not authenticate)"
SUPERVISOR = "local process supervisor in place of Kubernetes"


def sandbox_target(sandbox: Sandbox, workdir: Path) -> Target:
    """Every port of the sandbox: real PostgreSQL and jobs, the S3 emulator, a local supervisor."""
    store = sandbox.store
    return Target(kind="sandbox", name="sandbox", policy=sandbox.policy, db=sandbox.db, store=store,
                  orchestrator=sandbox.supervisor, workdir=workdir, canary=CanaryTable(lambda: sandbox.db),
                  buckets=S3BucketInspector(store), source=SandboxSource(sandbox), jobs=sandbox,
                  platform=sandbox, identities=sandbox.identities, adversary=sandbox.identities,
                  audit_trail=ObjectStoreAuditTrail(store, sandbox.policy.storage.audit_bucket),
                  store_as=lambda user, secret: S3ObjectStore(store.endpoint, access_key=user,
                                                              secret_key=secret),
                  heal=sandbox.heal, gaps=dict(SANDBOX_GAPS), components=sandbox.components,
                  emulated=[f"object store: {MOTO}", f"orchestrator: {SUPERVISOR}"],
                  emulated_ports={"store": MOTO, "buckets": MOTO, "audit_trail": MOTO,
                                  "orchestrator": SUPERVISOR},
                  destructive_allowed=True, probes_allowed=True, fresh_backup=True)


@contextmanager
def open_sandbox(policy: Policy) -> Iterator[tuple[Sandbox, Target]]:
    """A sandbox and its target in a fresh folder of their own; everything is removed after.

    Not under pytest's temporary folders: another pytest session resets their permissions, and the
    PostgreSQL server (running as its own system user) would lose its data directory.
    """
    workdir = Path(tempfile.mkdtemp(prefix="akko-dr-"))
    try:
        with start_sandbox(policy, root=workdir / "sandbox") as sandbox:
            yield sandbox, sandbox_target(sandbox, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def live_target(policy: Policy, target_file: Path | None, allow_destructive: bool,
                allow_probes: bool = False) -> Target:
    """A real AKKO cluster from a target file (``akko_dr.targetfile``); credentials from env or Secrets."""
    from akko_dr.targetfile import load_target_file, open_live

    if target_file is None:
        raise DrillError("the live target needs --target-file (kube context, namespace, endpoints)")
    return open_live(policy, load_target_file(target_file, policy.namespace), allow_destructive, allow_probes)
