"""The playbook's "Verification commands": fresh dumps, a recent Velero backup, an immutable audit trail."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from akko_dr.backup import KEY_TIME
from akko_dr.checks import CheckResult, age_text, not_applicable, result, uncovered
from akko_dr.checks.storage import bucket_lock, lock_problems, lock_text, refused, s3_call
from akko_dr.checks.velero import newest_completed
from akko_dr.policy import Policy, format_duration
from akko_dr.ports import ObjectStore, PlatformSource

REFS_DUMPS = ("playbook: Verification commands — most recent PG dump is < 4 h old", "DORA Art. 12(1)")
REFS_VELERO = ("playbook: Verification commands — Velero has a recent successful backup", "DORA Art. 12(1)")
REFS_WORM = ("playbook: Verification commands — audit trail immutability (WORM)",
             "playbook: Drill 3 — COMPLIANCE mode, 365 d", "DORA Art. 12(3)")
PROBE_HOLD = timedelta(days=1)  # how long a WORM probe record stays locked on a store that holds the lock
PROBE_PREFIX = "dr-probe/"


@dataclass(frozen=True)
class Dump:
    """The newest dump of a database in the object store listing."""

    database: str
    bucket: str
    key: str
    size: int
    key_time: datetime  # the time written in the key: when the dump was taken
    last_modified: datetime  # when the store received it

    def age(self, now: datetime) -> timedelta:
        """Age from the older of the two times: a key cannot make a dump look younger than its upload."""
        return now - min(self.key_time, self.last_modified)


def latest_dumps(policy: Policy, store: ObjectStore) -> dict[str, Dump | None]:
    """The newest dump (by the time in its key) of every database in the policy, from one listing."""
    bucket, prefix = policy.storage.backups_bucket, policy.storage.dump_prefix
    listing = store.list(bucket, prefix)
    out: dict[str, Dump | None] = {}
    for name in policy.databases:
        pattern = re.compile(rf"^{re.escape(prefix + name)}_(\d{{14}})\.sql\.gz$")
        found = [Dump(name, bucket, o.key, o.size, datetime.strptime(m[1], KEY_TIME).replace(tzinfo=UTC),
                      o.last_modified) for o in listing if (m := pattern.match(o.key))]
        out[name] = max(found, key=lambda d: d.key_time, default=None)
    return out


def judge_dump(policy: Policy, name: str, dump: Dump | None,
               now: datetime) -> tuple[str | None, dict[str, object]]:
    """The problem with one database's newest dump (None when fresh), and its figures."""
    tolerance = policy.schedule_tolerance
    job = policy.database(name).job
    limit = job.interval()
    where = f"s3://{policy.storage.backups_bucket}/{policy.storage.dump_prefix}"
    if dump is None:
        return f"missing: no dump of {name} in {where}", {"key": None, "limit": format_duration(limit)}
    age = dump.age(now)
    figures = {"key": dump.key, "size": dump.size, "age": age_text(age),
               "age_seconds": round(age.total_seconds()), "limit": format_duration(limit), "job": job.name,
               "last_modified": dump.last_modified.isoformat()}
    if dump.size == 0:
        return f"empty: {dump.key} has 0 bytes", figures
    if dump.key_time > dump.last_modified + tolerance:
        uploaded = f"{dump.last_modified:%Y-%m-%d %H:%M}Z"
        return f"suspect: {dump.key} claims a time after its upload ({uploaded})", figures
    if age > limit + tolerance:
        return (f"stale: {dump.key} is {age_text(age)} old > {format_duration(limit)} + tolerance "
                f"{format_duration(tolerance)} ({job.name})"), figures
    return None, figures


def check_dump_freshness(policy: Policy, store: ObjectStore, now: datetime) -> CheckResult:
    """The newest dump of every database is younger than its job's interval plus the tolerance."""
    tolerance = policy.schedule_tolerance
    problems, dumps = [], {}
    for name, dump in latest_dumps(policy, store).items():
        problem, dumps[name] = judge_dump(policy, name, dump, now)
        if problem:
            problems.append(problem)
    oldest = max((d["age_seconds"] for d in dumps.values() if "age_seconds" in d), default=None)
    verdict = (f"all {len(dumps)} databases have a dump younger than their job's interval + tolerance "
               f"{format_duration(tolerance)} (oldest {format_duration(oldest or 0)})")
    return result("verification.dump-freshness", "the latest dump of every database is fresh", problems,
                  verdict, REFS_DUMPS, dumps=dumps, tolerance=format_duration(tolerance))


def check_velero(policy: Policy, source: PlatformSource, now: datetime) -> CheckResult:
    """The newest Completed Velero backup is younger than the Velero job's interval plus the tolerance."""
    tolerance = policy.schedule_tolerance
    cid, title = "verification.velero", "the newest completed Velero backup is recent"
    jobs = [j for j in policy.jobs.values() if j.kind == "velero"]
    if not jobs:
        return uncovered(cid, title, "the policy has no Velero job to judge the backups by", REFS_VELERO)
    job = jobs[0]
    if reason := source.no_velero():
        return not_applicable(cid, title, reason, REFS_VELERO)
    newest = newest_completed(source.velero_backups())
    if newest is None or newest.completed_at is None:
        return result(cid, title, [f"no Velero backup in phase Completed ({job.name})"], "", REFS_VELERO)
    age, limit = now - newest.completed_at, job.interval()
    figures = {"backup": newest.name, "completed": newest.completed_at.isoformat(), "age": age_text(age),
               "age_seconds": round(age.total_seconds()), "limit": format_duration(limit), "job": job.name}
    problems = []
    if age > limit + tolerance:
        problems.append(f"Velero backup {newest.name} is {age_text(age)} old > {format_duration(limit)} "
                        f"+ tolerance {format_duration(tolerance)} ({job.name})")
    verdict = f"Velero backup {newest.name} completed {age_text(age)} ago <= {format_duration(limit)}"
    return result(cid, title, problems, verdict, REFS_VELERO, **figures)


def check_audit_lock(policy: Policy, s3: Any) -> CheckResult:
    """The audit bucket's Object Lock is in the policy's mode with at least the policy's retention."""
    st = policy.storage
    lock = bucket_lock(s3, st.audit_bucket)
    problems = lock_problems(st.audit_bucket, lock, st.audit_lock_mode, st.audit_lock_retention)
    wanted = f"{st.audit_lock_mode}, {format_duration(st.audit_lock_retention)}"
    verdict = f"s3://{st.audit_bucket} is locked {lock_text(lock)} (policy: {wanted})"
    return result("verification.worm.lock", "the audit bucket is locked as the policy says", problems,
                  verdict, REFS_WORM, bucket=st.audit_bucket, lock=lock_text(lock),
                  policy=wanted)


@dataclass(frozen=True)
class WormProbe:
    """A small record written under the audit bucket's lock, to prove the lock holds."""

    bucket: str
    key: str
    version_id: str
    mode: str
    retain_until: datetime


def write_probe(policy: Policy, s3: Any, now: datetime, hold: timedelta = PROBE_HOLD) -> WormProbe:
    """Write a probe record locked in the policy's mode until ``now + hold``."""
    st = policy.storage
    key = f"{PROBE_PREFIX}worm-{now:%Y%m%dT%H%M%S%fZ}"
    until = now + hold
    reply = s3_call(f"writing a probe record to {st.audit_bucket}", s3.put_object, Bucket=st.audit_bucket,
                    Key=key, Body=b"AKKO DR WORM probe: this record must not be deletable until retained",
                    ObjectLockMode=st.audit_lock_mode, ObjectLockRetainUntilDate=until)
    return WormProbe(st.audit_bucket, key, reply.get("VersionId", ""), st.audit_lock_mode, until)


def _probe_figures(probe: WormProbe) -> dict[str, object]:
    return {"bucket": probe.bucket, "probe": probe.key, "version": probe.version_id, "mode": probe.mode,
            "retained until": probe.retain_until.isoformat()}


def check_delete_refused(probe: WormProbe, s3: Any) -> CheckResult:
    """Deleting the locked version of the probe is refused by the store."""
    code = refused(s3.delete_object, Bucket=probe.bucket, Key=probe.key, VersionId=probe.version_id)
    problems = [] if code else [f"not WORM: s3://{probe.bucket} accepted deleting locked version "
                                f"{probe.version_id} of {probe.key}"]
    return result("verification.worm.delete", "a locked audit record cannot be deleted", problems,
                  f"deleting a locked version was refused ({code})", REFS_WORM,
                  **_probe_figures(probe), **{"delete attempt": f"refused: {code}" if code else "accepted"})


def check_shorten_refused(probe: WormProbe, s3: Any, now: datetime) -> CheckResult:
    """Shortening the probe's retention (to now) is refused by the store."""
    retention = {"Mode": probe.mode, "RetainUntilDate": now}
    code = refused(s3.put_object_retention, Bucket=probe.bucket, Key=probe.key, VersionId=probe.version_id,
                   Retention=retention)
    problems = [] if code else [f"not WORM: s3://{probe.bucket} accepted shortening the {probe.mode} "
                                f"retention of {probe.key} from {probe.retain_until:%Y-%m-%d %H:%M}Z to now"]
    return result("verification.worm.shorten", "the retention of a locked audit record cannot be shortened",
                  problems, f"shortening a {probe.mode} retention was refused ({code})", REFS_WORM,
                  **_probe_figures(probe), **{"shorten attempt": f"refused: {code}" if code else "accepted"})


def remove_probe(probe: WormProbe, s3: Any, now: datetime) -> str:
    """Remove the probe where the store lets us; what happened, for the evidence."""
    if not refused(s3.delete_object, Bucket=probe.bucket, Key=probe.key, VersionId=probe.version_id):
        return f"probe {probe.key} removed"
    refused(s3.put_object_retention, Bucket=probe.bucket, Key=probe.key, VersionId=probe.version_id,
            Retention={"Mode": probe.mode, "RetainUntilDate": now})
    if not refused(s3.delete_object, Bucket=probe.bucket, Key=probe.key, VersionId=probe.version_id):
        return f"probe {probe.key} removed after its lock was shortened (the store is not WORM)"
    return f"probe {probe.key} kept by the lock until {probe.retain_until:%Y-%m-%d %H:%M}Z"
