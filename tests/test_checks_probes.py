"""Probes and their read-only alternatives, on in-memory fakes of the object store port (no emulator):
what a check writes, how long it waits, and what it says about the method it used."""

from __future__ import annotations

import ast
import time
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from akko_dr.checks.scope import READ_ONLY_REPLICATION, ScopeContext, check_artefact
from akko_dr.checks.verification import PLAN_KEY, check_databases_present
from akko_dr.errors import PolicyError, TargetUnavailable
from akko_dr.measure import utcnow
from akko_dr.policy import BackupJob, Policy, load_policy
from akko_dr.ports import StoredObject
from akko_dr.targetfile import load_target_file

ROOT = Path(__file__).resolve().parents[1]
SLACK = 1.5  # seconds a probe may overrun its deadline here (one listing, the cleanup)


@dataclass
class FakeStore:
    """Objects by bucket, with the times the test gives them; records every write."""

    objects: dict[str, list[StoredObject]] = field(default_factory=dict)
    writes: list[str] = field(default_factory=list)
    replicate_to: str | None = None  # copy every put here, as a working replication would
    endpoint: str = "fake"

    def add(self, bucket: str, key: str, at: datetime) -> None:
        self.objects.setdefault(bucket, []).append(StoredObject(bucket, key, 1, at))

    def list(self, bucket: str, prefix: str = "") -> list[StoredObject]:
        return [o for o in self.objects.get(bucket, []) if o.key.startswith(prefix)]

    def put_bytes(self, bucket: str, key: str, body: bytes) -> None:
        self.writes.append(f"PUT {bucket}/{key}")
        self.add(bucket, key, utcnow())
        if self.replicate_to:
            self.add(self.replicate_to, key, utcnow())

    def delete(self, bucket: str, key: str) -> None:
        self.writes.append(f"DELETE {bucket}/{key}")
        self.objects[bucket] = [o for o in self.objects.get(bucket, []) if o.key != key]


class NoSource:
    realm_exports = None

    def no_runs(self, job: object) -> None:
        return None


def _mirror(policy: Policy) -> BackupJob:
    return next(j for j in policy.jobs.values() if j.kind == "mirror")


def _ctx(policy: Policy, store: FakeStore, probes: bool, lines: list[str] | None = None) -> ScopeContext:
    say = (lines.append if lines is not None else lambda line: None)
    return ScopeContext(policy, NoSource(), store, utcnow(), probes_allowed=probes, progress=say)


def test_without_probes_a_replica_far_behind_is_a_finding_and_nothing_is_written(policy: Policy) -> None:
    st, store = policy.storage, FakeStore()
    store.add(st.hot_buckets[0], "warehouse/new", utcnow())
    store.add(st.replica_bucket, "warehouse/old", utcnow() - timedelta(hours=3))
    result = check_artefact(_ctx(policy, store, probes=False), _mirror(policy))
    assert result.status == "failed" and READ_ONLY_REPLICATION in result.reason, result.reason
    assert "3h behind" in result.reason and result.measured[PLAN_KEY], result.reason
    assert store.writes == []


def test_without_probes_a_replica_caught_up_passes_naming_the_method(policy: Policy) -> None:
    st, store = policy.storage, FakeStore()
    now = utcnow()
    store.add(st.hot_buckets[0], "warehouse/new", now)
    store.add(st.replica_bucket, "warehouse/new", now)
    result = check_artefact(_ctx(policy, store, probes=False), _mirror(policy))
    assert result.status == "passed" and READ_ONLY_REPLICATION in result.reason, result.reason
    assert store.writes == []


def test_without_probes_and_nothing_to_compare_the_replica_is_uncovered(policy: Policy) -> None:
    result = check_artefact(_ctx(policy, FakeStore(), probes=False), _mirror(policy))
    assert result.status == "uncovered", result.reason


def test_a_canary_that_never_arrives_ends_at_the_probe_deadline_naming_its_key(policy: Policy) -> None:
    short = replace(policy, probe_deadline=timedelta(seconds=1))
    store, lines = FakeStore(), []
    started = time.monotonic()
    result = check_artefact(_ctx(short, store, probes=True, lines=lines), _mirror(short))
    took = time.monotonic() - started
    assert result.status == "failed", result.reason
    assert "no replication within 1.0s: canary dr-probe/replication-" in result.reason, result.reason
    assert 1.0 <= took < 1.0 + SLACK, f"took {took:.1f}s for a 1s deadline"
    assert lines and "waiting up to 1.0s" in lines[0], lines
    assert all("/dr-probe/" in w for w in store.writes), store.writes
    assert not store.list(policy.storage.hot_buckets[0], "dr-probe/"), "the canary was left behind"


def test_a_canary_that_arrives_passes_with_its_lag(policy: Policy) -> None:
    store = FakeStore(replicate_to=policy.storage.replica_bucket)
    result = check_artefact(_ctx(policy, store, probes=True), _mirror(policy))
    assert result.status == "passed" and "a canary object reached" in result.reason, result.reason


@dataclass
class FakeDatabases:
    names: list[str] | None

    def databases(self) -> list[str]:
        if self.names is None:
            raise TargetUnavailable("PostgreSQL unreachable at /nowhere")
        return self.names


def test_missing_databases_are_one_finding_naming_them(policy: Policy) -> None:
    present = [n for n in policy.databases if n != "superset_metadata"]
    result = check_databases_present(policy, FakeDatabases(present))
    assert result.status == "failed" and result.reason == "superset_metadata missing on the PostgreSQL server"
    unreachable = check_databases_present(policy, FakeDatabases(None))
    assert unreachable.status == "failed" and "could not be read" in unreachable.reason
    assert check_databases_present(policy, FakeDatabases(list(policy.databases))).status == "passed"


def test_the_probe_deadline_and_time_zone_come_from_the_policy(tmp_path: Path) -> None:
    text = (ROOT / "akko_dr/policies/akko-2026.04.yaml").read_text()
    assert load_policy().probe_deadline == timedelta(minutes=5)
    assert load_policy().schedule_time_zone == "UTC"
    path = tmp_path / "policy.yaml"
    path.write_text(text.replace("probe_deadline: 5m", "probe_deadline: 2m")
                    .replace("schedule_time_zone: UTC", "schedule_time_zone: Europe/Paris"))
    mine = load_policy(path)
    assert (mine.probe_deadline, mine.schedule_time_zone) == (timedelta(minutes=2), "Europe/Paris")
    path.write_text(text.replace("schedule_time_zone: UTC", "schedule_time_zone: Mars/Olympus"))
    with pytest.raises(PolicyError, match=r"cadence\.schedule_time_zone: expected a time zone name"):
        load_policy(path)


def test_the_target_file_sets_the_probe_deadline_and_the_namespace(tmp_path: Path, policy: Policy) -> None:
    path = tmp_path / "target.yaml"
    path.write_text("kube: {namespace: akko-prod}\nprobes: {deadline: 90s}\n")
    mine = load_target_file(path).apply(policy)
    assert (mine.probe_deadline, mine.namespace) == (timedelta(seconds=90), "akko-prod")
    path.write_text("probes: {deadline: soon}\n")
    with pytest.raises(PolicyError, match=r"probes\.deadline"):
        load_target_file(path)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    return names | {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}


CHECK_STEPS = ("test_verification.py", "test_scope.py", "test_backup_schedule.py", "test_policy_analysis.py")


@pytest.mark.parametrize("path", [*sorted((ROOT / "akko_dr/checks").glob("*.py")),
                                  *(ROOT / "steps" / name for name in CHECK_STEPS)], ids=lambda p: p.name)
def test_checks_and_their_steps_use_ports_only(path: Path) -> None:
    bad = {m for m in _imports(path) if m.startswith(("akko_dr.adapters", "akko_dr.sandbox", "boto3",
                                                       "botocore", "kubernetes", "psycopg"))}
    assert not bad, f"{path.name} imports {', '.join(sorted(bad))}"
    assert "target.kind" not in path.read_text(), f"{path.name} tests the target's kind"
