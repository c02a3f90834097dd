"""kmock, a Kubernetes API emulator, serving on 127.0.0.1 in a thread and event loop of its own, so the
official sync client can talk to it over HTTP from the test thread (see STACK-FACTS). It records every
request it answers."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import kmock

START = 10.0  # seconds the emulator may take to listen
DECLARED = ("velero.io/v1/backups", "velero.io/v1/schedules", "batch/v1/jobs")  # empty lists: 404 otherwise


class KubeEmulator:
    """``with KubeEmulator() as emu:`` then ``emu.url``; ``emu.requests()`` lists (method, path)."""

    def __init__(self) -> None:
        self._ready, self._box = threading.Event(), {}
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(),), daemon=True)

    async def _serve(self) -> None:
        stop = asyncio.Event()
        async with kmock.KubernetesEmulator() as emu, kmock.Server(emu, host="127.0.0.1") as srv:
            for resource in DECLARED:
                emu.resources[resource] = {}
            loop = asyncio.get_running_loop()
            self._box.update(url=str(srv.url).rstrip("/"), stop=stop, loop=loop, emu=emu)
            self._ready.set()
            await stop.wait()

    def __enter__(self) -> KubeEmulator:
        self._thread.start()
        assert self._ready.wait(START), f"kmock did not listen within {START}s"
        return self

    def __exit__(self, *exc: Any) -> None:
        self._box["loop"].call_soon_threadsafe(self._box["stop"].set)
        self._thread.join(START)

    @property
    def url(self) -> str:
        return self._box["url"]

    def requests(self) -> list[tuple[str, str]]:
        """Every request answered so far: (HTTP method, path)."""
        return [(str(r.method.value if hasattr(r.method, "value") else r.method).upper(), r.url.path)
                for r in list(self._box["emu"])]
