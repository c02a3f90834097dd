"""Each check fails with its reason on the real sandbox: stale or missing dumps, failed or late jobs,
a lock not in COMPLIANCE mode or too short, retention not enforced, a policy whose interval breaks its RPO.

Shared state is left alone: every test writes to buckets of its own and judges them through a copy of the
policy that names them.
"""

from __future__ import annotations

import secrets
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from akko_dr.adapters.s3 import S3BucketInspector
from akko_dr.backup import KEY_TIME, run_job
from akko_dr.checks.policy_analysis import check_class_rpo, check_scope_mapped
from akko_dr.checks.schedule import check_job_ran, check_job_retention, job_window
from akko_dr.checks.verification import (
    WormProbe,
    check_audit_lock,
    check_delete_refused,
    check_dump_freshness,
    check_velero,
    latest_dumps,
)
from akko_dr.measure import utcnow
from akko_dr.policy import BackupJob, Policy, format_duration
from akko_dr.sandbox import Sandbox
from akko_dr.sandbox.job_history import SandboxSource


def _bucket(sandbox: Sandbox, kind: str, **kwargs: object) -> str:
    name = f"chk-{kind}-{secrets.token_hex(3)}"
    sandbox.store.client.create_bucket(Bucket=name, **kwargs)
    return name


def _with_storage(policy: Policy, **storage: object) -> Policy:
    return replace(policy, storage=replace(policy.storage, **storage))


@pytest.fixture
def dump_bucket(sandbox: Sandbox, policy: Policy) -> tuple[Policy, str]:
    """A bucket of our own holding a real, fresh dump of every database (copied from the sandbox's)."""
    bucket = _bucket(sandbox, "dumps")
    for name, dump in latest_dumps(policy, sandbox.store).items():
        assert dump is not None, f"the sandbox has no dump of {name}"
        body = sandbox.store.read(dump.bucket, dump.key)
        key = f"{policy.storage.dump_prefix}{name}_{utcnow():{KEY_TIME}}.sql.gz"
        sandbox.store.put_bytes(bucket, key, body)
    return _with_storage(policy, backups_bucket=bucket), bucket


def test_fresh_dumps_pass(sandbox: Sandbox, dump_bucket: tuple[Policy, str]) -> None:
    mine, _ = dump_bucket
    result = check_dump_freshness(mine, sandbox.store, utcnow())
    assert result.status == "passed", result.reason


def test_a_stale_dump_fails_with_its_key_and_age(sandbox: Sandbox, dump_bucket: tuple[Policy, str]) -> None:
    mine, bucket = dump_bucket
    name = next(iter(mine.databases))
    job = mine.database(name).job
    later = utcnow() + job.interval() + mine.schedule_tolerance + timedelta(minutes=5)  # dumps aged meanwhile
    for other in mine.databases:  # every other database gets a dump taken at that later time
        if other != name:
            key = f"{mine.storage.dump_prefix}{other}_{later:{KEY_TIME}}.sql.gz"
            sandbox.store.put_bytes(bucket, key, b"\x1f\x8b dump")
    result = check_dump_freshness(mine, sandbox.store, later)
    assert result.status == "failed"
    assert f"stale: {mine.storage.dump_prefix}{name}_" in result.reason, result.reason
    assert f"> {format_duration(job.interval())} + tolerance" in result.reason, result.reason
    assert result.reason.count("stale:") == 1, result.reason


def test_a_dump_named_in_the_past_is_stale(sandbox: Sandbox, dump_bucket: tuple[Policy, str]) -> None:
    mine, bucket = dump_bucket
    name = next(iter(mine.databases))
    old = utcnow() - 2 * mine.database(name).job.interval()
    for obj in sandbox.store.list(bucket, f"{mine.storage.dump_prefix}{name}_"):
        sandbox.store.delete(bucket, obj.key)
    sandbox.store.put_bytes(bucket, f"{mine.storage.dump_prefix}{name}_{old:{KEY_TIME}}.sql.gz", b"\x1f\x8b")
    result = check_dump_freshness(mine, sandbox.store, utcnow())
    assert result.status == "failed"
    assert f"stale: {mine.storage.dump_prefix}{name}_" in result.reason, result.reason


def test_a_missing_dump_fails_naming_the_database(sandbox: Sandbox, dump_bucket: tuple[Policy, str]) -> None:
    mine, bucket = dump_bucket
    name = list(mine.databases)[-1]
    for obj in sandbox.store.list(bucket, f"{mine.storage.dump_prefix}{name}_"):
        sandbox.store.delete(bucket, obj.key)
    result = check_dump_freshness(mine, sandbox.store, utcnow())
    assert result.status == "failed"
    assert f"missing: no dump of {name} in s3://{bucket}/" in result.reason, result.reason


def test_an_empty_dump_fails(sandbox: Sandbox, dump_bucket: tuple[Policy, str]) -> None:
    mine, bucket = dump_bucket
    name = next(iter(mine.databases))
    key = f"{mine.storage.dump_prefix}{name}_{utcnow() + timedelta(seconds=1):{KEY_TIME}}.sql.gz"
    sandbox.store.put_bytes(bucket, key, b"")
    result = check_dump_freshness(mine, sandbox.store, utcnow())
    assert result.status == "failed" and f"empty: {key} has 0 bytes" in result.reason, result.reason


def _pg_job(policy: Policy) -> BackupJob:
    return next(j for j in policy.jobs.values() if j.kind == "pg-dump")


def test_a_failed_job_fails_with_its_error(sandbox: Sandbox, policy: Policy, tmp_path: Path) -> None:
    job = _pg_job(policy)
    broken = _with_storage(policy, backups_bucket=f"chk-missing-{secrets.token_hex(3)}")
    failed = run_job(broken, job.name, sandbox.db, sandbox.store, tmp_path)  # a real run that cannot upload
    assert not failed.succeeded
    source = SandboxSource(replace(sandbox, job_runs=[*sandbox.job_runs, failed]))
    result = check_job_ran(policy, job, source, utcnow())
    assert result.status == "failed"
    assert f"{job.name} failed its last run" in result.reason, result.reason
    assert "NoSuchBucket" in result.reason, result.reason


def test_a_job_that_never_ran_fails(sandbox: Sandbox, policy: Policy) -> None:
    job = _pg_job(policy)
    result = check_job_ran(policy, job, SandboxSource(replace(sandbox, job_runs=[])), utcnow())
    assert result.status == "failed" and f"{job.name} never ran successfully" in result.reason, result.reason


def test_a_late_job_fails_with_how_late(sandbox: Sandbox, policy: Policy) -> None:
    job = _pg_job(policy)
    source = SandboxSource(sandbox)
    last = source.job_status(job).last_success
    assert last is not None, f"the sandbox never ran {job.name}"
    later = last + job_window(policy, job) + policy.schedule_tolerance + timedelta(minutes=7)
    result = check_job_ran(policy, job, source, later)
    assert result.status == "failed" and f"{job.name} is late by 7m" in result.reason, result.reason


def test_velero_is_not_applicable_on_the_sandbox(sandbox: Sandbox, policy: Policy) -> None:
    result = check_velero(policy, SandboxSource(sandbox), utcnow())
    assert result.status == "not-applicable" and "no Velero" in result.reason, result.reason


def _locked_bucket(sandbox: Sandbox, mode: str, days: int) -> str:
    bucket = _bucket(sandbox, "lock", ObjectLockEnabledForBucket=True)
    sandbox.store.client.put_object_lock_configuration(Bucket=bucket, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": mode, "Days": days}}})
    return bucket


def test_the_audit_lock_passes_as_configured(sandbox: Sandbox, policy: Policy) -> None:
    result = check_audit_lock(policy, S3BucketInspector(sandbox.store))
    assert result.status == "passed", result.reason


def test_a_lock_not_in_compliance_mode_fails(sandbox: Sandbox, policy: Policy) -> None:
    st = policy.storage
    bucket = _locked_bucket(sandbox, "GOVERNANCE", st.audit_lock_retention.days)
    result = check_audit_lock(_with_storage(policy, audit_bucket=bucket), S3BucketInspector(sandbox.store))
    assert result.status == "failed"
    assert f"lock mode is GOVERNANCE, the policy says {st.audit_lock_mode}" in result.reason, result.reason


def test_a_lock_retention_too_short_fails(sandbox: Sandbox, policy: Policy) -> None:
    st = policy.storage
    short = st.audit_lock_retention.days // 2
    bucket = _locked_bucket(sandbox, st.audit_lock_mode, short)
    result = check_audit_lock(_with_storage(policy, audit_bucket=bucket), S3BucketInspector(sandbox.store))
    assert result.status == "failed"
    assert (f"lock retention {format_duration(timedelta(days=short))} < policy "
            f"{format_duration(st.audit_lock_retention)}") in result.reason, result.reason


def test_a_bucket_without_lock_is_not_worm(sandbox: Sandbox, policy: Policy) -> None:
    bucket = _bucket(sandbox, "nolock")
    result = check_audit_lock(_with_storage(policy, audit_bucket=bucket), S3BucketInspector(sandbox.store))
    assert result.status == "failed" and f"s3://{bucket} is not WORM: no Object Lock" in result.reason


def test_an_unlocked_record_that_can_be_deleted_is_not_worm(sandbox: Sandbox, policy: Policy) -> None:
    s3 = sandbox.store.client
    bucket = _bucket(sandbox, "versioned")
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    version = s3.put_object(Bucket=bucket, Key="record", Body=b"audit")["VersionId"]
    probe = WormProbe(bucket, "record", version, policy.storage.audit_lock_mode, utcnow())
    result = check_delete_refused(probe, sandbox.store)  # judged as a real store (no emulator named)
    assert result.status == "failed" and "not WORM" in result.reason and "accepted deleting" in result.reason
    on_emulator = check_delete_refused(probe, sandbox.store, "moto S3 emulator")
    assert on_emulator.status == "inconclusive" and on_emulator.reason.startswith("inconclusive (emulator)")


def test_dump_retention_shorter_than_the_policy_fails(sandbox: Sandbox, policy: Policy) -> None:
    job = _pg_job(policy)
    bucket = _bucket(sandbox, "lifecycle")
    short = job.retention.cold.days // 3
    sandbox.store.client.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [
        {"ID": "all", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": short}}]})
    result = check_job_retention(_with_storage(policy, backups_bucket=bucket), job, SandboxSource(sandbox),
                                 S3BucketInspector(sandbox.store))
    assert result.status == "failed"
    assert (f"expires after {format_duration(timedelta(days=short))} < policy "
            f"{format_duration(job.retention.cold)}") in result.reason, result.reason


def test_dump_retention_not_enforced_fails(sandbox: Sandbox, policy: Policy) -> None:
    job = _pg_job(policy)
    mine = _with_storage(policy, backups_bucket=_bucket(sandbox, "nolifecycle"))
    result = check_job_retention(mine, job, SandboxSource(sandbox), S3BucketInspector(sandbox.store))
    assert result.status == "failed" and "retention not enforced: no lifecycle rule" in result.reason


def test_the_sandbox_enforces_dump_retention(sandbox: Sandbox, policy: Policy) -> None:
    job = _pg_job(policy)
    result = check_job_retention(policy, job, SandboxSource(sandbox), S3BucketInspector(sandbox.store))
    assert result.status == "passed", result.reason


def test_a_policy_whose_interval_breaks_its_rpo_fails(policy: Policy) -> None:
    database = policy.database(policy.drill("drill-1")["database"])
    klass, job = database.klass, database.job
    assert "by dumps" not in check_class_rpo(policy, klass).reason, "the policy already breaks it"
    hours = int(2 * klass.rpo.total_seconds() // 3600)
    slower = replace(job, schedule=f"0 */{hours} * * *")
    result = check_class_rpo(_swap_job(policy, job, slower), klass)
    assert result.status == "failed"
    every = format_duration(slower.interval())
    expected = f"RPO {format_duration(klass.rpo)} cannot be met by dumps every {every}"
    assert expected in result.reason, result.reason
    assert "WAL archiving is required" in result.reason


def test_a_scope_row_without_a_job_fails(policy: Policy) -> None:
    row = policy.scope[0]
    broken = replace(policy, scope=(replace(row, jobs=()), *policy.scope[1:]))
    result = check_scope_mapped(broken)
    assert result.status == "failed" and f"scope row {row.component!r} names no backup job" in result.reason


def _swap_job(policy: Policy, old: BackupJob, new: BackupJob) -> Policy:
    """The policy with one job replaced everywhere it is referenced."""
    jobs = {name: new if j == old else j for name, j in policy.jobs.items()}
    databases = {n: replace(d, job=new) if d.job == old else d for n, d in policy.databases.items()}
    scope = tuple(replace(s, jobs=tuple(new if j == old else j for j in s.jobs)) for s in policy.scope)
    return replace(policy, jobs=jobs, databases=databases, scope=scope)
