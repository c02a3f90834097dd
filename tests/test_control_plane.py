"""The live adapters against Kubernetes itself (issue 11): a real kube-apiserver, etcd, controller-manager,
scheduler and kwok nodes on 127.0.0.1, built by ``scripts/cluster.sh build``.

The harness acts as its own ServiceAccount bound only to the shipped Roles (``deploy/rbac.yaml``): real
RBAC decisions, real Deployment → ReplicaSet → Pod rollouts. Drill 1 runs with the opt-in; the sandbox's
service process follows its Deployment's running pods (the bridge from pod to process)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path

import boto3
import pytest
import yaml
from kubernetes import client, utils

from akko_dr.adapters.kube_eradicator import LABEL as ERADICATE_LABEL
from akko_dr.adapters.postgres import PostgresDatabase
from akko_dr.drills.full_rebuild import FullRebuildDrill
from akko_dr.errors import DrillError
from akko_dr.measure import wait_for
from akko_dr.policy import Policy
from akko_dr.ports import drill_namespace, written_by_services
from akko_dr.sandbox import Sandbox
from akko_dr.sandbox.emulator import _ProcessServer
from akko_dr.sandbox.keycloak import LOGIN_CLIENT
from akko_dr.sandbox.keycloak import REALM as KEYCLOAK_REALM
from akko_dr.sandbox.log_shipper import SOURCE, collecting
from akko_dr.sandbox.platform import RealServers, start_server
from akko_dr.targetfile import load_target_file, open_live
from akko_dr.targets import Target, new_run_id
from akko_dr.wiring import open_sandbox
from tests.control_plane import (
    BIN,
    NS,
    START_DEADLINE,
    VELERO_NS,
    ControlPlane,
    akko_namespace,
    harness_roles,
    kube_only_target,
    velero_objects,
)
from tests.kube_world import process_follows

pytestmark = pytest.mark.cluster
ROOT = Path(__file__).resolve().parents[1]


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


FEATURE_DEADLINE = 900.0  # seconds a whole drill feature may take under load


def _run_feature(steps: str, target_file: Path, out: Path, env: dict[str, str]) -> tuple[dict, str]:
    """One drill's feature with --target live and the opt-in; its results.json, and its output's tail."""
    answers = ROOT / "tests" / "tabletop_answers.yaml"
    argv = [sys.executable, "-m", "pytest", str(ROOT / "steps" / steps), "--target", "live",
            "--target-file", str(target_file), f"--allow-destructive={NS}", "--evidence-dir", str(out),
            "--answers", str(answers), "-q", "-p", "no:cacheprovider"]
    done = subprocess.run(argv, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT), **env),
                          capture_output=True, text=True, timeout=FEATURE_DEADLINE)
    return json.loads((out / "latest" / "results.json").read_text()), done.stdout[-3000:]


def _platform_running(control_plane: ControlPlane, sandbox: Sandbox, policy: Policy) -> str:
    """The platform as a drill finds it: healed, and the drill's service with a ready replica."""
    if sandbox.heal:
        sandbox.heal()
    consumer = policy.database(policy.drill("drill-1")["database"]).consumer
    apps = client.AppsV1Api(control_plane.admin)
    wait_for(f"a ready replica of {consumer}",
             lambda: apps.read_namespaced_deployment(consumer, NS).status.ready_replicas, START_DEADLINE)
    return consumer


def test_drill_1_runs_with_target_live_on_the_real_control_plane(
        control_plane: ControlPlane, bridge: None, sandbox: Sandbox, policy: Policy, tmp_path: Path) -> None:
    """Drill 1's feature with --target live: the real controllers scale the service down and back, the
    restore goes through the scratch database, and the segregated restore runs on the second server."""
    consumer = _platform_running(control_plane, sandbox, policy)
    path = _target_file(tmp_path, control_plane, sandbox)
    if sandbox.segregated is not None:
        host = sandbox.segregated.dsn("postgres").split("host=")[-1]
        path.write_text(path.read_text() + f"segregated_postgres: {{host: {host}, user: postgres}}\n")
    key, secret = sandbox.s3_keys()  # the sandbox store's own keys (real MinIO checks them)
    results, out = _run_feature("test_drill_1_restore_database.py", path, tmp_path / "ev",
                                {"AKKO_TEST_S3_KEY": key, "AKKO_TEST_S3_SECRET": secret})
    status = {s["name"]: (s["status"], s.get("error")) for s in results["scenarios"]}
    expected = "passed" if sandbox.segregated is not None else "not-applicable"
    assert [v[0] for v in status.values()] == ["passed", expected], (status, out)
    deployment = client.AppsV1Api(control_plane.admin).read_namespaced_deployment(consumer, NS)
    assert deployment.spec.replicas == 1 and deployment.status.ready_replicas == 1


DRILL_3 = "test_drill_3_ransomware.py"


def _drill_3_file(tmp_path: Path, control_plane: ControlPlane, sandbox: Sandbox) -> Path:
    """The target file with the realm's admin API, the logs layer and the rehearsal attacker."""
    path = _target_file(tmp_path, control_plane, sandbox)
    keycloak = sandbox.keycloak.server
    logs = f"logs: {{victorialogs: {sandbox.logs.url}}}\n" if sandbox.logs else ""
    path.write_text(path.read_text() + logs + f"""
keycloak: {{url: "{keycloak.url}", realm: {KEYCLOAK_REALM}, admin_user: {keycloak.admin_user},
           admin_password: {{env: AKKO_TEST_KC_ADMIN}}, login_client: {LOGIN_CLIENT}}}
drill_3:
  rehearsal_attacker: true
  identity_s3: {{access_key: {{env: AKKO_TEST_ID_S3_KEY}}, secret_key: {{env: AKKO_TEST_ID_S3_SECRET}}}}
""")
    return path


@pytest.fixture
def attacker_leftovers(control_plane: ControlPlane, policy: Policy) -> Iterator[list[str]]:
    """What responders labelled as the compromised identity's, and the eradicator's binding for the
    rehearsal (deploy/rbac-drill-3.yaml), deleted after."""
    identity = policy.drill("drill-3")["compromised_identity"]
    core = client.CoreV1Api(control_plane.admin)
    meta = {"labels": {ERADICATE_LABEL: identity}}
    core.create_namespaced_service_account(NS, {"metadata": {"name": "backdoor-sa", **meta}})
    core.create_namespaced_secret(NS, {"metadata": {"name": "backdoor-token", **meta},
                                       "stringData": {"k": "v"}})
    utils.create_from_yaml(control_plane.admin, str(ROOT / "deploy" / "rbac-drill-3.yaml"))
    yield ["Secret akko/backdoor-token", "ServiceAccount akko/backdoor-sa"]
    rbac = client.RbacAuthorizationV1Api(control_plane.admin)
    rbac.delete_namespaced_role_binding("akko-dr-eradicator", NS)


def test_drill_3_runs_with_target_live_on_the_real_control_plane(
        control_plane: ControlPlane, bridge: None, sandbox: Sandbox, target: Target, policy: Policy,
        attacker_leftovers: list[str], tmp_path: Path) -> None:
    """Drill 3's feature with --target live: the real Keycloak contains the identity, the real authorizer
    lets the eradicator delete only what is labelled, Drill 1 recovers through the real controllers, and the
    audit trail holds only what the platform's collector shipped from the PostgreSQL server's own log."""
    if sandbox.keycloak is None:
        pytest.skip(f"Drill 3 on live needs a real Keycloak: {sandbox.components.get('identity-provider')}")
    identity = policy.drill("drill-3")["compromised_identity"]
    key, secret = sandbox.s3_keys()
    id_key, id_secret = target.port("object_keys")(identity)
    env = dict(AKKO_TEST_S3_KEY=key, AKKO_TEST_S3_SECRET=secret, AKKO_DR_KEYCLOAK="off",
               AKKO_TEST_KC_ADMIN=sandbox.keycloak.server.admin_password, AKKO_TEST_ID_S3_KEY=id_key,
               AKKO_TEST_ID_S3_SECRET=id_secret)
    _platform_running(control_plane, sandbox, policy)
    log = Path(sandbox.pg_server.pgdata) / "log"
    with collecting(log, target.audit_trail) as collector:
        results, out = _run_feature(DRILL_3, _drill_3_file(tmp_path, control_plane, sandbox), tmp_path / "ev",
                                    env)
    status = {s["name"]: s["status"] for s in results["scenarios"]}
    main = next(s for s in results["scenarios"] if s["name"].startswith("A compromised administrator"))
    assert main["status"] == "passed", (main.get("error"), out)
    assert sorted(main["details"]["removed"]) == attacker_leftovers, main["details"]
    assert "not applicable" in main["details"], main["details"]  # the server's log is not readable on live
    worm = [s for s in results["scenarios"] if "worm" in s["tags"]]
    expected = "inconclusive" if target.emulator_of("audit_trail") else "passed"
    assert len(worm) == 2 and {s["status"] for s in worm} == {expected}, worm
    assert status["An identity that does not exist cannot be contained"] == "passed", status
    realm = status["The identity provider is rebuilt from its realm export without the stolen credentials"]
    assert realm == "not-applicable", status
    assert collector.shipped >= 1 and not collector.error, (collector.shipped, collector.error)
    shipped = [e for e in target.audit_trail.events(identity, timedelta(hours=1)) if e.source == SOURCE]
    assert any(e.action == "DROP TABLE" for e in shipped), [e.line() for e in shipped]


REHEARSAL_NS = "akko-rehearsal"


@pytest.fixture
def rehearsal_world(control_plane: ControlPlane,
                    policy: Policy) -> Iterator[tuple[Sandbox, PostgresDatabase]]:
    """Drill 2's scratch platform: the AKKO namespace a second time (its own namespace, the harness's Role
    there), a sandbox of its own whose services follow that namespace's pods, and a new, empty server."""
    admin = control_plane.admin
    client.CoreV1Api(admin).create_namespace({"metadata": {"name": REHEARSAL_NS}})
    for body in akko_namespace(policy, REHEARSAL_NS) + harness_roles(REHEARSAL_NS):
        utils.create_from_dict(admin, body)
    core = client.CoreV1Api(admin)

    def running(service: str) -> Callable[[], int]:
        def pods() -> int:
            listed = core.list_namespaced_pod(REHEARSAL_NS, label_selector=f"app={service}").items
            return sum(p.status.phase == "Running" and p.metadata.deletion_timestamp is None for p in listed)
        return pods

    # one S3 endpoint for every bucket, as a live target file names it (real MinIO keeps the replica
    # on a server of its own, which a target file cannot name yet)
    with open_sandbox(policy, scratch=True, servers=RealServers()) as (sandbox, _), ExitStack() as bridges:
        server, rebuild = start_server(sandbox.root, "pgdata-rebuild")
        try:
            for service in sandbox.supervisor.services():
                bridges.enter_context(process_follows(sandbox.supervisor, service, running(service),
                                                      START_DEADLINE))
            for service in sandbox.supervisor.services():  # the platform is running before the disaster
                wait_for(f"a running pod of {service} in {REHEARSAL_NS}", lambda s=service: running(s)() > 0,
                         START_DEADLINE)
            yield sandbox, rebuild
        finally:
            bridges.close()
            server.cleanup()
    client.CoreV1Api(admin).delete_namespace(REHEARSAL_NS)


def _rehearsal_file(tmp_path: Path, control_plane: ControlPlane, sandbox: Sandbox, scratch: Sandbox,
                    rebuild: PostgresDatabase) -> Path:
    path = _target_file(tmp_path, control_plane, sandbox)
    kube = f"{{kubeconfig: {control_plane.kubeconfig}, context: akko-dr, namespace: {REHEARSAL_NS}}}"
    host = scratch.db.dsn("postgres").split("host=")[-1]
    rebuild_host = rebuild.dsn("postgres").split("host=")[-1]
    path.write_text(path.read_text() + f"""
scratch_platform:
  kube: {kube}
  s3: {{endpoint: "{scratch.store.endpoint}", access_key: {{env: AKKO_TEST_SCRATCH_S3_KEY}},
       secret_key: {{env: AKKO_TEST_SCRATCH_S3_SECRET}}}}
  postgres: {{host: {host}, user: postgres}}
  rebuild_postgres: {{host: {rebuild_host}, user: postgres}}
""")
    return path


def test_drill_2_rebuilds_a_scratch_platform_on_the_real_control_plane(
        control_plane: ControlPlane, rehearsal_world: tuple[Sandbox, PostgresDatabase], sandbox: Sandbox,
        policy: Policy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Drill 2 with --target live: the platform lost and rebuilt is the target file's scratch platform,
    whose services are Deployments the real controllers scale; the source is never touched."""
    scratch, rebuild = rehearsal_world
    for prefix, platform in (("AKKO_TEST_S3", sandbox), ("AKKO_TEST_SCRATCH_S3", scratch)):
        key, secret = platform.s3_keys()  # each store's own keys (real MinIO checks them)
        monkeypatch.setenv(f"{prefix}_KEY", key)
        monkeypatch.setenv(f"{prefix}_SECRET", secret)
    for job in {info.job.name for info in policy.databases.values()} | {"akko-minio-replicate"}:
        assert scratch.run_job(job).succeeded  # the scratch platform's own backup CronJobs ran
    def source() -> dict[str, object]:  # the shared sandbox's content; its service keeps writing canaries
        return {name: {t: v for t, v in sandbox.db.fingerprint(name).items() if not written_by_services(t)}
                for name in policy.databases}

    source_before = source()
    live = open_live(policy, load_target_file(_rehearsal_file(tmp_path, control_plane, sandbox, scratch,
                                                              rebuild)), allow_destructive=True)
    with live.port("scratch_platform")() as rehearsal:
        drill = FullRebuildDrill(rehearsal, new_run_id())
        lost = drill.lose_platform()
        drill.declare_incident()
        drill.provision_platform()
        scratch.point_services_at(rebuild)  # the DNS re-point, which people do on a cluster
        drill.replay_databases()
        drill.restore_objects()
        drill.restart_services()
        drill.validate_services()
    assert not drill.failures() and not drill.mismatches() and not drill.object_mismatches()
    assert drill.rto().measured.total_seconds() > 0 and drill.rpo().measured.total_seconds() >= 0
    assert len(drill.evidence()["kept for sign-off"]) == len(policy.databases), lost
    assert source() == source_before


def test_a_verb_removed_from_the_role_is_refused_by_the_real_authorizer(control_plane: ControlPlane,
                                                                         policy: Policy) -> None:
    rbac = client.RbacAuthorizationV1Api(control_plane.admin)
    rules = client.ApiClient().sanitize_for_serialization(rbac.read_namespaced_role("akko-dr", NS).rules)
    kept = [r for r in rules if "deployments/scale" not in r["resources"]]
    assert len(kept) == len(rules) - 1, "the shipped Role lets the harness scale Deployments"
    rbac.patch_namespaced_role("akko-dr", NS, {"rules": kept})
    try:
        target = kube_only_target(control_plane, policy)
        name = policy.database(policy.drill("drill-1")["database"]).consumer
        with pytest.raises(DrillError, match="HTTP 403"):
            target.orchestrator.scale(name, 0)
    finally:
        rbac.patch_namespaced_role("akko-dr", NS, {"rules": rules})


def test_a_backup_job_runs_from_its_cronjob_under_the_real_job_controller(control_plane: ControlPlane,
                                                                           policy: Policy) -> None:
    """The harness's own account creates a Job from the CronJob's template; the real Job controller and
    a kwok node run it to completion (kwok pods write no log: the runner says so)."""
    target = kube_only_target(control_plane, policy)
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
def velero(control_plane: ControlPlane, policy: Policy,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
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
        for body in velero_objects(policy, VELERO_BUCKET, s3.endpoint):
            plural = body["kind"].lower() + "s"
            custom.create_namespaced_custom_object("velero.io", "v1", VELERO_NS, plural, body)
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
    target = kube_only_target(control_plane, policy)
    drill = FullRebuildDrill(target, new_run_id())
    outcome = drill.restore_namespace()
    assert outcome["backup"] == f"{schedule}-nightly" and ": Completed, 0 errors" in outcome["restore"]
    mapped = drill_namespace(NS, drill.run_id)
    images = {d.metadata.name: d.spec.template.spec.containers[0].image
              for d in apps.list_namespaced_deployment(NS).items}
    restored = {d.metadata.name: d.spec.template.spec.containers[0].image
                for d in apps.list_namespaced_deployment(mapped).items}
    assert restored == images and images, (restored, images)
