"""The live target file (YAML): where the cluster, object store and PostgreSQL are, and where their
credentials come from. Credentials themselves never go in the file, nor in reports or logs.

    kube: {context: prod, namespace: akko, velero_namespace: velero, kubeconfig: ~/.kube/config}
    s3:
      endpoint: https://minio.akko.example
      region: us-east-1
      buckets: {backups_bucket: akko-backups, audit_bucket: akko-audit-cold}   # overrides of the policy
      access_key: {env: AKKO_S3_ACCESS_KEY}
      secret_key: {secret: akko/akko-minio#rootPassword}
      replica: {endpoint: https://minio.offsite.example, access_key: {env: AKKO_REPLICA_KEY},
                secret_key: {env: AKKO_REPLICA_SECRET}}   # the replica bucket's own server, if not this one
    postgres: {host: akko-postgresql.akko.svc, port: 5432, database: postgres, user: postgres,
               password: {secret: akko/akko-postgresql#postgres-password}}
    # or, with no route to the server: through the Kubernetes API (instead of host)
    #   postgres: {via: {port_forward: {statefulset: akko-postgresql, port: 5432}}}
    # and/or restores by the pod's own psql/pg_restore (kubectl exec -i … psql < dump)
    #   postgres: {via: {exec: {statefulset: akko-postgresql, container: postgresql, bin_dir: /usr/bin}}}
    keycloak:                # realm export JSONs; and, for Drill 3, the admin API of the realm
      exports: {bucket: akko-backups, prefix: keycloak/, realm: akko}
      url: https://keycloak.akko.example
      realm: akko
      admin_user: drill-admin          # a master-realm user allowed to manage the realm's users
      admin_password: {secret: akko/keycloak-drill-admin#password}
      login_client: akko-portal        # a public client with direct access grants (the login probe)
    logs: {victorialogs: http://victorialogs.akko.svc:9428}   # the logs layer the audit trail is read from
    drill_3:                 # Drill 3 rehearsals only (refused on production)
      rehearsal_attacker: true         # the harness acts as the attacker: Keycloak sign-in, then a
                                       # PostgreSQL login role of the identity (created with the opt-in)
      identity_s3: {access_key: {env: AKKO_ADMIN_S3_KEY}, secret_key: {env: AKKO_ADMIN_S3_SECRET}}
                                       # the identity's own S3 keys, for the WORM proof
    probes: {deadline: 5m}   # how long a replication canary may wait (--allow-probes); default: the policy's
    segregated_postgres: {host: akko-restore.dr.svc, password: {secret: dr/akko-restore#password}}
                             # a second server for segregated restores (DORA Art. 12(3)); or {embedded: true}
                             # for the nightly test's own throwaway server
    wal_archive: {bucket: akko-backups, prefix: wal, server: akko-pg}   # Barman's cloud layout, as
                             # the archiver writes it (read-only: base backups, WAL, pg_stat_archiver)
    production: false
    scratch_platform:        # Drill 2 only: a rehearsal platform of the drill's own, never the source
      kube: {context: dr-rehearsal, namespace: akko}
      s3: {endpoint: https://minio.dr.example, access_key: {env: DR_S3_KEY}, secret_key: {env: DR_S3_SECRET}}
      postgres: {host: akko-postgresql.dr.svc, password: {secret: akko/akko-postgresql#postgres-password}}
      rebuild_postgres: {host: akko-rebuilt.dr.svc}   # the new, empty server the rebuild provisions
    iceberg:                 # the Iceberg warehouse: a REST catalog (Polaris) and the bucket of its files
      catalog: {uri: https://polaris.akko.example/api/catalog, warehouse: akko,
                credential: {secret: akko/polaris-root#credential}, scope: "PRINCIPAL_ROLE:ALL"}
      bucket: akko-warehouse # default: the policy's first hot bucket
      namespaces: [akko]     # default: every namespace of the catalog
      writer: {service: akko-iceberg-writer, table: akko.events}   # the canary writer, if any
"""

from __future__ import annotations

import atexit
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml

from akko_dr.errors import PolicyError
from akko_dr.evidence import redact
from akko_dr.policy import Policy, parse_duration
from akko_dr.ports import ExportLocation
from akko_dr.targets import Target

_BUCKET_KEYS = ("backups_bucket", "audit_bucket", "replica_bucket", "hot_buckets")


@dataclass(frozen=True)
class Credential:
    """Where a secret comes from: an environment variable, or a key of a Kubernetes Secret."""

    env: str | None = None
    secret: tuple[str, str, str] | None = None  # namespace, name, key

    def __str__(self) -> str:
        return f"env {self.env}" if self.env else "secret {}/{}#{}".format(*self.secret)


@dataclass(frozen=True)
class IcebergLocation:
    """Where a live target's Iceberg catalog and warehouse are (credential sources only)."""

    uri: str
    warehouse: str = ""
    credential: Credential | None = None  # client_id:client_secret for the catalog's OAuth2 endpoint
    scope: str | None = None
    token_uri: str = ""  # the OAuth2 token endpoint (default: Polaris's <uri>/v1/oauth/tokens)
    bucket: str = ""
    namespaces: tuple[str, ...] = ()
    writer: str = ""
    table: str = ""


@dataclass(frozen=True)
class S3Site:
    """Another S3 server (the off-site replica's), with its credential sources."""

    endpoint: str
    region: str = "us-east-1"
    access_key: Credential | None = None
    secret_key: Credential | None = None


@dataclass(frozen=True)
class IdentityProviderLocation:
    """A Keycloak realm's admin API (credential source only)."""

    url: str
    realm: str
    admin_user: str
    admin_password: Credential | None
    login_client: str


@dataclass(frozen=True)
class Drill3Rehearsal:
    """What a Drill 3 rehearsal may use on a (non-production) live target."""

    rehearsal_attacker: bool = False
    identity_s3_key: Credential | None = None
    identity_s3_secret: Credential | None = None


@dataclass(frozen=True)
class PodRoute:
    """A pod of ``postgres.via``: by name, or a Running pod of a StatefulSet (in the kube namespace)."""

    kind: str  # "pod" | "statefulset"
    name: str
    port: int = 5432  # port_forward: the pod's PostgreSQL port
    container: str | None = None  # exec: the container running PostgreSQL (default: the pod's first)
    bin_dir: str = ""  # exec: where psql and pg_restore are in the container (default: its PATH)


@dataclass(frozen=True)
class TargetFile:
    """A parsed target file: locations and credential sources, no credential values."""

    path: Path
    namespace: str
    kube_context: str | None = None
    kubeconfig: str | None = None
    velero_namespace: str = "velero"
    s3_endpoint: str | None = None
    s3_region: str = "us-east-1"
    buckets: dict[str, Any] = field(default_factory=dict)
    s3_access_key: Credential | None = None
    s3_secret_key: Credential | None = None
    pg_host: str = ""
    pg_port: int = 5432
    pg_database: str = "postgres"
    pg_user: str = "postgres"
    pg_password: Credential | None = None
    realm_exports: ExportLocation | None = None
    production: bool = False
    probe_deadline: timedelta | None = None  # overrides the policy's cadence.probe_deadline
    segregated: TargetFile | None = None  # segregated_postgres: a second server for segregated restores
    segregated_embedded: bool = False  # segregated_postgres: {embedded: true} (the nightly test starts one)
    scratch: TargetFile | None = None  # scratch_platform: Drill 2's rehearsal platform of its own
    rebuild: TargetFile | None = None  # (in scratch_platform) rebuild_postgres: the new, empty server
    iceberg: IcebergLocation | None = None  # iceberg: the REST catalog (Polaris) and the warehouse bucket
    wal_archive: tuple[str, str, str] | None = None  # bucket, prefix, server name (Barman's cloud layout)
    replica: S3Site | None = None  # s3.replica: the server holding the replica bucket, when another one
    identity_provider: IdentityProviderLocation | None = None  # keycloak: the realm's admin API (Drill 3)
    logs_url: str | None = None  # logs.victorialogs: the logs layer the audit trail is read from
    drill_3: Drill3Rehearsal | None = None  # drill_3: what a Drill 3 rehearsal may use on this target
    pg_forward: PodRoute | None = None  # postgres.via.port_forward: the server through a port-forward
    pg_exec: PodRoute | None = None  # postgres.via.exec: restores by psql/pg_restore run in the pod

    def apply(self, policy: Policy) -> Policy:
        """The policy with this target's namespace, bucket names and probe deadline instead."""
        overrides = {k: tuple(v) if k == "hot_buckets" else v for k, v in self.buckets.items()}
        storage = replace(policy.storage, **overrides) if overrides else policy.storage
        return replace(policy, storage=storage, namespace=self.namespace,
                       probe_deadline=self.probe_deadline or policy.probe_deadline)


CREDENTIAL = "credential"  # {env: VAR} or {secret: ns/name#key}; checked by _credential, never echoed
_PG = {"host": str, "port": int, "database": str, "user": str, "password": CREDENTIAL}
SCHEMA: dict[str, dict[str, object]] = {  # every key each section may hold, and its type
    "": {"kube": dict, "s3": dict, "postgres": dict, "keycloak": dict, "probes": dict,
         "segregated_postgres": dict, "nightly": dict, "production": bool, "scratch_platform": dict,
         "wal_archive": dict, "iceberg": dict, "docker": dict, "logs": dict, "drill_3": dict},
    "kube": {"context": str, "namespace": str, "velero_namespace": str, "kubeconfig": str},
    "s3": {"endpoint": str, "region": str, "buckets": dict, "access_key": CREDENTIAL,
           "secret_key": CREDENTIAL, "replica": dict},
    "postgres": {**_PG, "via": dict},  # via: VIA below
    "segregated_postgres": {**_PG, "embedded": bool},
    "rebuild_postgres": _PG,  # in scratch_platform
    "keycloak": {"exports": dict, "url": str, "realm": str, "admin_user": str, "admin_password": CREDENTIAL,
                 "login_client": str},
    "logs": {"victorialogs": str},
    "drill_3": {"rehearsal_attacker": bool, "identity_s3": dict},
    "probes": {"deadline": str},
    "nightly": {"databases": list},  # akko_dr/nightly.py: which databases the nightly test restores
}
_FORMS = {str: "a string", int: "a port number (1-65535)", bool: "true or false", dict: "a mapping",
          list: "a list"}


SCRATCH_TOP = {"kube": dict, "s3": dict, "postgres": dict, "rebuild_postgres": dict, "production": bool}


def check_schema(raw: dict[str, Any], where: str, top: dict[str, object] | None = None) -> None:
    """Refuse an unknown key or a value of the wrong type, naming the file, the key and the expected
    form (the value itself is never echoed: it may be a credential put there by mistake). ``top``: the
    keys allowed at the top of this mapping, when not the file's (a scratch_platform section's)."""
    for name, allowed in SCHEMA.items():
        data = raw if not name else raw.get(name)
        allowed = (top or allowed) if not name else allowed
        if not isinstance(data, dict):
            continue  # absent; a section of the wrong type is refused by its parent
        check_keys(data, allowed, f"{name}." if name else "", where)


def check_keys(data: dict[str, Any], allowed: dict[str, object], prefix: str, where: str) -> None:
    """Refuse a key of ``data`` not in ``allowed``, or a value not of its type (never echoing a string)."""
    for key, value in data.items():
        kind = allowed.get(key)
        if kind is None:
            expected = ", ".join(allowed)
            raise PolicyError(f"{where}: {prefix}{key}: unknown key (expected one of {expected})")
        if kind is CREDENTIAL or value is None:
            continue
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if not ok or (kind is int and not 0 < value < 65536):
            raise PolicyError(f"{where}: {prefix}{key}: expected {_FORMS[kind]}, got "
                              f"{type(value).__name__}" + (f" {value}" if ok else ""))


def section(raw: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    """A mapping section of the file (empty when absent); anything else is refused with its key."""
    value = raw.get(key) or {}
    if not isinstance(value, dict):
        raise PolicyError(f"{where}: {key}: expected a mapping")
    return value


def _credential(section: dict[str, Any], key: str, where: str) -> Credential | None:
    value = section.get(key)
    if value is None:
        return None
    if isinstance(value, dict) and isinstance(value.get("env"), str):
        return Credential(env=value["env"])
    if isinstance(value, dict) and isinstance(value.get("secret"), str):
        ref = value["secret"]
        namespace, _, rest = ref.partition("/")
        name, _, item = rest.partition("#")
        if namespace and name and item:
            return Credential(secret=(namespace, name, item))
    raise PolicyError(f"{where}: {key}: credentials never go in the target file; give "
                      "{env: VARIABLE} or {secret: namespace/name#key}")


def load_target_file(path: str | Path, default_namespace: str = "akko") -> TargetFile:
    """Parse and validate a target file; a credential value in it is refused (and never echoed)."""
    where = str(path)
    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
    except OSError as err:
        raise PolicyError(f"{where}: cannot read target file ({err.strerror})") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise PolicyError(f"{where}: not valid YAML{at}") from None
    if not isinstance(raw, dict):
        raise PolicyError(f"{where}: expected a mapping at the top level")
    check_schema(raw, where)
    tf = _parse(raw, Path(path), where, default_namespace)
    if scratch := section(raw, SCRATCH, where):
        tf = replace(tf, scratch=_scratch(tf, scratch, f"{where}: {SCRATCH}", default_namespace))
    return tf


def _parse(raw: dict[str, Any], path: Path, where: str, default_namespace: str) -> TargetFile:
    kube, s3, pg = (section(raw, k, where) for k in ("kube", "s3", "postgres"))
    buckets = section(s3, "buckets", f"{where}: s3")
    if unknown := set(buckets) - set(_BUCKET_KEYS):
        raise PolicyError(f"{where}: s3.buckets: unknown {', '.join(sorted(unknown))} "
                          f"(expected {', '.join(_BUCKET_KEYS)})")
    tf = TargetFile(
        path=path, namespace=str(kube.get("namespace", default_namespace)),
        kube_context=kube.get("context"), kubeconfig=kube.get("kubeconfig"),
        velero_namespace=str(kube.get("velero_namespace", "velero")),
        s3_endpoint=s3.get("endpoint"), s3_region=str(s3.get("region", "us-east-1")), buckets=buckets,
        s3_access_key=_credential(s3, "access_key", f"{where}: s3"),
        s3_secret_key=_credential(s3, "secret_key", f"{where}: s3"),
        pg_host=str(pg.get("host", "")), pg_port=int(pg.get("port", 5432)),
        pg_database=str(pg.get("database", "postgres")), pg_user=str(pg.get("user", "postgres")),
        pg_password=_credential(pg, "password", f"{where}: postgres"),
        realm_exports=_exports(section(raw, "keycloak", where), where),
        production=bool(raw.get("production", False)),
        probe_deadline=_deadline(section(raw, "probes", where), where),
        wal_archive=_wal_archive(section(raw, "wal_archive", where), where))
    tf = replace(tf, iceberg=_iceberg(section(raw, "iceberg", where), where))
    tf = _with_drill_3(tf, raw, where)
    tf = replace(tf, replica=_replica(section(s3, "replica", f"{where}: s3"), f"{where}: s3.replica"))
    tf = _with_via(tf, section(pg, "via", f"{where}: postgres"), where)
    return _with_segregated(tf, section(raw, SEGREGATED, where), where)


SCRATCH, REBUILD = "scratch_platform", "rebuild_postgres"


def _server(tf: TargetFile, pg: dict[str, Any], where: str) -> TargetFile:
    """``tf`` pointed at another PostgreSQL server (a section shaped as ``postgres``)."""
    return replace(tf, pg_host=str(pg.get("host", "")), pg_port=int(pg.get("port", 5432)),
                   pg_database=str(pg.get("database", "postgres")), pg_user=str(pg.get("user", "postgres")),
                   pg_password=_credential(pg, "password", where), pg_forward=None, pg_exec=None)


def _scratch(source: TargetFile, raw: dict[str, Any], where: str, default_namespace: str) -> TargetFile:
    """Drill 2's rehearsal platform: refused when any part of it is the source's, or when it is production."""
    check_schema(raw, where, SCRATCH_TOP)
    scratch = _parse(raw, source.path, where, default_namespace)
    rebuild = section(raw, REBUILD, where)
    if not rebuild:
        raise PolicyError(f"{where}: {REBUILD}: expected the new, empty server the rebuild provisions")
    scratch = replace(scratch, rebuild=_server(scratch, rebuild, f"{where}: {REBUILD}"))
    same = [part for part, a, b in (
        ("its Kubernetes namespace", (scratch.kubeconfig, scratch.kube_context, scratch.namespace),
         (source.kubeconfig, source.kube_context, source.namespace)),
        ("its PostgreSQL server", server_id(scratch), server_id(source)),
        ("its rebuild server", server_id(scratch.rebuild), server_id(source)),
        ("its object store", scratch.s3_endpoint, source.s3_endpoint)) if a == b]
    if server_id(scratch.rebuild) == server_id(scratch):
        raise PolicyError(f"{where}: {REBUILD}: {scratch.pg_host}:{scratch.pg_port} is the server the drill "
                          "loses; the rebuild needs a new one")
    if same:
        raise PolicyError(f"{where}: {', '.join(same)} is the source's: Drill 2 destroys this platform, "
                          "so every part of it must be its own")
    if scratch.production:
        raise PolicyError(f"{where}: production: a scratch platform is never production")
    return scratch
def _iceberg(raw: dict[str, Any], where: str) -> IcebergLocation | None:
    """The ``iceberg`` section: a REST catalog's URI is required; a credential is a reference only."""
    if not raw:
        return None
    catalog = section(raw, "catalog", f"{where}: iceberg")
    writer = section(raw, "writer", f"{where}: iceberg")
    if not isinstance(catalog.get("uri"), str):
        raise PolicyError(f"{where}: iceberg.catalog.uri: expected the REST catalog's URI (Polaris)")
    return IcebergLocation(
        uri=catalog["uri"], warehouse=str(catalog.get("warehouse", "")),
        credential=_credential(catalog, "credential", f"{where}: iceberg.catalog"),
        scope=catalog.get("scope"), token_uri=str(catalog.get("token_uri", "")),
        bucket=str(raw.get("bucket", "")),
        namespaces=tuple(str(n) for n in raw.get("namespaces") or ()),
        writer=str(writer.get("service", "")), table=str(writer.get("table", "")))


def _replica(raw: dict[str, Any], where: str) -> S3Site | None:
    """The replica bucket's own server; refused without its endpoint."""
    if not raw:
        return None
    if not isinstance(raw.get("endpoint"), str):
        raise PolicyError(f"{where}: expected the endpoint of the replica's server")
    check_keys(raw, {"endpoint": str, "region": str, "access_key": CREDENTIAL, "secret_key": CREDENTIAL}, "",
               where)
    return S3Site(raw["endpoint"], str(raw.get("region", "us-east-1")), _credential(raw, "access_key", where),
                  _credential(raw, "secret_key", where))


def _with_drill_3(tf: TargetFile, raw: dict[str, Any], where: str) -> TargetFile:
    """The keycloak admin API, the logs layer and the drill_3 section; a rehearsal attacker on production
    is refused."""
    keycloak, logs = section(raw, "keycloak", where), section(raw, "logs", where)
    drill = section(raw, "drill_3", where)
    s3 = section(drill, "identity_s3", f"{where}: drill_3")
    provider = None
    if "url" in keycloak:
        if not all(isinstance(keycloak.get(k), str) for k in ("realm", "admin_user")):
            raise PolicyError(f"{where}: keycloak: expected realm and admin_user with the url")
        provider = IdentityProviderLocation(
            keycloak["url"], keycloak["realm"], keycloak["admin_user"],
            _credential(keycloak, "admin_password", f"{where}: keycloak"),
            str(keycloak.get("login_client", "akko-portal")))
    rehearsal = Drill3Rehearsal(bool(drill.get("rehearsal_attacker", False)),
                                _credential(s3, "access_key", f"{where}: drill_3.identity_s3"),
                                _credential(s3, "secret_key", f"{where}: drill_3.identity_s3"))
    if rehearsal.rehearsal_attacker and tf.production:
        raise PolicyError(f"{where}: drill_3.rehearsal_attacker: never on a production target (the harness "
                          "would drop a table as the compromised identity)")
    if rehearsal.rehearsal_attacker and provider is None:
        raise PolicyError(f"{where}: drill_3.rehearsal_attacker: the attacker signs in to Keycloak; name its "
                          "admin API (keycloak.url, realm, admin_user, admin_password)")
    return replace(tf, identity_provider=provider, logs_url=logs.get("victorialogs"),
                   drill_3=rehearsal if drill else None)


SEGREGATED = "segregated_postgres"  # shaped as postgres, or {embedded: true}


def _with_segregated(tf: TargetFile, pg: dict[str, Any], where: str) -> TargetFile:
    """The target file with its segregated restore server; refused when it is the source server."""
    if not pg or pg.get("embedded") is True:
        return replace(tf, segregated_embedded=bool(pg))
    server = _server(tf, pg, f"{where}: {SEGREGATED}")
    if (server.pg_host, server.pg_port) == (tf.pg_host, tf.pg_port):
        raise PolicyError(f"{where}: {SEGREGATED}: {server.pg_host}:{server.pg_port} is the source server; "
                          "a segregated restore needs another one")
    return replace(tf, segregated=server)


VIA = {  # postgres.via: the server reached through the Kubernetes API, in the kube namespace
    "port_forward": {"pod": str, "statefulset": str, "port": int},
    "exec": {"pod": str, "statefulset": str, "container": str, "bin_dir": str},
}


def _with_via(tf: TargetFile, via: dict[str, Any], where: str) -> TargetFile:
    """``postgres.via``: a port-forward to a pod (instead of ``host``) and/or restores by exec in it."""
    if not via:
        return tf
    check_keys(via, dict.fromkeys(VIA, dict), "postgres.via.", where)
    routes = {}
    for way, raw in via.items():
        prefix = f"postgres.via.{way}"
        check_keys(raw or {}, VIA[way], f"{prefix}.", where)
        named = [k for k in ("pod", "statefulset") if (raw or {}).get(k)]
        if len(named) != 1:
            raise PolicyError(f"{where}: {prefix}: expected one of pod or statefulset")
        routes[way] = PodRoute(named[0], raw[named[0]], raw.get("port") or 5432, raw.get("container"),
                               raw.get("bin_dir") or "")
    if "port_forward" in routes and tf.pg_host:
        raise PolicyError(f"{where}: postgres.via.port_forward: the server is reached through the forward; "
                          "remove postgres.host")
    return replace(tf, pg_forward=routes.get("port_forward"), pg_exec=routes.get("exec"))


def server_id(tf: TargetFile) -> tuple[object, ...]:
    """Which PostgreSQL server the file means: its host and port, or the pod a port-forward reaches."""
    if tf.pg_forward is not None:
        return tf.kubeconfig, tf.kube_context, tf.namespace, tf.pg_forward.kind, tf.pg_forward.name
    return tf.pg_host, tf.pg_port


def _deadline(probes: dict[str, Any], where: str) -> timedelta | None:
    if "deadline" not in probes:
        return None
    return parse_duration(probes["deadline"], f"{where}: probes.deadline")


def _exports(keycloak: dict[str, Any], where: str) -> ExportLocation | None:
    exports = section(keycloak, "exports", f"{where}: keycloak")
    if not exports:
        return None
    if not all(isinstance(exports.get(k), str) for k in ("bucket", "prefix", "realm")):
        raise PolicyError(f"{where}: keycloak.exports: expected bucket, prefix and realm")
    return ExportLocation(exports["bucket"], exports["prefix"], exports["realm"])


def _wal_archive(archive: dict[str, Any], where: str) -> tuple[str, str, str] | None:
    if not archive:
        return None
    if not all(isinstance(archive.get(k), str) for k in ("bucket", "prefix", "server")):
        raise PolicyError(f"{where}: wal_archive: expected bucket, prefix and server (Barman's server name)")
    return archive["bucket"], archive["prefix"], archive["server"]


SecretReader = Callable[[str, str, str], str]


def resolve(credential: Credential | None, read_secret: SecretReader,
            env: Mapping[str, str] = os.environ, secret: bool = True) -> str | None:
    """The credential's value, from the environment or a Kubernetes Secret (never logged: it joins the
    evidence's redaction set, unless it is an identifier such as an S3 access key id, ``secret`` False)."""
    if credential is None:
        return None
    if credential.env:
        if credential.env not in env:
            raise PolicyError(f"credential from {credential}: the variable is not set")
        value = env[credential.env]
    else:
        value = read_secret(*credential.secret)
    if secret:
        redact.remember(f"credential from {credential}", value)
    return value


def postgres_dsn(tf: TargetFile, password: str | None) -> str:
    """A libpq URI for the target's PostgreSQL; the password only in memory."""
    auth = quote(tf.pg_user, safe="") + (f":{quote(password, safe='')}" if password else "")
    host = tf.pg_host if not tf.pg_host.startswith("/") else ""
    query = f"?host={quote(tf.pg_host, safe='/')}" if tf.pg_host.startswith("/") else ""
    return f"postgresql://{auth}@{host}:{tf.pg_port}/{tf.pg_database}{query}"


def workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="akko-dr-live-"))


def kube_client(tf: TargetFile) -> Any:
    """An API client for the file's kubeconfig and context (the default kubeconfig when not named)."""
    from kubernetes import config

    path = os.path.expanduser(tf.kubeconfig) if tf.kubeconfig else None
    try:
        return config.new_client_from_config(config_file=path, context=tf.kube_context)
    except (config.ConfigException, OSError) as err:
        raise PolicyError(f"{tf.path}: kube: cannot load kubeconfig ({type(err).__name__})") from None


LIVE_GAPS = {
    "platform": "a live cluster is never destroyed by the harness: Drill 2 runs on the scratch platform the "
                "target file names (scratch_platform)",
    "identities": "the target file names no identity provider admin API (keycloak.url, realm, admin_user, "
                  "admin_password)",
    "adversary": "no simulated attacker acts on this live target (drill_3.rehearsal_attacker is not set)",
    "realm_restore": "a fresh Keycloak for the realm export is not started on a live target (the sandbox "
                     "restores its export into a second server of its own)",
    "object_keys": "the target file names no S3 keys of the compromised identity (drill_3.identity_s3)",
    "store_as": "the target file names no S3 keys of the compromised identity (drill_3.identity_s3)",
    "segregated_db": "the target file names no second PostgreSQL server for segregated restores "
                     "(segregated_postgres)",
    "warehouse": "the target file names no Iceberg catalog (iceberg.catalog)",
    "wal_archive": "the target file names no WAL archive (wal_archive: bucket, prefix, server)",
    "pitr": "no point-in-time recovery adapter is wired for a live target yet (Barman's restore on the "
            "segregated server)",
}


def live_database(tf: TargetFile, kube: Any, password: str | None) -> tuple[Any, dict[str, str]]:
    """The target's PostgreSQL through its DSN, or through a port-forward opened now (closed when the
    run's process ends); its restores by the pod's own tools through exec when ``postgres.via.exec``
    names the pod. Also what the evidence says of the route."""
    from akko_dr.adapters.kube_postgres import ExecRestoringDatabase, PodPortForward, PodRef, PsqlExec
    from akko_dr.adapters.postgres import PostgresDatabase

    notes = {}
    if (route := tf.pg_forward) is not None:
        forward = PodPortForward(kube, tf.namespace, PodRef(route.kind, route.name), route.port).open()
        atexit.register(forward.close)
        tf = replace(tf, pg_host="127.0.0.1", pg_port=forward.local_port)
        notes["postgresql reached by"] = forward.describe()
    dsn = postgres_dsn(tf, password)
    if (route := tf.pg_exec) is None:
        return PostgresDatabase(dsn), notes
    runner = PsqlExec(kube, tf.namespace, PodRef(route.kind, route.name), route.container, route.bin_dir,
                      tf.pg_user)
    notes["postgresql restores by"] = runner.describe()
    return ExecRestoringDatabase(dsn, runner), notes


def live_warehouse(tf: TargetFile, policy: Policy, read_secret: SecretReader) -> Any:
    """The Iceberg warehouse port over the target's REST catalog (Polaris), files through its S3 endpoint;
    the catalog is contacted on first use."""
    from akko_dr.adapters.iceberg import IcebergWarehouse, open_rest_catalog, s3_properties

    ice = tf.iceberg
    credential = resolve(ice.credential, read_secret)
    s3 = s3_properties(tf.s3_endpoint, resolve(tf.s3_access_key, read_secret),
                       resolve(tf.s3_secret_key, read_secret), tf.s3_region)
    bucket = ice.bucket or (policy.storage.hot_buckets or ("",))[0]
    return IcebergWarehouse(lambda: open_rest_catalog("polaris", ice.uri, ice.warehouse, s3, credential,
                                                      ice.scope, ice.token_uri),
                            bucket, f"REST catalog at {ice.uri} (pyiceberg RestCatalog)",
                            ice.namespaces or None, ice.writer, ice.table)


def live_drill_3(tf: TargetFile, policy: Policy, db: Any, store: Any,
                 read_secret: SecretReader) -> tuple[dict[str, Any], dict[str, str]]:
    """Drill 3's ports the target file names: the realm's users (Keycloak admin API), the rehearsal
    attacker (the same identities, with the identity's PostgreSQL login role), the identity's own S3 keys
    and the logs layer. Returns the ports and what the evidence says serves them."""
    from akko_dr.adapters.audit_trail import ObjectStoreAuditTrail
    from akko_dr.adapters.keycloak import KeycloakIdentities
    from akko_dr.adapters.login_roles import KeycloakAdministrator, PostgresLoginRoles
    from akko_dr.adapters.s3 import S3ObjectStore
    from akko_dr.adapters.victorialogs import LogsLayerAuditTrail, VictoriaLogs

    ports: dict[str, Any] = {}
    components: dict[str, str] = {}
    trail = ObjectStoreAuditTrail(store, policy.storage.audit_bucket)
    ports["audit_trail"] = LogsLayerAuditTrail(trail, VictoriaLogs(tf.logs_url)) if tf.logs_url else trail
    components["logs layer"] = f"VictoriaLogs at {tf.logs_url}" if tf.logs_url else "none named (logs)"
    if (kc := tf.identity_provider) is not None:
        keycloak = KeycloakIdentities(kc.url, kc.realm, kc.admin_user,
                                      resolve(kc.admin_password, read_secret) or "", kc.login_client)
        ports["identities"] = keycloak
        components["identity-provider"] = f"{keycloak.kind} (admin API as {kc.admin_user})"
    rehearsal = tf.drill_3 or Drill3Rehearsal()
    if rehearsal.rehearsal_attacker and "identities" in ports:
        roles = PostgresLoginRoles(db, policy)  # its statement log is the platform's, not readable here
        ports["identities"] = ports["adversary"] = KeycloakAdministrator(ports["identities"], roles)
        components["rehearsal attacker"] = ("the harness, as the compromised identity: Keycloak sign-in, "
                                            "then its PostgreSQL login role (drill_3.rehearsal_attacker)")
    if rehearsal.identity_s3_key and rehearsal.identity_s3_secret:
        keys = (resolve(rehearsal.identity_s3_key, read_secret, secret=False),  # an id, named in evidence
                resolve(rehearsal.identity_s3_secret, read_secret))
        ports["object_keys"] = lambda identity: keys
        ports["store_as"] = lambda user, secret: S3ObjectStore(store.endpoint, region=tf.s3_region,
                                                               access_key=user, secret_key=secret)
    return ports, components


def live_store(store: Any, tf: TargetFile, policy: Policy, read_secret: SecretReader) -> tuple[Any, Any]:
    """The object store and its bucket inspector: one server, or the replica bucket on its own server."""
    from akko_dr.adapters.s3 import S3BucketInspector, S3ObjectStore
    from akko_dr.adapters.s3_sites import SitedBucketInspector, SitedObjectStore

    if tf.replica is None:
        return store, S3BucketInspector(store)
    site = S3ObjectStore(tf.replica.endpoint, region=tf.replica.region,
                         access_key=resolve(tf.replica.access_key, read_secret),
                         secret_key=resolve(tf.replica.secret_key, read_secret),
                         timeout=policy.deadlines["object_store"].total_seconds())
    sited = SitedObjectStore(store, {policy.storage.replica_bucket: site})
    return sited, SitedBucketInspector(sited)


def open_live(policy: Policy, tf: TargetFile, allow_destructive: bool, allow_probes: bool = False,
              api: Any = None) -> Target:
    """Wire the live target: Kubernetes (read-only checks; scale, Jobs and eradication, which write only
    with ``allow_destructive``), S3 (probes only with ``allow_probes``) and PostgreSQL."""
    from akko_dr.adapters.kube import KubeCluster
    from akko_dr.adapters.kube_api import KubeApi
    from akko_dr.adapters.kube_eradicator import LabelledEradicator
    from akko_dr.adapters.kube_jobs import KubeJobRunner
    from akko_dr.adapters.kube_orchestrator import RolloutOrchestrator
    from akko_dr.adapters.postgres import CanaryTable, PostgresDatabase
    from akko_dr.adapters.s3 import S3ObjectStore
    from akko_dr.adapters.velero import VeleroCrds
    from akko_dr.adapters.wal_archive import BarmanCloudArchive

    cluster = KubeCluster(api or kube_client(tf), tf.namespace, tf.velero_namespace, tf.realm_exports)
    kube = KubeApi(cluster.api, writes_allowed=allow_destructive)
    store = S3ObjectStore(tf.s3_endpoint, region=tf.s3_region,
                          access_key=resolve(tf.s3_access_key, cluster.secret),
                          secret_key=resolve(tf.s3_secret_key, cluster.secret),
                          timeout=policy.deadlines["object_store"].total_seconds())
    db, reached = live_database(tf, kube, resolve(tf.pg_password, cluster.secret))
    components = {"kubernetes": f"{cluster.api.configuration.host}, context "
                                f"{tf.kube_context or 'current-context'}, namespace {tf.namespace}",
                  "object-store": f"S3 at {store.endpoint}", "postgresql": repr(db),
                  "credentials": ", ".join(f"{k} from {c}" for k, c in (
                      ("s3 access key", tf.s3_access_key), ("s3 secret key", tf.s3_secret_key),
                      ("postgres password", tf.pg_password)) if c), **reached}
    segregated = None
    if tf.segregated is not None:  # a second server, for restores segregated from the source
        password = resolve(tf.segregated.pg_password, cluster.secret)
        segregated = PostgresDatabase(postgres_dsn(tf.segregated, password))
        components["segregated restores"] = repr(segregated)
    wal_archive = (BarmanCloudArchive(store, *tf.wal_archive, db.dsn(tf.pg_database))
                   if tf.wal_archive else None)
    policy = tf.apply(policy)
    store, buckets = live_store(store, tf, policy, cluster.secret)
    if tf.replica is not None:
        components["object-store"] += f"; {policy.storage.replica_bucket} at {tf.replica.endpoint}"
    wait = {k: d.total_seconds() for k, d in policy.deadlines.items()}  # from the policy's cadence
    gaps = dict(LIVE_GAPS)
    warehouse = live_warehouse(tf, policy, cluster.secret) if tf.iceberg else None
    if warehouse is not None:
        gaps.pop("warehouse")
        components["iceberg"] = warehouse.catalog
    drill_3, served = live_drill_3(tf, policy, db, store, cluster.secret)
    components.update(served)
    for port in drill_3:
        gaps.pop(port, None)
    return Target(kind="live", name=f"live {tf.kube_context or 'current-context'}/{tf.namespace}",
                  policy=policy, db=db, store=store,
                  orchestrator=RolloutOrchestrator(kube, tf.namespace, deadline=wait["rollout"]),
                  jobs=KubeJobRunner(kube, tf.namespace, deadline=wait["job"]),
                  eradicator=LabelledEradicator(kube, tf.namespace),
                  velero=VeleroCrds(kube, tf.velero_namespace, deadline=wait["restore"]),
                  segregated_db=segregated, wal_archive=wal_archive,
                  workdir=workdir(), canary=CanaryTable(lambda: db), buckets=buckets,
                  source=cluster, gaps=gaps, components=components, destructive_allowed=allow_destructive,
                  probes_allowed=allow_probes, production=tf.production, warehouse=warehouse,
                  scratch_platform=(lambda: rehearsal(policy, tf.scratch, allow_destructive))
                  if tf.scratch else None, **drill_3)


@contextmanager
def rehearsal(policy: Policy, scratch: TargetFile, allow_destructive: bool) -> Iterator[Target]:
    """Drill 2's platform of its own: the scratch platform's target, whose platform it may lose (with the
    opt-in) and rebuild on its rebuild server; the services' canary follows the server they write to."""
    from akko_dr.adapters.postgres import CanaryTable, PostgresDatabase
    from akko_dr.adapters.rehearsal_platform import RehearsalPlatform
    from akko_dr.targets import new_run_id

    target = open_live(policy, scratch, allow_destructive)
    rebuild = PostgresDatabase(postgres_dsn(scratch.rebuild, resolve(scratch.rebuild.pg_password,
                                                                     target.source.secret)))
    platform = RehearsalPlatform(target.policy, target.db, rebuild, target.store, new_run_id())
    gaps = {k: v for k, v in target.gaps.items() if k != "platform"}
    components = dict(target.components, platform="the target file's scratch_platform (never the source)")
    components["rebuild server"] = repr(rebuild)
    yield replace(target, name=f"rehearsal {target.name}", platform=platform, gaps=gaps,
                  components=components, canary=CanaryTable(lambda: platform.current))
