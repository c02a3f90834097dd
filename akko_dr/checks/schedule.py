"""The backup schedule table: each job ran within its interval, is scheduled as written, keeps its backups."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import islice
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from akko_dr.checks import CheckResult, age_text, not_applicable, result, uncovered
from akko_dr.checks.storage import lock_problems, lock_text
from akko_dr.checks.velero import (
    newest_completed,
    of_schedule,
    phase_problem,
    schedule_named,
    velero_status,
)
from akko_dr.policy import BackupJob, Policy, format_duration
from akko_dr.ports import BucketInspector, JobStatus, PlatformSource

REFS_RUNS = ("playbook: Verification commands — backup CronJobs are green", "DORA Art. 12(1)")
REFS_TABLE = ("playbook: Backup schedule", "DORA Art. 12(1)")
_CRON_SAMPLE = 50  # fire times compared when two cron expressions are checked for equivalence


def protected_rpo(policy: Policy, job: BackupJob) -> timedelta | None:
    """The smallest RPO among the classes of the scope rows and databases ``job`` protects."""
    rpos = [s.klass.rpo for s in policy.scope if job in s.jobs]
    rpos += [d.klass.rpo for d in policy.databases.values() if d.job == job]
    return min(rpos, default=None)


def job_window(policy: Policy, job: BackupJob) -> timedelta:
    """How long a job may go without a success: its interval, or for continuous jobs the class RPO."""
    if job.continuous:
        return protected_rpo(policy, job) or timedelta(0)
    return job.interval()


def check_job_ran(policy: Policy, job: BackupJob, source: PlatformSource, now: datetime) -> CheckResult:
    """The job's last run succeeded, and no longer ago than its window plus the tolerance."""
    tolerance = policy.schedule_tolerance
    cid, title = f"verification.job-ran.{job.name}", f"{job.name} ran successfully within its schedule"
    if reason := source.no_runs(job) or _not_a_cronjob(job, source):
        return not_applicable(cid, title, reason, REFS_RUNS)
    status = status_of(policy, job, source)
    window = job_window(policy, job)
    allowed = window + tolerance
    last = status.last_success.isoformat() if status.last_success else None
    figures: dict[str, object] = {"job": job.name, "window": format_duration(window),
                                  "tolerance": format_duration(tolerance), "last success": last}
    problems = []
    if not status.found:
        problems.append(f"{job.name} is not on the platform (no {_noun(job)} named {job.name})")
    elif status.last_success is None:
        problems.append(f"{job.name} never ran successfully")
    else:
        age = now - status.last_success
        figures |= {"age": format_duration(age), "age_seconds": round(age.total_seconds(), 1)}
        if age > allowed:
            problems.append(f"{job.name} is late by {format_duration(age - allowed)}: last success "
                            f"{status.last_success:%Y-%m-%d %H:%M}Z, {age_text(age)} ago > "
                            f"{format_duration(window)} + tolerance {format_duration(tolerance)}")
    if status.suspended:
        problems.append(f"{job.name} is {_suspended(job)}: it does not run")
    if status.last_failed:
        figures["last run failed"] = status.last_error
        problems.append(f"{job.name} failed its last run"
                        + (f" ({status.last_error})" if status.last_error else ""))
    verdict = (f"{job.name} last succeeded {figures.get('age')} ago <= {format_duration(window)} "
               f"+ tolerance {format_duration(tolerance)}")
    return result(cid, title, problems, verdict, REFS_RUNS, **figures)


def status_of(policy: Policy, job: BackupJob, source: PlatformSource) -> JobStatus:
    """A job's status: its Velero Schedule and backups for Velero jobs, else its CronJob (or runs)."""
    if job.kind == "velero" and source.no_velero() is None:
        return velero_status(policy, job, source)
    return source.job_status(job)


def _noun(job: BackupJob) -> str:
    return "Velero Schedule" if job.kind == "velero" else "CronJob"


def _suspended(job: BackupJob) -> str:
    return "paused (its Velero Schedule)" if job.kind == "velero" else "suspended (its CronJob)"


def _velero_phase(job: BackupJob, source: PlatformSource) -> list[str]:
    schedule = schedule_named(source, job.name) if job.kind == "velero" else None
    problem = phase_problem(schedule) if schedule else None
    return [problem] if problem else []


def _not_a_cronjob(job: BackupJob, source: PlatformSource) -> str | None:
    if job.continuous and source.no_scheduler() is None:
        return (f"{job.name} is continuous replication, not a CronJob: "
                "the replication canary (scope) judges it")
    return None


def fire_times(expr: str, zone: str, base: datetime) -> list[datetime]:
    """The next runs of a cron expression read in time zone ``zone``, as UTC instants."""
    local = base.astimezone(ZoneInfo(zone))
    return [t.astimezone(UTC) for t in islice(croniter(expr, local).all_next(datetime), _CRON_SAMPLE)]


def same_schedule(a: str, b: str, base: datetime, zone_a: str = "UTC", zone_b: str = "UTC") -> bool:
    """Whether two cron expressions (each in its time zone) fire at the same instants from ``base``."""
    if not (croniter.is_valid(a) and croniter.is_valid(b)):
        return False
    return fire_times(a, zone_a, base) == fire_times(b, zone_b, base)


def schedule_mismatch(job: BackupJob, status: JobStatus, zone: str, now: datetime) -> str | None:
    """Why the platform's schedule (with its time zone) fires at other times than the policy's."""
    theirs = status.time_zone or zone
    try:
        if same_schedule(job.schedule, status.schedule or "", now, zone, theirs):
            return None
    except ZoneInfoNotFoundError:
        return f"{job.name} runs in an unknown time zone {theirs!r}"
    where = f" in {theirs}" if theirs != zone else ""
    return (f"{job.name} is scheduled {status.schedule!r}{where}, the policy says {job.schedule!r} "
            f"in {zone}")


def check_job_schedule(policy: Policy, job: BackupJob, source: PlatformSource, now: datetime) -> CheckResult:
    """The platform schedules the job with the policy's cron expression in the policy's time zone (by
    fire times, not by text), and has not suspended or paused it."""
    cid, title = f"schedule.cron.{job.name}", f"{job.name} is scheduled as the policy says"
    if reason := source.no_scheduler() or source.no_runs(job) or _not_a_cronjob(job, source):
        return not_applicable(cid, title, reason, REFS_TABLE)
    zone = policy.schedule_time_zone
    status = status_of(policy, job, source)
    figures = {"job": job.name, "policy schedule": f"{job.schedule} ({zone})",
               "platform schedule": f"{status.schedule} ({status.time_zone or 'no time zone: ' + zone})",
               "interval": format_duration(job.interval()), "suspended": status.suspended}
    problems = []
    if not status.found:
        problems.append(f"{job.name} is not on the platform (no {_noun(job)} named {job.name})")
    elif mismatch := schedule_mismatch(job, status, zone, now):
        problems.append(mismatch)
    if status.suspended:
        problems.append(f"{job.name} is {_suspended(job)}: it does not run")
    problems += _velero_phase(job, source)
    verdict = (f"{job.name} runs {job.schedule!r} in {zone} (every {format_duration(job.interval())}) "
               "as the policy says")
    return result(cid, title, problems, verdict, REFS_TABLE, **figures)


def check_job_retention(policy: Policy, job: BackupJob, source: PlatformSource,
                        buckets: BucketInspector | None) -> CheckResult:
    """The store keeps the job's backups at least as long as the policy's cold retention."""
    cid, title = f"schedule.retention.{job.name}", f"{job.name} backups are kept as long as the policy says"
    if reason := source.no_runs(job):
        return not_applicable(cid, title, reason, REFS_TABLE)
    keep = job.retention.cold
    if keep is None:
        return uncovered(cid, title, f"{job.name} has no cold retention in the policy", REFS_TABLE)
    judge = _RETENTION.get(job.kind)
    if job.kind == "realm-export" and source.realm_exports is None:
        reason = f"no retention check for {job.name}: the target names no location for realm exports"
        return uncovered(cid, title, reason, REFS_TABLE)
    if judge is None:
        reason = f"no retention check for {job.name}: the policy does not say where its backups are kept"
        return uncovered(cid, title, reason, REFS_TABLE)
    problems, figures = judge(policy, job, keep, source, buckets)
    if job.retention.local is not None:
        figures["local retention"] = (f"{format_duration(job.retention.local)}: not checked (a volume "
                                      "of the PostgreSQL pod, outside the object store)")
    verdict = f"{job.name} backups are kept at least {format_duration(keep)}" + (
        " under a COMPLIANCE lock" if job.retention.worm else "")
    return result(cid, title, problems, verdict, REFS_TABLE, retention=format_duration(keep), **figures)


def _dump_retention(policy: Policy, job: BackupJob, keep: timedelta, source: PlatformSource,
                    buckets: BucketInspector) -> tuple[list[str], dict[str, object]]:
    bucket, problems, figures = policy.storage.backups_bucket, [], {}
    for name, db in policy.databases.items():
        if db.job != job:
            continue
        prefix = f"{policy.storage.dump_prefix}{name}_"
        expiry = buckets.expiry(bucket, prefix)
        figures[f"s3://{bucket}/{prefix}"] = f"expires after {format_duration(expiry)}" if expiry else "never"
        if expiry is None:
            problems.append(f"retention not enforced: no lifecycle rule expires s3://{bucket}/{prefix} "
                            f"(policy keeps {format_duration(keep)})")
        elif expiry < keep:
            problems.append(f"s3://{bucket}/{prefix} expires after {format_duration(expiry)} "
                            f"< policy {format_duration(keep)}")
    return problems, figures


def _worm_retention(policy: Policy, job: BackupJob, keep: timedelta, source: PlatformSource,
                    buckets: BucketInspector) -> tuple[list[str], dict[str, object]]:
    bucket = policy.storage.replica_bucket
    lock = buckets.lock(bucket)
    figures: dict[str, object] = {f"s3://{bucket} lock": lock_text(lock)}
    return lock_problems(bucket, lock, "COMPLIANCE" if job.retention.worm else None, keep), figures


def _velero_retention(policy: Policy, job: BackupJob, keep: timedelta, source: PlatformSource,
                      buckets: BucketInspector) -> tuple[list[str], dict[str, object]]:
    """The TTL of the policy's Velero Schedule and of its newest completed backup of the namespace."""
    schedule = schedule_named(source, job.name)
    newest = newest_completed(of_schedule(source.velero_backups(), job.name, policy.namespace))
    ttls = {f"Velero Schedule {job.name}": schedule.ttl for schedule in [schedule] if schedule}
    ttls |= {f"Velero backup {newest.name}": newest.ttl for newest in [newest] if newest}
    if not ttls:
        return [f"no Velero Schedule {job.name} and no completed backup of it to read the retention of"], {}
    figures: dict[str, object] = {what: format_duration(ttl) if ttl else "none" for what, ttl in ttls.items()}
    problems = [f"{what} expires after {figures[what]} < policy {format_duration(keep)}"
                for what, ttl in ttls.items() if ttl is None or ttl < keep]
    return problems, figures


def _export_retention(policy: Policy, job: BackupJob, keep: timedelta, source: PlatformSource,
                      buckets: BucketInspector) -> tuple[list[str], dict[str, object]]:
    where = source.realm_exports
    expiry = buckets.expiry(where.bucket, where.prefix)
    place = f"s3://{where.bucket}/{where.prefix}"
    figures: dict[str, object] = {place: f"expires after {format_duration(expiry)}" if expiry else "never"}
    if expiry is None:
        return [f"retention not enforced: no lifecycle rule expires {place}"], figures
    if expiry < keep:
        return [f"{place} expires after {format_duration(expiry)} < policy {format_duration(keep)}"], figures
    return [], figures


_RETENTION = {"pg-dump": _dump_retention, "mirror": _worm_retention, "velero": _velero_retention,
              "realm-export": _export_retention}

