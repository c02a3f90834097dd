"""Test glue: the AKKO namespace's objects as the live adapters' tests need them, and stand-ins for the
controllers the kmock emulator lacks (each writes only what the real controller would write)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from kubernetes import client

from akko_dr.adapters.kube_eradicator import LABEL
from tests.kube_emulator import Emulator, stand_in

NS, VELERO_NS = "akko", "velero"


class RolloutController:
    """Does what the Deployment/StatefulSet controller does on a scale, ``lag`` seconds later: the
    API server bumps the generation at once; the controller then reports the replicas ready."""

    def __init__(self, api: client.ApiClient, kind: str, name: str, lag: float = 0.15) -> None:
        self.apps, self.kind, self.name, self.lag = client.AppsV1Api(api), kind, name, lag
        self.noticed: float | None = None
        self.rollouts = 0

    def _call(self, verb: str, *args: Any, status: bool = False) -> Any:
        kind = "deployment" if self.kind == "Deployment" else "stateful_set"
        method = f"{verb}_namespaced_{kind}" + ("_status" if status else "")
        return getattr(self.apps, method)(self.name, NS, *args)

    def __call__(self) -> bool:
        workload = self._call("read")
        wanted, status = workload.spec.replicas, workload.status
        generation = workload.metadata.generation or 1
        if status and status.replicas == wanted and status.observed_generation == generation:
            self.noticed = None
            return False
        if self.noticed is None:
            self.noticed = time.monotonic()
            generation += 1
            self._call("patch", {"metadata": {"generation": generation}})
        if time.monotonic() - self.noticed >= self.lag:
            ready = {"observedGeneration": generation, "replicas": wanted, "readyReplicas": wanted}
            self._call("patch", {"status": ready}, status=True)
            self.rollouts += 1
        return False


def deployment(api: client.ApiClient, name: str, replicas: int, ready: int | None = None,
                kind: str = "Deployment") -> None:
    template = {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}
    body = {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name, "generation": 1},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}, "template": template}}
    apps = client.AppsV1Api(api)
    if kind == "Deployment":
        apps.create_namespaced_deployment(NS, body)
    else:
        apps.create_namespaced_stateful_set(NS, body)
    ready = replicas if ready is None else ready
    status = {"status": {"observedGeneration": 1, "replicas": ready, "readyReplicas": ready}}
    if kind == "Deployment":
        apps.patch_namespaced_deployment_status(name, NS, status)
    else:
        apps.patch_namespaced_stateful_set_status(name, NS, status)


CRONJOB = "akko-pg-backup"


def cronjob(api: client.ApiClient) -> None:
    template = {"metadata": {"labels": {"app": "pg-backup"}, "annotations": {"team": "sre"}},
                "spec": {"backoffLimit": 2, "template": {"spec": {
                    "containers": [{"name": "dump", "image": "postgres:18"}], "restartPolicy": "Never"}}}}
    client.BatchV1Api(api).create_namespaced_cron_job(NS, {
        "apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": CRONJOB, "uid": "cj-uid-1"},
        "spec": {"schedule": "0 */6 * * *", "jobTemplate": template}})


class JobController:
    """What the Job controller and the kubelet do for a Job: a pod, its log, and a final condition."""

    def __init__(self, api: client.ApiClient, emu: Emulator, condition: str, message: str) -> None:
        self.batch, self.core, self.emu = client.BatchV1Api(api), client.CoreV1Api(api), emu
        self.condition, self.message = condition, message

    def __call__(self) -> bool:
        jobs = self.batch.list_namespaced_job(NS).items
        if not jobs:
            return False
        name = jobs[0].metadata.name
        pod = f"{name}-x1"
        self.core.create_namespaced_pod(NS, {"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": pod, "labels": {"job-name": name, "batch.kubernetes.io/job-name": name}},
            "spec": {"containers": [{"name": "dump", "image": "postgres:18"}]}})
        self.emu.serve_log(pod, "dumping superset_metadata\nuploaded 2 objects\n")
        self.batch.patch_namespaced_job_status(name, NS, {"status": {"conditions": [
            {"type": self.condition, "status": "True", "message": self.message}]}})
        return True


SCHEDULE = "akko-velero-ns-akko"


def velero_backup(api: client.ApiClient, name: str, phase: str, completed: str | None,
            schedule: str | None = SCHEDULE, namespaces: tuple[str, ...] = (NS,), **counts: int) -> None:
    labels = {"velero.io/schedule-name": schedule} if schedule else {}
    status = {"phase": phase, **counts} | ({"completionTimestamp": completed} if completed else {})
    client.CustomObjectsApi(api).create_namespaced_custom_object("velero.io", "v1", VELERO_NS, "backups", {
        "apiVersion": "velero.io/v1", "kind": "Backup", "metadata": {"name": name, "labels": labels},
        "spec": {"includedNamespaces": list(namespaces), "ttl": "720h0m0s"}, "status": status})


def restore_status(api: client.ApiClient, name: str, **status: Any) -> None:
    client.CustomObjectsApi(api).patch_namespaced_custom_object_status(
        "velero.io", "v1", VELERO_NS, "restores", name, {"status": status})


def attacker_objects(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    for name, identity in (("svc-exfil", "svc-superset"), ("akko-superset", None), ("svc-other", "someone")):
        labels = {LABEL: identity} if identity else {}
        core.create_namespaced_service_account(NS, {"apiVersion": "v1", "kind": "ServiceAccount",
                                                    "metadata": {"name": name, "labels": labels}})
        core.create_namespaced_secret(NS, {"apiVersion": "v1", "kind": "Secret",
                                           "metadata": {"name": f"{name}-token", "labels": labels}})


@contextmanager
def process_follows(supervisor: Any, service: str, replicas: Callable[[], int],
                    deadline: float) -> Iterator[None]:
    """The bridge from pod to process: the sandbox's ``service`` runs as many processes as ``replicas``
    says the cluster wants, until the block ends; then it runs once again, as the session expects."""

    def step() -> bool:
        wanted = replicas()
        if supervisor.running(service) != wanted:
            supervisor.scale(service, wanted)
        return False

    with stand_in(step, deadline=deadline):
        yield
    supervisor.scale(service, 1)
