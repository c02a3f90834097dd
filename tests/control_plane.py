"""Test glue for the cluster tier (issue 11): a real kube-apiserver, etcd, controller-manager, scheduler
and kwok nodes on 127.0.0.1 (built by ``scripts/cluster.sh build``), started once per session, holding
the AKKO namespace as manifests made from the policy: a Deployment per service, a StatefulSet for
PostgreSQL, the policy's backup CronJobs; the harness acts as its own ServiceAccount, bound only to the
shipped Roles."""

from __future__ import annotations

import os
import subprocess
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config, utils

from akko_dr.policy import Policy
from akko_dr.targetfile import load_target_file, open_live
from akko_dr.targets import Target

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(os.environ.get("AKKO_DR_CACHE", Path.home() / ".cache" / "akko-dr")) / "bin"
NEEDED = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
NS, VELERO_NS, SA = "akko", "velero", "akko-dr"
START_DEADLINE = 180  # seconds for scripts/cluster.sh up
POSTGRES = "akko-postgresql"  # the StatefulSet standing for the platform's PostgreSQL
CRONJOB_KINDS = ("pg-dump", "realm-export")  # the policy's jobs that are Kubernetes CronJobs


@dataclass
class ControlPlane:
    admin: client.ApiClient
    harness: client.ApiClient  # the ServiceAccount akko-dr, bound only to the shipped Roles
    kubeconfig: Path


def _client(kubeconfig: Path) -> client.ApiClient:
    return config.new_client_from_config(str(kubeconfig))


def _workload(kind: str, name: str, replicas: int = 1, **pod_spec: Any) -> dict[str, Any]:
    spec = {"containers": [{"name": "c", "image": "akko/" + name}], **pod_spec}
    body: dict[str, Any] = {
        "apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name, "namespace": NS},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}}, "spec": spec}}}
    if kind == "StatefulSet":
        body["spec"]["serviceName"] = name
    return body


def cronjob(name: str, schedule: str, suspend: bool = False) -> dict[str, Any]:
    """A backup CronJob as AKKO ships it (the container is a kwok pod here: it completes, writes nothing)."""
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name, "namespace": NS},
            "spec": {"schedule": schedule, "suspend": suspend, "successfulJobsHistoryLimit": 3,
                     "jobTemplate": {"spec": {"backoffLimit": 0, "template": {"spec": {
                         "restartPolicy": "Never",
                         "containers": [{"name": "dump", "image": "akko/pg-dump"}]}}}}}}


def akko_namespace(policy: Policy, namespace: str = NS) -> list[dict[str, Any]]:
    """The AKKO namespace from the policy: services, PostgreSQL and the backup CronJobs (suspended, so
    that no schedule fires in the middle of a test; a test that needs a real run makes its own)."""
    services = sorted({db.consumer for db in policy.databases.values()})
    bodies = ([_workload("Deployment", name) for name in services] + [_workload("StatefulSet", POSTGRES)]
              + [cronjob(job.name, job.schedule, suspend=True) for job in policy.jobs.values()
                 if job.kind in CRONJOB_KINDS])
    for body in bodies:
        body["metadata"]["namespace"] = namespace
    return bodies


def harness_roles(namespace: str) -> list[dict[str, Any]]:
    """The shipped Role and RoleBinding of ``deploy/rbac.yaml`` for another namespace (its header says to
    change the namespace when the platform is not in akko); the account stays akko-dr in akko."""
    docs = [d for d in yaml.safe_load_all((ROOT / "deploy" / "rbac.yaml").read_text()) if d]
    mine = [d for d in docs if d["metadata"]["name"] == SA and d["metadata"].get("namespace") == NS]
    return [{**d, "metadata": {**d["metadata"], "namespace": namespace}} for d in mine]


def velero_objects(policy: Policy, bucket: str, s3_url: str) -> list[dict[str, Any]]:
    """Velero's BackupStorageLocation on the sandbox's S3 endpoint and the policy's Schedule (paused)."""
    schedule = next(j for j in policy.jobs.values() if j.kind == "velero")
    meta = {"namespace": VELERO_NS}
    return [{"apiVersion": "velero.io/v1", "kind": "BackupStorageLocation",
             "metadata": {"name": "default", **meta},
             "spec": {"provider": "aws", "default": True, "objectStorage": {"bucket": bucket},
                      "config": {"region": "us-east-1", "s3ForcePathStyle": "true", "s3Url": s3_url}}},
            {"apiVersion": "velero.io/v1", "kind": "Schedule", "metadata": {"name": schedule.name, **meta},
             "spec": {"schedule": schedule.schedule, "paused": True,
                      "template": {"includedNamespaces": [policy.namespace], "ttl": "720h0m0s",
                                   "snapshotVolumes": False}}}]


def _world(admin: client.ApiClient, policy: Policy) -> None:
    core = client.CoreV1Api(admin)
    for ns in (NS, VELERO_NS):
        core.create_namespace({"metadata": {"name": ns}})
    core.create_node({"metadata": {"name": "kwok-node-0", "annotations": {"kwok.x-k8s.io/node": "fake"}},
                      "status": {"allocatable": {"cpu": "32", "memory": "64Gi", "pods": "110"},
                                 "capacity": {"cpu": "32", "memory": "64Gi", "pods": "110"}}})
    core.create_namespaced_service_account(NS, {"metadata": {"name": SA}})
    utils.create_from_yaml(admin, str(ROOT / "deploy" / "rbac.yaml"))  # rbac-drill-3.yaml: only when used
    for body in akko_namespace(policy):
        utils.create_from_dict(admin, body)


def _harness_kubeconfig(cp_dir: Path, admin: client.ApiClient) -> Path:
    token = client.CoreV1Api(admin).create_namespaced_service_account_token(
        SA, NS, {"spec": {"expirationSeconds": 3600}}).status.token
    path = cp_dir / "akko-dr.kubeconfig"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "akko-dr",
        "clusters": [{"name": "cp", "cluster": {"server": admin.configuration.host,
                                                "insecure-skip-tls-verify": True}}],
        "users": [{"name": "akko-dr", "user": {"token": token}}],
        "contexts": [{"name": "akko-dr", "context": {"cluster": "cp", "user": "akko-dr", "namespace": NS}}]}))
    return path


@pytest.fixture(scope="session")
def control_plane(policy: Policy, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """One control plane for the whole cluster tier; skipped, naming the missing pieces, when not built."""
    if missing := [b for b in NEEDED if not (BIN / b).is_file()]:
        pytest.skip(f"control plane not built here ({', '.join(missing)} missing): "
                    "run scripts/cluster.sh build")
    cp_dir = tmp_path_factory.mktemp("control-plane")
    script = str(ROOT / "scripts" / "cluster.sh")
    subprocess.run(["bash", script, "up", str(cp_dir)], check=True, timeout=START_DEADLINE,
                   capture_output=True)
    warnings.filterwarnings("ignore", message="Unverified HTTPS request")
    try:
        admin = _client(cp_dir / "admin.kubeconfig")
        _world(admin, policy)
        kubeconfig = _harness_kubeconfig(cp_dir, admin)
        yield ControlPlane(admin, _client(kubeconfig), kubeconfig)
    finally:
        subprocess.run(["bash", script, "down", str(cp_dir)], timeout=START_DEADLINE, capture_output=True)


def kube_only_target(control_plane: ControlPlane, policy: Policy, allow_destructive: bool = True) -> Target:
    """The live target from a file with the harness's kubeconfig only (for tests making no S3 or SQL call)."""
    path = control_plane.kubeconfig.parent / "kube-only.yaml"
    path.write_text(f"kube: {{kubeconfig: {control_plane.kubeconfig}, context: akko-dr, namespace: {NS}}}\n"
                    "s3: {endpoint: 'http://127.0.0.1:9'}\n")
    return open_live(policy, load_target_file(path), allow_destructive=allow_destructive)
