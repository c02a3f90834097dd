"""The live orchestrator: scale a Deployment or StatefulSet and wait until the rollout really reached
the count (observed generation, replicas and ready replicas), then put every original count back."""

from __future__ import annotations

from dataclasses import dataclass
from types import TracebackType

from kubernetes import client

from akko_dr.adapters.kube_api import POLL_INTERVAL, KubeApi, KubeRefused, poll
from akko_dr.errors import DrillError

ROLLOUT_DEADLINE = 300.0  # seconds a scale may take to be rolled out (the policy may set another)
KINDS = ("Deployment", "StatefulSet")


@dataclass(frozen=True)
class Rollout:
    """What the workload's status says about one scale."""

    kind: str
    name: str
    wanted: int
    generation: int
    observed: int
    replicas: int
    ready: int
    terminating: int = 0  # pods still shutting down (Deployments that report it): they may still write

    @property
    def done(self) -> bool:
        settled = self.replicas == self.ready == self.wanted and not self.terminating
        return self.observed >= self.generation and settled

    def stalled(self, deadline: float) -> str:
        terminating = f", {self.terminating} terminating" if self.terminating else ""
        return (f"rollout of {self.kind} {self.name} did not complete within {deadline:g}s: wanted "
                f"{self.wanted} replicas, {self.ready} ready, {self.replicas} present{terminating} "
                f"(generation {self.observed} observed of {self.generation})")


class RolloutOrchestrator:
    """Services as Deployments or StatefulSets in one namespace (``kubectl scale`` + ``rollout status``).

    Use it as a context manager, or call :meth:`restore_replicas`, to put back the replica counts it
    found before its first scale, even when the drill fails.
    """

    kind = "kubernetes"

    def __init__(self, api: KubeApi, namespace: str, deadline: float = ROLLOUT_DEADLINE,
                 interval: float = POLL_INTERVAL) -> None:
        self.kube, self.namespace = api, namespace
        self.deadline, self.interval = deadline, interval
        self._apps = client.AppsV1Api(api.api)
        self._kinds: dict[str, str] = {}
        self.original: dict[str, int] = {}

    def __enter__(self) -> RolloutOrchestrator:
        return self

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            self.restore_replicas()
        except DrillError as failed:
            if err is None:
                raise
            raise DrillError(f"{err}; and {failed}") from err

    def scale(self, service: str, replicas: int) -> None:
        """Set the replica count and wait until the rollout reached it (DrillError at the deadline)."""
        kind, before = self._workload(service)
        patch = self._apps.patch_namespaced_deployment_scale if kind == "Deployment" \
            else self._apps.patch_namespaced_stateful_set_scale
        self.kube.write(f"scaling {kind} {service} to {replicas}", patch, service, self.namespace,
                        {"spec": {"replicas": replicas}})
        self.original.setdefault(service, before.spec.replicas or 0)
        done, rollout = poll(lambda: self._rollout(service, replicas), self.deadline, self.interval)
        if not done:
            raise DrillError(rollout.stalled(self.deadline))

    def running(self, service: str) -> int:
        """Ready replicas of the service's workload."""
        _, workload = self._workload(service)
        return (workload.status.ready_replicas or 0) if workload.status else 0

    def restore_replicas(self) -> list[str]:
        """Scale every service back to the count it had before this orchestrator first scaled it."""
        restored, failures = [], []
        for service, replicas in list(self.original.items()):
            try:
                self.scale(service, replicas)
                restored.append(f"{service} back to {replicas}")
                del self.original[service]
            except DrillError as err:
                failures.append(str(err))
        if failures:
            raise DrillError("could not put back the replica counts: " + "; ".join(failures))
        return restored

    def _rollout(self, service: str, wanted: int) -> tuple[bool, Rollout]:
        kind, workload = self._workload(service)
        status = workload.status or client.V1DeploymentStatus()
        rollout = Rollout(kind, service, wanted, workload.metadata.generation or 0,
                          status.observed_generation or 0, status.replicas or 0, status.ready_replicas or 0,
                          getattr(status, "terminating_replicas", None) or 0)
        return rollout.done, rollout

    def _workload(self, service: str) -> tuple[str, client.V1Deployment | client.V1StatefulSet]:
        """The service's Deployment, else its StatefulSet (the kind found first is remembered)."""
        readers = {"Deployment": self._apps.read_namespaced_deployment,
                   "StatefulSet": self._apps.read_namespaced_stateful_set}
        for kind in [self._kinds[service]] if service in self._kinds else KINDS:
            try:
                workload = self.kube.call(f"reading {kind} {service}", readers[kind], service, self.namespace)
            except KubeRefused as err:
                if err.status == 404 and service not in self._kinds:
                    continue
                raise
            self._kinds[service] = kind
            return kind, workload
        raise DrillError(f"no Deployment or StatefulSet named {service} in namespace {self.namespace}")
