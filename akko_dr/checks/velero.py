"""Velero as the checks judge it: only backups of the policy's Schedule that include its namespace count."""

from __future__ import annotations

from datetime import datetime

from akko_dr.policy import BackupJob, Policy
from akko_dr.ports import JobStatus, PlatformSource, VeleroBackup, VeleroSchedule

FAILED_PHASES = ("PartiallyFailed", "Failed")


def of_schedule(backups: list[VeleroBackup], schedule: str, namespace: str) -> list[VeleroBackup]:
    """The backups made by ``schedule`` (label velero.io/schedule-name) that include ``namespace``."""
    return [b for b in backups if b.schedule == schedule and b.includes(namespace)]


def newest_completed(backups: list[VeleroBackup]) -> VeleroBackup | None:
    """The newest backup in phase Completed."""
    done = [b for b in backups if b.phase == "Completed" and b.completed_at is not None]
    return max(done, key=lambda b: b.completed_at, default=None)


def _when(backup: VeleroBackup) -> datetime | None:
    return backup.started_at or backup.completed_at


def failed_since(backups: list[VeleroBackup], newest: VeleroBackup | None) -> list[VeleroBackup]:
    """Failed and PartiallyFailed backups newer than ``newest`` (all of them when nothing completed)."""
    failed = [b for b in backups if b.phase in FAILED_PHASES]
    if newest is None or newest.completed_at is None:
        return failed
    return [b for b in failed if (when := _when(b)) is None or when > newest.completed_at]


def failure_text(backup: VeleroBackup) -> str:
    return f"Velero backup {backup.name} {backup.phase} ({backup.errors} errors, {backup.warnings} warnings)"


def schedule_named(source: PlatformSource, name: str) -> VeleroSchedule | None:
    return next((s for s in source.velero_schedules() if s.name == name), None)


def phase_problem(schedule: VeleroSchedule) -> str | None:
    """A Schedule Velero did not accept (phase New, FailedValidation) does not run: a finding."""
    if schedule.phase and schedule.phase != "Enabled":
        return f"Velero Schedule {schedule.name} is in phase {schedule.phase}, not Enabled"
    return None


def velero_status(policy: Policy, job: BackupJob, source: PlatformSource) -> JobStatus:
    """The job's Schedule and backups, read as a job's status: last success, last run, paused."""
    schedule = schedule_named(source, job.name)
    if schedule is None:
        return JobStatus(job.name, found=False)
    backups = of_schedule(source.velero_backups(), job.name, policy.namespace)
    newest = newest_completed(backups)
    failed = failed_since(backups, newest)
    return JobStatus(job.name, found=True, schedule=schedule.schedule,
                     last_success=newest.completed_at if newest else None, last_run=schedule.last_backup,
                     last_failed=bool(failed), last_error="; ".join(failure_text(b) for b in failed),
                     suspended=schedule.paused)
