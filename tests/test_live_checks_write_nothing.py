"""Issue 16, done when: a live ``check`` without opt-ins writes nothing. The whole command runs in a
process of its own against the Kubernetes API emulator and the S3 emulator (behind a recording proxy);
both request logs are read afterwards. With ``--allow-probes``, broken replication ends within the probe
deadline with a finding that names the canary."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import boto3
import pytest
from kubernetes import client

from akko_dr.policy import Policy
from akko_dr.sandbox.emulator import _ProcessServer
from tests.kube_emulator import Emulator, emulator, write_kubeconfig
from tests.s3_recorder import S3Recorder

ROOT = Path(__file__).resolve().parents[1]
RUN_DEADLINE = 300.0  # seconds the whole check command may take here
PROBE_DEADLINE = 3  # seconds, set in the target file
SCENARIO_SLACK = 5  # seconds a scenario may take beyond the probe deadline (listing, cleanup)
READS = ("GET",)  # the only Kubernetes verb a check may use


@dataclass
class Live:
    kube: Emulator
    s3: S3Recorder
    target_file: Path


def _seed_s3(endpoint: str, policy: Policy) -> None:
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="k",
                      aws_secret_access_key="s")
    st = policy.storage
    for bucket in (st.backups_bucket, *st.hot_buckets, st.replica_bucket):
        s3.create_bucket(Bucket=bucket)
    s3.create_bucket(Bucket=st.audit_bucket, ObjectLockEnabledForBucket=True)
    s3.put_object_lock_configuration(Bucket=st.audit_bucket, ObjectLockConfiguration={
        "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 365}}})
    s3.put_object(Bucket=st.hot_buckets[0], Key="warehouse/t1/data.parquet", Body=b"rows")
    s3.put_object(Bucket=st.replica_bucket, Key="warehouse/t1/data.parquet", Body=b"rows")


def _seed_kube(url: str, policy: Policy) -> None:
    cfg = client.Configuration()
    cfg.host = url
    api = client.ApiClient(cfg)
    job = next(j for j in policy.jobs.values() if j.kind == "pg-dump")
    template = {"spec": {"template": {"spec": {"containers": [{"name": "d", "image": "d"}],
                                               "restartPolicy": "Never"}}}}
    client.BatchV1Api(api).create_namespaced_cron_job(policy.namespace, {
        "apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": job.name},
        "spec": {"schedule": job.schedule, "jobTemplate": template}})
    velero = next(j for j in policy.jobs.values() if j.kind == "velero")
    client.CustomObjectsApi(api).create_namespaced_custom_object("velero.io", "v1", "velero", "schedules", {
        "apiVersion": "velero.io/v1", "kind": "Schedule", "metadata": {"name": velero.name},
        "spec": {"schedule": velero.schedule, "paused": True, "template": {"ttl": "720h0m0s"}},
        "status": {"phase": "Enabled"}})


def _files(tmp: Path, kube_url: str, s3_url: str, namespace: str) -> Path:
    kubeconfig = write_kubeconfig(tmp / "kubeconfig", kube_url, user="reader", token="read-only")
    target = tmp / "target.yaml"
    target.write_text(f"""
kube: {{context: emu, namespace: {namespace}, velero_namespace: velero, kubeconfig: {kubeconfig}}}
s3: {{endpoint: "{s3_url}", access_key: {{env: AKKO_TEST_S3_KEY}}, secret_key: {{env: AKKO_TEST_S3_SECRET}}}}
postgres: {{host: {tmp / 'no-postgres-here'}, user: postgres, database: postgres}}
probes: {{deadline: {PROBE_DEADLINE}s}}
""")
    return target


@pytest.fixture(scope="module")
def live(policy: Policy, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    moto = _ProcessServer()
    try:
        _seed_s3(moto.endpoint, policy)
        with emulator() as kube, S3Recorder(moto.endpoint) as s3:
            _seed_kube(kube.url, policy)
            files = _files(tmp_path_factory.mktemp("live"), kube.url, s3.endpoint, policy.namespace)
            yield Live(kube, s3, files)
    finally:
        moto.stop()


def _check(live: Live, evidence: Path, *extra: str) -> tuple[subprocess.CompletedProcess, dict]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), AKKO_TEST_S3_KEY="k",
               AKKO_TEST_S3_SECRET=secrets.token_hex(8))
    argv = [sys.executable, "-m", "akko_dr.cli", "check", "--target", "live", "--target-file",
            str(live.target_file), "--evidence-dir", str(evidence), "--steps", str(ROOT / "steps"), *extra]
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=RUN_DEADLINE)
    results = json.loads((evidence / "latest" / "results.json").read_text())
    return done, results


def _scenarios(results: dict) -> list[dict]:
    return results["scenarios"]


def test_a_live_check_without_opt_ins_writes_nothing(live: Live, tmp_path: Path) -> None:
    kube_before, s3_before = len(live.kube.requests()), len(live.s3.requests)
    done, results = _check(live, tmp_path / "evidence")
    assert done.returncode == 1, f"expected findings (exit 1), got {done.returncode}: {done.stderr[-2000:]}"
    s3 = live.s3.requests[s3_before:]
    assert s3, "the check never read the object store: this proves nothing"
    assert all(method in ("GET", "HEAD") for method, _ in s3), f"the check wrote to the object store: {s3}"
    kube = live.kube.requests()[kube_before:]
    assert kube and all(method in READS for method, _ in kube), [r for r in kube if r[0] not in READS]
    errors = [s.get("error") or "" for s in _scenarios(results)]
    assert sum("PostgreSQL server" in e for e in errors) == 1, errors  # one finding, named once
    assert sum("could not be read" in e for e in errors) == 1, errors


def test_without_probes_the_checks_say_which_read_only_method_they_used(live: Live, tmp_path: Path) -> None:
    _, results = _check(live, tmp_path / "evidence", "-k", "locked or fresh_backup_artefact")
    by_name = {s["name"]: s for s in _scenarios(results)}
    worm = [s for name, s in by_name.items() if "A locked audit record cannot be deleted" in name]
    assert worm and worm[0]["status"] == "inconclusive", worm
    assert "inconclusive (read-only)" in worm[0]["error"] and "--allow-probes" in worm[0]["error"]
    mirror = [s for name, s in by_name.items() if name.startswith("object storage object data")]
    assert mirror and "read-only: the replica's newest object" in json.dumps(mirror[0]), mirror


def test_broken_replication_ends_within_the_probe_deadline_naming_the_key(live: Live, tmp_path: Path) -> None:
    s3_before = len(live.s3.requests)
    done, results = _check(live, tmp_path / "evidence", "--allow-probes", "-k", "fresh_backup_artefact")
    [scenario] = [s for s in _scenarios(results) if s["name"].startswith("object storage object data")]
    assert scenario["status"] == "failed", scenario
    assert f"no replication within {PROBE_DEADLINE}.0s: canary dr-probe/replication-" in scenario["error"]
    took = datetime.fromisoformat(scenario["finished_at"]) - datetime.fromisoformat(scenario["started_at"])
    assert took < timedelta(seconds=PROBE_DEADLINE + SCENARIO_SLACK), f"the scenario took {took}"
    assert f"waiting up to {PROBE_DEADLINE}.0s" in done.stderr, done.stderr[-2000:]  # progress, as it waits
    writes = [(m, path) for m, path in live.s3.requests[s3_before:] if m not in ("GET", "HEAD")]
    assert writes and all("/dr-probe/" in path for _, path in writes), writes
