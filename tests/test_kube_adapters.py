"""Contract tests of the live Kubernetes and Velero adapters, over HTTP with the official client against
the kmock API emulator (tests/kube_emulator.py): every operation, and its 403, 404, 409, timeout,
unreachable and never-completing paths. kmock runs no controller: stand-ins (tests/kube_world.py) write
the status a real controller would, so that what the adapters wait for is what a cluster reports."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kmock
import pytest
from kubernetes import client

from akko_dr.adapters.kube_api import KubeApi
from akko_dr.adapters.kube_eradicator import LabelledEradicator
from akko_dr.adapters.kube_jobs import MANUAL, KubeJobRunner
from akko_dr.adapters.kube_orchestrator import RolloutOrchestrator
from akko_dr.adapters.velero import VeleroCrds
from akko_dr.errors import DrillError, NotApplicable, TargetUnavailable
from akko_dr.policy import load_policy
from akko_dr.ports import VeleroBackup, drill_namespace
from akko_dr.targetfile import load_target_file, open_live
from akko_dr.targets import Target
from tests.kube_emulator import ADAPTER_AGENT, Emulator, emulator, stand_in
from tests.kube_world import (
    CRONJOB,
    NS,
    SCHEDULE,
    VELERO_NS,
    JobController,
    RolloutController,
    attacker_objects,
    cronjob,
    deployment,
    restore_status,
    velero_backup,
)

FAST = 0.02  # seconds between two polls of an adapter in these tests
SHORT = 0.4  # seconds: a deadline meant to pass


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with emulator() as running:
        yield running


@pytest.fixture
def setup(emu: Emulator) -> client.ApiClient:
    """The tests' own client: what it asks for is not counted as the adapters' calls."""
    return emu.client()


@pytest.fixture
def kube(emu: Emulator) -> KubeApi:
    return KubeApi(emu.client(ADAPTER_AGENT), request_timeout=2.0, writes_allowed=True)


def _orchestrator(kube: KubeApi, deadline: float = 5.0) -> RolloutOrchestrator:
    return RolloutOrchestrator(kube, NS, deadline=deadline, interval=FAST)


# -- orchestrator -----------------------------------------------------------------------------------
def test_scale_waits_until_the_rollout_reached_the_count(setup: client.ApiClient, kube: KubeApi) -> None:
    deployment(setup, "akko-superset", 2)
    controller = RolloutController(setup, "Deployment", "akko-superset")
    with stand_in(controller):
        _orchestrator(kube).scale("akko-superset", 0)
        assert controller.rollouts >= 1, "scale returned before the controller reported the rollout"
    assert _orchestrator(kube).running("akko-superset") == 0


def test_a_stale_generation_is_not_a_finished_rollout(setup: client.ApiClient, kube: KubeApi) -> None:
    deployment(setup, "akko-superset", 1)
    client.AppsV1Api(setup).patch_namespaced_deployment("akko-superset", NS, {"metadata": {"generation": 3}})
    with pytest.raises(DrillError) as err:
        _orchestrator(kube, deadline=SHORT).scale("akko-superset", 1)  # ready 1 == wanted, generation 1 of 3
    assert "generation 1 observed of 3" in str(err.value)


def test_a_rollout_that_never_completes_ends_at_its_deadline(setup: client.ApiClient, kube: KubeApi) -> None:
    deployment(setup, "akko-superset", 1)
    started = time.monotonic()
    with pytest.raises(DrillError) as err:
        _orchestrator(kube, deadline=SHORT).scale("akko-superset", 0)
    assert time.monotonic() - started < SHORT + 2.0
    assert str(err.value).startswith("rollout of Deployment akko-superset did not complete within "
                                     f"{SHORT:g}s: wanted 0 replicas, 1 ready"), str(err.value)
    assert "\n" not in str(err.value)


def test_a_pod_still_terminating_is_not_a_stopped_service(setup: client.ApiClient, kube: KubeApi) -> None:
    deployment(setup, "akko-superset", 0)
    client.AppsV1Api(setup).patch_namespaced_deployment_status("akko-superset", NS, {"status": {
        "terminatingReplicas": 1}})
    with pytest.raises(DrillError, match="wanted 0 replicas, 0 ready, 0 present, 1 terminating"):
        _orchestrator(kube, deadline=SHORT).scale("akko-superset", 0)


def test_a_statefulset_is_scaled_when_no_deployment_has_the_name(setup: client.ApiClient,
                                                                 kube: KubeApi, emu: Emulator) -> None:
    deployment(setup, "akko-postgresql", 1, kind="StatefulSet")
    with stand_in(RolloutController(setup, "StatefulSet", "akko-postgresql")):
        _orchestrator(kube).scale("akko-postgresql", 0)
    assert client.AppsV1Api(setup).read_namespaced_stateful_set("akko-postgresql", NS).spec.replicas == 0
    assert ("patch", "apps", "statefulsets/scale") in {(c.verb, c.group, c.resource) for c in emu.calls()}


def test_an_unknown_service_is_named(kube: KubeApi) -> None:
    with pytest.raises(DrillError, match="no Deployment or StatefulSet named akko-ghost in namespace akko"):
        _orchestrator(kube).running("akko-ghost")


def test_the_original_replicas_come_back_even_when_the_drill_fails(setup: client.ApiClient,
                                                                   kube: KubeApi) -> None:
    deployment(setup, "akko-superset", 3)
    with (stand_in(RolloutController(setup, "Deployment", "akko-superset")),
          pytest.raises(RuntimeError, match="drill failed"), _orchestrator(kube) as orchestrator):
        orchestrator.scale("akko-superset", 0)
        orchestrator.scale("akko-superset", 1)
        raise RuntimeError("drill failed")
    superset = client.AppsV1Api(setup).read_namespaced_deployment("akko-superset", NS)
    assert (superset.spec.replicas, superset.status.ready_replicas) == (3, 3)
    assert orchestrator.original == {}


def test_a_refused_scale_is_one_line_without_the_body(setup: client.ApiClient, kube: KubeApi,
                                                      emu: Emulator) -> None:
    deployment(setup, "akko-superset", 1)
    emu.refuse(403, "patch", kmock.resource("apps", "v1", "deployments"), kmock.subresource("scale"))
    orchestrator = _orchestrator(kube)
    with pytest.raises(DrillError) as err:
        orchestrator.scale("akko-superset", 0)
    assert str(err.value) == ("Kubernetes API refused scaling Deployment akko-superset to 0: "
                              "HTTP 403 Forbidden")
    assert orchestrator.original == {}, "a refused scale has nothing to put back"


def test_no_write_without_the_opt_in(setup: client.ApiClient, emu: Emulator) -> None:
    deployment(setup, "akko-superset", 1)
    read_only = KubeApi(emu.client(ADAPTER_AGENT), writes_allowed=False)
    with pytest.raises(NotApplicable, match="plan only: would be scaling Deployment akko-superset to 0"):
        _orchestrator(read_only).scale("akko-superset", 0)
    assert {c.verb for c in emu.calls()} == {"get"}


def _slow(seconds: float) -> Any:
    async def answer() -> dict[str, Any]:
        await asyncio.sleep(seconds)
        return {}
    return answer


def test_a_slow_api_times_out_with_a_reason(setup: client.ApiClient, emu: Emulator) -> None:
    deployment(setup, "akko-superset", 1)
    emu.react(_slow(3.0), "get", kmock.resource("apps", "v1", "deployments"))
    slow = KubeApi(emu.client(ADAPTER_AGENT), request_timeout=0.2)
    with pytest.raises(TargetUnavailable) as err:
        _orchestrator(slow).running("akko-superset")
    assert f"Kubernetes API at {emu.url} did not answer reading Deployment akko-superset within 0.2s" \
        == str(err.value)


def test_an_unreachable_api_is_named() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed when the block ends: nothing listens there
    cfg = client.Configuration()
    cfg.host, cfg.retries = f"http://127.0.0.1:{port}", 0
    with pytest.raises(TargetUnavailable, match=r"Kubernetes API unreachable at .* \(reading Deployment x\)"):
        _orchestrator(KubeApi(client.ApiClient(cfg))).running("x")


# -- job runner --------------------------------------------------------------------------------------
def _runner(kube: KubeApi, deadline: float = 5.0) -> KubeJobRunner:
    return KubeJobRunner(kube, NS, deadline=deadline, interval=FAST)


def test_a_job_is_created_from_the_cronjob_template_and_waited_for(setup: client.ApiClient, kube: KubeApi,
                                                                  emu: Emulator) -> None:
    cronjob(setup)
    with stand_in(JobController(setup, emu, "Complete", "")):
        run = _runner(kube).run_job(CRONJOB)
    assert run.succeeded and run.error == "" and run.finished_at, run
    assert run.last_log_line == "uploaded 2 objects"
    job = client.BatchV1Api(setup).list_namespaced_job(NS).items[0]
    owner = job.metadata.owner_references[0]
    assert (owner.kind, owner.name, owner.uid, owner.controller) == ("CronJob", CRONJOB, "cj-uid-1", True)
    assert job.metadata.annotations == {**MANUAL, "team": "sre"}
    assert job.metadata.labels == {"app": "pg-backup"}
    assert job.spec.backoff_limit == 2 and job.spec.template.spec.containers[0].image == "postgres:18"


def test_a_failed_job_reports_its_condition_and_log(setup: client.ApiClient, kube: KubeApi,
                                                    emu: Emulator) -> None:
    cronjob(setup)
    with stand_in(JobController(setup, emu, "Failed", "Job has reached the specified backoff limit")):
        run = _runner(kube).run_job(CRONJOB)
    assert not run.succeeded
    assert run.error.endswith("failed: Job has reached the specified backoff limit"), run.error
    assert run.last_log_line == "uploaded 2 objects"


def test_a_job_that_never_finishes_ends_at_its_deadline(setup: client.ApiClient, kube: KubeApi) -> None:
    cronjob(setup)
    run = _runner(kube, deadline=SHORT).run_job(CRONJOB)
    assert not run.succeeded and run.error.endswith(f"did not finish within {SHORT:g}s"), run.error
    assert run.last_log_line == "(no pod of the Job found)"


def test_a_missing_cronjob_is_refused_with_404(kube: KubeApi) -> None:
    with pytest.raises(DrillError, match=f"refused reading CronJob {CRONJOB}: HTTP 404"):
        _runner(kube).run_job(CRONJOB)


@pytest.mark.parametrize("status", [403, 409])
def test_a_refused_job_creation_is_a_reason_not_a_failedvelero_backup(setup: client.ApiClient, kube: KubeApi,
                                                                emu: Emulator, status: int) -> None:
    cronjob(setup)
    emu.refuse(status, "post", kmock.resource("batch", "v1", "jobs"))
    with pytest.raises(DrillError) as err:
        _runner(kube).run_job(CRONJOB)
    assert f"from CronJob {CRONJOB}: HTTP {status}" in str(err.value) and "SECRET-BODY" not in str(err.value)


def test_an_unreadable_log_is_said_in_the_run(setup: client.ApiClient, kube: KubeApi, emu: Emulator) -> None:
    cronjob(setup)
    emu.refuse(403, "get", kmock.subresource("log"))
    with stand_in(JobController(setup, emu, "Complete", "")):
        run = _runner(kube).run_job(CRONJOB)
    assert run.succeeded
    assert run.last_log_line.startswith("(log unavailable: Kubernetes API refused reading the log of pod")
    assert run.last_log_line.endswith("HTTP 403 Forbidden)")


# -- Velero -----------------------------------------------------------------------------------------
def _velero(kube: KubeApi, deadline: float = 5.0) -> VeleroCrds:
    return VeleroCrds(kube, VELERO_NS, deadline=deadline, interval=FAST)


def _nightly(api: client.ApiClient) -> None:
    velero_backup(api, "nightly-1", "Completed", "2026-11-27T01:05:00Z")
    velero_backup(api, "nightly-2", "Completed", "2026-11-28T01:04:00Z", warnings=2)
    velero_backup(api, "nightly-3", "PartiallyFailed", "2026-11-29T01:06:00Z", errors=3)
    velero_backup(api, "manual-kube-system", "Completed", "2026-11-29T02:00:00Z", None, ("kube-system",))
    velero_backup(api, "other-schedule", "Completed", "2026-11-29T03:00:00Z", "akko-velero-ns-other")


def test_backups_are_listed_with_phase_schedule_and_counts(setup: client.ApiClient, kube: KubeApi) -> None:
    _nightly(setup)
    backups = {b.name: b for b in _velero(kube).backups()}
    assert backups["nightly-3"].phase == "PartiallyFailed" and backups["nightly-3"].errors == 3
    assert backups["nightly-2"].schedule == SCHEDULE and backups["nightly-2"].warnings == 2
    assert backups["nightly-2"].completed_at.isoformat() == "2026-11-28T01:04:00+00:00"
    assert backups["manual-kube-system"].namespaces == ("kube-system",)


def test_the_newest_completed_backup_of_the_schedule_is_chosen(setup: client.ApiClient,
                                                               kube: KubeApi) -> None:
    _nightly(setup)
    assert _velero(kube).newest_completed(SCHEDULE, NS).name == "nightly-2"


def test_no_completed_backup_of_the_schedule_is_named(setup: client.ApiClient, kube: KubeApi) -> None:
    velero_backup(setup, "nightly-3", "PartiallyFailed", "2026-11-29T01:06:00Z", errors=3)
    with pytest.raises(DrillError, match=f"no Completed Velero backup of schedule {SCHEDULE} holds"):
        _velero(kube).newest_completed(SCHEDULE, NS)


def test_velero_not_installed_is_a_404_reason(kube: KubeApi, emu: Emulator) -> None:
    emu.refuse(404, "get", kmock.resource("velero.io", "v1", "backups"))  # as a cluster without the CRD
    refused = r"^Kubernetes API refused listing Velero backups in velero: HTTP 404"
    with pytest.raises(DrillError, match=refused):
        _velero(kube).backups()


def _restore_of(api: client.ApiClient, name: str) -> dict[str, Any]:
    return client.CustomObjectsApi(api).get_namespaced_custom_object("velero.io", "v1", VELERO_NS, "restores",
                                                                     name)


def test_a_restore_maps_the_namespace_and_completes(setup: client.ApiClient, kube: KubeApi) -> None:
    _nightly(setup)
    velero = _velero(kube)
    scratch = drill_namespace(NS, "20261129t084858z_ab12")
    name = velero.restore(velero.newest_completed(SCHEDULE, NS), {NS: scratch})
    spec = _restore_of(setup, name)["spec"]
    assert spec == {"backupName": "nightly-2", "includedNamespaces": [NS], "namespaceMapping": {NS: scratch},
                    "includeClusterResources": False}
    assert scratch == "akko-drill-20261129t084858z-ab12"
    restore_status(setup, name, phase="InProgress")

    def velero_finishes() -> bool:
        restore_status(setup, name, phase="Completed", warnings=1,
                        completionTimestamp="2026-11-29T09:00:00Z")
        return True

    with stand_in(velero_finishes) as finished:
        restore = velero.wait(name)
    assert finished.is_set() and restore.succeeded and restore.warnings == 1, restore
    assert restore.summary() == (f"Velero restore {name} of backup nightly-2 (akko -> {scratch}): Completed, "
                                 "0 errors, 1 warnings")


def test_a_partially_failed_restore_is_a_failure_with_its_reasons(setup: client.ApiClient,
                                                                  kube: KubeApi) -> None:
    _nightly(setup)
    velero = _velero(kube)
    name = velero.restore(velero.newest_completed(SCHEDULE, NS), {NS: "akko-drill-1"})
    restore_status(setup, name, phase="PartiallyFailed", errors=2, warnings=5,
                    failureReason="error restoring persistentvolumeclaims")
    restore = velero.wait(name)
    assert not restore.succeeded
    assert restore.summary().endswith("PartiallyFailed, 2 errors, 5 warnings: error restoring "
                                      "persistentvolumeclaims"), restore.summary()


def test_a_failed_validation_gives_velero_s_reasons(setup: client.ApiClient, kube: KubeApi) -> None:
    _nightly(setup)
    velero = _velero(kube)
    name = velero.restore(velero.newest_completed(SCHEDULE, NS), {NS: "akko-drill-1"})
    restore_status(setup, name, phase="FailedValidation", validationErrors=["backup nightly-2 not found"])
    restore = velero.wait(name)
    assert not restore.succeeded and restore.summary().endswith(": backup nightly-2 not found")


def test_a_restore_that_never_finishes_ends_at_its_deadline(setup: client.ApiClient, kube: KubeApi) -> None:
    _nightly(setup)
    velero = _velero(kube, deadline=SHORT)
    name = velero.restore(velero.newest_completed(SCHEDULE, NS), {NS: "akko-drill-1"})
    restore_status(setup, name, phase="InProgress")
    with pytest.raises(DrillError, match=f"did not finish within {SHORT:g}s \\(phase InProgress\\)"):
        velero.wait(name)


NIGHTLY = VeleroBackup("nightly-2", "Completed", None, None, SCHEDULE, (NS, "akko-keycloak"))


@pytest.mark.parametrize(("mapping", "reason"), [
    ({}, "a restore of nightly-2 needs a namespace mapping"),
    ({NS: NS}, "namespace mapping akko -> akko restores onto a namespace of nightly-2"),
    ({NS: "akko-keycloak"}, "namespace mapping akko -> akko-keycloak restores onto a namespace of nightly-2"),
    ({NS: "Akko_Drill"}, "namespace mapping akko -> Akko_Drill: not a valid namespace name"),
    ({"kube-system": "ks-drill"}, "backup nightly-2 does not hold namespace kube-system"),
])
def test_a_restore_that_could_overwrite_is_refused_before_any_call(
        kube: KubeApi, emu: Emulator, mapping: dict[str, str], reason: str) -> None:
    with pytest.raises(DrillError, match=f"^restore refused: {reason}"):
        _velero(kube).restore(NIGHTLY, mapping)
    assert emu.calls() == []


@pytest.mark.parametrize(("status", "reason"), [(403, "Forbidden"), (409, "Conflict")])
def test_a_refused_restore_creation_is_one_line(kube: KubeApi, emu: Emulator, status: int,
                                                reason: str) -> None:
    emu.refuse(status, "post", kmock.resource("velero.io", "v1", "restores"))
    with pytest.raises(DrillError) as err:
        _velero(kube).restore(NIGHTLY, {NS: "akko-drill-1"})
    assert str(err.value).startswith("Kubernetes API refused creating Velero restore nightly-2-dr-")
    assert str(err.value).endswith(f"of backup nightly-2: HTTP {status} {reason}")


# -- eradicator -------------------------------------------------------------------------------------
def test_only_the_attacker_s_labelled_objects_are_removed(setup: client.ApiClient, kube: KubeApi) -> None:
    attacker_objects(setup)
    eradicator = LabelledEradicator(kube, NS)
    expected = ["ServiceAccount akko/svc-exfil", "Secret akko/svc-exfil-token"]
    assert eradicator.attacker_objects("svc-superset") == expected
    assert eradicator.remove("svc-superset") == expected
    core = client.CoreV1Api(setup)
    assert {s.metadata.name for s in core.list_namespaced_service_account(NS).items} == {"akko-superset",
                                                                                         "svc-other"}
    assert {s.metadata.name for s in core.list_namespaced_secret(NS).items} == {"akko-superset-token",
                                                                                "svc-other-token"}
    assert eradicator.remove("svc-superset") == []


def test_an_object_already_gone_is_not_counted_as_removed(setup: client.ApiClient, kube: KubeApi,
                                                          emu: Emulator) -> None:
    attacker_objects(setup)
    emu.refuse(404, "delete", kmock.resource("", "v1", "secrets"))
    assert LabelledEradicator(kube, NS).remove("svc-superset") == ["ServiceAccount akko/svc-exfil"]


def test_a_refused_delete_stops_with_its_reason(setup: client.ApiClient, kube: KubeApi,
                                                emu: Emulator) -> None:
    attacker_objects(setup)
    emu.refuse(403, "delete", kmock.resource("", "v1", "serviceaccounts"))
    refused = r"^Kubernetes API refused deleting ServiceAccount svc-exfil: HTTP 403"
    with pytest.raises(DrillError, match=refused):
        LabelledEradicator(kube, NS).remove("svc-superset")


def test_an_identity_that_cannot_be_a_label_is_refused(kube: KubeApi, emu: Emulator) -> None:
    with pytest.raises(DrillError, match="cannot be a label value"):
        LabelledEradicator(kube, NS).remove("alice@example.com")
    assert emu.calls() == []


# -- wiring -----------------------------------------------------------------------------------------
def _live(emu: Emulator, tmp_path: Path, allow_destructive: bool) -> Target:
    path = tmp_path / "target.yaml"
    path.write_text(f"kube: {{namespace: {NS}}}\ns3: {{endpoint: 'http://127.0.0.1:9'}}\n"
                    "postgres: {host: 127.0.0.1, port: 9}\n")
    return open_live(load_policy(), load_target_file(path), allow_destructive, api=emu.client(ADAPTER_AGENT))


def test_the_live_target_scales_runs_jobs_and_eradicates_only_with_the_opt_in(
        setup: client.ApiClient, emu: Emulator, tmp_path: Path) -> None:
    deployment(setup, "akko-superset", 1)
    attacker_objects(setup)
    plan_only = _live(emu, tmp_path, allow_destructive=False)
    for step in (lambda: plan_only.port("orchestrator").scale("akko-superset", 0),
                 lambda: plan_only.port("eradicator").remove("svc-superset")):
        with pytest.raises(NotApplicable, match=r"^plan only: would be"):
            step()
    assert {c.verb for c in emu.calls()} <= {"get", "list"}
    assert plan_only.port("eradicator").attacker_objects("svc-superset") == ["ServiceAccount akko/svc-exfil",
                                                                            "Secret akko/svc-exfil-token"]
    allowed = _live(emu, tmp_path, allow_destructive=True)
    assert allowed.port("eradicator").remove("svc-superset") == ["ServiceAccount akko/svc-exfil",
                                                                "Secret akko/svc-exfil-token"]
    with pytest.raises(DrillError, match=f"refused reading CronJob {CRONJOB}: HTTP 404"):
        allowed.port("jobs").run_job(CRONJOB)
