"""The Iceberg warehouse checks: fresh snapshots, every file of the current snapshots in the warehouse and
in the replica with the size its metadata records, and a snapshot retention that keeps the RPO window.

The files come from the manifests (through the catalog), never from a listing of the bucket; the listing
only says whether each named file is there and how big it is.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from akko_dr.checks import CheckResult, age_text, result
from akko_dr.errors import DrillError
from akko_dr.policy import Policy, ScopeItem, TargetClass, format_duration
from akko_dr.ports import IcebergFile, ObjectStore, Warehouse

REFS = ("playbook: Scope — Iceberg tables: object replication + Iceberg snapshots",
        "playbook: Targets — Critical data", "DORA Art. 12(1)")
ICEBERG_MECHANISM = "iceberg snapshots"  # how the policy's scope row for the Iceberg tables is recognised
POLL = 0.5  # seconds between two looks at the replica while waiting for replication


def iceberg_row(policy: Policy) -> ScopeItem:
    """The scope row that protects the Iceberg tables (its mechanism names Iceberg snapshots)."""
    for row in policy.scope:
        if ICEBERG_MECHANISM in row.mechanism.lower():
            return row
    raise DrillError("the policy's scope table has no row protected by Iceberg snapshots")


@dataclass
class WarehouseContext:
    """What the warehouse checks read: the catalog, the store, the replica, the class they are judged in."""

    policy: Policy
    warehouse: Warehouse
    store: ObjectStore
    now: datetime
    replica_deadline: timedelta  # how long a file may take to reach the replica (the probe deadline)

    @property
    def klass(self) -> TargetClass:
        return iceberg_row(self.policy).klass

    @property
    def replica(self) -> str:
        return self.policy.storage.replica_bucket


def check_snapshots_fresh(ctx: WarehouseContext) -> CheckResult:
    """Every table of the catalog has a current snapshot younger than the class RPO."""
    rpo, problems, ages, oldest = ctx.klass.rpo, [], {}, timedelta(0)
    tables = ctx.warehouse.tables()
    if not tables:
        problems.append(f"the catalog ({ctx.warehouse.catalog}) lists no table")
    for table in tables:
        history = ctx.warehouse.history(table)
        if not history:
            problems.append(f"{table} has no current snapshot")
            continue
        age = ctx.now - history[-1].committed_at
        ages[table], oldest = age_text(age), max(oldest, age)
        if age > rpo:
            problems.append(f"{table}'s current snapshot is {age_text(age)} old > RPO {format_duration(rpo)}")
    return result("warehouse.snapshots.fresh", "every Iceberg table has a current snapshot younger than its "
                  "class RPO", problems, f"{len(tables)} tables, newest snapshots at most "
                  f"{age_text(oldest)} old <= RPO {format_duration(rpo)} ({ctx.klass.title})",
                  REFS, tables=ages, catalog=ctx.warehouse.catalog, rpo=format_duration(rpo))


def sizes(store: ObjectStore, bucket: str, files: list[IcebergFile]) -> dict[str, int]:
    """The size of each named file in ``bucket`` (absent when missing), from listings of their folders."""
    folders = {f.key.rsplit("/", 1)[0] + "/" for f in files}
    listed = {o.key: o.size for folder in folders for o in store.list(bucket, folder)}
    return {f.key: listed[f.key] for f in files if f.key in listed}


def file_problems(files: list[IcebergFile], found: dict[str, int], where: str) -> list[str]:
    """Each file missing from ``found`` or of another size than its metadata records."""
    out = []
    for f in files:
        if f.key not in found:
            out.append(f"{f.kind} file {f.key} missing from {where}")
        elif f.size is not None and found[f.key] != f.size:
            out.append(f"{f.kind} file {f.key} in {where} has {found[f.key]} bytes, "
                       f"its metadata records {f.size}")
    return out


def current_files(warehouse: Warehouse, table: str) -> list[IcebergFile]:
    """Every file the table's current snapshot references (none when it has no snapshot)."""
    history = warehouse.history(table)
    return warehouse.files(table, history[-1].snapshot_id) if history else []


def wait_for_replica(ctx: WarehouseContext, files: list[IcebergFile],
                     sleep: Callable[[float], None] = time.sleep) -> tuple[list[str], float]:
    """Wait, up to the replica deadline, for every file in the replica with its recorded size; the problems
    left and the seconds waited."""
    start = time.monotonic()
    while True:
        problems = file_problems(files, sizes(ctx.store, ctx.replica, files), f"s3://{ctx.replica}")
        waited = time.monotonic() - start
        if not problems or waited >= ctx.replica_deadline.total_seconds():
            return problems, waited
        sleep(POLL)


def check_files_present(ctx: WarehouseContext) -> CheckResult:
    """Every file the current snapshots reference is in the warehouse and in the replica, with its size."""
    wh, problems, counted = ctx.warehouse, [], {}
    everything: list[IcebergFile] = []
    for table in wh.tables():
        files = current_files(wh, table)
        outside = [f for f in files if f.bucket != wh.bucket]
        problems += [f"{f.kind} file {f.uri} is outside the warehouse bucket {wh.bucket}" for f in outside]
        files = [f for f in files if f.bucket == wh.bucket]
        problems += file_problems(files, sizes(ctx.store, wh.bucket, files), f"s3://{wh.bucket}")
        counted[table] = {"data files": sum(f.kind == "data" for f in files), "files": len(files)}
        everything += files
    missing, waited = wait_for_replica(ctx, everything)
    problems += missing
    title = ("every file of the current Iceberg snapshots is in the warehouse and in the replica, with the "
             "size its manifest records")
    return result("warehouse.files.present", title, problems[:20] + (
                      [f"and {len(problems) - 20} more"] if len(problems) > 20 else []),
                  f"{len(everything)} files of {len(counted)} current snapshots are in s3://{wh.bucket} and "
                  f"s3://{ctx.replica} with the sizes their manifests record", REFS, tables=counted,
                  method="files named by the manifests (pyiceberg); sizes from the store",
                  replica_wait=f"{waited:.1f}s (deadline {format_duration(ctx.replica_deadline)})")


def check_retention(ctx: WarehouseContext) -> CheckResult:
    """Snapshot expiry keeps at least the RPO window: the policy's declaration, each table's settings, and
    the snapshot log each table actually keeps."""
    rpo, declared, problems = ctx.klass.rpo, ctx.policy.snapshot_retention, []
    if declared is not None and declared < rpo:
        problems.append(f"the policy's snapshot retention {format_duration(declared)} "
                        f"< RPO {format_duration(rpo)}")
    needed = max(rpo, declared or rpo)
    settings = {}
    for table in ctx.warehouse.tables():
        kept = ctx.warehouse.retention(table)
        settings[table] = format_duration(kept.max_age) + ("" if kept.declared else " (Iceberg default)")
        if kept.max_age < needed:
            problems.append(f"{table} expires snapshots older than {format_duration(kept.max_age)} < "
                            f"{format_duration(needed)}")
        problems += _log_problem(ctx, table, rpo)
    policy_text = format_duration(declared) if declared else "none declared"
    return result("warehouse.snapshots.retention", "Iceberg snapshot retention keeps at least the RPO window",
                  problems, f"{len(settings)} tables keep snapshots for at least {format_duration(needed)} "
                  f"(RPO {format_duration(rpo)}; policy: {policy_text})", REFS, tables=settings,
                  policy_retention=policy_text, rpo=format_duration(rpo))


def _log_problem(ctx: WarehouseContext, table: str, rpo: timedelta) -> list[str]:
    """The snapshot log must reach back over the RPO window, unless it still starts at the first snapshot."""
    history = ctx.warehouse.history(table)
    if not history or history[0].parent_id is None:
        return []
    reach = ctx.now - history[0].committed_at
    return [] if reach >= rpo else [f"{table}'s snapshot log reaches back {age_text(reach)} only "
                                    f"(older snapshots expired) < RPO {format_duration(rpo)}"]


def check_iceberg_scope(ctx: WarehouseContext, row: ScopeItem, artefacts: list[CheckResult]) -> CheckResult:
    """The scope row of the Iceberg tables, judged on its mechanism (snapshots + object replication); the
    artefacts of its jobs are reported beside, a failed one fails the row, a not applicable one is named."""
    parts = [check_snapshots_fresh(ctx), check_files_present(ctx), *artefacts]
    figures = {p.id: p.evidence() for p in parts}
    cid, title = f"scope.{row.component}", f"{row.component} has a fresh backup artefact"
    for status in ("failed", "uncovered", "inconclusive"):
        if hits := [p for p in parts if p.status == status]:
            return CheckResult(cid, title, status, "; ".join(p.reason for p in hits), figures, REFS)
    beside = [f"{p.id.rsplit('.', 1)[-1]}: {p.reason}" for p in parts[2:] if p.status != "passed"]
    reason = "; ".join(p.reason for p in parts if p.status == "passed")
    return CheckResult(cid, title, "passed", reason + (f" (beside: {'; '.join(beside)})" if beside else ""),
                       figures, REFS)
