"""The sandbox's answers to the checks' questions (``PlatformSource``): its own job runs, no scheduler,
no Velero."""

from __future__ import annotations

from typing import TYPE_CHECKING

from akko_dr.policy import BackupJob
from akko_dr.ports import JobStatus, VeleroBackup, VeleroSchedule
from akko_dr.sandbox.keycloak import export_location

if TYPE_CHECKING:
    from akko_dr.sandbox.platform import Sandbox


_NOT_ON_SANDBOX = {"realm-export": "Keycloak does not run", "velero": "no Velero and no Kubernetes cluster"}


class SandboxSource:
    """The sandbox's answers: its own job runs; no scheduler and no Velero."""

    kind = "sandbox"
    realm_exports = None

    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox
        if sandbox.keycloak is not None:  # the realm-export job writes where a live target file would say
            self.realm_exports = export_location(sandbox.policy)

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

    def velero_schedules(self) -> list[VeleroSchedule]:
        return []
