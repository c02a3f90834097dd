"""The shipped RBAC (deploy/rbac.yaml) is the minimum: every call the live adapters make is granted to the
harness's ServiceAccount, and nothing else is. The calls are recorded by the kmock API emulator while a
tour runs every public operation of every live adapter once; each HTTP request becomes its RBAC
(namespace, group, resource, verb)."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from kubernetes import client

from akko_dr.adapters.kube import KubeCluster
from akko_dr.adapters.kube_api import KubeApi
from akko_dr.adapters.kube_eradicator import LabelledEradicator
from akko_dr.adapters.kube_jobs import KubeJobRunner
from akko_dr.adapters.kube_orchestrator import RolloutOrchestrator
from akko_dr.adapters.kube_postgres import PodPortForward, PodRef, PsqlExec
from akko_dr.adapters.velero import VeleroCrds
from akko_dr.errors import DrillError, NotApplicable
from akko_dr.policy import load_policy
from akko_dr.ports import drill_namespace
from tests import kube_world as objects
from tests.k8s_manifests import DEPLOY, load_manifest
from tests.kube_emulator import ADAPTER_AGENT, Call, Emulator, emulator, stand_in
from tests.kube_world import CRONJOB, NS, SCHEDULE, VELERO_NS

RBAC = (DEPLOY / "rbac.yaml", DEPLOY / "rbac-drill-3.yaml")  # the second binds Drill 3's eradicator
SUBJECT = ("ServiceAccount", "akko-dr", NS)
READ_VERBS = {"get", "list", "watch"}
Permission = tuple[str, str, str, str]  # namespace, API group, resource[/subresource], verb
Adapters = dict[type, Any]

# every public method of every live adapter, and how the tour calls it once (a new method fails
# test_the_tour_calls_every_public_operation until it is added here)
TOUR: dict[type, dict[str, Callable[[Any], Any]]] = {
    RolloutOrchestrator: {"scale": lambda o: [o.scale(s, 0) for s in ("akko-superset", "akko-postgresql")],
                          "running": lambda o: o.running("akko-postgresql"),
                          "restore_replicas": lambda o: o.restore_replicas()},
    KubeJobRunner: {"run_job": lambda r: r.run_job(CRONJOB), "last_log_line": lambda r: r.last_log_line("x")},
    VeleroCrds: {"backups": lambda v: v.backups(),
                 "newest_completed": lambda v: v.newest_completed(SCHEDULE, NS),
                 "restore": lambda v: v.restore(v.newest_completed(SCHEDULE, NS),
                                                {NS: drill_namespace(NS, "tour_1")}),
                 "wait": lambda v: v.wait(v.restore(v.newest_completed(SCHEDULE, NS), {NS: "akko-drill-2"}))},
    LabelledEradicator: {"attacker_objects": lambda e: e.attacker_objects("svc-superset"),
                         "remove": lambda e: e.remove("svc-superset")},
    KubeCluster: {"job_status": lambda c: c.job_status(load_policy().jobs[CRONJOB]),
                  "velero_backups": lambda c: c.velero_backups(),
                  "velero_schedules": lambda c: c.velero_schedules(),
                  "secret": lambda c: c.secret(NS, "akko-minio", "secret-key"),
                  "no_runs": lambda c: c.no_runs(None), "no_scheduler": lambda c: c.no_scheduler(),
                  "no_velero": lambda c: c.no_velero()},
}
TOUR[PodPortForward] = {"open": lambda f: handshake(f.open), "close": lambda f: f.close(),
                        "describe": lambda f: f.describe()}
TOUR[PsqlExec] = {"query": lambda x: handshake(lambda: x.query("postgres", "SELECT 1")),
                  "restore": lambda x: handshake(lambda: x.restore("postgres", io.BytesIO(b"SELECT 1;"))),
                  "run": lambda x: handshake(lambda: x.run(["psql", "--version"])),
                  "describe": lambda x: x.describe()}
CONNECT = {"pods/portforward", "pods/exec"}  # a websocket GET: RBAC authorizes get, then create (>= 1.35)
NOT_CALLS = {(KubeCluster, "call")}  # helpers that are no operation of their own


def public_operations(cls: type) -> list[str]:
    return [n for n in dir(cls) if not n.startswith("_") and callable(getattr(cls, n))
            and (cls, n) not in NOT_CALLS]


# -- the manifest ---------------------------------------------------------------------------------
def manifest() -> list[dict[str, Any]]:
    return [doc for path in RBAC for doc in load_manifest(path)]


def granted(docs: list[dict[str, Any]], subject: tuple[str, str, str] = SUBJECT) -> set[Permission]:
    """What the Roles bound to ``subject`` grant, one permission per (namespace, group, resource, verb)."""
    roles = {(d["metadata"]["namespace"], d["metadata"]["name"]): d for d in docs if d["kind"] == "Role"}
    perms: set[Permission] = set()
    for binding in (d for d in docs if d["kind"] == "RoleBinding"):
        if subject not in {(s["kind"], s["name"], s.get("namespace")) for s in binding["subjects"]}:
            continue
        namespace = binding["metadata"]["namespace"]
        for rule in roles[namespace, binding["roleRef"]["name"]]["rules"]:
            assert "resourceNames" not in rule, "resourceNames narrow a rule: compare them too"
            perms |= {(namespace, g, r, v) for g in rule["apiGroups"] for r in rule["resources"]
                      for v in rule["verbs"]}
    return perms


def needed(calls: list[Call]) -> set[Permission]:
    perms = {(c.namespace or "", c.group, c.resource, c.verb) for c in calls}
    return perms | {(ns, group, res, "create") for ns, group, res, _ in perms if res in CONNECT}


def handshake(call: Callable[[], Any]) -> None:
    """A port-forward or exec: kmock records the request but serves no websocket (tests/control_plane
    tiers prove them on a real API server), so the handshake is refused, in one line."""
    with pytest.raises(DrillError, match=r"^Kubernetes API refused .*: HTTP 404 Not Found$"):
        call()


# -- the tour -------------------------------------------------------------------------------------
def populate(api: client.ApiClient) -> None:
    """The objects the tour's operations act on."""
    objects.deployment(api, "akko-superset", 1)
    objects.deployment(api, "akko-postgresql", 1, kind="StatefulSet")
    objects.cronjob(api)
    objects.velero_backup(api, "nightly-2", "Completed", "2026-11-28T01:04:00Z")
    objects.attacker_objects(api)
    client.CoreV1Api(api).create_namespaced_secret(NS, {"apiVersion": "v1", "kind": "Secret", "metadata": {
        "name": "akko-minio"}, "data": {"secret-key": "c2VjcmV0"}})


def velero_server(api: client.ApiClient) -> Callable[[], bool]:
    """Stand-in for Velero: every new Restore completes."""
    custom = client.CustomObjectsApi(api)

    def step() -> bool:
        for item in custom.list_namespaced_custom_object("velero.io", "v1", VELERO_NS, "restores")["items"]:
            if not (item.get("status") or {}).get("phase"):
                objects.restore_status(api, item["metadata"]["name"], phase="Completed")
        return False
    return step


def adapters(kube: KubeApi) -> Adapters:
    return {RolloutOrchestrator: RolloutOrchestrator(kube, NS, deadline=5.0, interval=0.02),
            KubeJobRunner: KubeJobRunner(kube, NS, deadline=5.0, interval=0.02),
            VeleroCrds: VeleroCrds(kube, VELERO_NS, deadline=5.0, interval=0.02),
            LabelledEradicator: LabelledEradicator(kube, NS),
            KubeCluster: KubeCluster(kube.api, NS, VELERO_NS),
            PodPortForward: PodPortForward(kube, NS, PodRef("pod", "akko-postgresql-0"), 5432),
            PsqlExec: PsqlExec(kube, NS, PodRef("pod", "akko-postgresql-0"), "postgresql")}


def tour(emu: Emulator, writes_allowed: bool) -> list[str]:
    """Every public operation of every adapter once; returns those refused for want of the opt-in."""
    setup = emu.client()
    populate(setup)
    refused = []
    built = adapters(KubeApi(emu.client(ADAPTER_AGENT), request_timeout=2.0, writes_allowed=writes_allowed))
    with (stand_in(objects.RolloutController(setup, "Deployment", "akko-superset")),
          stand_in(objects.RolloutController(setup, "StatefulSet", "akko-postgresql")),
          stand_in(objects.JobController(setup, emu, "Complete", "")), stand_in(velero_server(setup))):
        for cls, adapter in built.items():
            for name in public_operations(cls):
                try:
                    TOUR[cls][name](adapter)
                except NotApplicable:
                    refused.append(f"{cls.__name__}.{name}")
    return refused


@pytest.fixture(scope="module")
def toured() -> Iterator[list[Call]]:
    with emulator() as emu:
        assert tour(emu, writes_allowed=True) == []
        yield emu.calls()


# -- the tests ------------------------------------------------------------------------------------
def test_the_tour_calls_every_public_operation() -> None:
    missing = [f"{cls.__name__}.{n}" for cls in TOUR for n in public_operations(cls) if n not in TOUR[cls]]
    assert not missing, f"add to the tour (and so to the RBAC check): {', '.join(missing)}"


def test_the_manifest_loads_into_the_kubernetes_models() -> None:
    kinds = [d["kind"] for d in manifest()]
    assert "ClusterRole" not in kinds, "no adapter makes a cluster-scoped call"
    assert kinds.count("Role") == kinds.count("RoleBinding") == 3


def test_every_call_the_adapters_make_is_granted(toured: list[Call]) -> None:
    missing = needed(toured) - granted(manifest())
    assert not missing, f"calls the Roles do not grant: {sorted(missing)}"


def test_nothing_is_granted_that_no_adapter_uses(toured: list[Call]) -> None:
    unused = granted(manifest()) - needed(toured)
    assert not unused, f"granted but never called: {sorted(unused)}"


def test_no_wildcard_is_granted() -> None:
    wild = [p for p in granted(manifest()) if "*" in p]
    assert not wild, f"wildcards grant more than the adapters use: {wild}"


def test_removing_any_one_verb_leaves_a_call_refused(toured: list[Call]) -> None:
    perms = granted(manifest())
    assert perms, "the manifest grants nothing"
    needless = [perm for perm in sorted(perms) if not needed(toured) - (perms - {perm})]
    assert not needless, f"could be removed with every call still granted: {needless}"


def test_a_role_bound_to_another_account_grants_nothing() -> None:
    assert granted(manifest(), ("ServiceAccount", "default", NS)) == set()


def test_without_the_opt_in_the_tour_makes_no_mutating_call() -> None:
    with emulator() as emu:
        refused = tour(emu, writes_allowed=False)
        verbs = {c.verb for c in emu.calls()}
    assert verbs <= READ_VERBS, f"mutating calls without the opt-in: {verbs - READ_VERBS}"
    assert {"RolloutOrchestrator.scale", "KubeJobRunner.run_job", "VeleroCrds.restore",
            "LabelledEradicator.remove"} <= set(refused), refused
