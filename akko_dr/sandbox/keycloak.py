"""The sandbox's real Keycloak: provisioned by ``scripts/services/keycloak.sh``, its database the sandbox
PostgreSQL's ``keycloak`` database, realm ``akko`` seeded with users, clients and the compromised
administrator, and the realm-export job writing the realm's JSON export to the backup bucket.

The embedded PostgreSQL listens on a Unix socket only and Keycloak's JDBC driver speaks TCP: a small relay
on 127.0.0.1 forwards bytes to the socket (nothing is interpreted; authentication stays PostgreSQL's).
"""

from __future__ import annotations

import gzip
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from psycopg import sql as q

from akko_dr.adapters.keycloak import KeycloakIdentities
from akko_dr.adapters.postgres import PostgresDatabase
from akko_dr.errors import DrillError
from akko_dr.measure import wait_for
from akko_dr.ports import ExportLocation, JobRun
from akko_dr.sandbox.seed import CANARY

VERSION = "26.7.3"  # scripts/services/keycloak.sh pins the same
BUILD_OPTIONS = ("--db=postgres", "--health-enabled=true", "--cache=local")  # as kc.sh build was given
DEFAULT_JAVA_HOME = "/usr/lib/jvm/temurin-25-jdk-amd64"
# Keycloak's JDBC pool (Agroal, Quarkus 3.33) checks a connection before lending it: after its PostgreSQL
# server restarted, a dead one is dropped instead of failing a request (HTTP 400/500 otherwise). Keycloak has
# no option of its own for it; Quarkus reads it as a system property at run time.
POOL_VALIDATION = "-Dquarkus.datasource.jdbc.validate-on-borrow=true"
START_DEADLINE = 300.0  # Keycloak's JVM start on a shared 2-core machine
EXPORT_DEADLINE = 300.0
DB_ROLE = "keycloak"
DATABASE = "keycloak"  # the policy's database of Keycloak
RESTORED_DATABASE = "keycloak_restored"  # the fresh server's own
REALM = "akko"
ADMIN_CLIENT = "admin-cli"
LOGIN_CLIENT = "akko-portal"  # the realm's public client with direct access grants: the login probe's
CLIENTS = ("akko-superset", "akko-airflow", "akko-openmetadata", "akko-mlflow")  # confidential clients
PROVISION = "run scripts/real-services.sh keycloak"
SWITCH = "AKKO_DR_KEYCLOAK"
PROBE_USER = "user1"  # an ordinary user whose login proves Keycloak serves the realm
USERS = 20


def cache_dir() -> Path:
    return Path(os.environ.get("AKKO_DR_CACHE", Path.home() / ".cache" / "akko-dr"))


def keycloak_home() -> tuple[Path | None, str]:
    """The provisioned Keycloak installation, or None and why there is none (``AKKO_DR_KEYCLOAK=off``
    switches it off: the stand-in serves, and says so)."""
    if os.environ.get(SWITCH) == "off":
        return None, f"Keycloak switched off by {SWITCH}=off"
    home = cache_dir() / f"keycloak-{VERSION}"
    stamp = home / ".akko-dr-provisioned"
    if not (home / "bin" / "kc.sh").is_file() or not stamp.is_file():
        return None, f"Keycloak {VERSION} not provisioned in {home} ({PROVISION})"
    if stamp.read_text().split() != [VERSION, *BUILD_OPTIONS]:
        return None, f"Keycloak in {home} was built with other options ({PROVISION})"
    java = _java_home(home)
    if not (java / "bin" / "java").is_file():
        return None, f"no Java at {java} for Keycloak {VERSION} (needs Java 21 or newer)"
    return home, ""


def _java_home(home: Path) -> Path:
    recorded = home / ".akko-dr-java-home"
    return Path(recorded.read_text().strip() if recorded.is_file() else DEFAULT_JAVA_HOME)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- the TCP relay to PostgreSQL's Unix socket --------------------------------------------------
class SocketRelay:
    """Accepts TCP connections on 127.0.0.1 and pipes each to a Unix socket, byte for byte."""

    def __init__(self, unix_path: str) -> None:
        self.unix_path = unix_path
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._open: set[socket.socket] = set()
        self._closed = False
        threading.Thread(target=self._accept, name=f"pg-relay-{self.port}", daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.socket(socket.AF_UNIX)
                upstream.connect(self.unix_path)
            except OSError:
                client.close()  # the server is down (a fault): the client sees a closed connection
                continue
            self._open |= {client, upstream}
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                self._open.discard(sock)
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        for sock in list(self._open):
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def unix_socket_of(db: PostgresDatabase) -> str:
    """The Unix socket path of the server behind ``db``."""
    info = psycopg.conninfo.conninfo_to_dict(db.dsn("postgres"))
    return f"{info['host']}/.s.PGSQL.{info.get('port') or 5432}"


def prepare_database(db: PostgresDatabase, database: str, password: str) -> None:
    """An empty ``database`` owned by the ``keycloak`` login role (created if missing); Keycloak's own
    schema migration fills it on first start."""
    with psycopg.connect(db.dsn("postgres"), autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (DB_ROLE,)).fetchone()
        verb = "ALTER" if exists else "CREATE"
        conn.execute(q.SQL(f"{verb} ROLE {{}} LOGIN PASSWORD {{}}").format(
            q.Identifier(DB_ROLE), q.Literal(password)))
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone():
            conn.execute(q.SQL("CREATE DATABASE {} OWNER {}").format(q.Identifier(database),
                                                                    q.Identifier(DB_ROLE)))
        # The harness's dumps are restored without owners (pg_dump --no-owner): after Drill 1 the tables
        # belong to the restoring superuser. Reading and writing every table keeps Keycloak serving.
        conn.execute(q.SQL("GRANT pg_read_all_data, pg_write_all_data TO {}").format(q.Identifier(DB_ROLE)))


# -- the server -----------------------------------------------------------------------------------
@dataclass
class KeycloakServer:
    """One running Keycloak process (optimized production start, HTTP on 127.0.0.1)."""

    home: Path
    url: str
    management_url: str
    admin_user: str
    admin_password: str = field(repr=False)
    process: subprocess.Popen | None = field(default=None, repr=False)
    relay: SocketRelay | None = field(default=None, repr=False)
    database: str = ""
    db_env: dict[str, str] = field(default_factory=dict, repr=False)  # KC_DB_*: the password stays off argv
    log_path: Path | None = None
    started_in: float = 0.0

    def ready(self) -> bool:
        """Whether the server answers its readiness probe."""
        import urllib.request

        try:
            with urllib.request.urlopen(f"{self.management_url}/health/ready", timeout=2) as resp:
                return resp.status == 200
        except OSError:
            return False

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        """SIGTERM (kc.sh forwards it to the JVM), then SIGKILL to its whole process group after 30 s."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self.relay is not None:
            self.relay.close()

    def env(self) -> dict[str, str]:
        java_opts = " ".join(filter(None, (os.environ.get("JAVA_OPTS_APPEND"), POOL_VALIDATION)))
        return dict(os.environ, JAVA_HOME=str(_java_home(self.home)), JAVA_OPTS_APPEND=java_opts,
                    **self.db_env)


def _db_env(relay: SocketRelay, database: str, password: str) -> dict[str, str]:
    return {"KC_DB_URL": f"jdbc:postgresql://127.0.0.1:{relay.port}/{database}", "KC_DB_USERNAME": DB_ROLE,
            "KC_DB_PASSWORD": password}


def start_keycloak(home: Path, db: PostgresDatabase, database: str, workdir: Path) -> KeycloakServer:
    """Start Keycloak on ``database`` of ``db`` (prepared empty if new); wait until it is ready."""
    started = time.monotonic()
    workdir.mkdir(parents=True, exist_ok=True)
    db_password = secrets.token_urlsafe(18)
    prepare_database(db, database, db_password)
    relay = SocketRelay(unix_socket_of(db))
    http, management = free_port(), free_port()
    server = KeycloakServer(home, f"http://127.0.0.1:{http}", f"http://127.0.0.1:{management}",
                            "akko-dr-bootstrap", secrets.token_urlsafe(18), relay=relay, database=database,
                            db_env=_db_env(relay, database, db_password),
                            log_path=workdir / f"keycloak-{database}.log")
    env = server.env() | {"KC_BOOTSTRAP_ADMIN_USERNAME": server.admin_user,
                          "KC_BOOTSTRAP_ADMIN_PASSWORD": server.admin_password}
    argv = [str(home / "bin" / "kc.sh"), "start", "--optimized", "--http-enabled=true",
            "--http-host=127.0.0.1", f"--http-port={http}", f"--http-management-port={management}",
            "--hostname-strict=false", "--cache=local"]
    with open(server.log_path, "ab") as log:
        server.process = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL, env=env,
                                          cwd=workdir, start_new_session=True)
    try:
        wait_for(f"Keycloak on {database} to be ready", lambda: _ready_or_dead(server), START_DEADLINE, 0.5)
    except DrillError:
        server.stop()
        raise
    server.started_in = time.monotonic() - started
    return server


def _ready_or_dead(server: KeycloakServer) -> bool:
    if not server.alive():
        log = server.log_path.read_text(errors="replace") if server.log_path else ""
        tail = log.strip().splitlines()[-3:]
        raise DrillError(f"Keycloak exited ({server.process.returncode}) before it was ready: "
                         + " | ".join(tail))
    return server.ready()


def export_realm(server: KeycloakServer, realm: str, out: Path) -> Path:
    """``kc.sh export`` of ``realm`` with its users (and their credential hashes) into ``out``: Keycloak's
    own full export, read from its database by a second JVM beside the running server."""
    argv = [str(server.home / "bin" / "kc.sh"), "export", "--optimized", f"--file={out}",
            f"--realm={realm}", "--users=same_file", f"--http-management-port={free_port()}"]
    log = out.with_suffix(".log")
    with open(log, "wb") as fh:
        proc = subprocess.run(argv, stdout=fh, stderr=subprocess.STDOUT, env=server.env(),
                              cwd=out.parent, timeout=EXPORT_DEADLINE, check=False)
    if proc.returncode != 0 or not out.is_file():
        tail = log.read_text(errors="replace").strip().splitlines()[-2:]
        raise DrillError(f"realm export of {realm} failed ({proc.returncode}): {' | '.join(tail)}")
    return out




# -- the realm ------------------------------------------------------------------------------------
def realm_payload(realm: str = REALM) -> dict:
    """Realm ``akko``: login events stored (the identity provider's log), brute-force detection on."""
    return {"realm": realm, "enabled": True, "eventsEnabled": True, "eventsExpiration": 7 * 86400,
            "enabledEventTypes": ["LOGIN", "LOGIN_ERROR", "LOGOUT", "CODE_TO_TOKEN", "REFRESH_TOKEN"],
            "adminEventsEnabled": True, "adminEventsDetailsEnabled": False, "bruteForceProtected": False}


def client_payloads() -> list[dict]:
    """The portal's public client (password grant: the login probe's) and the services' confidential ones."""
    portal = {"clientId": LOGIN_CLIENT, "enabled": True, "publicClient": True,
              "directAccessGrantsEnabled": True, "standardFlowEnabled": True,
              "redirectUris": ["http://127.0.0.1/*"]}
    services = [{"clientId": name, "enabled": True, "publicClient": False, "serviceAccountsEnabled": True,
                 "standardFlowEnabled": True, "redirectUris": [f"http://127.0.0.1/{name}/*"]}
                for name in CLIENTS]
    return [portal, *services]


def seed_realm(identities, administrators: list[str], users: int = USERS) -> None:
    """Realm ``akko`` with its clients, ``users`` ordinary users and the administrators, each with a
    password the harness keeps in memory. ``identities`` is the adapter on that realm."""
    admin = identities.admin
    admin.create_realm(realm_payload(identities.realm), skip_exists=True)
    for client in client_payloads():
        admin.create_client(client, skip_exists=True)
    for n in range(1, users + 1):
        identities.provision(f"user{n}", admin=False)
    for name in administrators:
        identities.provision(name, admin=True)


# -- the sandbox's Keycloak -----------------------------------------------------------------------
EXPORT_PREFIX = "keycloak/"  # where the realm-export job writes in the backup bucket
SERVE_DEADLINE = 120.0  # Keycloak serving logins again after its database was swapped under it


@dataclass
class SandboxKeycloak:
    """The sandbox's Keycloak on the ``keycloak`` database, with its realm and its realm-export job."""

    server: KeycloakServer
    identities: KeycloakIdentities
    root: Path
    seed_dump: Path | None = None  # the database right after seeding: heals a damaged one
    fresh: KeycloakServer | None = None  # the second server a realm export was restored into
    seeded_in: float = 0.0

    @property
    def component(self) -> str:
        server = self.server
        return (f"Keycloak {VERSION} (real server, {server.url}, realm {REALM}; its database: "
                f"{server.database} on the sandbox PostgreSQL; started in {server.started_in:.1f}s, "
                f"realm seeded in {self.seeded_in:.1f}s)")

    def export(self, store, bucket: str) -> str:
        """The realm-export job: ``kc.sh export`` of realm ``akko`` with its users, uploaded to
        ``s3://<bucket>/keycloak/akko-realm-<UTC time>.json``; returns the key."""
        stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime())
        out = export_realm(self.server, REALM, self.root / f"akko-realm-{stamp}.json")
        key = f"{EXPORT_PREFIX}{out.name}"
        store.put(bucket, key, out, metadata={"realm": REALM})
        out.unlink()
        return key

    def serves_logins(self, deadline: float = SERVE_DEADLINE) -> str:
        """Keycloak's caches dropped (its database changed under it), then a real login of a realm user."""
        def cleared() -> bool:
            try:
                for clear in (self.identities.admin.clear_realm_cache, self.identities.admin.clear_user_cache,
                              self.identities.admin.clear_keys_cache):
                    clear()
            except Exception:  # the pool still holds connections to the database it replaced
                return False
            return True
        wait_for(f"Keycloak {self.server.url} to drop its caches", cleared, deadline, 0.5)
        return "caches cleared; " + self.identities.wait_for_login(PROBE_USER, deadline)

    def answers(self, deadline: float = SERVE_DEADLINE) -> str:
        """Wait until Keycloak answers its admin API (a read of the realm) after its database server came
        back; what answered. It writes nothing but the admin's session when its token is renewed."""
        def answered() -> bool:
            try:
                return bool(self.identities.admin.get_realm(REALM))
            except Exception:  # Keycloak's requests fail while the server is away
                return False
        started = time.monotonic()
        wait_for(f"Keycloak {self.server.url} to answer its admin API", answered, deadline, 0.5)
        return f"Keycloak {self.server.url} answered its admin API after {time.monotonic() - started:.1f}s"

    def stop(self) -> None:
        for server in (self.fresh, self.server):
            if server is not None:
                server.stop()


def start_sandbox_keycloak(db: PostgresDatabase, root: Path, administrators: list[str],
                           canary_sql: str = CANARY) -> SandboxKeycloak:
    """Keycloak on the sandbox's ``keycloak`` database: started, realm ``akko`` seeded, the canary table
    added beside Keycloak's own schema, and the seeded database kept as a dump (to heal it)."""
    home, why = keycloak_home()
    if home is None:
        raise DrillError(why)
    server = start_keycloak(home, db, DATABASE, root)
    try:
        identities = KeycloakIdentities(server.url, REALM, server.admin_user, server.admin_password,
                                        LOGIN_CLIENT, VERSION)
        started = time.monotonic()
        seed_realm(identities, administrators)
        keycloak = SandboxKeycloak(server, identities, root, seeded_in=time.monotonic() - started)
        db.execute(DATABASE, canary_sql)
        keycloak.seed_dump = root / "keycloak-seeded.sql.gz"
        db.dump(DATABASE, keycloak.seed_dump)
    except Exception:
        server.stop()
        raise
    return keycloak


def heal_database(keycloak: SandboxKeycloak, db: PostgresDatabase) -> None:
    """Put the seeded ``keycloak`` database back (it was dropped), then let Keycloak serve it."""
    assert keycloak.seed_dump is not None
    plain = keycloak.seed_dump.with_suffix("")
    with gzip.open(keycloak.seed_dump, "rb") as src, open(plain, "wb") as dst:
        shutil.copyfileobj(src, dst)
    db.create(DATABASE)
    db.load(DATABASE, plain)
    plain.unlink()
    keycloak.serves_logins()


class SandboxRealmRestore:
    """Drill 3's realm restore on the sandbox: a second Keycloak server, started on first use with its own
    empty database (on the segregated PostgreSQL server when there is one), the export imported into it."""

    def __init__(self, keycloak: SandboxKeycloak, db: PostgresDatabase, store) -> None:
        self.keycloak, self.db, self.store = keycloak, db, store
        self.kind = (f"a second Keycloak {VERSION} server with its own empty database {RESTORED_DATABASE} "
                     f"({db!r})")
        self.restored: KeycloakIdentities | None = None

    def _fresh_server(self) -> KeycloakServer:
        if self.keycloak.fresh is None:
            self.keycloak.fresh = start_keycloak(self.keycloak.server.home, self.db, RESTORED_DATABASE,
                                                 self.keycloak.root / "restored")
        return self.keycloak.fresh

    def restore(self, bucket: str, key: str) -> str:
        """Import the export ``s3://bucket/key`` as a new realm on the fresh server (replacing the realm a
        previous restore of this run imported there)."""
        export = json.loads(self.store.read(bucket, key))
        server = self._fresh_server()
        restored = KeycloakIdentities(server.url, export["realm"], server.admin_user, server.admin_password,
                                      LOGIN_CLIENT, VERSION)
        if export["realm"] in {r["realm"] for r in restored.admin.get_realms()}:
            restored.admin.delete_realm(export["realm"])
        restored.admin.create_realm(export)
        self.restored = restored
        return (f"realm {export['realm']} from s3://{bucket}/{key} ({len(export.get('users', []))} users) "
                f"imported into {self.kind} at {server.url}, started in {server.started_in:.1f}s")

    def _restored(self) -> KeycloakIdentities:
        if self.restored is None:
            raise DrillError("no realm export restored yet")
        return self.restored

    def user_login(self) -> tuple[bool, str]:
        """``user1`` logs in on the restored realm with the password it had on the source."""
        secret = self.keycloak.identities.credential(PROBE_USER)
        ok, answer = self._restored().can_authenticate(PROBE_USER, secret)
        return ok, f"{PROBE_USER}: {answer} at {self._restored().url}"

    def can_authenticate(self, identity: str, secret: str) -> tuple[bool, str]:
        return self._restored().can_authenticate(identity, secret)


# -- wiring into the sandbox ----------------------------------------------------------------------
def start_identity_provider(policy, db: PostgresDatabase, root: Path,
                            stoppers: list) -> Future[SandboxKeycloak] | None:
    """Start Keycloak in the background (the rest of the sandbox starts meanwhile); None when it is not
    provisioned. A provisioned Keycloak that fails to start fails the sandbox's start (a harness error)."""
    if keycloak_home()[0] is None:
        return None
    identity = policy.drills.get("drill-3", {}).get("compromised_identity")
    pool = ThreadPoolExecutor(1, thread_name_prefix="keycloak-start")
    future = pool.submit(start_sandbox_keycloak, db, root, [identity] if identity else [], CANARY)
    pool.shutdown(wait=False)
    stoppers.append(lambda: _stop_started(future))
    return future


def _stop_started(future: Future[SandboxKeycloak]) -> None:
    if future.exception() is None:
        future.result().stop()


def serve_identities(sandbox, keycloak: SandboxKeycloak) -> None:
    """Keycloak serves the sandbox's identities: its administrators get one password in Keycloak and
    in their PostgreSQL login role; Keycloak's service writes canaries to its database like the others."""
    from akko_dr.sandbox.identity import KeycloakAdministrator

    sandbox.keycloak = keycloak
    sandbox.identities = KeycloakAdministrator(keycloak.identities, sandbox.login_roles)
    identity = sandbox.policy.drills.get("drill-3", {}).get("compromised_identity")
    if identity:
        sandbox.identities.provision(identity)
    sandbox.seeded_tables[DATABASE] = set(sandbox.db.fingerprint(DATABASE))
    expire_exports(sandbox.policy, sandbox.store.client)


def expire_exports(policy, s3) -> None:
    """The backup bucket's lifecycle rule for the realm exports (as the chart's ILM rules), beside the
    rules already there."""
    bucket = policy.storage.backups_bucket
    for name, job in policy.jobs.items():
        if job.kind != "realm-export" or job.retention.cold is None:
            continue
        try:
            rules = s3.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules", [])
        except s3.exceptions.ClientError:
            rules = []
        rules.append({"ID": f"{name}-cold", "Status": "Enabled", "Filter": {"Prefix": EXPORT_PREFIX},
                      "Expiration": {"Days": job.retention.cold.days}})
        s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": rules})


def identity_component(sandbox, real_identity: bool) -> str:
    """What served the identity provider, for the report."""
    if sandbox.keycloak is not None:
        return sandbox.keycloak.component
    why = keycloak_home()[1] if real_identity else "this sandbox was started without a real identity provider"
    return f"PostgreSQL login roles (stand-in for Keycloak: {why})"


def export_location(policy) -> ExportLocation:
    return ExportLocation(policy.storage.backups_bucket, EXPORT_PREFIX, REALM)


def realm_export_job(keycloak: SandboxKeycloak, job: str, store, bucket: str) -> JobRun:
    """One run of the realm-export job."""
    run = JobRun(job=job, started_at=datetime.now(UTC))
    try:
        key = keycloak.export(store, bucket)
        run.copied.append(key)
        run.last_log_line = f"realm {REALM} exported to s3://{bucket}/{key}"
        run.succeeded = True
    except DrillError as err:
        run.error = str(err)
    run.finished_at = datetime.now(UTC)
    return run
