"""The scope table: every stateful component has a backup artefact that exists, is non-empty and fresh."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from akko_dr.checks import CheckResult, age_text, not_applicable, result, uncovered
from akko_dr.checks.schedule import job_window
from akko_dr.checks.verification import PROBE_PREFIX, check_velero, judge_dump, latest_dumps
from akko_dr.errors import DrillError
from akko_dr.measure import utcnow, wait_for
from akko_dr.policy import BackupJob, Policy, ScopeItem, format_duration
from akko_dr.ports import ObjectStore, PlatformSource

REFS = ("playbook: Scope", "DORA Art. 12(1)")


@dataclass
class ScopeContext:
    """What a scope check reads: the policy, the platform, the store, and how to trigger the mirror."""

    policy: Policy
    source: PlatformSource
    store: ObjectStore
    now: datetime
    run_mirror: Callable[[], object] | None = None  # targets without continuous replication (the sandbox)
    notes: list[str] = field(default_factory=list)

    @property
    def tolerance(self) -> timedelta:
        return self.policy.schedule_tolerance


def _dumps(ctx: ScopeContext, job: BackupJob) -> CheckResult:
    dumps = latest_dumps(ctx.policy, ctx.store)
    problems, figures = [], {}
    for name, db in ctx.policy.databases.items():
        if db.job == job:
            problem, figures[name] = judge_dump(ctx.policy, name, dumps[name], ctx.now)
            problems += [problem] if problem else []
    return result(f"scope.artefact.{job.name}", f"{job.name} dumps exist, are non-empty and fresh", problems,
                  f"{len(figures)} dumps by {job.name} exist, are non-empty and fresh", REFS, dumps=figures)


def replication_lag(ctx: ScopeContext, job: BackupJob) -> tuple[timedelta, str]:
    """Write a canary object to every hot bucket and wait for it in the replica; the lag and its key."""
    st, window = ctx.policy.storage, job_window(ctx.policy, job)
    key = f"{PROBE_PREFIX}replication-{utcnow():%Y%m%dT%H%M%S%fZ}"
    written = utcnow()
    for bucket in st.hot_buckets:
        ctx.store.put_bytes(bucket, key, b"AKKO DR replication canary")
    if ctx.run_mirror is not None:
        ctx.run_mirror()
    try:
        wait_for(f"canary {key} in s3://{st.replica_bucket} (window {format_duration(window)})",
                 lambda: any(o.key == key for o in ctx.store.list(st.replica_bucket, key)),
                 window.total_seconds())
        return utcnow() - written, key
    finally:
        _remove(ctx.store, [*st.hot_buckets, st.replica_bucket], key)


def _remove(store: ObjectStore, buckets: list[str], key: str) -> None:
    for bucket in buckets:
        with suppress(DrillError):  # a locked replica keeps it: harmless, and proof of the lock
            store.delete(bucket, key)


def _mirror(ctx: ScopeContext, job: BackupJob) -> CheckResult:
    cid, title = f"scope.artefact.{job.name}", f"{job.name} delivers a canary object to the replica"
    st = ctx.policy.storage
    if not st.hot_buckets or not st.replica_bucket:
        return uncovered(cid, title, f"the policy names no hot bucket or replica for {job.name}", REFS)
    window = job_window(ctx.policy, job)
    try:
        lag, key = replication_lag(ctx, job)
    except DrillError as err:
        return result(cid, title, [str(err)], "", REFS, window=format_duration(window))
    figures = {"canary": key, "from": list(st.hot_buckets), "to": st.replica_bucket,
               "lag": format_duration(lag), "lag_seconds": round(lag.total_seconds(), 3),
               "window": format_duration(window)}
    if ctx.run_mirror is not None:
        figures["replication"] = f"{job.name} run once by the target (it does not replicate continuously)"
    return result(cid, title, [], f"a canary object reached s3://{st.replica_bucket} in {age_text(lag)} "
                  f"<= {format_duration(window)}", REFS, **figures)


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


ARTEFACT_CHECKS: dict[str, Callable[[ScopeContext, BackupJob], CheckResult]] = {
    "pg-dump": _dumps, "mirror": _mirror, "velero": _velero, "realm-export": _realm_export}


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
