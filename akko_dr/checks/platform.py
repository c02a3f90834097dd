"""What the checks read from a platform: backup job runs and Velero backups, per target.

The sandbox answers from its own job runs; a live cluster from Kubernetes (``akko_dr.adapters.kube``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from akko_dr.policy import BackupJob
from akko_dr.sandbox import Sandbox


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


@dataclass(frozen=True)
class VeleroBackup:
    """A ``velero.io/v1`` Backup, as listed."""

    name: str
    phase: str
    completed_at: datetime | None
    ttl: timedelta | None


@dataclass(frozen=True)
class ExportLocation:
    """Where a target keeps its Keycloak realm exports (from the live target file)."""

    bucket: str
    prefix: str
    realm: str


class PlatformSource(Protocol):
    """Read-only questions the checks ask the platform."""

    kind: str

    def no_runs(self, job: BackupJob) -> str | None:
        """Why this target keeps no runs of ``job`` (None when it does)."""

    def no_scheduler(self) -> str | None:
        """Why this target has no schedule to compare (None when it has one)."""

    def job_status(self, job: BackupJob) -> JobStatus: ...

    def no_velero(self) -> str | None:
        """Why this target has no Velero backups to read (None when it has)."""

    def velero_backups(self) -> list[VeleroBackup]: ...


_NOT_ON_SANDBOX = {"realm-export": "Keycloak does not run", "velero": "no Velero and no Kubernetes cluster"}


class SandboxSource:
    """The sandbox's answers: its own job runs; no scheduler and no Velero."""

    kind = "sandbox"
    realm_exports = None

    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox

    def no_runs(self, job: BackupJob) -> str | None:
        if self._sandbox.runs_job(job.name):
            return None
        missing = _NOT_ON_SANDBOX.get(job.kind, f"no {job.kind} job")
        return f"the sandbox does not run {job.name}: {missing} on the sandbox"

    def no_scheduler(self) -> str | None:
        return "the sandbox runs its backup jobs on demand: it has no scheduler to compare"

    def job_status(self, job: BackupJob) -> JobStatus:
        runs = [r for r in self._sandbox.job_runs if r.job == job.name]
        if not runs:
            return JobStatus(job.name, found=True)
        last = max(runs, key=lambda r: r.started_at)
        successes = [r.finished_at for r in runs if r.succeeded and r.finished_at]
        return JobStatus(job.name, found=True, last_success=max(successes, default=None),
                         last_run=last.started_at, last_failed=not last.succeeded, last_error=last.error)

    def no_velero(self) -> str | None:
        return "the sandbox runs no Velero: there is no Kubernetes cluster to back up"

    def velero_backups(self) -> list[VeleroBackup]:
        return []


def newest_completed(backups: list[VeleroBackup]) -> VeleroBackup | None:
    """The newest backup in phase Completed."""
    done = [b for b in backups if b.phase == "Completed" and b.completed_at is not None]
    return max(done, key=lambda b: b.completed_at, default=None)
