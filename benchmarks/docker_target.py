"""Benchmark: the docker target against the sandbox, measured in one run.

Prints how long finding out whether a Docker engine answers takes (none at a missing socket, and the
real one when it runs), a warm run of ``scripts/docker-images.sh``, the platform's start and a Drill 1
run on each target. Run: ``python benchmarks/docker_target.py`` (needs an engine for the last two rows).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from akko_dr.docker_target import load_images
from akko_dr.drills.restore_database import RestoreDatabaseDrill
from akko_dr.policy import load_policy
from akko_dr.targets import Target, new_run_id
from akko_dr.wiring import docker_engine_unavailable, open_docker, open_sandbox

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "docker-images.sh"


def timed(call: Callable[[], object]) -> tuple[float, object]:
    start = time.monotonic()
    value = call()
    return time.monotonic() - start, value


def detection_without_engine() -> float:
    saved = os.environ.get("DOCKER_HOST")
    os.environ["DOCKER_HOST"] = "unix:///nonexistent/docker.sock"
    try:
        return timed(docker_engine_unavailable)[0]
    finally:
        os.environ.pop("DOCKER_HOST") if saved is None else os.environ.update(DOCKER_HOST=saved)


def drill_on(platform: AbstractContextManager) -> tuple[float, float]:
    """Seconds to start the platform, and to run Drill 1 on it (declaration to validated)."""
    start = time.monotonic()
    with platform as (_, target):
        started = time.monotonic() - start
        return started, drill_1(target)


def drill_1(target: Target) -> float:
    assert target.jobs.run_job("akko-pg-backup").succeeded
    drill = RestoreDatabaseDrill(target, "superset_metadata", new_run_id())
    drill.run("dashboards")
    return drill.rto().measured.total_seconds()


def main() -> None:
    print(f"engine detection, none at the socket: {detection_without_engine():.3f}s")
    seconds, reason = timed(docker_engine_unavailable)
    print(f"engine detection here: {seconds:.3f}s ({reason or 'an engine answers'})")
    if reason:
        return
    warm = timed(lambda: subprocess.run(["bash", str(SCRIPT)], check=True))[0]
    print(f"scripts/docker-images.sh (warm): {warm:.1f}s")
    policy = load_policy()
    sandbox = drill_on(open_sandbox(policy))
    docker = drill_on(open_docker(policy, load_images()))
    for name, (started, rto) in (("sandbox", sandbox), ("docker", docker)):
        print(f"{name:8} platform start {started:6.1f}s  Drill 1 RTO {rto:5.2f}s")
    print(f"docker/sandbox: start x{docker[0] / sandbox[0]:.2f}, Drill 1 x{docker[1] / sandbox[1]:.2f}")


if __name__ == "__main__":
    main()
