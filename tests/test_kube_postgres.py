"""The target file's ``postgres.via`` (PostgreSQL reached through the Kubernetes API) and the one-line
reasons of a refused port-forward or exec. The routes themselves run against a real API server in
tests/test_control_plane_postgres.py (cluster tier)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import kmock
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kubernetes.client.exceptions import ApiException

from akko_dr.adapters.kube_api import KubeApi
from akko_dr.adapters.kube_postgres import PodPortForward, PodRef, PsqlExec, handshake_refusal
from akko_dr.errors import DrillError, PolicyError
from akko_dr.targetfile import PodRoute, TargetFile, load_target_file, server_id
from tests import kube_world as objects
from tests.kube_emulator import ADAPTER_AGENT, Emulator, emulator
from tests.kube_world import NS

KUBE = "kube: {context: prod, namespace: akko}\n"
FORWARD = "{via: {port_forward: {statefulset: akko-postgresql}}}"


def _load(tmp_path: Path, text: str) -> TargetFile:
    path = tmp_path / "target.yaml"
    path.write_text(text)
    return load_target_file(path)


def test_a_port_forward_to_a_statefulset_replaces_the_host(tmp_path: Path) -> None:
    tf = _load(tmp_path, KUBE + f"postgres: {FORWARD}\n")
    route = PodRoute("statefulset", "akko-postgresql", 5432)
    assert (tf.pg_forward, tf.pg_exec, tf.pg_host) == (route, None, "")


def test_exec_names_the_pod_container_and_tools_beside_a_host(tmp_path: Path) -> None:
    tf = _load(tmp_path, KUBE + "postgres: {host: db.akko.svc, via: {exec: {pod: akko-postgresql-0, "
                                "container: postgresql, bin_dir: /opt/pg/bin}}}\n")
    assert tf.pg_exec == PodRoute("pod", "akko-postgresql-0", 5432, "postgresql", "/opt/pg/bin")
    assert (tf.pg_forward, tf.pg_host) == (None, "db.akko.svc")


VIA_CASES = [
    ("unknown way", "{via: {tunnel: {pod: p}}}", r"postgres\.via\.tunnel: unknown key \(expected one of "
                                                 r"port_forward, exec\)"),
    ("unknown key", "{via: {port_forward: {pod: p, prot: 5432}}}",
     r"postgres\.via\.port_forward\.prot: unknown key \(expected one of pod, statefulset, port\)"),
    ("no pod", "{via: {exec: {container: c}}}", r"postgres\.via\.exec: expected one of pod or statefulset"),
    ("both", "{via: {port_forward: {pod: p, statefulset: s}}}",
     r"postgres\.via\.port_forward: expected one of pod or statefulset"),
    ("port as a word", "{via: {port_forward: {pod: p, port: five}}}",
     r"postgres\.via\.port_forward\.port: expected a port number \(1-65535\), got str"),
    ("a host too", "{host: db, via: {port_forward: {pod: p}}}",
     r"postgres\.via\.port_forward: the server is reached through the forward; remove postgres\.host"),
    ("via as a string", "{via: akko-postgresql}", r"postgres\.via: expected a mapping, got str"),
]


@pytest.mark.parametrize(("case", "postgres", "message"), VIA_CASES, ids=[c[0] for c in VIA_CASES])
def test_a_malformed_via_is_refused_naming_file_and_key(tmp_path: Path, case: str, postgres: str,
                                                         message: str) -> None:
    with pytest.raises(PolicyError, match=rf"^{tmp_path / 'target.yaml'}: {message}$"):
        _load(tmp_path, KUBE + f"postgres: {postgres}\n")


VALUES = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8)),
                      lambda inner: st.lists(inner, max_size=2) | st.dictionaries(
                          st.sampled_from(["pod", "statefulset", "port", "container", "bin_dir", "x"]), inner,
                          max_size=3), max_leaves=6)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(st.dictionaries(st.sampled_from(["port_forward", "exec", "other"]), VALUES, max_size=2))
def test_any_via_loads_or_is_refused_in_one_line_with_file(tmp_path: Path, via: dict) -> None:
    path = tmp_path / "target.yaml"
    path.write_text(yaml.safe_dump({"postgres": {"via": via}}))
    try:
        load_target_file(path)
    except PolicyError as err:
        assert str(err).startswith(f"{path}: postgres") and "\n" not in str(err), str(err)


def _scratch(namespace: str) -> str:
    return (KUBE + f"postgres: {FORWARD}\n"
            f"scratch_platform:\n  kube: {{context: prod, namespace: {namespace}}}\n"
            "  s3: {endpoint: 'http://scratch:9000'}\n"
            f"  postgres: {FORWARD}\n  rebuild_postgres: {{host: rebuilt.dr.svc}}\n")


def test_a_scratch_platform_forwarded_to_its_own_namespace_is_its_own_server(tmp_path: Path) -> None:
    tf = _load(tmp_path, _scratch("akko-rehearsal"))
    assert server_id(tf.scratch) != server_id(tf) and tf.scratch.rebuild.pg_forward is None


def test_a_scratch_platform_forwarded_to_the_source_pod_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"its Kubernetes namespace, its PostgreSQL server is the source's"):
        _load(tmp_path, _scratch("akko"))


def test_a_refused_websocket_is_one_line_without_headers_or_body() -> None:
    err = ApiException(status=0, reason="Handshake status 403 Forbidden -+-+- {'audit-id': 'a1'} -+-+- "
                                        "b'{\"kind\":\"Status\",\"message\":\"token SECRET-TOKEN\"}'")
    refused = handshake_refusal("a port-forward to pod akko/p:5432", err)
    assert (str(refused), refused.status) == (
        "Kubernetes API refused a port-forward to pod akko/p:5432: HTTP 403 Forbidden", 403)


def test_an_unreachable_api_is_said_in_one_line() -> None:
    err = ApiException(status=0, reason="[Errno 111] Connection refused\nmore")
    assert str(handshake_refusal("exec of psql in pod akko/p", err)) == (
        "Kubernetes API unreachable for exec of psql in pod akko/p: [Errno 111] Connection refused")


# -- error paths over HTTP, against the kmock API emulator (it serves no websocket: refusals only) ------
@pytest.fixture
def kube() -> Iterator[tuple[Emulator, KubeApi]]:
    with emulator() as emu:
        yield emu, KubeApi(emu.client(ADAPTER_AGENT), request_timeout=2.0)


@pytest.mark.parametrize("status", [403, 404])
def test_a_refused_port_forward_stops_at_open_in_one_line(kube: tuple[Emulator, KubeApi],
                                                          status: int) -> None:
    emu, api = kube
    emu.refuse(status, "get", kmock.subresource("portforward"))
    line = rf"^Kubernetes API refused a port-forward to pod akko/p:5432: HTTP {status} [\w ]+$"
    with pytest.raises(DrillError, match=line):
        PodPortForward(api, NS, PodRef("pod", "p"), 5432).open()


def test_a_refused_exec_is_one_line(kube: tuple[Emulator, KubeApi]) -> None:
    emu, api = kube
    emu.refuse(403, "get", kmock.subresource("exec"))
    with pytest.raises(DrillError, match=r"^Kubernetes API refused exec of psql in pod akko/p: HTTP 403 \w+"):
        PsqlExec(api, NS, PodRef("pod", "p")).query("postgres", "SELECT 1")


def test_a_statefulset_without_a_running_pod_is_said_in_one_line(kube: tuple[Emulator, KubeApi]) -> None:
    emu, api = kube
    objects.deployment(emu.client(), "akko-postgresql", 1, kind="StatefulSet")
    with pytest.raises(DrillError, match=r"^statefulset akko/akko-postgresql has no Running pod"):
        PodPortForward(api, NS, PodRef("statefulset", "akko-postgresql"), 5432).open()


def test_a_missing_statefulset_is_the_api_s_404(kube: tuple[Emulator, KubeApi]) -> None:
    with pytest.raises(DrillError, match=r"^Kubernetes API refused get statefulset akko/nope: HTTP 404"):
        PsqlExec(kube[1], NS, PodRef("statefulset", "nope")).query("postgres", "SELECT 1")
