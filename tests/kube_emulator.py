"""Test glue for the live adapters' contract tests: the kmock Kubernetes API emulator in a thread of its
own (the sync official client talks to it over HTTP), the requests it recorded, and small stand-ins
for the controllers the emulator lacks (they only write what a real controller would write)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kmock
from kubernetes import client

EMULATOR_START = 10.0  # seconds the emulator may take to listen
ADAPTER_AGENT = "akko-dr-adapter"  # the User-Agent of the adapters' client: tells their calls apart
SETUP_AGENT = "akko-dr-test-setup"
CONTROLLER_TICK = 0.02  # seconds between two looks of a stand-in controller
RESOURCES = ("velero.io/v1/backups", "velero.io/v1/restores", "velero.io/v1/schedules", "batch/v1/jobs",
             "v1/pods", "v1/secrets", "v1/serviceaccounts", "batch/v1/cronjobs", "apps/v1/deployments",
             "apps/v1/statefulsets")


@dataclass(frozen=True)
class Call:
    """One request as RBAC sees it."""

    verb: str
    group: str
    resource: str  # "deployments/scale" for a subresource
    namespace: str | None


def rbac_call(request: kmock.Request) -> Call:
    """The RBAC verb of an HTTP request (GET on a name is get, without one list or watch, ...)."""
    method, named = str(request.method.value).upper(), request.name is not None
    if method == "GET":
        verb = "get" if named else ("watch" if request.params.get("watch") in ("true", "1") else "list")
    else:
        verb = {"POST": "create", "PUT": "update", "PATCH": "patch",
                "DELETE": "delete" if named else "deletecollection"}[method]
    resource = request.resource.plural + (f"/{request.subresource}" if request.subresource else "")
    return Call(verb, request.resource.group, resource, request.namespace)


class Emulator:
    """A running kmock emulator: clients for it, error reactions, and the calls it recorded."""

    def __init__(self, url: str, emu: kmock.KubernetesEmulator) -> None:
        self.url, self.emu = url, emu

    def client(self, agent: str = SETUP_AGENT, retries: int = 0) -> client.ApiClient:
        cfg = client.Configuration()
        cfg.host, cfg.retries = self.url, retries
        api = client.ApiClient(cfg)
        api.user_agent = agent
        return api

    def react(self, payload: Any, *criteria: Any) -> None:
        """Answer requests matching every criterion with ``payload`` (e.g. a KubernetesError)."""
        self.emu[criteria] << payload

    def serve_log(self, pod: str, text: str) -> None:
        """Answer ``GET pods/<pod>/log`` with ``text`` as text/plain, as the kubelet would."""
        self.emu[kmock.name(pod), kmock.subresource("log")] << kmock.headers(
            {"Content-Type": "text/plain"}) << text.encode()

    def refuse(self, status: int, *criteria: Any) -> None:
        reasons = {403: "Forbidden", 404: "Not Found", 409: "Conflict", 500: "Internal Server Error"}
        self.react(kmock.KubernetesError(status=status, reason=reasons[status],
                                         message="SECRET-BODY-TEXT never in a reason"), *criteria)

    def requests(self) -> list[tuple[str, str]]:
        """Every request answered so far, from any client: (HTTP method, path)."""
        return [(str(r.method.value).upper(), r.url.path) for r in list(self.emu)]

    def calls(self, agent: str = ADAPTER_AGENT) -> list[Call]:
        """What the clients with User-Agent ``agent`` asked for, in order (Kubernetes requests only)."""
        return [rbac_call(r) for r in list(self.emu) if r.resource is not None
                and (r.headers.get("User-Agent") == agent or _websocket(r))]


def _websocket(request: kmock.Request) -> bool:
    """A websocket upgrade (port-forward, exec): only the adapters open one here, and the official
    client's websocket sends no User-Agent to tell them by."""
    return str(request.headers.get("Upgrade", "")).lower() == "websocket"


@contextmanager
def emulator() -> Iterator[Emulator]:
    """kmock serving in a thread of its own until the block ends."""
    ready, box = threading.Event(), {}

    async def serve() -> None:
        stop = asyncio.Event()
        async with kmock.KubernetesEmulator() as emu, kmock.Server(emu, host="127.0.0.1") as srv:
            for resource in RESOURCES:  # empty lists are 404 until declared
                emu.resources[resource] = {}
            box.update(url=str(srv.url).rstrip("/"), stop=stop, loop=asyncio.get_running_loop(), emu=emu)
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(EMULATOR_START), f"kmock did not listen within {EMULATOR_START}s"
    try:
        yield Emulator(box["url"], box["emu"])
    finally:
        box["loop"].call_soon_threadsafe(box["stop"].set)
        thread.join(EMULATOR_START)


@contextmanager
def stand_in(step: Callable[[], bool], deadline: float = 30.0) -> Iterator[threading.Event]:
    """Run ``step`` every tick in a thread until it returns True, the block ends or the deadline
    passes; the event tells whether it finished. The thread is joined before the block returns."""
    stop, finished, failed = threading.Event(), threading.Event(), []

    def loop() -> None:
        end = time.monotonic() + deadline
        try:
            while not stop.is_set() and time.monotonic() < end:
                if step():
                    finished.set()
                    return
                stop.wait(CONTROLLER_TICK)
        except Exception as err:  # handed to the test thread below
            failed.append(err)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield finished
    finally:
        stop.set()
        thread.join(deadline)
    if failed:
        raise AssertionError(f"the stand-in controller failed: {failed[0]!r}") from failed[0]


def write_kubeconfig(path: Path, server: str, user: str = "harness", token: str = "t") -> Path:
    """A kubeconfig with one context, ``emu``, for ``server`` (the emulator needs no real token)."""
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "emu",
        "clusters": [{"name": "emu", "cluster": {"server": server}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "emu", "context": {"cluster": "emu", "user": user}}]}))
    return path
