"""Local process supervisor: the sandbox's orchestrator, one OS process per replica."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path


class LocalSupervisor:
    """Starts and stops named services as local processes, like ``kubectl scale`` does pods."""

    kind = "local-supervisor"

    def __init__(self, log_dir: Path) -> None:
        self._log_dir = log_dir
        self._commands: dict[str, list[str]] = {}
        self._procs: dict[str, list[subprocess.Popen]] = {}

    def register(self, service: str, argv: list[str]) -> None:
        self._commands[service] = argv
        self._procs.setdefault(service, [])

    def services(self) -> list[str]:
        return sorted(self._commands)

    def scale(self, service: str, replicas: int) -> None:
        if service not in self._commands:
            raise KeyError(f"no service named {service!r} (have {', '.join(self._commands)})")
        procs = [p for p in self._procs[service] if p.poll() is None]
        while len(procs) > replicas:
            _stop(procs.pop())
        while len(procs) < replicas:
            log = open(self._log_dir / f"{service}.log", "ab")  # noqa: SIM115 (owned by the child)
            procs.append(subprocess.Popen(self._commands[service], stdout=log, stderr=log,
                                          stdin=subprocess.DEVNULL))
            log.close()
        self._procs[service] = procs

    def running(self, service: str) -> int:
        return sum(1 for p in self._procs.get(service, []) if p.poll() is None)

    def stop_all(self) -> None:
        for service in self._commands:
            self.scale(service, 0)


def _stop(proc: subprocess.Popen, timeout: float = 5.0) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
