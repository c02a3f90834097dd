"""The live adapters against Kubernetes itself (issue 11): a real kube-apiserver, etcd, controller-manager,
scheduler and kwok nodes on 127.0.0.1, built by ``scripts/cluster.sh build``.

The harness acts as its own ServiceAccount bound only to the shipped Roles (``deploy/rbac.yaml``): real
RBAC decisions, real Deployment → ReplicaSet → Pod rollouts. Drill 1 runs with the opt-in; the sandbox's
service process follows its Deployment's running pods (the bridge from pod to process)."""

from __future__ import annotations

import os
import shutil
import subprocess
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
import yaml
from kubernetes import client, config, utils

from akko_dr.drills.full_rebuild import FullRebuildDrill
from akko_dr.drills.restore_database import RestoreDatabaseDrill
from akko_dr.errors import DrillError
from akko_dr.measure import wait_for
from akko_dr.policy import Policy
from akko_dr.ports import drill_namespace
from akko_dr.sandbox import Sandbox
from akko_dr.sandbox.emulator import _ProcessServer
from akko_dr.targetfile import load_target_file, open_live
from akko_dr.targets import new_run_id
from tests.kube_world import process_follows

pytestmark = pytest.mark.cluster
ROOT = Path(__file__).resolve().parents[1]
BIN = Path(os.environ.get("AKKO_DR_CACHE", Path.home() / ".cache" / "akko-dr")) / "bin"
NEEDED = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
NS, SA = "akko", "akko-dr"
START_DEADLINE = 180  # seconds for scripts/cluster.sh up


@dataclass
class ControlPlane:
    admin: client.ApiClient
    harness: client.ApiClient  # the ServiceAccount akko-dr, bound only to the shipped Roles
    kubeconfig: Path


def _client(kubeconfig: Path) -> client.ApiClient:
    return config.new_client_from_config(str(kubeconfig))


def _harness_kubeconfig(cp_dir: Path, admin: client.ApiClient) -> Path:
    token = client.CoreV1Api(admin).create_namespaced_service_account_token(
        SA, NS, {"spec": {"expirationSeconds": 3600}}).status.token
    server = admin.configuration.host
    path = cp_dir / "akko-dr.kubeconfig"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "akko-dr",
        "clusters": [{"name": "cp", "cluster": {"server": server, "insecure-skip-tls-verify": True}}],
        "users": [{"name": "akko-dr", "user": {"token": token}}],
        "contexts": [{"name": "akko-dr", "context": {"cluster": "cp", "user": "akko-dr", "namespace": NS}}]}))
    return path


def _world(admin: client.ApiClient, policy: Policy) -> None:
    core, apps = client.CoreV1Api(admin), client.AppsV1Api(admin)
    for ns in (NS, "velero"):
        core.create_namespace({"metadata": {"name": ns}})
    core.create_node({"metadata": {"name": "kwok-node-0", "annotations": {"kwok.x-k8s.io/node": "fake"}},
                      "status": {"allocatable": {"cpu": "32", "memory": "64Gi", "pods": "110"},
                                 "capacity": {"cpu": "32", "memory": "64Gi", "pods": "110"}}})
    core.create_namespaced_service_account(NS, {"metadata": {"name": SA}})
    utils.create_from_yaml(admin, str(ROOT / "deploy" / "rbac.yaml"))
    for name in sorted({db.consumer for db in policy.databases.values()}):
        apps.create_namespaced_deployment(NS, {
            "metadata": {"name": name}, "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "c", "image": "akko/" + name}]}}}})
    job = policy.database(policy.drill("drill-1")["database"]).job
    client.BatchV1Api(admin).create_namespaced_cron_job(NS, {
        "metadata": {"name": job.name}, "spec": {"schedule": job.schedule, "suspend": True, "jobTemplate": {
            "spec": {"backoffLimit": 0, "template": {"spec": {"restartPolicy": "Never", "containers": [
                {"name": "dump", "image": "akko/pg-dump"}]}}}}}})


@pytest.fixture(scope="module")
def control_plane(policy: Policy, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
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


def test_the_real_authorizer_grants_the_shipped_role_and_nothing_more(control_plane: ControlPlane,
                                                                      policy: Policy) -> None:
    apps, core = client.AppsV1Api(control_plane.harness), client.CoreV1Api(control_plane.harness)
    name = policy.database(policy.drill("drill-1")["database"]).consumer
    assert apps.read_namespaced_deployment(name, NS).metadata.name == name
    refused = []
    for what, call in (("delete a Deployment", lambda: apps.delete_namespaced_deployment(name, NS)),
                       ("list Secrets", lambda: core.list_namespaced_secret(NS, label_selector="x=y")),
                       ("list Deployments", lambda: apps.list_namespaced_deployment(NS)),
                       ("read a Namespace", lambda: core.read_namespace(NS))):
        try:
            call()
        except client.ApiException as err:
            refused.append((what, err.status))
    assert refused == [(w, 403) for w in ("delete a Deployment", "list Secrets", "list Deployments",
                                          "read a Namespace")], refused


@pytest.fixture
def bridge(control_plane: ControlPlane, sandbox: Sandbox, policy: Policy) -> Iterator[None]:
    """The sandbox's service process runs as many replicas as its Deployment has Running pods."""
    name = policy.database(policy.drill("drill-1")["database"]).consumer
    core = client.CoreV1Api(control_plane.admin)

    def running() -> int:
        pods = core.list_namespaced_pod(NS, label_selector=f"app={name}").items
        return sum(p.status.phase == "Running" and p.metadata.deletion_timestamp is None for p in pods)

    with process_follows(sandbox.supervisor, name, running, START_DEADLINE):
        yield


def _target_file(tmp_path: Path, control_plane: ControlPlane, sandbox: Sandbox) -> Path:
    pg_host = sandbox.db.dsn("postgres").split("host=")[-1]
    path = tmp_path / "target.yaml"
    path.write_text(f"""
kube: {{kubeconfig: {control_plane.kubeconfig}, context: akko-dr, namespace: {NS}}}
s3: {{endpoint: "{sandbox.store.endpoint}", access_key: {{env: AKKO_TEST_S3_KEY}},
     secret_key: {{env: AKKO_TEST_S3_SECRET}}}}
postgres: {{host: {pg_host}, user: postgres, database: postgres}}
""")
    return path


def test_drill_1_runs_against_the_real_control_plane(control_plane: ControlPlane, bridge: None,
                                                     sandbox: Sandbox, policy: Policy, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    key, secret = sandbox.s3_keys()  # the sandbox store's own keys (real MinIO checks them)
    monkeypatch.setenv("AKKO_TEST_S3_KEY", key)
    monkeypatch.setenv("AKKO_TEST_S3_SECRET", secret)
    target = open_live(policy, load_target_file(_target_file(tmp_path, control_plane, sandbox)),
                       allow_destructive=True)
    database = policy.drill("drill-1")["database"]
    if sandbox.heal:
        sandbox.heal()
    drill = RestoreDatabaseDrill(target, database, new_run_id())
    drill.run("dashboards")
    assert drill.table_exists("dashboards") and drill.rto().met
    consumer = policy.database(database).consumer
    deployment = client.AppsV1Api(control_plane.admin).read_namespaced_deployment(consumer, NS)
    assert deployment.spec.replicas == 1 and deployment.status.ready_replicas == 1


def test_a_verb_removed_from_the_role_is_refused_by_the_real_authorizer(control_plane: ControlPlane,
                                                                         policy: Policy) -> None:
    rbac = client.RbacAuthorizationV1Api(control_plane.admin)
    rules = client.ApiClient().sanitize_for_serialization(rbac.read_namespaced_role("akko-dr", NS).rules)
    kept = [r for r in rules if "deployments/scale" not in r["resources"]]
    assert len(kept) == len(rules) - 1, "the shipped Role lets the harness scale Deployments"
    rbac.patch_namespaced_role("akko-dr", NS, {"rules": kept})
    try:
        target = open_live(policy, load_target_file_for(control_plane), allow_destructive=True)
        name = policy.database(policy.drill("drill-1")["database"]).consumer
        with pytest.raises(DrillError, match="HTTP 403"):
            target.orchestrator.scale(name, 0)
    finally:
        rbac.patch_namespaced_role("akko-dr", NS, {"rules": rules})


def load_target_file_for(control_plane: ControlPlane):
    """A target file with the harness's kubeconfig only (this test makes no S3 or SQL call)."""
    path = control_plane.kubeconfig.parent / "kube-only.yaml"
    path.write_text(f"kube: {{kubeconfig: {control_plane.kubeconfig}, context: akko-dr, namespace: {NS}}}\n"
                    "s3: {endpoint: 'http://127.0.0.1:9'}\n")
    return load_target_file(path)


def test_a_backup_job_runs_from_its_cronjob_under_the_real_job_controller(control_plane: ControlPlane,
                                                                           policy: Policy) -> None:
    """The harness's own account creates a Job from the CronJob's template; the real Job controller and
    a kwok node run it to completion (kwok pods write no log: the runner says so)."""
    target = open_live(policy, load_target_file_for(control_plane), allow_destructive=True)
    job = policy.database(policy.drill("drill-1")["database"]).job.name
    run = target.port("jobs").run_job(job)
    assert run.succeeded, run.error
    jobs = client.BatchV1Api(control_plane.admin).list_namespaced_job(NS).items
    created = [j for j in jobs if j.metadata.name.startswith(f"{job}-dr-")]
    assert len(created) == 1 and created[0].metadata.owner_references[0].name == job
    assert created[0].metadata.annotations["cronjob.kubernetes.io/instantiate"] == "manual"
    assert run.last_log_line.startswith("("), run.last_log_line


# -- a real Velero server ---------------------------------------------------------------------------
VELERO_BINS = ("velero", "velero-plugin-for-aws")
VELERO_BUCKET = "velero-backups"


@pytest.fixture(scope="module")
def velero(control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Velero v1.18 running against the real API server, its backups in an S3 endpoint on 127.0.0.1.

    The server runs outside the cluster, so its own Deployment object (which Velero looks itself up by
    when restoring) is created scaled to zero, as `velero install` would leave it minus the pod."""
    if missing := [b for b in VELERO_BINS if not (BIN / b).is_file()]:
        pytest.skip(f"Velero not built here ({', '.join(missing)} missing): run scripts/cluster.sh build")
    work = tmp_path_factory.mktemp("velero")
    (work / "plugins").mkdir()
    shutil.copy(BIN / "velero-plugin-for-aws", work / "plugins")
    s3 = _ProcessServer()
    boto3.client("s3", endpoint_url=s3.endpoint, region_name="us-east-1", aws_access_key_id="velero",
                 aws_secret_access_key="velero").create_bucket(Bucket=VELERO_BUCKET)
    (work / "credentials").write_text("[default]\naws_access_key_id=velero\naws_secret_access_key=velero\n")
    admin, kubeconfig = control_plane.admin, control_plane.kubeconfig.parent / "admin.kubeconfig"
    crds = subprocess.run([str(BIN / "velero"), "install", "--crds-only", "--dry-run", "-o", "yaml"],
                          capture_output=True, text=True, check=True, timeout=60).stdout
    for doc in yaml.safe_load_all(crds):
        for item in (doc or {}).get("items", [doc] if doc else []):
            utils.create_from_dict(admin, item)
    template = {"metadata": {"labels": {"app": "velero"}},
                "spec": {"containers": [{"name": "velero", "image": "velero/velero:v1.18.3"}]}}
    client.AppsV1Api(admin).create_namespaced_deployment("velero", {"metadata": {"name": "velero"}, "spec": {
        "replicas": 0, "selector": {"matchLabels": {"app": "velero"}}, "template": template}})
    env = dict(os.environ, AWS_SHARED_CREDENTIALS_FILE=str(work / "credentials"))
    with open(work / "velero.log", "w") as log:
        server = subprocess.Popen([str(BIN / "velero"), "server", "--kubeconfig", str(kubeconfig),
                                   "--namespace", "velero", "--plugin-dir", str(work / "plugins")],
                                  stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        custom = client.CustomObjectsApi(admin)
        custom.create_namespaced_custom_object("velero.io", "v1", "velero", "backupstoragelocations", {
            "apiVersion": "velero.io/v1", "kind": "BackupStorageLocation",
            "metadata": {"name": "default", "namespace": "velero"},
            "spec": {"provider": "aws", "default": True, "objectStorage": {"bucket": VELERO_BUCKET},
                     "config": {"region": "us-east-1", "s3ForcePathStyle": "true", "s3Url": s3.endpoint}}})
        wait_for("the backup storage location to be Available", lambda: (custom.get_namespaced_custom_object(
            "velero.io", "v1", "velero", "backupstoragelocations", "default").get("status") or {}).get(
            "phase") == "Available", START_DEADLINE)
        yield
    finally:
        server.terminate()
        server.wait(30)
        s3.stop()


def test_drill_2_restores_the_namespace_with_a_real_velero_server(control_plane: ControlPlane, velero: None,
                                                                 policy: Policy) -> None:
    """A nightly Velero backup of the namespace, then Drill 2's restore step: a Restore mapped onto a
    namespace of the drill's own, never the source, whose Deployments match the originals."""
    custom, apps = client.CustomObjectsApi(control_plane.admin), client.AppsV1Api(control_plane.admin)
    schedule = next(j.name for j in policy.jobs.values() if j.kind == "velero")
    custom.create_namespaced_custom_object("velero.io", "v1", "velero", "backups", {
        "apiVersion": "velero.io/v1", "kind": "Backup",
        "metadata": {"name": f"{schedule}-nightly", "labels": {"velero.io/schedule-name": schedule}},
        "spec": {"includedNamespaces": [NS], "ttl": "720h0m0s", "snapshotVolumes": False}})
    wait_for("the Velero backup to complete", lambda: (custom.get_namespaced_custom_object(
        "velero.io", "v1", "velero", "backups", f"{schedule}-nightly").get("status") or {}).get(
        "phase") == "Completed", START_DEADLINE)
    target = open_live(policy, load_target_file_for(control_plane), allow_destructive=True)
    drill = FullRebuildDrill(target, new_run_id())
    outcome = drill.restore_namespace()
    assert outcome["backup"] == f"{schedule}-nightly" and ": Completed, 0 errors" in outcome["restore"]
    mapped = drill_namespace(NS, drill.run_id)
    images = {d.metadata.name: d.spec.template.spec.containers[0].image
              for d in apps.list_namespaced_deployment(NS).items}
    restored = {d.metadata.name: d.spec.template.spec.containers[0].image
                for d in apps.list_namespaced_deployment(mapped).items}
    assert restored == images and images, (restored, images)
