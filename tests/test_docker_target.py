"""The docker target (``--target docker``): Drill 1 against PostgreSQL and MinIO in containers started
through testcontainers from images built here (scripts/docker-images.sh); skipped with its reason where
no Docker engine answers."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from akko_dr.canary import wait_for_write
from akko_dr.docker_target import OWNER_LABEL, PING_TIMEOUT, DockerImages, load_images, remove_orphans
from akko_dr.drills.restore_database import RestoreDatabaseDrill
from akko_dr.errors import NotApplicable, PolicyError
from akko_dr.policy import load_policy
from akko_dr.targets import Target, new_run_id
from akko_dr.wiring import docker_engine_unavailable, open_docker

ROOT = Path(__file__).resolve().parents[1]
ENGINE = docker_engine_unavailable()
needs_engine = pytest.mark.skipif(ENGINE is not None, reason=ENGINE or "")


def _drill(args: list[str], tmp_path: Path, env: dict[str, str] | None = None) -> tuple[int, dict]:
    evidence = tmp_path / "evidence"
    proc = subprocess.run([sys.executable, "-m", "akko_dr.cli", "drill", "--evidence-dir", str(evidence),
                           "--target", "docker", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600, env={**os.environ, **(env or {})})
    results = evidence / "latest" / "results.json"
    assert results.exists(), proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc.returncode, json.loads(results.read_text())


# -- where no engine answers -----------------------------------------------------------------------------
@pytest.mark.parametrize("host", ["unix://{tmp}/no-docker.sock", "tcp://127.0.0.1:{port}"])
def test_no_engine_is_named_as_the_reason(host: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No socket, or a port nobody listens on."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("DOCKER_HOST", host.format(tmp=tmp_path, port=port))
    reason = docker_engine_unavailable()
    assert reason is not None and reason.startswith("no Docker engine reachable"), reason


def test_an_engine_that_never_answers_is_given_up_after_the_ping_timeout(monkeypatch: pytest.MonkeyPatch,
                                                                        tmp_path: Path) -> None:
    """A socket that accepts and stays silent (a hung daemon) is given up after PING_TIMEOUT (< 1 s),
    not the docker client's 60 s."""
    path = tmp_path / "silent.sock"
    with socket.socket(socket.AF_UNIX) as silent:
        silent.bind(str(path))
        silent.listen()
        accepted: list[socket.socket] = []
        threading.Thread(target=lambda: accepted.append(silent.accept()[0]), daemon=True).start()
        monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")
        reason = docker_engine_unavailable()
    assert PING_TIMEOUT < 1.0
    assert reason is not None and "timed out" in reason, reason


def test_the_drill_is_skipped_with_that_reason(tmp_path: Path) -> None:
    code, results = _drill(["-k", "dropped_table"], tmp_path,
                           env={"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"})
    [drill] = results["scenarios"]
    assert code == 0 and results["target"] == "docker"
    assert drill["status"] == "skipped" and "no Docker engine reachable" in drill["error"], drill


def test_the_images_come_from_the_target_file(tmp_path: Path) -> None:
    images = tmp_path / "images.yaml"
    postgres, minio = "akko-dr/postgres:18.6.3-abc", "akko-dr/minio:x"
    images.write_text(f"docker: {{images: {{postgres: '{postgres}', minio: '{minio}'}}}}\n")
    assert load_images(images) == DockerImages(postgres, minio, str(images))
    images.write_text("docker: {images: {minio: 'akko-dr/minio:x'}}\n")
    with pytest.raises(PolicyError, match=r"docker.images.postgres: expected an image name"):
        load_images(images)
    with pytest.raises(PolicyError, match=r"scripts/docker-images\.sh builds the images"):
        load_images(tmp_path / "missing.yaml")


# -- against a Docker engine -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def images() -> DockerImages:
    """The images, built here when missing (seconds when they are: tagged by content)."""
    proc = _build_images(900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return load_images()


def _build_images(timeout: float) -> subprocess.CompletedProcess:
    script = ROOT / "scripts" / "docker-images.sh"
    return subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=timeout)


@needs_engine
def test_an_image_missing_from_the_engine_is_named_without_waiting_for_a_registry(tmp_path: Path) -> None:
    images = tmp_path / "images.yaml"
    images.write_text("docker: {images: {postgres: 'akko-dr/postgres:not-built'}}\n")
    code, results = _drill(["-k", "dropped_table", "--target-file", str(images)], tmp_path)
    [drill] = results["scenarios"]
    assert code == 0 and drill["status"] == "skipped", drill
    assert "image akko-dr/postgres:not-built is not on this Docker engine" in drill["error"], drill


@needs_engine
def test_a_second_image_build_imports_nothing(images: DockerImages) -> None:
    """Tagged by content: with the images present, the script finds each tag and imports nothing."""
    proc = _build_images(300)
    assert proc.returncode == 0 and "imported" not in proc.stderr, proc.stderr[-2000:]
    assert f"{images.postgres} present" in proc.stderr
    assert load_images() == images


@pytest.fixture(scope="module")
def on_docker(images: DockerImages) -> Iterator[Target]:
    with open_docker(load_policy(), images) as (_, target):
        yield target


@needs_engine
def test_drill_1_restores_a_dropped_table_on_postgres_in_a_container(on_docker: Target,
                                                                   images: DockerImages) -> None:
    target = on_docker
    target.heal()
    floor = wait_for_write(target.port("canary"), "superset_metadata")
    wait_for_write(target.port("canary"), "superset_metadata", after=floor)
    assert target.jobs.run_job("akko-pg-backup").succeeded  # the real backup job, into the store
    drill = RestoreDatabaseDrill(target, "superset_metadata", new_run_id())
    drill.run("dashboards")
    assert drill.table_exists("dashboards") and drill.kept in target.db.databases()
    assert drill.rto().met and drill.rpo().met
    assert target.components["postgresql"].startswith(f"docker: postgres image {images.postgres} ")
    assert _server_port(target) == int(target.components["postgresql"].split("127.0.0.1:")[1].split(")")[0])
    if images.minio:
        assert target.components["object-store"].startswith(f"docker: minio image {images.minio} ")
        assert target.store.endpoint in target.components["object-store"]
        assert "store" not in target.emulated_ports
    assert target.port("segregated_db") is not target.db


def _server_port(target: Target) -> int:
    import psycopg

    with psycopg.connect(target.db.dsn("postgres")) as conn:
        return conn.execute("SELECT inet_server_port()").fetchone()[0]


@needs_engine
def test_what_the_docker_target_cannot_serve_is_a_gap_that_says_why(on_docker: Target,
                                                                   images: DockerImages) -> None:
    with pytest.raises(NotApplicable, match="not applicable on docker: Drill 2 is not wired"):
        on_docker.port("scratch_platform")
    if images.minio:  # the WORM proofs with the compromised identity's own MinIO credentials
        with pytest.raises(NotApplicable, match="no MinIO user of its own"):
            on_docker.port("store_as")


@needs_engine
def test_containers_of_a_run_that_died_are_removed(images: DockerImages) -> None:
    import docker

    dead = subprocess.Popen(["true"])
    dead.wait()
    client = docker.from_env()
    orphan = client.containers.create(images.postgres, labels={OWNER_LABEL: str(dead.pid)})
    ours = client.containers.create(images.postgres, labels={OWNER_LABEL: str(os.getpid())})
    try:
        removed = remove_orphans()
        names = {c.name for c in client.containers.list(all=True)}
        assert orphan.name in removed and orphan.name not in names
        assert ours.name in names
    finally:
        ours.remove(force=True)


@needs_engine
def test_drill_1_runs_on_the_docker_target_through_its_features(tmp_path: Path, images: DockerImages) -> None:
    """What CI runs: ``akko-dr drill --target docker`` restores through the normal Drill 1 features, the
    refusals included (a lost server there is the PostgreSQL container killed, then started again)."""
    code, results = _drill(["-k", "drill_1_restore_database or drill_1_refuses"], tmp_path)
    statuses = {s["name"]: s["status"] for s in results["scenarios"]}
    gaps = {name for name, status in statuses.items() if status == "not-applicable"}  # the full disk
    others = {name: status for name, status in statuses.items() if status != "passed" and name not in gaps}
    assert code != 2 and not others and len(statuses) - len(gaps) >= 9, (code, others,
                                                                          results.get("harness_errors"))
    assert results["target"] == "docker"
    assert results["components"]["postgresql"].startswith(f"docker: postgres image {images.postgres} ")
