"""Static analysis of the policy itself, before anything runs: do its own tables agree?"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from akko_dr.checks import CheckResult, result
from akko_dr.policy import BackupJob, Policy, TargetClass, format_duration

REFS_RPO = ("playbook: Targets", "playbook: Backup schedule", "DORA Art. 12(6)")
REFS_RETENTION = ("playbook: Backup schedule", "playbook: Quarterly drill checklist", "DORA Art. 11(6)")
REFS_SCOPE = ("playbook: Scope", "playbook: Backup schedule", "DORA Art. 12(1)")

# What each kind of job produces, and what closes the gap when it runs too rarely for an RPO.
_NOUN = {"pg-dump": "dumps", "velero": "Velero backups", "realm-export": "realm exports", "mirror": "mirrors",
         "wal-archive": "WAL archived"}
_REMEDY = {"pg-dump": "WAL archiving is required",
           "velero": "a more frequent Velero schedule is required",
           "realm-export": "a more frequent realm export is required",
           "mirror": "continuous replication is required",
           "wal-archive": "a shorter archive timeout is required"}


def _best(jobs: tuple[BackupJob, ...]) -> BackupJob | None:
    """The job that protects most often (a continuous one beats any schedule; a WAL archive counts by its
    archive timeout, not by its base backups' schedule)."""
    return min(jobs, key=lambda j: j.rpo_window(), default=None)


def rpo_gaps(policy: Policy, klass: TargetClass) -> dict[BackupJob, list[str]]:
    """For each job too rare for the class RPO: the components and databases that rely on it."""
    gaps: dict[BackupJob, list[str]] = defaultdict(list)
    for row in policy.scope:
        best = _best(row.jobs)
        if row.klass == klass and best is not None and best.rpo_window() > klass.rpo:
            gaps[best].append(row.component)
    for name, db in policy.databases.items():
        best = _best((db.job, db.wal_job) if db.wal_job else (db.job,))
        if db.klass == klass and best.rpo_window() > klass.rpo:
            gaps[best].append(f"database {name}")
    return gaps


def check_class_rpo(policy: Policy, klass: TargetClass) -> CheckResult:
    """No job protecting the class runs less often than the class RPO."""
    rpo = format_duration(klass.rpo)
    problems = [f"RPO {rpo} cannot be met by {_NOUN[job.kind]} every {format_duration(job.rpo_window())} "
                f"({job.name}: {', '.join(names)}); {_REMEDY[job.kind]}"
                for job, names in rpo_gaps(policy, klass).items()]
    intervals = {j.name: _window(j) for row in policy.scope if row.klass == klass for j in row.jobs}
    verdict = f"every {klass.title} component is backed up at least every {rpo} (its RPO)"
    return result(f"policy.rpo.{klass.key}", f"{klass.title}: backup intervals meet the RPO", problems,
                  verdict, REFS_RPO, **{"class": klass.title, "rpo": rpo, "job intervals": intervals})


def _window(job: BackupJob) -> str:
    if job.archive:
        return f"WAL archived within {format_duration(job.archive.timeout)} (archive timeout)"
    return "continuous" if job.continuous else format_duration(job.interval())


def check_retention_covers_drills(policy: Policy) -> CheckResult:
    """Every job keeps its backups at least as long as the time between two quarterly drills."""
    between_drills = policy.drill_interval
    kept = {name: max((r for r in (j.retention.local, j.retention.cold) if r), default=timedelta(0))
            for name, j in policy.jobs.items()}
    gap = format_duration(between_drills)
    problems = [f"{name} keeps backups {format_duration(k)} < the {gap} between quarterly drills"
                for name, k in kept.items() if k < between_drills]
    return result("policy.retention", "retention covers the interval between quarterly drills", problems,
                  f"every job keeps its backups at least {gap} (the longest quarter)", REFS_RETENTION,
                  **{"between drills": gap, "retention": {n: format_duration(k) for n, k in kept.items()}})


def check_scope_mapped(policy: Policy) -> CheckResult:
    """Every scope row names a job, every job protects a scope row, every database's job is in scope."""
    problems = [f"scope row {row.component!r} names no backup job" for row in policy.scope if not row.jobs]
    in_scope = {j.name for row in policy.scope for j in row.jobs}
    problems += [f"job {name} protects no component of the scope table" for name in policy.jobs
                 if name not in in_scope]
    problems += [f"database {name} ({db.klass.title}) is dumped by {db.job.name}, which protects no "
                 f"{db.klass.title} component of the scope table"
                 for name, db in policy.databases.items()
                 if not any(db.job in row.jobs and row.klass == db.klass for row in policy.scope)]
    mapping = {row.component: [j.name for j in row.jobs] for row in policy.scope}
    verdict = f"all {len(policy.scope)} scope rows map to jobs and all {len(policy.jobs)} jobs are in scope"
    return result("policy.scope-mapped", "every scope row maps to a backup job", problems, verdict,
                  REFS_SCOPE, mapping=mapping)
