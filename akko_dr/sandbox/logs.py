"""The sandbox's logs layer: a real VictoriaLogs server on 127.0.0.1, its data in the sandbox folder."""

from __future__ import annotations

from pathlib import Path

from akko_dr.adapters.victorialogs import VictoriaLogs
from akko_dr.sandbox.processes import ServerProcess, free_port, version_of

START_DEADLINE = 30.0


class VictoriaLogsServer:
    """One victoria-logs process; ``.client`` speaks its HTTP API."""

    def __init__(self, binary: Path, data_dir: Path) -> None:
        self.version = version_of(binary)
        self.url = f"http://127.0.0.1:{free_port()}"
        argv = [str(binary), f"-storageDataPath={data_dir}", f"-httpListenAddr={self.url[7:]}",
                "-loggerLevel=WARN", "-retentionPeriod=30d"]
        self._process = ServerProcess("victoria-logs", argv, data_dir.parent / "victoria-logs.log",
                                      f"{self.url}/health", START_DEADLINE)
        self.client = VictoriaLogs(self.url)

    def describe(self) -> str:
        return f"VictoriaLogs {self.version} (real server) at {self.url}"

    def stop(self) -> None:
        self._process.stop()
