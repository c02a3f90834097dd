"""The playbook's "Verification commands": fresh dumps, a recent Velero backup, an immutable audit trail."""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from akko_dr import dump_content
from akko_dr.checks import CheckResult, age_text, inconclusive, not_applicable, result, uncovered
from akko_dr.checks.storage import lock_problems, lock_text
from akko_dr.checks.velero import failed_since, failure_text, newest_completed, of_schedule
from akko_dr.errors import DrillError
from akko_dr.policy import Policy, format_duration
from akko_dr.ports import BucketInspector, Database, ObjectStore, PlatformSource, VersionedObjectStore
from akko_dr.worm import Attempt, attempt

REFS_DUMPS = ("playbook: Verification commands — most recent PG dump is < 4 h old", "DORA Art. 12(1)")
REFS_DATABASES = ("playbook: Scope", "DORA Art. 12(1)")
REFS_VELERO = ("playbook: Verification commands — Velero has a recent successful backup", "DORA Art. 12(1)")
REFS_WORM = ("playbook: Verification commands — audit trail immutability (WORM)",
             "playbook: Drill 3 — COMPLIANCE mode, 365 d", "DORA Art. 12(3)")
PROBE_HOLD = timedelta(days=1)  # a WORM probe's own retain-until: the shortest a COMPLIANCE lock takes
PROBE_PREFIX = "dr-probe/"  # every object the checks write (WORM probes, replication canaries) sits here
PROBE_BODY = b"AKKO DR WORM probe: locked for a day to prove the lock refuses deleting it"
READ_ONLY_WORM = "read-only: the Object Lock configuration (writing a probe record needs --allow-probes)"
PROBE_METHOD = f"probe record under {PROBE_PREFIX}, locked for {format_duration(PROBE_HOLD)}"


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
    parsed = [(o, policy.storage.dump_key.parse(o.key.removeprefix(prefix))) for o in listing]
    for name in policy.databases:
        found = [Dump(name, bucket, o.key, o.size, dump.taken_at, o.last_modified)
                 for o, dump in parsed if dump is not None and dump.database == name]
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


SCANNED_BYTES = 1 << 20  # a dump up to this size (compressed) is read to see that it holds data


def content_problem(store: ObjectStore, dump: Dump) -> str | None:
    """Why a dump does not count as a backup: not a whole gzip, no table, or no row. None when it holds
    data, or is larger than SCANNED_BYTES (a dump that large holds data: an empty one is a few hundred)."""
    if dump.size > SCANNED_BYTES:
        return None
    try:
        sql = gzip.decompress(store.read(dump.bucket, dump.key))
    except (OSError, EOFError, zlib.error):
        return f"unreadable: {dump.key} is not a whole gzip file"
    return dump_content.emptiness(dump_content.scan(sql.splitlines(keepends=True)), dump.key)


def judge_newest(policy: Policy, store: ObjectStore, name: str, dump: Dump | None,
                 now: datetime) -> tuple[str | None, dict[str, object]]:
    """``judge_dump``, then whether the dump holds data at all: an empty "successful" dump is no backup."""
    problem, figures = judge_dump(policy, name, dump, now)
    if problem is None and dump is not None:
        problem = content_problem(store, dump)
    return problem, figures


def check_databases_present(policy: Policy, db: Database) -> CheckResult:
    """Every database of the policy is on the target's PostgreSQL server: one finding names all missing."""
    cid, title = "verification.databases", "every database of the policy is on the server"
    try:
        have = set(db.databases())
    except DrillError as err:
        return result(cid, title, [f"the PostgreSQL server could not be read: {err}"], "", REFS_DATABASES)
    missing = [name for name in policy.databases if name not in have]
    problems = [f"{', '.join(missing)} missing on the PostgreSQL server"] if missing else []
    return result(cid, title, problems, f"all {len(policy.databases)} databases of the policy are present",
                  REFS_DATABASES, missing=missing)


def check_dump_freshness(policy: Policy, store: ObjectStore, now: datetime) -> CheckResult:
    """The newest dump of every database is younger than its job's interval plus the tolerance."""
    tolerance = policy.schedule_tolerance
    problems, dumps = [], {}
    for name, dump in latest_dumps(policy, store).items():
        problem, dumps[name] = judge_newest(policy, store, name, dump, now)
        if problem:
            problems.append(problem)
    oldest = max((d["age_seconds"] for d in dumps.values() if "age_seconds" in d), default=None)
    verdict = (f"all {len(dumps)} databases have a dump younger than their job's interval + tolerance "
               f"{format_duration(tolerance)} (oldest {format_duration(oldest or 0)})")
    return result("verification.dump-freshness", "the latest dump of every database is fresh", problems,
                  verdict, REFS_DUMPS, dumps=dumps, tolerance=format_duration(tolerance))


def check_velero(policy: Policy, source: PlatformSource, now: datetime) -> CheckResult:
    """The newest Completed backup of the policy's Velero Schedule (including its namespace) is recent,
    and no backup of that Schedule failed since."""
    tolerance = policy.schedule_tolerance
    cid, title = "verification.velero", "the newest completed Velero backup is recent"
    jobs = [j for j in policy.jobs.values() if j.kind == "velero"]
    if not jobs:
        return uncovered(cid, title, "the policy has no Velero job to judge the backups by", REFS_VELERO)
    job, ns = jobs[0], policy.namespace
    if reason := source.no_velero():
        return not_applicable(cid, title, reason, REFS_VELERO)
    listed = source.velero_backups()
    backups = of_schedule(listed, job.name, ns)
    newest = newest_completed(backups)
    problems = [failure_text(b) for b in failed_since(backups, newest)]
    figures: dict[str, object] = {"job": job.name, "namespace": ns, "limit": format_duration(job.interval()),
                                  "counted": f"{len(backups)} of {len(listed)} backups (schedule {job.name}, "
                                             f"namespace {ns})"}
    if newest is None or newest.completed_at is None:
        problems.insert(0, f"no Velero backup of schedule {job.name} including namespace {ns} "
                           "in phase Completed")
        return result(cid, title, problems, "", REFS_VELERO, **figures)
    age, limit = now - newest.completed_at, job.interval()
    figures |= {"backup": newest.name, "completed": newest.completed_at.isoformat(), "age": age_text(age),
                "age_seconds": round(age.total_seconds())}
    if age > limit + tolerance:
        problems.insert(0, f"Velero backup {newest.name} is {age_text(age)} old > {format_duration(limit)} "
                           f"+ tolerance {format_duration(tolerance)} ({job.name})")
    verdict = f"Velero backup {newest.name} completed {age_text(age)} ago <= {format_duration(limit)}"
    return result(cid, title, problems, verdict, REFS_VELERO, **figures)


def check_audit_lock(policy: Policy, buckets: BucketInspector) -> CheckResult:
    """The audit bucket's Object Lock is in the policy's mode with at least the policy's retention."""
    st = policy.storage
    lock = buckets.lock(st.audit_bucket)
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


def write_probe(policy: Policy, store: VersionedObjectStore, now: datetime,
                hold: timedelta = PROBE_HOLD) -> WormProbe:
    """Write a probe record under the probe prefix, locked in the policy's mode until ``now + hold``."""
    st = policy.storage
    key = f"{PROBE_PREFIX}worm-{now:%Y%m%dT%H%M%S%fZ}"
    until = now + hold
    version = store.put_locked(st.audit_bucket, key, PROBE_BODY, st.audit_lock_mode, until)
    return WormProbe(st.audit_bucket, key, version, st.audit_lock_mode, until)


def _probe_figures(probe: WormProbe) -> dict[str, object]:
    return {"bucket": probe.bucket, "probe": probe.key, "version": probe.version_id, "mode": probe.mode,
            "retained until": probe.retain_until.isoformat(), "method": PROBE_METHOD}


def worm_verdict(cid: str, title: str, probe: WormProbe, tried: Attempt,
                 emulator: str | None) -> CheckResult:
    """Passed only when the lock refused; an emulator's or an ambiguous answer is inconclusive."""
    figures = _probe_figures(probe) | {"attempt": tried.line()}
    if emulator:
        return inconclusive(cid, title, f"inconclusive (emulator): {tried.line()} on the {emulator}, whose "
                            "Object Lock is not the real store's: this proves nothing about WORM",
                            REFS_WORM, **figures)
    if tried.outcome == "inconclusive":
        return inconclusive(cid, title, f"inconclusive: {tried.line()}", REFS_WORM, **figures)
    accepted = tried.outcome == "accepted"
    problems = [f"not WORM: s3://{probe.bucket} accepted {tried.action}"] if accepted else []
    return result(cid, title, problems, f"{tried.action} was refused by the lock ({tried.answer})",
                  REFS_WORM, **figures)


def check_delete_refused(probe: WormProbe, store: VersionedObjectStore,
                         emulator: str | None = None) -> CheckResult:
    """Deleting the locked version of the probe is refused because of the lock."""
    tried = attempt(f"deleting locked version {probe.version_id} of {probe.key}",
                    lambda: store.delete_version(probe.bucket, probe.key, probe.version_id))
    return worm_verdict("verification.worm.delete", "a locked audit record cannot be deleted", probe, tried,
                        emulator)


def check_shorten_refused(probe: WormProbe, store: VersionedObjectStore, now: datetime,
                          emulator: str | None = None) -> CheckResult:
    """Shortening the probe's retention is refused because of the lock. The shorter date is still in the
    future: a date in the past is a malformed request (MinIO: MalformedXML), which proves nothing."""
    shorter = now + (probe.retain_until - now) / 2
    tried = attempt(f"shortening the {probe.mode} retention of {probe.key} from "
                    f"{probe.retain_until:%Y-%m-%d %H:%M}Z to {shorter:%Y-%m-%d %H:%M}Z",
                    lambda: store.set_retention(probe.bucket, probe.key, probe.version_id, probe.mode,
                                                shorter))
    return worm_verdict("verification.worm.shorten",
                        "the retention of a locked audit record cannot be shortened", probe, tried, emulator)


PLAN_KEY = "plan (not executed: probes need --allow-probes)"


def worm_probe_plan(policy: Policy) -> list[str]:
    """The writes a WORM probe makes, for the plan of a run without the probe opt-in."""
    st = policy.storage
    key = f"s3://{st.audit_bucket}/{PROBE_PREFIX}worm-<time>"
    return [f"PUT {key}, locked {st.audit_lock_mode} until {format_duration(PROBE_HOLD)} later",
            "DELETE its locked version (must be refused by the lock)",
            "PUT a shorter retention on it (must be refused by the lock)",
            "DELETE it afterwards where the store lets us"]


def check_worm_read_only(policy: Policy, buckets: BucketInspector, cid: str, title: str) -> CheckResult:
    """Without probes: a lock not configured as the policy says is a finding; a good one proves no refusal."""
    lock = check_audit_lock(policy, buckets)
    figures = {**lock.measured, "method": READ_ONLY_WORM, PLAN_KEY: worm_probe_plan(policy)}
    if lock.status != "passed":
        return CheckResult(cid, title, lock.status, lock.reason, figures, REFS_WORM)
    return inconclusive(cid, title, f"inconclusive (read-only): {lock.reason}; only a refused write on a "
                        "probe record proves the lock holds (--allow-probes)", REFS_WORM, **figures)


def remove_probe(probe: WormProbe, store: VersionedObjectStore) -> str:
    """Delete the probe where the store lets us; a store that holds the lock keeps it a day."""
    tried = attempt(f"removing probe {probe.key}",
                    lambda: store.delete_version(probe.bucket, probe.key, probe.version_id))
    if tried.outcome == "accepted":
        return f"probe {probe.key} removed"
    return f"probe {probe.key} kept until {probe.retain_until:%Y-%m-%d %H:%M}Z ({tried.answer})"
