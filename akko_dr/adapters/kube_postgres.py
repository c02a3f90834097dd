"""PostgreSQL on a live cluster reached through the Kubernetes API itself, when the harness has no route
to the server (no DSN it can dial): a local port forwarded to a pod of the PostgreSQL StatefulSet (the
official client's ``portforward``, what ``kubectl port-forward`` does), or the playbook's
``kubectl exec … psql`` with the dump streamed on stdin (the client's exec ``stream``).

Both open a connection through the API server: RBAC authorizes ``create`` (and, for the websocket's
GET, ``get``) on ``pods/portforward`` or ``pods/exec``; no API object is created or changed. Reasons
are one line; response bodies, headers and credentials never reach a reason or a log."""

from __future__ import annotations

import csv
import json
import logging
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.stream import portforward, stream
from websocket import WebSocketException

from akko_dr.adapters.kube_api import KubeApi, KubeRefused
from akko_dr.adapters.postgres import PostgresDatabase
from akko_dr.dumpstream import ARCHIVE_MAGIC
from akko_dr.errors import DrillError

log = logging.getLogger(__name__)
CHUNK = 1 << 16  # bytes sent per websocket frame when streaming a dump
EXEC_DEADLINE = 3600.0  # seconds a psql run through exec may take (a large restore)
STDOUT, STDERR, ERROR = 1, 2, 3  # the exec stream's channels
QUIT = b"\n\\q\n"  # ends psql's input even where the runtime never closes the command's stdin (kwok)
# kubernetes.stream swaps the ApiClient's call_api for the duration of a websocket handshake: another
# thread's call on that client in the meantime goes astray. Websockets get a client of their own, and
# one handshake at a time.
_HANDSHAKE = threading.Lock()


@dataclass(frozen=True)
class PodRef:
    """The pod the target file names: a pod by name, or a Running pod of a StatefulSet."""

    kind: str  # "pod" | "statefulset"
    name: str

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"


def resolve_pod(kube: KubeApi, namespace: str, ref: PodRef) -> str:
    """The pod's name: the named pod, or the first Running pod (by name) of the named StatefulSet."""
    if ref.kind == "pod":
        return ref.name
    apps, core = client.AppsV1Api(kube.api), client.CoreV1Api(kube.api)
    sts = kube.call(f"get statefulset {namespace}/{ref.name}", apps.read_namespaced_stateful_set,
                    ref.name, namespace)
    selector = ",".join(f"{k}={v}" for k, v in sorted((sts.spec.selector.match_labels or {}).items()))
    pods = kube.call(f"list pods of statefulset {namespace}/{ref.name}", core.list_namespaced_pod,
                     namespace, label_selector=selector).items
    running = sorted(p.metadata.name for p in pods
                     if p.status and p.status.phase == "Running" and p.metadata.deletion_timestamp is None)
    if not running:
        raise DrillError(f"statefulset {namespace}/{ref.name} has no Running pod to reach PostgreSQL through")
    return running[0]


def websocket(what: str, open_stream: Any, api: client.ApiClient, method: str, *args: Any,
              **kwargs: Any) -> Any:
    """A websocket from ``open_stream`` (``portforward`` or ``stream``) for the CoreV1Api ``method``, on
    ``api`` (a client no other call uses), one handshake at a time; refused in one line."""
    with _HANDSHAKE:
        try:
            return open_stream(getattr(client.CoreV1Api(api), method), *args, **kwargs)
        except ApiException as err:
            raise handshake_refusal(what, err) from None


def handshake_refusal(what: str, err: ApiException) -> KubeRefused:
    """A refused websocket as one line: its HTTP status and phrase, never the headers or body."""
    found = re.search(r"Handshake status (\d+)\s*([^-]*)", str(err.reason or ""))
    if found:
        status = int(found.group(1))
        return KubeRefused(f"Kubernetes API refused {what}: HTTP {status} {found.group(2).strip()}", status)
    cause = (str(err.reason or "").splitlines() or ["no answer"])[0][:120]
    return KubeRefused(f"Kubernetes API unreachable for {what}: {cause}", 0)


class PodPortForward:
    """A port on 127.0.0.1 forwarded to ``port`` of a pod, one websocket per connection; a context
    manager: on exit the listener and every connection it relays are closed."""

    def __init__(self, kube: KubeApi, namespace: str, ref: PodRef, port: int) -> None:
        self.kube, self.namespace, self.ref, self.port = kube, namespace, ref, port
        self.pod = ""
        self.local_port = 0
        self._listener: socket.socket | None = None
        self._open: set[Any] = set()
        self._ws_api = client.ApiClient(kube.api.configuration)  # websockets only (see _HANDSHAKE)

    def __enter__(self) -> PodPortForward:
        return self.open()

    def __exit__(self, *_: object) -> None:
        self.close()

    def describe(self) -> str:
        return (f"port-forward 127.0.0.1:{self.local_port} -> pod {self.namespace}/{self.pod}:{self.port} "
                f"({self.ref}) through {self.kube.host}")

    def open(self) -> PodPortForward:
        """Resolve the pod, prove the API lets this account forward to it (a refusal is said now, in one
        line), then listen on a free port of 127.0.0.1."""
        self.pod = resolve_pod(self.kube, self.namespace, self.ref)
        self._websocket().close()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.local_port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, name=f"port-forward-{self.local_port}", daemon=True).start()
        return self

    def close(self) -> None:
        if self._listener is not None:
            with suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread; stops listening
            self._listener.close()
        for sock in list(self._open):
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _websocket(self) -> Any:
        return websocket(f"a port-forward to pod {self.namespace}/{self.pod}:{self.port}", portforward,
                         self._ws_api, "connect_get_namespaced_pod_portforward", self.pod, self.namespace,
                         ports=str(self.port))

    def _accept(self) -> None:
        while True:
            try:
                local, _ = self._listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._relay, args=(local,), daemon=True).start()

    def _relay(self, local: socket.socket) -> None:
        try:
            forward = self._websocket()
        except DrillError as err:
            log.warning("%s", err)
            local.close()
            return
        remote = forward.socket(self.port)
        remote.setblocking(True)
        self._open |= {local, remote}
        pumps = [threading.Thread(target=_pump, args=(a, b), daemon=True) for a, b in
                 ((local, remote), (remote, local))]
        for pump in pumps:
            pump.start()
        for pump in pumps:
            pump.join()
        self._open -= {local, remote}
        for sock in (local, remote):
            sock.close()
        if error := forward.error(self.port):
            log.warning("port-forward to pod %s/%s:%s: %s", self.namespace, self.pod, self.port,
                        error.splitlines()[0][:200])


def _pump(src: Any, dst: Any) -> None:
    """Bytes from ``src`` to ``dst`` until ``src`` ends; then ``dst`` is told no more comes."""
    with suppress(OSError):
        while data := src.recv(CHUNK):
            dst.sendall(data)
    with suppress(OSError):
        dst.shutdown(socket.SHUT_WR)


@dataclass(frozen=True)
class ExecResult:
    """A command run through the API's exec stream: its exit code (None when unknown) and output."""

    code: int | None
    stdout: bytes
    stderr: bytes
    status: str  # the API's own one-line status ("Success", or its message)


class PsqlExec:
    """``kubectl exec -i <pod> -c <container> -- psql …`` through the official client: queries, and a dump
    restored by the pod's own tools reading it from stdin (plain SQL through psql in one transaction, a
    custom-format archive through pg_restore). They run inside the pod, as its user."""

    def __init__(self, kube: KubeApi, namespace: str, ref: PodRef, container: str | None = None,
                 bin_dir: str = "", user: str = "postgres", deadline: float = EXEC_DEADLINE) -> None:
        self.kube, self.namespace, self.ref, self.container = kube, namespace, ref, container
        self.bin_dir, self.user, self.deadline = bin_dir.rstrip("/"), user, deadline
        self.pod = ""  # the pod of the latest run
        self._ws_api = client.ApiClient(kube.api.configuration)  # websockets only (see _HANDSHAKE)

    def describe(self) -> str:
        where = f"container {self.container}" if self.container else "its first container"
        return f"psql and pg_restore run by exec in a pod of {self.ref} ({where}) through {self.kube.host}"

    def query(self, database: str, sql: str) -> list[list[str]]:
        """The rows ``sql`` returns in ``database`` (CSV from psql, every value a string)."""
        argv = [self._tool("psql"), "-X", "-v", "ON_ERROR_STOP=1", *self._to(database), "--csv", "-t"]
        result = self._checked(database, [*argv, "-c", sql], None)
        return list(csv.reader(result.stdout.decode().splitlines()))

    def restore(self, database: str, dump: BinaryIO) -> None:
        """Restore ``dump`` into ``database``, the first error stopping it: plain SQL through psql in one
        transaction, a custom-format archive through pg_restore (both read stdin)."""
        head = dump.read(len(ARCHIVE_MAGIC))
        if head == ARCHIVE_MAGIC:
            argv = [self._tool("pg_restore"), "--exit-on-error", *self._to(database)]
        else:
            argv = [self._tool("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction",
                    *self._to(database), "-f", "-"]
        self._checked(database, argv, _Prefixed(head, dump))

    def _tool(self, name: str) -> str:
        return f"{self.bin_dir}/{name}" if self.bin_dir else name

    def _to(self, database: str) -> list[str]:
        return ["-U", self.user, "-d", database]

    def _checked(self, database: str, argv: list[str], stdin: BinaryIO | None) -> ExecResult:
        result = self.run(argv, stdin)
        if result.code != 0:
            tool = argv[0].rsplit("/", 1)[-1]
            raise DrillError(f"{tool} in pod {self.namespace}/{self.pod} failed in {database}: "
                             f"{_first_error(result)}")
        return result

    def run(self, argv: list[str], stdin: BinaryIO | None = None) -> ExecResult:
        """``argv`` in the pod; ``stdin`` streamed in chunks, then closed (and psql told to quit)."""
        self.pod = resolve_pod(self.kube, self.namespace, self.ref)
        ws = self._open(argv, stdin is not None)
        try:
            if stdin is not None:
                _send(ws, stdin, quit_psql=argv[0].endswith("psql"))
            ws.run_forever(timeout=self.deadline)
            if ws.is_open():
                raise DrillError(f"{argv[0]} in pod {self.namespace}/{self.pod} did not finish within "
                                 f"{self.deadline:g}s")
            return _result(ws)
        finally:
            ws.close()

    def _open(self, argv: list[str], with_stdin: bool) -> Any:
        extra = {"container": self.container} if self.container else {}
        return websocket(f"exec of {argv[0]} in pod {self.namespace}/{self.pod}", stream, self._ws_api,
                         "connect_get_namespaced_pod_exec", self.pod, self.namespace, command=argv,
                         stdin=with_stdin, stdout=True, stderr=True, tty=False, _preload_content=False,
                         binary=True, **extra)


class _Prefixed:
    """A stream whose first bytes were already read (to tell the dump's format)."""

    def __init__(self, head: bytes, rest: BinaryIO) -> None:
        self.head, self.rest = head, rest

    def read(self, size: int = -1) -> bytes:
        if self.head:
            head, self.head = self.head, b""
            return head
        return self.rest.read(size)


class ExecRestoringDatabase(PostgresDatabase):
    """The server through its DSN, but dumps restored by the pod's own psql or pg_restore through exec
    (the playbook's ``kubectl exec -i … psql < dump``): the server's own client version, no local tools."""

    def __init__(self, dsn: str, restorer: PsqlExec) -> None:
        super().__init__(dsn)
        self.restorer = restorer

    def __repr__(self) -> str:
        return f"{super().__repr__()}, restores by {self.restorer.describe()}"

    def load(self, name: str, dump: Path | BinaryIO, jobs: int = 1) -> None:
        """Restore through exec (one stream: ``jobs`` does not apply)."""
        if isinstance(dump, Path):
            with open(dump, "rb") as stream_in:
                self.restorer.restore(name, stream_in)
            return
        self.restorer.restore(name, dump)


def _send(ws: Any, data: BinaryIO, quit_psql: bool) -> None:
    """Stream ``data`` on stdin, draining the output between chunks (so that neither side blocks); then
    end stdin (and tell psql to quit, where the runtime never passes the end of stdin on: kwok)."""
    try:
        for chunk in _chunks(data):
            if not ws.is_open():
                return  # the command ended (an error stopped psql): its status says why
            ws.write_stdin(chunk)
            ws.update(timeout=0)
        if quit_psql:
            ws.write_stdin(QUIT)
        ws.close_channel(0)  # v5.channel.k8s.io: end of stdin, where the runtime passes it on
    except (OSError, WebSocketException):
        return  # closed by the other side while sending: the command's status says why


def _chunks(data: BinaryIO) -> Iterator[bytes]:
    while chunk := data.read(CHUNK):
        yield chunk


def _result(ws: Any) -> ExecResult:
    """The command's exit code from the API's status on the error channel."""
    raw = ws.read_channel(ERROR)
    stdout, stderr = ws.read_channel(STDOUT), ws.read_channel(STDERR)
    try:
        status = json.loads(raw or b"{}")
    except ValueError:
        status = {}
    if status.get("status") == "Success":
        return ExecResult(0, stdout, stderr, "Success")
    causes = (status.get("details") or {}).get("causes") or []
    codes = [c.get("message") for c in causes if c.get("reason") == "ExitCode"]
    message = str(status.get("message") or "no exit status from the API")
    if not codes:  # kwok says it in the message only: "... exit status 3"
        codes = re.findall(r"exit status (\d+)", message)[-1:]
    code = int(codes[0]) if codes and str(codes[0]).isdigit() else None
    return ExecResult(code, stdout, stderr, message.splitlines()[0][:200])


def _first_error(result: ExecResult) -> str:
    """psql's first ERROR line (or its first line on stderr, or the API's status), one line."""
    lines = result.stderr.decode(errors="replace").splitlines()
    errors = [line for line in lines if "ERROR" in line or "FATAL" in line] or lines or [result.status]
    return f"exit {result.code if result.code is not None else '?'}: {errors[0].strip()[:200]}"
