"""The nightly restore test (the playbook's roadmap item), run in-cluster by a CronJob.

For each database: the newest scheduled dump is pulled, checked, restored into a scratch database on a
PostgreSQL server segregated from the source, validated, and the scratch database dropped. The restore
duration, the success and the RPO (the age of the restored dump) are pushed to a Pushgateway.

Nothing is written to the source server, the object store or Kubernetes: the object store is reached
through a read-only view, and the source is only read (its table set, when a dump has no manifest).
Exit 0: every dump restored and validated; 1: a finding (missing, stale, corrupt, not matching); 2: the
test could not run (configuration, an unreachable part, the push failed).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import yaml
from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

from akko_dr.checks.verification import judge_dump, latest_dumps
from akko_dr.drills.restore_database import RestoreDatabaseDrill
from akko_dr.errors import DrillError, NotApplicable, PolicyError, TargetUnavailable
from akko_dr.evidence.metrics import PUSHGATEWAY_ENV
from akko_dr.measure import utcnow
from akko_dr.policy import Policy, format_duration, load_policy
from akko_dr.ports import Database, Fingerprint, ObjectStore, StoredObject
from akko_dr.targetfile import (
    TargetFile,
    _credential,
    _section,
    kube_client,
    load_target_file,
    open_live,
    postgres_dsn,
    resolve,
)
from akko_dr.targets import Target, new_run_id

JOB = "akko-dr-nightly"  # the Pushgateway group: apart from the drills' (job akko-dr)
DRILL = "nightly-restore"
LABELS = ("drill", "database", "target")
PUSH_TIMEOUT = 10.0  # seconds


@dataclass
class NightlyResult:
    """One database's nightly restore test."""

    database: str
    target: str
    status: str = "error"  # passed | finding | error
    reason: str = ""
    dump: str = ""
    duration: float | None = None  # seconds: pull, restore and validation
    rpo: float | None = None  # seconds: age of the restored dump when the test started

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def line(self) -> str:
        figures = "".join(f"  {name} {format_duration(value)}" for name, value in
                          (("restore", self.duration), ("RPO", self.rpo)) if value is not None)
        return f"{self.status.upper():7} {self.database}: {self.reason}{figures}"


class ReadOnlyStore:
    """The object store as the nightly test sees it: listing and reading; every write refused."""

    def __init__(self, store: ObjectStore) -> None:
        self._store = store
        self.endpoint = store.endpoint

    def list(self, bucket: str, prefix: str = "") -> list[StoredObject]:
        return self._store.list(bucket, prefix)

    def read(self, bucket: str, key: str) -> bytes:
        return self._store.read(bucket, key)

    def download(self, bucket: str, key: str, path: Path) -> None:
        self._store.download(bucket, key, path)

    def _refuse(self, *args: object, **kwargs: object) -> None:
        raise DrillError("the nightly restore test writes nothing to the object store")

    put = put_bytes = delete = _refuse


# -- one database -----------------------------------------------------------------------------------
def restore_test(target: Target, database: str, now: datetime | None = None) -> NightlyResult:
    """Restore the newest dump of ``database`` on the target's segregated server and validate it."""
    result = NightlyResult(database, target.name)
    now = now or utcnow()
    try:
        segregated = target.port("segregated_db")
        dump = latest_dumps(target.policy, target.store)[database]
        problem, _ = judge_dump(target.policy, database, dump, now)
        if dump is None:
            raise DrillError(problem)
        result.rpo = dump.age(now).total_seconds()
        drill = RestoreDatabaseDrill(replace(target, db=segregated, store=ReadOnlyStore(target.store)),
                                     database, new_run_id())
        result.dump, how = _restore_and_validate(drill, target.db, result)
        result.status, result.reason = ("finding", problem) if problem else (
            "passed", f"{result.dump} restored on the segregated server and validated ({how})")
    except (TargetUnavailable, NotApplicable, PolicyError) as err:
        result.status, result.reason = "error", str(err)
    except DrillError as err:
        result.status, result.reason = "finding", str(err)
    except Exception as err:  # a harness bug: named, never a finding about the backup
        result.status, result.reason = "error", f"{type(err).__name__}: {_first_line(err)}"
    return result


def _restore_and_validate(drill: RestoreDatabaseDrill, source: Database,
                          result: NightlyResult) -> tuple[str, str]:
    """Pull, restore and validate; the scratch database is dropped whatever happens."""
    t0 = time.monotonic()
    try:
        backup = drill.pull_latest_backup()
        drill.restore_to_scratch()
        how = validate(backup.fingerprint, drill.target.db.fingerprint(drill.scratch),
                       lambda: source.fingerprint(drill.database), backup.key)
        result.duration = time.monotonic() - t0
        return f"s3://{backup.bucket}/{backup.key}", how
    finally:
        failed = [line for line in drill.abort() if "FAILED" in line]
        if failed:
            raise TargetUnavailable(f"scratch database {drill.scratch} left on the segregated server: "
                                    + "; ".join(failed))


def validate(recorded: Fingerprint, restored: Fingerprint, source: Callable[[], Fingerprint],
             key: str) -> str:
    """Compare a restored dump with its manifest (every table's rows and checksum), or without one
    with the source database's table set (read only); raise a DrillError naming each difference."""
    if recorded:
        expected, got = recorded, restored
        how = "full: rows and checksum of every table, against the manifest"
    else:
        expected, got = dict.fromkeys(source()), dict.fromkeys(restored)
        how = "structural: the table set of the source database (the dump has no manifest)"
    if not got:
        raise DrillError(f"restored dump {key} holds no table")
    missing, extra = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
    differ = sorted(t for t in set(expected) & set(got) if expected[t] != got[t])
    parts = [f"{label} {', '.join(names)}" for label, names in
             (("missing", missing), ("unexpected", extra), ("differing", differ)) if names]
    if parts:
        raise DrillError(f"restored dump {key} does not match: " + "; ".join(parts))
    return how


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else "no message"


# -- the figures ------------------------------------------------------------------------------------
def registry_for(results: list[NightlyResult]) -> CollectorRegistry:
    """Success, restore duration and RPO of each database's test (a figure not measured is left out)."""
    reg = CollectorRegistry()
    success = Gauge("akko_dr_nightly_restore_success",
                    "1 when the nightly test restored and validated the newest dump, else 0", LABELS,
                    registry=reg)
    duration = Gauge("akko_dr_restore_duration_seconds", "Measured recovery time (RTO) of the last drill run",
                     LABELS, registry=reg)
    rpo = Gauge("akko_dr_rpo_seconds", "Measured data loss (RPO) of the last drill run", LABELS, registry=reg)
    for r in results:
        labels = (DRILL, r.database, r.target)
        success.labels(*labels).set(1 if r.passed else 0)
        for gauge, value in ((duration, r.duration), (rpo, r.rpo)):
            if value is not None:
                gauge.labels(*labels).set(value)
    return reg


def push(results: list[NightlyResult], gateway: str | None) -> tuple[bool, str]:
    """Push the figures to ``gateway``; whether it worked (or was not asked for) and what happened."""
    if not gateway:
        return True, f"not pushed (no --pushgateway and no {PUSHGATEWAY_ENV} configured)"
    try:
        push_to_gateway(gateway, job=JOB, registry=registry_for(results), timeout=PUSH_TIMEOUT)
    except OSError as err:
        return False, f"push to the Pushgateway failed: {type(err).__name__}"  # the URL may hold credentials
    return True, "pushed to the configured Pushgateway"


def exit_code(results: list[NightlyResult], pushed: bool) -> int:
    if not pushed or any(r.status == "error" for r in results):
        return 2
    return 0 if all(r.passed for r in results) else 1


# -- the targets --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NightlyConfig:
    """The target file's ``nightly`` section: which databases, and the segregated restore server."""

    databases: tuple[str, ...]
    server: TargetFile | None  # the target file with the segregated server as its postgres section


def nightly_config(target_file: Path, policy: Policy) -> NightlyConfig:
    """Parse the ``nightly`` section; refuse a restore server that is the source server."""
    tf = load_target_file(target_file, policy.namespace)
    raw = yaml.safe_load(target_file.read_text()) or {}
    where = f"{target_file}: nightly"
    section = _section(raw, "nightly", str(target_file))
    pg = _section(section, "postgres", where)
    databases = tuple(section.get("databases") or ())
    if not pg:
        return NightlyConfig(databases, None)
    server = replace(tf, pg_host=str(pg.get("host", "")), pg_port=int(pg.get("port", 5432)),
                     pg_database=str(pg.get("database", "postgres")), pg_user=str(pg.get("user", "postgres")),
                     pg_password=_credential(pg, "password", f"{where}.postgres"))
    if (server.pg_host, server.pg_port) == (tf.pg_host, tf.pg_port):
        raise PolicyError(f"{where}.postgres: {server.pg_host}:{server.pg_port} is the source server; "
                          "the restore test needs a segregated one")
    return NightlyConfig(databases, server)


def _kube_api(tf: TargetFile) -> object:
    """In a pod, the pod's ServiceAccount; elsewhere the target file's kubeconfig."""
    from kubernetes import client, config

    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config()
        return client.ApiClient()
    return kube_client(tf)


@contextmanager
def live_nightly_target(policy: Policy, target_file: Path, cfg: NightlyConfig) -> Iterator[Target]:
    """The live target, read-only (no destructive opt-in), with its segregated restore server."""
    from akko_dr.adapters.kube import KubeCluster
    from akko_dr.adapters.postgres import PostgresDatabase

    tf = load_target_file(target_file, policy.namespace)
    api = _kube_api(tf)
    target = open_live(policy, tf, allow_destructive=False, api=api)
    if cfg.server is not None:
        cluster = KubeCluster(api, tf.namespace)
        dsn = postgres_dsn(cfg.server, resolve(cfg.server.pg_password, cluster.secret))
        segregated = PostgresDatabase(dsn)
        target = replace(target, segregated_db=segregated,
                         components=dict(target.components, segregated_postgresql=repr(segregated)))
    yield target


@contextmanager
def sandbox_nightly_target(policy: Policy) -> Iterator[Target]:
    """The sandbox, and a second embedded PostgreSQL server as the segregated restore server."""
    from akko_dr.sandbox.platform import _start_postgres
    from akko_dr.wiring import open_sandbox

    with open_sandbox(policy) as (_, target):
        server, segregated = _start_postgres(target.workdir, "pgdata-segregated")
        try:
            yield replace(target, segregated_db=segregated, components=dict(
                target.components, segregated_postgresql=f"second embedded PostgreSQL {server.pgdata}"))
        finally:
            server.cleanup()


# -- the command --------------------------------------------------------------------------------------
def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", choices=("sandbox", "live"), default="sandbox")
    parser.add_argument("--target-file", type=Path, default=None,
                        help="live target file; its 'nightly' section names the segregated server")
    parser.add_argument("--policy", type=Path, default=None, help="policy file (default: AKKO 2026.04)")
    parser.add_argument("--database", action="append", default=None,
                        help="a database to test (repeat); default: the target file's, else Drill 1's")
    parser.add_argument("--pushgateway", default=None, help=f"Pushgateway URL (default: ${PUSHGATEWAY_ENV})")


def add_nightly_command(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("nightly", help="restore the newest dumps on a segregated server, push figures")
    _add_arguments(parser)
    parser.set_defaults(handler=_nightly)


@contextmanager
def _open(args: argparse.Namespace, policy: Policy, cfg: NightlyConfig) -> Iterator[Target]:
    if args.target == "live":
        with live_nightly_target(policy, args.target_file, cfg) as target:
            yield target
    else:
        with sandbox_nightly_target(policy) as target:
            yield target


def _nightly(args: argparse.Namespace, extra: list[str]) -> int:
    try:
        if extra:
            raise PolicyError(f"unknown arguments: {' '.join(extra)}")
        if args.target == "live" and args.target_file is None:
            raise PolicyError("the live target needs --target-file")
        policy = load_policy(args.policy)
        cfg = nightly_config(args.target_file, policy) if args.target == "live" else NightlyConfig((), None)
        databases = args.database or list(cfg.databases) or [policy.drill("drill-1")["database"]]
        for name in databases:
            policy.database(name)
        with _open(args, policy, cfg) as target:
            print(f"akko-dr nightly restore test on {target.name}")
            results = [restore_test(target, name) for name in databases]
    except (DrillError, PolicyError) as err:
        print(f"akko-dr nightly: {err}", file=sys.stderr)
        return 2
    for r in results:
        print(r.line())
    pushed, how = push(results, args.pushgateway or os.environ.get(PUSHGATEWAY_ENV))
    print(how)
    return exit_code(results, pushed)


def main(argv: list[str] | None = None) -> int:
    """``akko-dr nightly`` on its own (the CLI registers it with ``add_nightly_command``)."""
    parser = argparse.ArgumentParser(prog="akko-dr nightly", description=__doc__)
    _add_arguments(parser)
    args, extra = parser.parse_known_args(argv)
    return _nightly(args, extra)


if __name__ == "__main__":
    sys.exit(main())
