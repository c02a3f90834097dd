"""The scope table: every stateful component has a backup artefact that exists, is non-empty and fresh."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from akko_dr.checks import CheckResult, age_text, not_applicable, result, uncovered
from akko_dr.checks.schedule import job_window
from akko_dr.checks.verification import PLAN_KEY, PROBE_PREFIX, check_velero, judge_newest, latest_dumps
from akko_dr.checks.wal import check_wal_fresh
from akko_dr.errors import DrillError
from akko_dr.measure import utcnow
from akko_dr.policy import BackupJob, Policy, ScopeItem, format_duration
from akko_dr.ports import ObjectStore, PlatformSource, WalArchive

REFS = ("playbook: Scope", "DORA Art. 12(1)")
READ_ONLY_REPLICATION = "read-only: the replica's newest object against the hot buckets' newest"
CANARY_METHOD = f"canary object under {PROBE_PREFIX} (written with the probe opt-in)"
POLL = timedelta(seconds=0.5)  # how often a waiting canary looks at the replica
PROGRESS_MIN = timedelta(seconds=5)  # the least time between two progress lines


@dataclass
class ScopeContext:
    """What a scope check reads: the policy, the platform, the store, and how to trigger the mirror."""

    policy: Policy
    source: PlatformSource
    store: ObjectStore
    now: datetime
    run_mirror: Callable[[], object] | None = None  # targets without continuous replication (the sandbox)
    notes: list[str] = field(default_factory=list)
    probes_allowed: bool = False  # may write a replication canary (live: --allow-probes)
    progress: Callable[[str], None] = lambda line: None  # where a waiting probe says how it is going
    wal_archive: WalArchive | None = None  # the WAL archive, where the target names one

    @property
    def tolerance(self) -> timedelta:
        return self.policy.schedule_tolerance


def _dumps(ctx: ScopeContext, job: BackupJob) -> CheckResult:
    dumps = latest_dumps(ctx.policy, ctx.store)
    problems, figures = [], {}
    for name, db in ctx.policy.databases.items():
        if db.job == job:
            problem, figures[name] = judge_newest(ctx.policy, ctx.store, name, dumps[name], ctx.now)
            problems += [problem] if problem else []
    return result(f"scope.artefact.{job.name}", f"{job.name} dumps exist, are non-empty and fresh", problems,
                  f"{len(figures)} dumps by {job.name} exist, are non-empty and fresh", REFS, dumps=figures)


def replication_lag(ctx: ScopeContext, job: BackupJob) -> tuple[timedelta, str]:
    """Write a canary object under the probe prefix to every hot bucket and wait, up to the probe deadline,
    for it in the replica; the lag and its key. Removed from the hot buckets afterwards."""
    st, deadline = ctx.policy.storage, ctx.policy.probe_deadline
    key = f"{PROBE_PREFIX}replication-{utcnow():%Y%m%dT%H%M%S%fZ}"
    written = utcnow()
    try:
        for bucket in st.hot_buckets:
            ctx.store.put_bytes(bucket, key, b"AKKO DR replication canary")
        if ctx.run_mirror is not None:
            ctx.run_mirror()
        ctx.progress(f"replication canary {key}: waiting up to {format_duration(deadline)} "
                     f"for it in s3://{st.replica_bucket}")
        if not wait_for_replica(ctx, key, written, deadline):
            raise DrillError(f"no replication within {format_duration(deadline)}: canary {key} did not "
                             f"reach s3://{st.replica_bucket}")
        return utcnow() - written, key
    finally:
        _remove(ctx.store, list(st.hot_buckets), key)


def wait_for_replica(ctx: ScopeContext, key: str, written: datetime, deadline: timedelta) -> bool:
    """Whether ``key`` shows in the replica before ``deadline``; progress about every tenth of it."""
    replica, end = ctx.policy.storage.replica_bucket, written + deadline
    step, said = max(deadline / 10, PROGRESS_MIN), written
    while not any(o.key == key for o in ctx.store.list(replica, key)):
        now = utcnow()
        if now >= end:
            return False
        if now - said >= step:
            said = now
            ctx.progress(f"replication canary {key}: not in s3://{replica} after "
                         f"{format_duration(now - written)} (deadline {format_duration(deadline)})")
        time.sleep(min(POLL.total_seconds(), (end - now).total_seconds()))
    return True


def _remove(store: ObjectStore, buckets: list[str], key: str) -> None:
    for bucket in buckets:
        with suppress(DrillError):  # best effort: the canary sits under the documented probe prefix
            store.delete(bucket, key)


def replica_behind(ctx: ScopeContext) -> tuple[timedelta | None, dict[str, object]]:
    """Read-only: how far the replica's newest object lags the hot buckets' newest (None: no hot object)."""
    st = ctx.policy.storage
    hot = [o for b in st.hot_buckets for o in ctx.store.list(b) if not o.key.startswith(PROBE_PREFIX)]
    replica = [o for o in ctx.store.list(st.replica_bucket) if not o.key.startswith(PROBE_PREFIX)]
    newest_hot = max(hot, key=lambda o: o.last_modified, default=None)
    newest_replica = max(replica, key=lambda o: o.last_modified, default=None)
    figures: dict[str, object] = {
        "hot newest": f"s3://{newest_hot.bucket}/{newest_hot.key} {newest_hot.last_modified.isoformat()}"
        if newest_hot else "none",
        "replica newest": f"s3://{st.replica_bucket}/{newest_replica.key} "
                          f"{newest_replica.last_modified.isoformat()}" if newest_replica else "none"}
    if newest_hot is None:
        return None, figures
    if newest_replica is None:
        return ctx.now - newest_hot.last_modified, figures
    return max(newest_hot.last_modified - newest_replica.last_modified, timedelta(0)), figures


def canary_plan(policy: Policy) -> list[str]:
    """The writes a replication canary makes, for the plan of a run without the probe opt-in."""
    st = policy.storage
    key = f"{PROBE_PREFIX}replication-<time>"
    return [*(f"PUT s3://{bucket}/{key}" for bucket in st.hot_buckets),
            f"wait up to {format_duration(policy.probe_deadline)} for it in s3://{st.replica_bucket}",
            *(f"DELETE s3://{bucket}/{key}" for bucket in st.hot_buckets)]


def _mirror_read_only(ctx: ScopeContext, job: BackupJob, cid: str, title: str) -> CheckResult:
    st, window = ctx.policy.storage, job_window(ctx.policy, job)
    behind, figures = replica_behind(ctx)
    figures |= {"method": READ_ONLY_REPLICATION, "window": format_duration(window),
                PLAN_KEY: canary_plan(ctx.policy)}
    if behind is None:
        return uncovered(cid, title, f"nothing in {', '.join(st.hot_buckets)} to compare with the replica "
                         f"({READ_ONLY_REPLICATION})", REFS)
    problems = [f"s3://{st.replica_bucket}'s newest object is {age_text(behind)} behind the hot buckets' "
                f"newest > {format_duration(window)} ({READ_ONLY_REPLICATION})"] if behind > window else []
    return result(cid, title, problems, f"s3://{st.replica_bucket}'s newest object is {age_text(behind)} "
                  f"behind the hot buckets' newest <= {format_duration(window)} ({READ_ONLY_REPLICATION})",
                  REFS, **figures)


def _mirror(ctx: ScopeContext, job: BackupJob) -> CheckResult:
    cid, title = f"scope.artefact.{job.name}", f"{job.name} delivers a canary object to the replica"
    st = ctx.policy.storage
    if not st.hot_buckets or not st.replica_bucket:
        return uncovered(cid, title, f"the policy names no hot bucket or replica for {job.name}", REFS)
    if not ctx.probes_allowed:
        return _mirror_read_only(ctx, job, cid, title)
    window = job_window(ctx.policy, job)
    try:
        lag, key = replication_lag(ctx, job)
    except DrillError as err:
        return result(cid, title, [str(err)], "", REFS, window=format_duration(window), method=CANARY_METHOD)
    figures = {"canary": key, "from": list(st.hot_buckets), "to": st.replica_bucket,
               "lag": format_duration(lag), "lag_seconds": round(lag.total_seconds(), 3),
               "window": format_duration(window), "method": CANARY_METHOD}
    if ctx.run_mirror is not None:
        figures["replication"] = f"{job.name} run once by the target (it does not replicate continuously)"
    problems = [f"replication too slow: canary {key} took {age_text(lag)} > {format_duration(window)}"
                ] if lag > window else []
    verdict = (f"a canary object reached s3://{st.replica_bucket} in {age_text(lag)} "
               f"<= {format_duration(window)}")
    return result(cid, title, problems, verdict, REFS, **figures)


def _velero(ctx: ScopeContext, job: BackupJob) -> CheckResult:
    return check_velero(ctx.policy, ctx.source, ctx.now)


def _realm_export(ctx: ScopeContext, job: BackupJob) -> CheckResult:
    cid, title = f"scope.artefact.{job.name}", f"{job.name} export parses and names the realm"
    where = ctx.source.realm_exports
    if where is None:
        return uncovered(cid, title, "the target names no location for realm exports "
                         "(target file: keycloak.exports)", REFS)
    exports = [o for o in ctx.store.list(where.bucket, where.prefix) if o.key.endswith(".json")]
    newest = max(exports, key=lambda o: o.last_modified, default=None)
    if newest is None:
        missing = f"missing: no realm export in s3://{where.bucket}/{where.prefix}"
        return result(cid, title, [missing], "", REFS)
    age, limit = ctx.now - newest.last_modified, job.interval()
    figures = {"key": newest.key, "size": newest.size, "age": age_text(age), "limit": format_duration(limit)}
    problems = [f"empty: {newest.key} has 0 bytes"] if newest.size == 0 else []
    if age > limit + ctx.tolerance:
        problems.append(f"stale: {newest.key} is {age_text(age)} old > {format_duration(limit)} + tolerance")
    if not problems and (realm := _realm_of(ctx.store.read(where.bucket, newest.key))) != where.realm:
        problems.append(f"{newest.key} does not name realm {where.realm!r} ({realm})")
    verdict = f"{newest.key} is {age_text(age)} old and names realm {where.realm!r}"
    return result(cid, title, problems, verdict, REFS, **figures)


def _realm_of(body: bytes) -> str:
    """The realm a Keycloak export names, or why it names none."""
    try:
        data = json.loads(body)
    except ValueError:
        return "not JSON"
    realm = data.get("realm") if isinstance(data, dict) else None
    return realm if isinstance(realm, str) else "no realm field"


def _wal(ctx: ScopeContext, job: BackupJob) -> CheckResult:
    """A WAL archive's artefact: its newest archived segment, fresh within the archive timeout."""
    cid = f"scope.artefact.{job.name}"
    if ctx.wal_archive is None:
        return not_applicable(cid, f"{job.name} artefact", "the target names no WAL archive", REFS)
    found = check_wal_fresh(ctx.policy, job, ctx.wal_archive, ctx.now)
    return CheckResult(cid, f"{job.name} artefact", found.status, found.reason, found.measured, REFS)


ARTEFACT_CHECKS: dict[str, Callable[[ScopeContext, BackupJob], CheckResult]] = {
    "pg-dump": _dumps, "mirror": _mirror, "velero": _velero, "realm-export": _realm_export,
    "wal-archive": _wal}


def check_artefact(ctx: ScopeContext, job: BackupJob) -> CheckResult:
    """The backup artefact of one job: not applicable where the target does not run it."""
    if reason := ctx.source.no_runs(job):
        return not_applicable(f"scope.artefact.{job.name}", f"{job.name} artefact", reason, REFS)
    check = ARTEFACT_CHECKS.get(job.kind)
    if check is None:
        return uncovered(f"scope.artefact.{job.name}", f"{job.name} artefact",
                         f"no artefact check for jobs of kind {job.kind}", REFS)
    return check(ctx, job)


def check_component(ctx: ScopeContext, row: ScopeItem) -> CheckResult:
    """A scope row: failed if any artefact failed, uncovered if any has no check, else n/a if any is n/a."""
    cid, title = f"scope.{row.component}", f"{row.component} has a fresh backup artefact"
    if not row.jobs:
        return uncovered(cid, title, f"{row.component}: no backup job in the policy", REFS)
    parts = [check_artefact(ctx, job) for job in row.jobs]
    figures = {p.id: p.evidence() for p in parts}
    for status in ("failed", "uncovered", "not-applicable"):
        if hits := [p for p in parts if p.status == status]:
            others = [f"{p.id.rsplit('.', 1)[-1]} {p.status}" for p in parts if p.status != status]
            reason = "; ".join(p.reason for p in hits) + (f" ({', '.join(others)})" if others else "")
            return CheckResult(cid, title, status, reason, figures, REFS)
    return CheckResult(cid, title, "passed", "; ".join(p.reason for p in parts), figures, REFS)
