"""Real third-party servers of the sandbox as child processes: where their binaries are, free ports,
start with a readiness deadline, stop by the pid we started (never by name)."""

from __future__ import annotations

import os
import socket
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from akko_dr.errors import DrillError
from akko_dr.measure import wait_for

BIN_ENV = "AKKO_DR_BIN"  # where scripts/real-services.sh put the binaries; default ~/.cache/akko-dr/bin
STOP_DEADLINE = 10.0


def bin_dir() -> Path:
    """The folder of the provisioned binaries (``$AKKO_DR_BIN``, else ``$AKKO_DR_CACHE/bin``)."""
    if os.environ.get(BIN_ENV):
        return Path(os.environ[BIN_ENV])
    cache = os.environ.get("AKKO_DR_CACHE") or Path.home() / ".cache" / "akko-dr"
    return Path(cache) / "bin"


def binary(name: str, where: Path | None = None) -> Path | None:
    """The executable ``name`` provisioned in ``where`` (default: :func:`bin_dir`), None when absent."""
    path = (where or bin_dir()) / name
    return path if path.is_file() and os.access(path, os.X_OK) else None


def version_of(path: Path) -> str:
    """The pinned version scripts/real-services.sh stamped beside the binary."""
    stamp = path.with_name(path.name + ".version")
    return stamp.read_text().strip() if stamp.is_file() else "unknown version"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def answers(url: str) -> bool:
    """Whether ``url`` answers 200 (a readiness endpoint)."""
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


class ServerProcess:
    """One server process we started, with its log file; ready when ``ready_url`` answers."""

    def __init__(self, name: str, argv: list[str], log: Path, ready_url: str, deadline: float,
                 env: dict[str, str] | None = None) -> None:
        self.name = name
        log.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(log, "ab")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **(env or {})})
        try:
            wait_for(f"{name} to answer {ready_url}", lambda: self._ready(ready_url, log), deadline)
        except BaseException:
            self.stop()
            raise

    def _ready(self, url: str, log: Path) -> bool:
        if self.proc.poll() is not None:
            raise DrillError(f"{self.name} exited with {self.proc.returncode} at start (log: {log})")
        return answers(url)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a deadline; only this process."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_DEADLINE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
