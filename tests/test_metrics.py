"""Prometheus metrics: the text file is always written; pushed only when a Pushgateway is configured."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from akko_dr.evidence import metrics
from akko_dr.policy import load_policy


class _Gateway(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, str, bytes]]] = []

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.received.append((self.command, self.path, body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def gateway() -> Iterator[tuple[str, list]]:
    """A local HTTP endpoint standing in for a Pushgateway; records each push."""
    _Gateway.received = []
    server = HTTPServer(("127.0.0.1", 0), _Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_port}", _Gateway.received
    server.shutdown()
    thread.join()


def _rows() -> list[dict]:
    policy = load_policy()
    database = policy.drill("drill-1")["database"]
    klass = policy.database(database).klass
    return [{"run_id": "r1", "finished_at": "2026-11-27T10:00:00+00:00", "target": "sandbox",
             "drill": "drill-1", "database": database, "status": "passed",
             "rto_seconds": klass.rto.total_seconds() / 2, "rto_target_seconds": klass.rto.total_seconds(),
             "rpo_seconds": klass.rpo.total_seconds() / 4, "rpo_target_seconds": klass.rpo.total_seconds()}]


def test_metrics_are_pushed_when_a_gateway_is_configured(tmp_path: Path, gateway, monkeypatch) -> None:
    address, received = gateway
    monkeypatch.setenv(metrics.PUSHGATEWAY_ENV, f"http://{address}")
    path, status = metrics.write(tmp_path, _rows(), _rows())
    assert status == "pushed to the configured Pushgateway"
    [(method, url, body)] = received
    assert (method, url) == ("PUT", f"/metrics/job/{metrics.JOB}")
    assert b"akko_dr_restore_duration_seconds" in body
    assert b"akko_dr_restore_duration_seconds" in path.read_bytes()


def test_nothing_is_pushed_without_a_gateway(tmp_path: Path, gateway, monkeypatch) -> None:
    _, received = gateway
    monkeypatch.delenv(metrics.PUSHGATEWAY_ENV, raising=False)
    path, status = metrics.write(tmp_path, _rows(), _rows())
    assert status.startswith("not pushed") and received == []
    assert "akko_dr_last_success_timestamp_seconds" in path.read_text()


def test_an_unreachable_gateway_is_reported_without_its_address(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(metrics.PUSHGATEWAY_ENV, "http://user:s3cret@127.0.0.1:9")
    _, status = metrics.write(tmp_path, _rows(), _rows())
    assert status.startswith("push to the Pushgateway failed") and "s3cret" not in status
