"""WAL archive checks: the newest segment is fresh, the chain from the newest base backup is whole, and
the archiver's failures (``pg_stat_archiver``) are visible. Thresholds: the wal-archive job's archive
timeout and the policy's schedule tolerance."""

from __future__ import annotations

from datetime import datetime

from akko_dr.checks import CheckResult, age_text, not_applicable, result
from akko_dr.policy import BackupJob, Policy, format_duration
from akko_dr.ports import WalArchive, WalSegment

REFS = ("playbook: Scope (Logical dump + WAL archiving)", "playbook: Backup schedule", "DORA Art. 12(2)")
SEGMENTS_PER_LOG = 0x100  # 16 MB segments (PostgreSQL's default wal_segment_size)


def wal_jobs(policy: Policy) -> list[BackupJob]:
    return [j for j in policy.jobs.values() if j.kind == "wal-archive" and j.archive]


def next_segment(name: str) -> str:
    """The segment after ``name`` on the same timeline."""
    tli, log, seg = int(name[:8], 16), int(name[8:16], 16), int(name[16:], 16)
    log, seg = (log + 1, 0) if seg + 1 >= SEGMENTS_PER_LOG else (log, seg + 1)
    return f"{tli:08X}{log:08X}{seg:08X}"


def missing_between(first: str, last: str, present: set[str]) -> list[str]:
    """Segments from ``first`` to ``last`` (inclusive, same timeline) that are not in ``present``."""
    missing, name = [], first
    while name <= last:
        if name not in present:
            missing.append(name)
        name = next_segment(name)
    return missing


def _segments(archive: WalArchive) -> list[WalSegment]:
    return [s for s in archive.segments() if s.is_segment]


def check_wal_fresh(policy: Policy, job: BackupJob, archive: WalArchive, now: datetime) -> CheckResult:
    """The newest archived segment is younger than the archive timeout plus the tolerance."""
    cid, title = f"verification.wal-fresh.{job.name}", f"{job.name}: newest archived WAL segment is fresh"
    allowed = job.archive.timeout + policy.schedule_tolerance
    segments = _segments(archive)
    if not segments:
        return result(cid, title, [f"no WAL segment in {archive.location}"], "", REFS)
    newest = max(segments, key=lambda s: s.last_modified)
    age = now - newest.last_modified
    problems = [f"newest WAL segment {newest.name} in {archive.location} is {age_text(age)} old > "
                f"{format_duration(allowed)} allowed (archive timeout {format_duration(job.archive.timeout)} "
                f"+ tolerance)"] if age > allowed else []
    return result(cid, title, problems, f"newest WAL segment {newest.name} is {age_text(age)} old <= "
                  f"{format_duration(allowed)} allowed", REFS, newest=newest.name, age=age_text(age),
                  allowed=format_duration(allowed))


def check_wal_chain(job: BackupJob, archive: WalArchive) -> CheckResult:
    """Every segment from the newest base backup's first to the newest archived one is in the archive,
    and the archive holds what the server says it archived."""
    cid, title = f"verification.wal-chain.{job.name}", f"{job.name}: no gap in the WAL archive"
    backups = archive.base_backups()
    if not backups:
        return result(cid, title, [f"no base backup in {archive.location}: no chain to check"], "", REFS)
    base = max(backups, key=lambda b: b.end_time)
    timeline = [s.name for s in _segments(archive) if s.name[:8] == base.begin_wal[:8]]
    newest = max(timeline, default=base.begin_wal)
    missing = missing_between(base.begin_wal, newest, set(timeline))
    problems = [f"{len(missing)} WAL segment(s) missing after base backup {base.id}: "
                f"{', '.join(missing[:5])}{' …' if len(missing) > 5 else ''}"] if missing else []
    server_says = archive.archiver().last_archived_wal
    if server_says and server_says[:24] > newest and server_says[:8] == newest[:8]:
        problems.append(f"the server archived {server_says[:24]}, but the newest segment in "
                        f"{archive.location} is {newest}")
    span = len(missing_between(base.begin_wal, newest, set()))
    return result(cid, title, problems, f"all {span} segments from base backup {base.id} ({base.begin_wal}) "
                  f"to {newest} are archived", REFS, base_backup=base.id, first=base.begin_wal, newest=newest)


def check_archiver(job: BackupJob, archive: WalArchive) -> CheckResult:
    """``pg_stat_archiver``: no failure of archive_command since its last success."""
    cid, title = f"verification.wal-archiver.{job.name}", f"{job.name}: archive_command is not failing"
    stats = archive.archiver()
    figures = {"archived": stats.archived_count, "failed": stats.failed_count,
               "last archived": stats.last_archived_wal, "last failed": stats.last_failed_wal,
               "waiting": stats.pending}
    waiting = ("segments waiting: not readable without pg_monitor" if stats.pending is None
               else f"{stats.pending} segment(s) waiting to be archived")
    problems = [f"archive_command failing: {stats.failed_count} failure(s), last on {stats.last_failed_wal} "
                f"at {stats.last_failed_time:%Y-%m-%d %H:%M:%S} UTC, no success since; {waiting}"
                ] if stats.failing else []
    verdict = (f"{stats.archived_count} segments archived, last {stats.last_archived_wal}; "
               f"{stats.failed_count} failure(s), none since the last success")
    return result(cid, title, problems, verdict, REFS, **figures)


def no_wal_job(policy: Policy, what: str) -> CheckResult:
    return not_applicable(f"verification.{what}", f"WAL archive: {what}",
                          "the policy declares no wal-archive job", REFS)
