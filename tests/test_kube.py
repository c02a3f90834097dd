"""The Kubernetes adapter and the live target, over HTTP with the official client against kmock, a
Kubernetes API emulator on 127.0.0.1 (its own thread and event loop; see STACK-FACTS)."""

from __future__ import annotations

import base64
import secrets
import socket
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from kubernetes import client

from akko_dr.adapters.kube import KubeCluster, KubeOrchestrator, go_duration
from akko_dr.adapters.s3 import S3BucketInspector
from akko_dr.checks.bdd import platform_of
from akko_dr.checks.schedule import check_job_ran, check_job_retention, check_job_schedule, job_window
from akko_dr.checks.scope import ScopeContext, check_artefact
from akko_dr.checks.verification import check_velero
from akko_dr.errors import PolicyError, TargetUnavailable
from akko_dr.measure import utcnow
from akko_dr.policy import BackupJob, Policy, format_duration
from akko_dr.ports import ExportLocation
from akko_dr.sandbox import Sandbox
from akko_dr.targetfile import load_target_file, open_live
from tests.kube_emulator import emulator


@pytest.fixture(scope="module")
def emulator_url() -> Iterator[str]:
    """kmock serving in a thread of its own; the sync client talks to it from the test thread."""
    with emulator() as emu:
        yield emu.url


def _api(url: str) -> client.ApiClient:
    cfg = client.Configuration()
    cfg.host = url
    return client.ApiClient(cfg)


@pytest.fixture
def cluster(emulator_url: str) -> KubeCluster:
    """A namespace of its own per test, so tests never see each other's objects."""
    return KubeCluster(_api(emulator_url), f"akko-{secrets.token_hex(3)}", f"velero-{secrets.token_hex(3)}")


def _cronjob(cluster: KubeCluster, job: BackupJob, schedule: str | None = None, spec: dict | None = None,
             **status: str) -> None:
    batch = client.BatchV1Api(cluster.api)
    template = {"spec": {"template": {"spec": {"containers": [{"name": "dump", "image": "postgres"}],
                                               "restartPolicy": "Never"}}}}
    batch.create_namespaced_cron_job(cluster.namespace, {
        "apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": job.name},
        "spec": {"schedule": schedule or job.schedule, "jobTemplate": template, **(spec or {})}})
    if status:
        batch.patch_namespaced_cron_job_status(job.name, cluster.namespace, {"status": status})


def _job_run(cluster: KubeCluster, job: BackupJob, name: str, started: str, failed: bool) -> None:
    condition = {"type": "Failed" if failed else "Complete", "status": "True",
                 "message": "BackoffLimitExceeded"}
    _job(cluster, job, name, {"startTime": started, "failed" if failed else "succeeded": 1,
                              "conditions": [condition]})


def _job(cluster: KubeCluster, job: BackupJob, name: str, status: dict) -> None:
    batch = client.BatchV1Api(cluster.api)
    batch.create_namespaced_job(cluster.namespace, {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "ownerReferences": [
            {"apiVersion": "batch/v1", "kind": "CronJob", "name": job.name, "uid": "u"}]},
        "spec": {"template": {"spec": {"containers": [{"name": "d", "image": "d"}],
                                       "restartPolicy": "Never"}}}})
    batch.patch_namespaced_job_status(name, cluster.namespace, {"status": status})


def _stamp(delta: timedelta) -> str:
    return (utcnow() - delta).strftime("%Y-%m-%dT%H:%M:%SZ")


def _cron(policy: Policy) -> BackupJob:
    return next(j for j in policy.jobs.values() if j.kind == "pg-dump")


def test_a_green_cronjob_passes(cluster: KubeCluster, policy: Policy) -> None:
    job = _cron(policy)
    _cronjob(cluster, job, lastSuccessfulTime=_stamp(timedelta(minutes=3)),
             lastScheduleTime=_stamp(timedelta(0)))
    result = check_job_ran(policy, job, cluster, utcnow())
    assert result.status == "passed", result.reason


def test_a_late_cronjob_fails_with_its_lateness(cluster: KubeCluster, policy: Policy) -> None:
    job = _cron(policy)
    late = job_window(policy, job) + policy.schedule_tolerance + timedelta(hours=1)
    _cronjob(cluster, job, lastSuccessfulTime=_stamp(late))
    result = check_job_ran(policy, job, cluster, utcnow())
    assert result.status == "failed" and f"{job.name} is late by 1h" in result.reason, result.reason


def test_a_cronjob_whose_last_job_failed_fails(cluster: KubeCluster, policy: Policy) -> None:
    job = _cron(policy)
    _cronjob(cluster, job, lastSuccessfulTime=_stamp(timedelta(minutes=30)))
    _job_run(cluster, job, f"{job.name}-1", _stamp(timedelta(minutes=30)), failed=False)
    _job_run(cluster, job, f"{job.name}-2", _stamp(timedelta(minutes=1)), failed=True)
    result = check_job_ran(policy, job, cluster, utcnow())
    assert result.status == "failed"
    assert f"{job.name} failed its last run (Job {job.name}-2 failed: BackoffLimitExceeded)" in result.reason


def test_a_job_still_retrying_has_not_failed(cluster: KubeCluster, policy: Policy) -> None:
    job = _cron(policy)
    _cronjob(cluster, job, lastSuccessfulTime=_stamp(timedelta(minutes=30)))
    retrying = {"startTime": _stamp(timedelta(minutes=1)), "failed": 2, "active": 1}
    _job(cluster, job, f"{job.name}-retry", retrying)
    result = check_job_ran(policy, job, cluster, utcnow())
    assert result.status == "passed", result.reason


def test_failures_with_no_active_pod_have_failed(cluster: KubeCluster, policy: Policy) -> None:
    job = _cron(policy)
    _cronjob(cluster, job, lastSuccessfulTime=_stamp(timedelta(minutes=30)))
    _job(cluster, job, f"{job.name}-dead", {"startTime": _stamp(timedelta(minutes=1)), "failed": 3})
    result = check_job_ran(policy, job, cluster, utcnow())
    assert result.status == "failed"
    assert f"Job {job.name}-dead failed: 3 failed pods, none active" in result.reason, result.reason


def test_a_suspended_cronjob_is_a_finding(cluster: KubeCluster, policy: Policy) -> None:
    job = _cron(policy)
    _cronjob(cluster, job, spec={"suspend": True}, lastSuccessfulTime=_stamp(timedelta(minutes=3)))
    result = check_job_schedule(policy, job, cluster, utcnow())
    assert result.status == "failed" and f"{job.name} is suspended" in result.reason, result.reason
    assert f"{job.name} is suspended" in check_job_ran(policy, job, cluster, utcnow()).reason


def test_the_time_zone_is_part_of_the_schedule(cluster: KubeCluster, policy: Policy) -> None:
    job = next(j for j in policy.jobs.values() if j.kind == "realm-export")  # once a day: zones matter
    _cronjob(cluster, job, spec={"timeZone": "America/New_York"})
    result = check_job_schedule(policy, job, cluster, utcnow())
    assert result.status == "failed"
    assert f"scheduled {job.schedule!r} in America/New_York, the policy says {job.schedule!r} in UTC" \
        in result.reason, result.reason


def test_a_schedule_in_the_policys_own_time_zone_passes(cluster: KubeCluster, policy: Policy) -> None:
    job = next(j for j in policy.jobs.values() if j.kind == "realm-export")
    _cronjob(cluster, job, spec={"timeZone": "Etc/UTC"})
    assert check_job_schedule(policy, job, cluster, utcnow()).status == "passed"


def test_a_missing_cronjob_fails(cluster: KubeCluster, policy: Policy) -> None:
    job = _cron(policy)
    result = check_job_ran(policy, job, cluster, utcnow())
    assert result.status == "failed" and f"no CronJob named {job.name}" in result.reason, result.reason


def test_a_cronjob_that_never_succeeded_fails(cluster: KubeCluster, policy: Policy) -> None:
    job = _cron(policy)
    _cronjob(cluster, job)
    result = check_job_ran(policy, job, cluster, utcnow())
    assert result.status == "failed" and "never ran successfully" in result.reason, result.reason


def test_a_schedule_is_compared_by_its_fire_times(cluster: KubeCluster, policy: Policy) -> None:
    job = _cron(policy)
    minute, hour, *rest = job.schedule.split()
    step = hour.removeprefix("*/")
    _cronjob(cluster, job, schedule=" ".join([minute, f"0-23/{step}", *rest]))  # same times, other text
    result = check_job_schedule(policy, job, cluster, utcnow())
    assert result.status == "passed", result.reason


def test_another_schedule_fails(cluster: KubeCluster, policy: Policy) -> None:
    job = _cron(policy)
    other = "30 " + " ".join(job.schedule.split()[1:])
    _cronjob(cluster, job, schedule=other)
    result = check_job_schedule(policy, job, cluster, utcnow())
    assert result.status == "failed" and f"scheduled {other!r}, the policy says" in result.reason


def _velero_backup(cluster: KubeCluster, name: str, phase: str, completed: str | None, ttl: str,
                   schedule: str = "akko-velero-ns-akko", namespaces: tuple[str, ...] = ("akko",),
                   errors: int = 0) -> None:
    status = {"phase": phase, "errors": errors, "warnings": 1} | (
        {"completionTimestamp": completed, "startTimestamp": completed} if completed else {})
    labels = {"velero.io/schedule-name": schedule} if schedule else {}
    client.CustomObjectsApi(cluster.api).create_namespaced_custom_object(
        "velero.io", "v1", cluster.velero_namespace, "backups",
        {"apiVersion": "velero.io/v1", "kind": "Backup", "metadata": {"name": name, "labels": labels},
         "spec": {"ttl": ttl, "includedNamespaces": list(namespaces)}, "status": status})


def _velero_schedule(cluster: KubeCluster, job: BackupJob, paused: bool = False, ttl: str = "720h0m0s",
                     phase: str = "Enabled") -> None:
    client.CustomObjectsApi(cluster.api).create_namespaced_custom_object(
        "velero.io", "v1", cluster.velero_namespace, "schedules",
        {"apiVersion": "velero.io/v1", "kind": "Schedule", "metadata": {"name": job.name},
         "spec": {"schedule": job.schedule, "paused": paused,
                  "template": {"ttl": ttl, "includedNamespaces": ["akko"]}},
         "status": {"phase": phase, "lastBackup": _stamp(timedelta(hours=1))}})


def _velero_job(policy: Policy) -> BackupJob:
    return next(j for j in policy.jobs.values() if j.kind == "velero")


def _ttl(job: BackupJob) -> str:
    return f"{int(job.retention.cold.total_seconds() // 3600)}h0m0s"


def test_the_newest_completed_velero_backup_is_judged(cluster: KubeCluster, policy: Policy) -> None:
    job = _velero_job(policy)
    ttl = _ttl(job)
    too_old = _stamp(job.interval() + policy.schedule_tolerance + timedelta(hours=2))
    _velero_backup(cluster, "akko-failed", "PartiallyFailed", too_old, ttl, errors=2)  # before the newest
    _velero_backup(cluster, "akko-old", "Completed", _stamp(job.interval()), ttl)
    _velero_backup(cluster, "akko-new", "Completed", _stamp(timedelta(hours=1)), ttl)
    result = check_velero(policy, cluster, utcnow())
    assert result.status == "passed" and result.measured["backup"] == "akko-new", result.reason
    retention = check_job_retention(policy, job, cluster, None)
    assert retention.status == "passed", retention.reason


def test_failed_velero_backups_since_the_newest_are_findings_with_counts(cluster: KubeCluster,
                                                                         policy: Policy) -> None:
    ttl = _ttl(_velero_job(policy))
    _velero_backup(cluster, "akko-good", "Completed", _stamp(timedelta(hours=3)), ttl)
    _velero_backup(cluster, "akko-partial", "PartiallyFailed", _stamp(timedelta(hours=2)), ttl, errors=3)
    _velero_backup(cluster, "akko-broken", "Failed", _stamp(timedelta(hours=1)), ttl, errors=1)
    result = check_velero(policy, cluster, utcnow())
    assert result.status == "failed", result.reason
    assert "Velero backup akko-partial PartiallyFailed (3 errors, 1 warnings)" in result.reason, result.reason
    assert "Velero backup akko-broken Failed (1 errors, 1 warnings)" in result.reason, result.reason


def test_only_the_policys_schedule_and_namespace_count(cluster: KubeCluster, policy: Policy) -> None:
    """A manual backup of another namespace, or another schedule's, never makes the check pass."""
    ttl = _ttl(_velero_job(policy))
    _velero_backup(cluster, "manual-kube-system", "Completed", _stamp(timedelta(hours=1)), "24h0m0s",
                   schedule="", namespaces=("kube-system",))
    _velero_backup(cluster, "other-schedule", "Completed", _stamp(timedelta(hours=1)), ttl, schedule="other")
    _velero_backup(cluster, "our-schedule-other-ns", "Completed", _stamp(timedelta(hours=1)), ttl,
                   namespaces=("kube-system",))
    result = check_velero(policy, cluster, utcnow())
    assert result.status == "failed" and "no Velero backup of schedule akko-velero-ns-akko including " \
        "namespace akko in phase Completed" in result.reason, result.reason
    _velero_backup(cluster, "all-namespaces", "Completed", _stamp(timedelta(hours=1)), ttl, namespaces=("*",))
    assert check_velero(policy, cluster, utcnow()).measured["backup"] == "all-namespaces"


def test_the_velero_job_is_read_from_its_schedule(cluster: KubeCluster, policy: Policy) -> None:
    job = _velero_job(policy)
    missing = check_job_schedule(policy, job, cluster, utcnow())
    assert missing.status == "failed" and f"no Velero Schedule named {job.name}" in missing.reason
    _velero_schedule(cluster, job)
    _velero_backup(cluster, "akko-new", "Completed", _stamp(timedelta(hours=1)), _ttl(job))
    assert check_job_schedule(policy, job, cluster, utcnow()).status == "passed"
    ran = check_job_ran(policy, job, cluster, utcnow())
    assert ran.status == "passed", ran.reason


def test_a_velero_schedule_velero_did_not_accept_is_a_finding(cluster: KubeCluster, policy: Policy) -> None:
    job = _velero_job(policy)
    _velero_schedule(cluster, job, phase="FailedValidation")
    result = check_job_schedule(policy, job, cluster, utcnow())
    assert result.status == "failed"
    assert f"Velero Schedule {job.name} is in phase FailedValidation, not Enabled" in result.reason


def test_a_paused_velero_schedule_is_a_finding(cluster: KubeCluster, policy: Policy) -> None:
    job = _velero_job(policy)
    _velero_schedule(cluster, job, paused=True, ttl="24h0m0s")
    result = check_job_schedule(policy, job, cluster, utcnow())
    assert result.status == "failed" and f"{job.name} is paused" in result.reason, result.reason
    retention = check_job_retention(policy, job, cluster, None)
    assert retention.status == "failed"
    assert f"Velero Schedule {job.name} expires after 1d < policy" in retention.reason, retention.reason


def test_a_stale_velero_backup_fails(cluster: KubeCluster, policy: Policy) -> None:
    job = _velero_job(policy)
    too_old = _stamp(job.interval() + policy.schedule_tolerance + timedelta(hours=2))
    _velero_backup(cluster, "akko-old", "Completed", too_old, "1h")
    result = check_velero(policy, cluster, utcnow())
    assert result.status == "failed" and "Velero backup akko-old is" in result.reason, result.reason
    retention = check_job_retention(policy, job, cluster, None)
    assert retention.status == "failed"
    assert f"expires after 1h < policy {format_duration(job.retention.cold)}" in retention.reason


def test_no_velero_backup_fails(cluster: KubeCluster, policy: Policy) -> None:
    result = check_velero(policy, cluster, utcnow())
    assert result.status == "failed" and "no Velero backup of schedule" in result.reason


def test_the_orchestrator_scales_a_deployment_and_reads_ready_replicas(cluster: KubeCluster) -> None:
    apps = client.AppsV1Api(cluster.api)
    apps.create_namespaced_deployment(cluster.namespace, {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "akko-superset"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "s"}},
                 "template": {"metadata": {"labels": {"app": "s"}},
                              "spec": {"containers": [{"name": "s", "image": "s"}]}}}})
    orchestrator = KubeOrchestrator(cluster)
    assert orchestrator.running("akko-superset") == 0  # the emulator runs no controller: nothing ready
    orchestrator.scale("akko-superset", 0)
    assert apps.read_namespaced_deployment_scale("akko-superset", cluster.namespace).spec.replicas == 0
    ready = {"status": {"readyReplicas": 2}}
    apps.patch_namespaced_deployment_status("akko-superset", cluster.namespace, ready)
    assert orchestrator.running("akko-superset") == 2


def test_an_unreachable_api_is_named(policy: Policy) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again when the block ends: nothing listens there
    cfg = client.Configuration()
    cfg.host, cfg.retries = f"http://127.0.0.1:{port}", 0
    with pytest.raises(TargetUnavailable, match="Kubernetes API unreachable"):
        KubeCluster(client.ApiClient(cfg), "akko").job_status(_cron(policy))


def test_go_durations_parse() -> None:
    assert go_duration("720h0m0s") == timedelta(hours=720)
    assert go_duration("1h30m") == timedelta(minutes=90)
    assert go_duration("") is None and go_duration("soon") is None


def _secret(cluster: KubeCluster, name: str, **data: str) -> None:
    client.CoreV1Api(cluster.api).create_namespaced_secret(cluster.namespace, {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}})


def _target_file(tmp_path: Path, cluster: KubeCluster, sandbox: Sandbox) -> Path:
    path = tmp_path / "target.yaml"
    pg_host = sandbox.db.dsn("postgres").split("host=")[-1]
    path.write_text(f"""
kube: {{namespace: {cluster.namespace}, velero_namespace: {cluster.velero_namespace}}}
s3:
  endpoint: {sandbox.store.endpoint}
  access_key: {{env: AKKO_TEST_S3_ACCESS}}
  secret_key: {{secret: {cluster.namespace}/akko-minio#secret-key}}
postgres: {{host: {pg_host}, user: postgres, database: postgres}}
""")
    return path


def test_a_live_target_reads_credentials_from_env_and_secrets(cluster: KubeCluster, sandbox: Sandbox,
                                                             policy: Policy, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    access, secret_value = sandbox.s3_keys()  # the sandbox store's own keys (real MinIO checks them)
    if sandbox.s3_users is None:  # the emulator takes any key: one distinctive enough to be found if it leaks
        secret_value = f"emulated-{secrets.token_hex(8)}"
    _secret(cluster, "akko-minio", **{"secret-key": secret_value})
    monkeypatch.setenv("AKKO_TEST_S3_ACCESS", access)
    tf = load_target_file(_target_file(tmp_path, cluster, sandbox))
    target = open_live(policy, tf, allow_destructive=False, api=cluster.api)
    assert target.kind == "live" and not target.destructive_allowed
    assert target.store.client._request_signer._credentials.secret_key == secret_value
    bucket = f"live-{secrets.token_hex(3)}"
    sandbox.store.client.create_bucket(Bucket=bucket)
    assert bucket in {b["Name"] for b in target.store.client.list_buckets()["Buckets"]}
    assert "postgres" in target.db.databases()  # the sandbox's real PostgreSQL, reached from the file
    assert secret_value not in repr(target), "a credential reached the target's description"
    job = _cron(policy)
    _cronjob(cluster, job, lastSuccessfulTime=_stamp(timedelta(minutes=1)))
    assert check_job_ran(target.policy, job, platform_of(target), utcnow()).status == "passed"


def test_a_credential_value_in_the_target_file_is_refused_and_not_echoed(tmp_path: Path) -> None:
    path = tmp_path / "target.yaml"
    path.write_text("s3: {secret_key: hunter2-do-not-echo}\n")
    with pytest.raises(PolicyError, match="credentials never go in the target file") as err:
        load_target_file(path)
    assert "hunter2" not in str(err.value)


def test_bucket_overrides_apply_to_the_policy(tmp_path: Path, policy: Policy) -> None:
    path = tmp_path / "target.yaml"
    path.write_text("s3: {buckets: {backups_bucket: prod-backups, hot_buckets: [a, b]}}\n")
    storage = load_target_file(path).apply(policy).storage
    assert (storage.backups_bucket, storage.hot_buckets) == ("prod-backups", ("a", "b"))
    assert storage.audit_bucket == policy.storage.audit_bucket


def test_an_unknown_bucket_key_is_named(tmp_path: Path) -> None:
    path = tmp_path / "target.yaml"
    path.write_text("s3: {buckets: {backup_bucket: x}}\n")
    with pytest.raises(PolicyError, match="unknown backup_bucket"):
        load_target_file(path)




def _realm_job(policy: Policy) -> BackupJob:
    return next(j for j in policy.jobs.values() if j.kind == "realm-export")


def _exports_cluster(cluster: KubeCluster, sandbox: Sandbox) -> KubeCluster:
    bucket = f"realm-{secrets.token_hex(3)}"
    sandbox.store.client.create_bucket(Bucket=bucket)
    return KubeCluster(cluster.api, cluster.namespace, cluster.velero_namespace,
                       ExportLocation(bucket, "keycloak/", "akko"))


@pytest.mark.parametrize(("body", "status", "reason"), [
    (b'{"realm": "akko", "users": []}', "passed", "names realm 'akko'"),
    (b'{"realm": "master"}', "failed", "does not name realm 'akko' (master)"),
    (b"<html>oops</html>", "failed", "does not name realm 'akko' (not JSON)"),
])
def test_a_realm_export_must_parse_and_name_the_realm(cluster: KubeCluster, sandbox: Sandbox, policy: Policy,
                                                      body: bytes, status: str, reason: str) -> None:
    live = _exports_cluster(cluster, sandbox)
    sandbox.store.put_bytes(live.realm_exports.bucket, "keycloak/akko-realm.json", body)
    result = check_artefact(ScopeContext(policy, live, sandbox.store, utcnow()), _realm_job(policy))
    assert result.status == status and reason in result.reason, result.reason


def test_a_missing_realm_export_fails_and_no_location_is_uncovered(cluster: KubeCluster, sandbox: Sandbox,
                                                                   policy: Policy) -> None:
    live = _exports_cluster(cluster, sandbox)
    missing = check_artefact(ScopeContext(policy, live, sandbox.store, utcnow()), _realm_job(policy))
    assert missing.status == "failed" and "missing: no realm export" in missing.reason, missing.reason
    nowhere = check_artefact(ScopeContext(policy, cluster, sandbox.store, utcnow()), _realm_job(policy))
    assert nowhere.status == "uncovered", nowhere.reason


def test_realm_export_retention_is_read_from_lifecycle_rules(cluster: KubeCluster, sandbox: Sandbox,
                                                             policy: Policy) -> None:
    job = _realm_job(policy)
    live = _exports_cluster(cluster, sandbox)
    s3, buckets = sandbox.store.client, S3BucketInspector(sandbox.store)
    assert check_job_retention(policy, job, live, buckets).status == "failed"
    s3.put_bucket_lifecycle_configuration(Bucket=live.realm_exports.bucket, LifecycleConfiguration={"Rules": [
        {"ID": "realm", "Status": "Enabled", "Filter": {"Prefix": "keycloak/"},
         "Expiration": {"Days": job.retention.cold.days}}]})
    result = check_job_retention(policy, job, live, buckets)
    assert result.status == "passed", result.reason


def test_the_realm_export_location_comes_from_the_target_file(tmp_path: Path) -> None:
    path = tmp_path / "target.yaml"
    path.write_text("keycloak: {exports: {bucket: akko-backups, prefix: keycloak/, realm: akko}}\n")
    assert load_target_file(path).realm_exports == ExportLocation("akko-backups", "keycloak/", "akko")
    path.write_text("keycloak: {exports: {bucket: akko-backups}}\n")
    with pytest.raises(PolicyError, match=r"keycloak\.exports: expected bucket, prefix and realm"):
        load_target_file(path)
