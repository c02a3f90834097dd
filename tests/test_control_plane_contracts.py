"""The live adapters' contracts a second time, against Kubernetes itself (issue 11): real rollouts by the
real Deployment and StatefulSet controllers on kwok nodes, real 404s and 403s from the real API server
and authorizer, real CronJob status written by the real CronJob controller. The harness acts as its own
ServiceAccount, bound only to the shipped Roles."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from kubernetes import client, utils

from akko_dr.adapters.kube_api import KubeApi
from akko_dr.adapters.kube_eradicator import LABEL, LabelledEradicator
from akko_dr.adapters.kube_orchestrator import RolloutOrchestrator
from akko_dr.checks.schedule import check_job_ran, check_job_schedule
from akko_dr.errors import DrillError
from akko_dr.measure import wait_for
from akko_dr.policy import BackupJob, Policy
from tests.control_plane import NS, POSTGRES, ROOT, ControlPlane, cronjob, kube_only_target

pytestmark = pytest.mark.cluster
DEADLINE = 60.0  # seconds a real rollout on kwok nodes may take here
CRON_DEADLINE = 150.0  # an every-minute CronJob fires within a minute; its Job completes on kwok


def _orchestrator(control_plane: ControlPlane, deadline: float = DEADLINE) -> RolloutOrchestrator:
    return RolloutOrchestrator(KubeApi(control_plane.harness, writes_allowed=True), NS, deadline, 0.2)


def _pods(control_plane: ControlPlane, app: str) -> list[client.V1Pod]:
    pods = client.CoreV1Api(control_plane.admin).list_namespaced_pod(NS, label_selector=f"app={app}").items
    return [p for p in pods if p.status.phase == "Running" and p.metadata.deletion_timestamp is None]


@pytest.mark.parametrize("service", ["akko-airflow", POSTGRES], ids=["Deployment", "StatefulSet"])
def test_scale_returns_only_when_the_real_rollout_reached_the_count(control_plane: ControlPlane,
                                                                   service: str) -> None:
    with _orchestrator(control_plane) as orchestrator:
        orchestrator.scale(service, 0)
        assert orchestrator.running(service) == 0 and _pods(control_plane, service) == []
        orchestrator.scale(service, 2)
        assert orchestrator.running(service) == 2 and len(_pods(control_plane, service)) == 2
    assert orchestrator.running(service) == 1, "the original replica count came back"


@pytest.fixture
def unschedulable(control_plane: ControlPlane) -> Iterator[str]:
    """A Deployment whose pods no node accepts: its rollout never completes."""
    name = "akko-unschedulable"
    apps = client.AppsV1Api(control_plane.admin)
    apps.create_namespaced_deployment(NS, {"metadata": {"name": name}, "spec": {
        "replicas": 0, "selector": {"matchLabels": {"app": name}},
        "template": {"metadata": {"labels": {"app": name}}, "spec": {
            "nodeSelector": {"akko.io/nowhere": "true"}, "containers": [{"name": "c", "image": "akko/x"}]}}}})
    yield name
    apps.delete_namespaced_deployment(name, NS)


def test_a_rollout_that_never_completes_ends_at_its_deadline_and_the_count_comes_back(
        control_plane: ControlPlane, unschedulable: str) -> None:
    orchestrator = _orchestrator(control_plane, deadline=3.0)
    stalled = rf"rollout of Deployment {unschedulable} did not complete within 3s: wanted 1 replicas, 0 ready"
    with pytest.raises(DrillError, match=stalled):
        orchestrator.scale(unschedulable, 1)
    assert orchestrator.restore_replicas() == [f"{unschedulable} back to 0"]
    deployment = client.AppsV1Api(control_plane.admin).read_namespaced_deployment(unschedulable, NS)
    assert deployment.spec.replicas == 0


def test_an_unknown_service_is_named_from_the_real_404(control_plane: ControlPlane) -> None:
    with pytest.raises(DrillError, match="no Deployment or StatefulSet named akko-nothing in namespace akko"):
        _orchestrator(control_plane).scale("akko-nothing", 0)


def test_without_the_opt_in_no_scale_reaches_the_api(control_plane: ControlPlane) -> None:
    orchestrator = RolloutOrchestrator(KubeApi(control_plane.harness, writes_allowed=False), NS, DEADLINE)
    generation = client.AppsV1Api(control_plane.admin).read_namespaced_deployment(
        "akko-airflow", NS).metadata.generation
    with pytest.raises(DrillError):
        orchestrator.scale("akko-airflow", 0)
    after = client.AppsV1Api(control_plane.admin).read_namespaced_deployment("akko-airflow", NS)
    assert (after.metadata.generation, after.spec.replicas) == (generation, 1)


def test_a_missing_cronjob_is_refused_with_the_real_404(control_plane: ControlPlane, policy: Policy) -> None:
    with pytest.raises(DrillError, match="404"):
        kube_only_target(control_plane, policy).port("jobs").run_job("akko-no-such-backup")


@pytest.fixture
def eradicator_bound(control_plane: ControlPlane) -> Iterator[None]:
    """deploy/rbac-drill-3.yaml applied for the rehearsal, and deleted after, as its header says."""
    utils.create_from_yaml(control_plane.admin, str(ROOT / "deploy" / "rbac-drill-3.yaml"))
    yield
    rbac = client.RbacAuthorizationV1Api(control_plane.admin)
    rbac.delete_namespaced_role_binding("akko-dr-eradicator", NS)


def test_eradication_removes_only_the_attacker_s_labelled_objects(control_plane: ControlPlane,
                                                                   eradicator_bound: None) -> None:
    core = client.CoreV1Api(control_plane.admin)
    def meta(name: str, identity: str) -> dict[str, object]:
        return {"metadata": {"name": name, "labels": {LABEL: identity}}}

    core.create_namespaced_secret(NS, {**meta("stolen-key", "mallory"), "stringData": {"k": "v"}})
    core.create_namespaced_service_account(NS, meta("mallory-sa", "mallory"))
    core.create_namespaced_secret(NS, meta("innocent", "alice"))
    eradicator = LabelledEradicator(KubeApi(control_plane.harness, writes_allowed=True), NS)
    removed = sorted(eradicator.remove("mallory"))
    assert removed == ["Secret akko/stolen-key", "ServiceAccount akko/mallory-sa"], removed
    assert core.read_namespaced_secret("innocent", NS).metadata.name == "innocent"
    assert eradicator.attacker_objects("mallory") == []


def test_without_the_eradicator_binding_the_real_authorizer_refuses(control_plane: ControlPlane) -> None:
    eradicator = LabelledEradicator(KubeApi(control_plane.harness, writes_allowed=True), NS)
    with pytest.raises(DrillError, match="403"):
        eradicator.attacker_objects("mallory")


@contextmanager
def cronjob_in_policy(control_plane: ControlPlane, policy: Policy, suffix: str,
                      schedule: str) -> Iterator[tuple[Policy, BackupJob]]:
    """The drill-1 database's backup job as one more CronJob on the cluster with ``schedule``, and a
    policy that declares it."""
    job = policy.database(policy.drill("drill-1")["database"]).job
    job = replace(job, name=f"{job.name}-{suffix}", schedule=schedule)
    batch = client.BatchV1Api(control_plane.admin)
    batch.create_namespaced_cron_job(NS, cronjob(job.name, schedule))
    try:
        yield replace(policy, jobs={**policy.jobs, job.name: job}), job
    finally:
        batch.delete_namespaced_cron_job(job.name, NS, propagation_policy="Background")


def test_the_backup_checks_read_the_real_controller_s_schedule_and_success(control_plane: ControlPlane,
                                                                           policy: Policy) -> None:
    """An every-minute CronJob run by the real CronJob and Job controllers on kwok: the checks read the
    lastSuccessfulTime the controller wrote."""
    with cronjob_in_policy(control_plane, policy, "every-minute", "* * * * *") as (fast, job):
        batch = client.BatchV1Api(control_plane.admin)
        wait_for(f"CronJob {job.name} to succeed once", lambda: bool(
            batch.read_namespaced_cron_job(job.name, NS).status.last_successful_time), CRON_DEADLINE)
        target, now = kube_only_target(control_plane, fast, allow_destructive=False), datetime.now(UTC)
        ran = check_job_ran(fast, job, target.source, now)
        schedule = check_job_schedule(fast, job, target.source, now)
    assert ran.status == "passed", ran.reason
    assert 0 <= ran.measured["age_seconds"] < CRON_DEADLINE, ran.measured
    assert schedule.status == "passed", schedule.reason


def test_a_cronjob_that_never_ran_fails_the_check(control_plane: ControlPlane, policy: Policy) -> None:
    with cronjob_in_policy(control_plane, policy, "yearly", "0 0 1 1 *") as (yearly, job):
        target = kube_only_target(control_plane, yearly, allow_destructive=False)
        ran = check_job_ran(yearly, job, target.source, datetime.now(UTC))
    assert (ran.status, ran.reason) == ("failed", f"{job.name} never ran successfully")
