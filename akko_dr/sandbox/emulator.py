"""The sandbox's S3 endpoint: moto's emulator, in a thread or, when one already runs here, its own process.

moto keeps a single state per Python process: two in-process servers show each other's buckets. The
first sandbox of a process gets the quick in-thread server; any other one running at the same time
(Drill 2's own platform, a test's) gets a server process of its own, so they never share objects.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request

from akko_dr.measure import wait_for

START_DEADLINE = 30.0
_in_process: list[object] = []


class _ThreadServer:
    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        _in_process.append(self)
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"

    def stop(self) -> None:
        self._server.stop()
        _in_process.remove(self)


class _ProcessServer:
    def __init__(self, enforce_auth: bool = False) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{port}"
        argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
        env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="0") if enforce_auth else None  # moto: check keys
        self._proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        wait_for("the S3 emulator process to answer", self._answers, START_DEADLINE)

    def _answers(self) -> bool:
        if self._proc.poll() is not None:
            raise RuntimeError(f"the S3 emulator process exited with {self._proc.returncode}")
        try:
            with urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=1):
                return True
        except (urllib.error.URLError, OSError):
            return False

    def stop(self) -> None:
        self._proc.terminate()
        try:
            self._proc.wait(5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


def start_emulator(enforce_auth: bool = False) -> _ThreadServer | _ProcessServer:
    """A moto S3 server whose state no other running sandbox shares; ``.endpoint``, ``.stop()``. With
    ``enforce_auth`` it refuses every credential it does not know (InvalidAccessKeyId), as a real one does."""
    if enforce_auth:
        return _ProcessServer(enforce_auth=True)
    return _ProcessServer() if _in_process else _ThreadServer()
