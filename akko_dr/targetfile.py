"""The live target file (YAML): where the cluster, object store and PostgreSQL are, and where their
credentials come from. Credentials themselves never go in the file, nor in reports or logs.

    kube: {context: prod, namespace: akko, velero_namespace: velero, kubeconfig: ~/.kube/config}
    s3:
      endpoint: https://minio.akko.example
      region: us-east-1
      buckets: {backups_bucket: akko-backups, audit_bucket: akko-audit-cold}   # overrides of the policy
      access_key: {env: AKKO_S3_ACCESS_KEY}
      secret_key: {secret: akko/akko-minio#rootPassword}
    postgres: {host: akko-postgresql.akko.svc, port: 5432, database: postgres, user: postgres,
               password: {secret: akko/akko-postgresql#postgres-password}}
    keycloak: {exports: {bucket: akko-backups, prefix: keycloak/, realm: akko}}   # realm export JSONs
    probes: {deadline: 5m}   # how long a replication canary may wait (--allow-probes); default: the policy's
    segregated_postgres: {host: akko-restore.dr.svc, password: {secret: dr/akko-restore#password}}
                             # a second server for segregated restores (DORA Art. 12(3)); or {embedded: true}
                             # for the nightly test's own throwaway server
    production: false
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping
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
         "segregated_postgres": dict, "nightly": dict, "production": bool},
    "kube": {"context": str, "namespace": str, "velero_namespace": str, "kubeconfig": str},
    "s3": {"endpoint": str, "region": str, "buckets": dict, "access_key": CREDENTIAL,
           "secret_key": CREDENTIAL},
    "postgres": _PG,
    "segregated_postgres": {**_PG, "embedded": bool},
    "keycloak": {"exports": dict},
    "probes": {"deadline": str},
    "nightly": {"databases": list},  # akko_dr/nightly.py: which databases the nightly test restores
}
_FORMS = {str: "a string", int: "a port number (1-65535)", bool: "true or false", dict: "a mapping",
          list: "a list"}


def check_schema(raw: dict[str, Any], where: str) -> None:
    """Refuse an unknown key or a value of the wrong type, naming the file, the key and the expected
    form (the value itself is never echoed: it may be a credential put there by mistake)."""
    for name, allowed in SCHEMA.items():
        data = raw if not name else raw.get(name)
        if not isinstance(data, dict):
            continue  # absent; a section of the wrong type is refused by its parent
        prefix = f"{name}." if name else ""
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
    kube, s3, pg = (section(raw, k, where) for k in ("kube", "s3", "postgres"))
    buckets = section(s3, "buckets", f"{where}: s3")
    if unknown := set(buckets) - set(_BUCKET_KEYS):
        raise PolicyError(f"{where}: s3.buckets: unknown {', '.join(sorted(unknown))} "
                          f"(expected {', '.join(_BUCKET_KEYS)})")
    tf = TargetFile(
        path=Path(path), namespace=str(kube.get("namespace", default_namespace)),
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
        probe_deadline=_deadline(section(raw, "probes", where), where))
    return _with_segregated(tf, section(raw, SEGREGATED, where), where)


SEGREGATED = "segregated_postgres"  # shaped as postgres, or {embedded: true}


def _with_segregated(tf: TargetFile, pg: dict[str, Any], where: str) -> TargetFile:
    """The target file with its segregated restore server; refused when it is the source server."""
    if not pg or pg.get("embedded") is True:
        return replace(tf, segregated_embedded=bool(pg))
    server = replace(tf, pg_host=str(pg.get("host", "")), pg_port=int(pg.get("port", 5432)),
                     pg_database=str(pg.get("database", "postgres")), pg_user=str(pg.get("user", "postgres")),
                     pg_password=_credential(pg, "password", f"{where}: {SEGREGATED}"))
    if (server.pg_host, server.pg_port) == (tf.pg_host, tf.pg_port):
        raise PolicyError(f"{where}: {SEGREGATED}: {server.pg_host}:{server.pg_port} is the source server; "
                          "a segregated restore needs another one")
    return replace(tf, segregated=server)


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


SecretReader = Callable[[str, str, str], str]


def resolve(credential: Credential | None, read_secret: SecretReader,
            env: Mapping[str, str] = os.environ) -> str | None:
    """The credential's value, from the environment or a Kubernetes Secret (never logged: it joins the
    evidence's redaction set)."""
    if credential is None:
        return None
    if credential.env:
        if credential.env not in env:
            raise PolicyError(f"credential from {credential}: the variable is not set")
        value = env[credential.env]
    else:
        value = read_secret(*credential.secret)
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
    "platform": "a live cluster is never destroyed by the harness: Drill 2 runs on a scratch cluster",
    "identities": "no identity provider adapter is wired for the live target yet (Keycloak)",
    "adversary": "no simulated attacker acts on a live target",
    "segregated_db": "the target file names no second PostgreSQL server for segregated restores "
                     "(segregated_postgres)",
}


def open_live(policy: Policy, tf: TargetFile, allow_destructive: bool, allow_probes: bool = False,
              api: Any = None) -> Target:
    """Wire the live target: Kubernetes (read-only checks; scale, Jobs and eradication, which write only
    with ``allow_destructive``), S3 (probes only with ``allow_probes``) and PostgreSQL."""
    from akko_dr.adapters.audit_trail import ObjectStoreAuditTrail
    from akko_dr.adapters.kube import KubeCluster
    from akko_dr.adapters.kube_api import KubeApi
    from akko_dr.adapters.kube_eradicator import LabelledEradicator
    from akko_dr.adapters.kube_jobs import KubeJobRunner
    from akko_dr.adapters.kube_orchestrator import RolloutOrchestrator
    from akko_dr.adapters.postgres import CanaryTable, PostgresDatabase
    from akko_dr.adapters.s3 import S3BucketInspector, S3ObjectStore
    from akko_dr.adapters.velero import VeleroCrds

    cluster = KubeCluster(api or kube_client(tf), tf.namespace, tf.velero_namespace, tf.realm_exports)
    kube = KubeApi(cluster.api, writes_allowed=allow_destructive)
    store = S3ObjectStore(tf.s3_endpoint, region=tf.s3_region,
                          access_key=resolve(tf.s3_access_key, cluster.secret),
                          secret_key=resolve(tf.s3_secret_key, cluster.secret),
                          timeout=policy.deadlines["object_store"].total_seconds())
    db = PostgresDatabase(postgres_dsn(tf, resolve(tf.pg_password, cluster.secret)))
    components = {"kubernetes": f"{cluster.api.configuration.host}, context "
                                f"{tf.kube_context or 'current-context'}, namespace {tf.namespace}",
                  "object-store": f"S3 at {store.endpoint}", "postgresql": repr(db),
                  "credentials": ", ".join(f"{k} from {c}" for k, c in (
                      ("s3 access key", tf.s3_access_key), ("s3 secret key", tf.s3_secret_key),
                      ("postgres password", tf.pg_password)) if c)}
    segregated = None
    if tf.segregated is not None:  # a second server, for restores segregated from the source
        password = resolve(tf.segregated.pg_password, cluster.secret)
        segregated = PostgresDatabase(postgres_dsn(tf.segregated, password))
        components["segregated restores"] = repr(segregated)
    policy = tf.apply(policy)
    wait = {k: d.total_seconds() for k, d in policy.deadlines.items()}  # from the policy's cadence
    return Target(kind="live", name=f"live {tf.kube_context or 'current-context'}/{tf.namespace}",
                  policy=policy, db=db, store=store,
                  orchestrator=RolloutOrchestrator(kube, tf.namespace, deadline=wait["rollout"]),
                  jobs=KubeJobRunner(kube, tf.namespace, deadline=wait["job"]),
                  eradicator=LabelledEradicator(kube, tf.namespace),
                  velero=VeleroCrds(kube, tf.velero_namespace, deadline=wait["restore"]),
                  segregated_db=segregated,
                  workdir=workdir(), canary=CanaryTable(lambda: db), buckets=S3BucketInspector(store),
                  source=cluster, audit_trail=ObjectStoreAuditTrail(store, policy.storage.audit_bucket),
                  gaps=dict(LIVE_GAPS), components=components, destructive_allowed=allow_destructive,
                  probes_allowed=allow_probes, production=tf.production)
