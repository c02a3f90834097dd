"""The live job runner: a Job from a CronJob's template, as ``kubectl create job --from=cronjob/NAME``
makes it, waited on until it finishes, with its outcome and the last line of its pod's log."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from kubernetes import client

from akko_dr.adapters.kube_api import POLL_INTERVAL, KubeApi, poll
from akko_dr.errors import DrillError
from akko_dr.ports import JobRun

JOB_DEADLINE = 3600.0  # seconds a triggered backup Job may run (the policy may set another)
MANUAL = {"cronjob.kubernetes.io/instantiate": "manual"}  # what kubectl marks a manual Job with
JOB_NAME_LABELS = ("batch.kubernetes.io/job-name", "job-name")  # set on a Job's pods by the controller


def job_from_cronjob(cronjob: client.V1CronJob, name: str) -> client.V1Job:
    """The Job ``kubectl create job NAME --from=cronjob/…`` creates: the template's spec, labels and
    annotations, marked manual, owned (as controller) by the CronJob."""
    template = cronjob.spec.job_template
    meta = template.metadata or client.V1ObjectMeta()
    owner = client.V1OwnerReference(api_version="batch/v1", kind="CronJob", name=cronjob.metadata.name,
                                    uid=cronjob.metadata.uid, controller=True, block_owner_deletion=True)
    return client.V1Job(api_version="batch/v1", kind="Job", spec=template.spec, metadata=client.V1ObjectMeta(
        name=name, labels=meta.labels, annotations={**MANUAL, **(meta.annotations or {})},
        owner_references=[owner]))


def outcome(job: client.V1Job) -> tuple[bool, bool, str]:
    """(finished, succeeded, message) from the Job's conditions."""
    for condition in (job.status.conditions if job.status else None) or []:
        if condition.status != "True":
            continue
        if condition.type in ("Complete", "SuccessCriteriaMet"):
            return True, True, condition.message or ""
        if condition.type in ("Failed", "FailureTarget"):
            return True, False, condition.message or condition.reason or "failed"
    return False, False, ""


class KubeJobRunner:
    """Triggers the platform's backup CronJobs in one namespace and waits for their Jobs."""

    def __init__(self, api: KubeApi, namespace: str, deadline: float = JOB_DEADLINE,
                 interval: float = POLL_INTERVAL) -> None:
        self.kube, self.namespace = api, namespace
        self.deadline, self.interval = deadline, interval
        self._batch = client.BatchV1Api(api.api)
        self._core = client.CoreV1Api(api.api)

    def run_job(self, job: str) -> JobRun:
        """Create a Job from CronJob ``job`` and wait for it; a refused call is a DrillError, a failed or
        unfinished Job is a JobRun that did not succeed (with the Job's reason and its log's last line)."""
        cronjob = self.kube.call(f"reading CronJob {job}", self._batch.read_namespaced_cron_job, job,
                                 self.namespace)
        name = f"{job[:52]}-dr-{secrets.token_hex(3)}"
        run = JobRun(job=job, started_at=datetime.now(UTC))
        self.kube.write(f"creating Job {name} from CronJob {job}", self._batch.create_namespaced_job,
                        self.namespace, job_from_cronjob(cronjob, name))
        finished, (succeeded, message) = poll(lambda: self._finished(name), self.deadline, self.interval)
        run.finished_at = datetime.now(UTC)
        run.succeeded = finished and succeeded
        if not finished:
            run.error = f"Job {name} did not finish within {self.deadline:g}s"
        elif not succeeded:
            run.error = f"Job {name} failed: {message}"
        run.last_log_line = self.last_log_line(name)
        return run

    def _finished(self, name: str) -> tuple[bool, tuple[bool, str]]:
        job = self.kube.call(f"reading Job {name}", self._batch.read_namespaced_job, name, self.namespace)
        finished, succeeded, message = outcome(job)
        return finished, (succeeded, message)

    def last_log_line(self, job: str) -> str:
        """The last line of the newest pod of ``job``; a reason in parentheses when there is none."""
        try:
            pods = self.kube.call(f"listing the pods of Job {job}", self._core.list_namespaced_pod,
                                  self.namespace, label_selector=f"job-name={job}")
            mine = [p for p in pods.items if job in _job_names(p)]
            if not mine:
                return "(no pod of the Job found)"
            pod = max(mine, key=lambda p: p.metadata.creation_timestamp or datetime.min.replace(tzinfo=UTC))
            log = self.kube.call(f"reading the log of pod {pod.metadata.name}",
                                 self._core.read_namespaced_pod_log, pod.metadata.name, self.namespace,
                                 tail_lines=1)
        except DrillError as err:
            return f"(log unavailable: {err})"
        lines = [line for line in str(log or "").splitlines() if line.strip()]
        return lines[-1] if lines else "(empty log)"


def _job_names(pod: client.V1Pod) -> set[str]:
    labels = pod.metadata.labels or {}
    return {labels[k] for k in JOB_NAME_LABELS if k in labels}
