"""Kubernetes adapter (official client): read-only checks of CronJobs, Jobs, Velero Backups and Schedules,
and the live orchestrator (scale a Deployment, count its ready replicas)."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from akko_dr.errors import DrillError, TargetUnavailable
from akko_dr.policy import BackupJob
from akko_dr.ports import ExportLocation, JobStatus, VeleroBackup, VeleroSchedule

T = TypeVar("T")
_GO_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s)?$")
VELERO = ("velero.io", "v1", "backups")
VELERO_SCHEDULES = ("velero.io", "v1", "schedules")
SCHEDULE_LABEL = "velero.io/schedule-name"


def go_duration(text: str | None) -> timedelta | None:
    """Parse a Go duration as Velero writes it (``720h0m0s``); None when absent or not one."""
    match = _GO_DURATION.match(text or "")
    if not text or not match:
        return None
    hours, minutes, seconds = (float(g or 0) for g in match.groups())
    return timedelta(hours=hours, minutes=minutes, seconds=seconds)


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


class KubeCluster:
    """Read-only questions to one namespace of a Kubernetes cluster."""

    kind = "live"

    def __init__(self, api: client.ApiClient, namespace: str, velero_namespace: str = "velero",
                 realm_exports: ExportLocation | None = None) -> None:
        self.api = api
        self.realm_exports = realm_exports
        self.namespace = namespace
        self.velero_namespace = velero_namespace
        self._batch = client.BatchV1Api(api)
        self._custom = client.CustomObjectsApi(api)

    def __repr__(self) -> str:
        return f"KubeCluster({self.api.configuration.host}, namespace={self.namespace})"

    def call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call the API; errors become one-line reasons (never the response body)."""
        try:
            return fn(*args, **kwargs)
        except ApiException as err:
            raise DrillError(f"Kubernetes API refused {what}: HTTP {err.status} {err.reason}") from None
        except HTTPError as err:
            raise TargetUnavailable(f"Kubernetes API unreachable at {self.api.configuration.host} "
                                    f"({what}): {type(err).__name__}") from None

    def _cronjob(self, name: str) -> client.V1CronJob | None:
        try:
            return self._batch.read_namespaced_cron_job(name, self.namespace)
        except ApiException as err:
            if err.status == 404:
                return None
            raise DrillError(f"Kubernetes API refused reading CronJob {name}: HTTP {err.status}") from None

    def _last_job(self, cronjob: str) -> client.V1Job | None:
        jobs = self.call(f"listing Jobs in {self.namespace}", self._batch.list_namespaced_job, self.namespace)
        owned = [j for j in jobs.items if any(o.kind == "CronJob" and o.name == cronjob
                                                for o in j.metadata.owner_references or [])]
        started = [j for j in owned if j.status and j.status.start_time]
        return max(started, key=lambda j: j.status.start_time, default=None)

    def no_runs(self, job: BackupJob) -> str | None:
        return None

    def no_scheduler(self) -> str | None:
        return None

    def job_status(self, job: BackupJob) -> JobStatus:
        """The CronJob's schedule and last success; its newest Job tells whether the last run failed."""
        cronjob = self.call(f"reading CronJob {job.name}", self._cronjob, job.name)
        if cronjob is None:
            return JobStatus(job.name, found=False)
        status = cronjob.status or client.V1CronJobStatus()
        last = self._last_job(job.name)
        failed, error = _job_failure(last) if last else (False, "")
        return JobStatus(job.name, found=True, schedule=cronjob.spec.schedule,
                         last_success=status.last_successful_time, last_run=status.last_schedule_time,
                         last_failed=failed, last_error=error, suspended=bool(cronjob.spec.suspend),
                         time_zone=cronjob.spec.time_zone)

    def no_velero(self) -> str | None:
        return None

    def _velero_items(self, resource: tuple[str, str, str]) -> list[dict[str, Any]]:
        group, version, plural = resource
        listing = self.call(f"listing Velero {plural} in {self.velero_namespace}",
                            self._custom.list_namespaced_custom_object, group, version,
                            self.velero_namespace, plural)
        return listing.get("items", [])

    def velero_backups(self) -> list[VeleroBackup]:
        return [_velero(item) for item in self._velero_items(VELERO)]

    def velero_schedules(self) -> list[VeleroSchedule]:
        return [_velero_schedule(item) for item in self._velero_items(VELERO_SCHEDULES)]

    def secret(self, namespace: str, name: str, key: str) -> str:
        """One key of a Secret, decoded; the value is never logged."""
        secret = self.call(f"reading Secret {namespace}/{name}",
                           client.CoreV1Api(self.api).read_namespaced_secret, name, namespace)
        if key not in (secret.data or {}):
            raise DrillError(f"Secret {namespace}/{name} has no key {key!r}")
        return base64.b64decode(secret.data[key]).decode()


_FAILED = ("Failed", "FailureTarget")
_DONE = ("Complete", "SuccessCriteriaMet")


def _job_failure(job: client.V1Job) -> tuple[bool, str]:
    """Failed: a Failed (or FailureTarget) condition, or failures with no pod active and none succeeded.
    A Job still retrying (an active pod after a failed one) has not failed."""
    status = job.status
    true = [c for c in status.conditions or [] if c.status == "True"]
    failed = [c for c in true if c.type in _FAILED]
    if failed:
        message = failed[0].message or failed[0].reason
        return True, f"Job {job.metadata.name} failed" + (f": {message}" if message else "")
    done = any(c.type in _DONE for c in true)
    if status.failed and not status.active and not status.succeeded and not done:
        return True, f"Job {job.metadata.name} failed: {status.failed} failed pods, none active"
    return False, ""


def _velero(item: dict[str, Any]) -> VeleroBackup:
    status, spec = item.get("status") or {}, item.get("spec") or {}
    metadata = item.get("metadata") or {}
    return VeleroBackup(name=metadata.get("name", "?"), phase=status.get("phase", ""),
                        completed_at=_time(status.get("completionTimestamp")),
                        ttl=go_duration(spec.get("ttl")),
                        schedule=(metadata.get("labels") or {}).get(SCHEDULE_LABEL),
                        namespaces=tuple(spec.get("includedNamespaces") or ()),
                        errors=int(status.get("errors") or 0), warnings=int(status.get("warnings") or 0),
                        started_at=_time(status.get("startTimestamp")))


def _velero_schedule(item: dict[str, Any]) -> VeleroSchedule:
    status, spec = item.get("status") or {}, item.get("spec") or {}
    template = spec.get("template") or {}
    name = (item.get("metadata") or {}).get("name", "?")
    return VeleroSchedule(name=name, schedule=spec.get("schedule", ""),
                          paused=bool(spec.get("paused")), phase=status.get("phase", ""),
                          last_backup=_time(status.get("lastBackup")), ttl=go_duration(template.get("ttl")),
                          namespaces=tuple(template.get("includedNamespaces") or ()))


class KubeOrchestrator:
    """Services as Deployments in the platform namespace: ``kubectl scale`` and ready replicas."""

    kind = "kubernetes"

    def __init__(self, cluster: KubeCluster) -> None:
        self.cluster = cluster
        self._apps = client.AppsV1Api(cluster.api)

    def scale(self, service: str, replicas: int) -> None:
        ns = self.cluster.namespace
        self.cluster.call(f"scaling Deployment {service} to {replicas}",
                          self._apps.patch_namespaced_deployment_scale, service, ns,
                          {"spec": {"replicas": replicas}})

    def running(self, service: str) -> int:
        deployment = self.cluster.call(f"reading Deployment {service}", self._apps.read_namespaced_deployment,
                                       service, self.cluster.namespace)
        return (deployment.status.ready_replicas or 0) if deployment.status else 0
