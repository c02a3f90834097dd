"""Point-in-time recovery: the WAL job in the policy, the WAL checks on an in-memory archive, and the
archive endpoint going down and coming back on the real sandbox (Barman's cloud commands)."""

from __future__ import annotations

import secrets
import socket
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from akko_dr.adapters.wal_archive import BarmanCloudArchive
from akko_dr.canary import wait_for_write
from akko_dr.checks.policy_analysis import check_class_rpo
from akko_dr.checks.wal import check_archiver, check_wal_chain, check_wal_fresh, missing_between, next_segment
from akko_dr.drills.point_in_time import PointInTimeDrill, choose_base_backup, stopped_early
from akko_dr.errors import DrillError, NotApplicable, PolicyError
from akko_dr.measure import wait_for
from akko_dr.policy import DEFAULT_POLICY, load_policy
from akko_dr.ports import ArchiverStats, BaseBackup, Recovery, WalSegment
from akko_dr.sandbox.wal import start_wal_archiving
from akko_dr.targetfile import load_target_file
from akko_dr.targets import Target, new_run_id

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
OUTAGE_DEADLINE = 120.0  # harness setting: the archiver retries a failed segment within seconds


def _raw() -> dict:
    return yaml.safe_load(resources.files("akko_dr.policies").joinpath(DEFAULT_POLICY).read_text())


def _write(tmp_path: Path, raw: dict) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _without_wal_job(raw: dict) -> dict:
    raw["jobs"].pop("akko-pg-wal-archive")
    for db in raw["databases"].values():
        db.pop("wal", None)
    for row in raw["scope"]:
        row["jobs"] = [j for j in row["jobs"] if j != "akko-pg-wal-archive"]
    return raw


# -- the policy ------------------------------------------------------------------------------------
def test_the_wal_job_meets_the_critical_data_rpo() -> None:
    policy = load_policy()
    job = policy.database("akko_data").wal_job
    assert job is not None and job.archive is not None
    assert job.rpo_window() == job.archive.timeout == timedelta(minutes=5)
    result = check_class_rpo(policy, policy.klass("critical-data"))
    assert result.status == "passed", result.reason


def test_without_the_wal_job_the_critical_data_finding_stays(tmp_path: Path) -> None:
    policy = load_policy(_write(tmp_path, _without_wal_job(_raw())))
    result = check_class_rpo(policy, policy.klass("critical-data"))
    assert result.status == "failed"
    assert "RPO 1h cannot be met by dumps every 2h" in result.reason, result.reason


def test_an_archive_timeout_longer_than_the_rpo_is_a_finding(tmp_path: Path) -> None:
    raw = _raw()
    raw["jobs"]["akko-pg-wal-archive"]["archive"]["timeout"] = "90m"
    policy = load_policy(_write(tmp_path, raw))
    result = check_class_rpo(policy, policy.klass("critical-data"))
    assert result.status == "failed"
    assert "cannot be met by WAL archived every 1h30m" in result.reason, result.reason
    assert "a shorter archive timeout is required" in result.reason


@pytest.mark.parametrize(("change", "message"), [
    (lambda r: r["jobs"]["akko-pg-wal-archive"].pop("archive"),
     r"jobs\.akko-pg-wal-archive\.archive: missing \(expected dict\)"),
    (lambda r: r["jobs"]["akko-pg-wal-archive"]["archive"].update(timeout="soon"),
     r"jobs\.akko-pg-wal-archive\.archive\.timeout: expected a duration"),
    (lambda r: r["databases"]["akko_data"].update(wal="akko-pg-data-backup"),
     r"databases\.akko_data\.wal: 'akko-pg-data-backup' is a pg-dump job, expected a wal-archive job"),
    (lambda r: r["jobs"]["akko-pg-backup"].update(archive={"timeout": "5m"}),
     r"jobs\.akko-pg-backup\.archive: only jobs of kind wal-archive archive WAL"),
])
def test_a_malformed_wal_job_is_named(tmp_path: Path, change, message: str) -> None:
    raw = _raw()
    change(raw)
    with pytest.raises(PolicyError, match=message):
        load_policy(_write(tmp_path, raw))


# -- the archive, in memory --------------------------------------------------------------------------
@dataclass
class FakeArchive:
    """An in-memory WAL archive (the WalArchive port)."""

    names: list[str]
    age: timedelta = timedelta(minutes=1)
    stats: ArchiverStats = field(default_factory=lambda: ArchiverStats(3, None, NOW, 0, None, None))
    backups: list[BaseBackup] = field(default_factory=list)
    location: str = "s3://akko-backups/wal/akko-pg"

    def segments(self) -> list[WalSegment]:
        return [WalSegment(n, NOW - self.age, 16 << 20) for n in self.names]

    def base_backups(self) -> list[BaseBackup]:
        return self.backups

    def archiver(self) -> ArchiverStats:
        return self.stats


def _backup(begin: str, ended: datetime) -> BaseBackup:
    return BaseBackup("20261129T110000", begin, begin, ended - timedelta(seconds=5), ended)


def test_segment_names_follow_on_across_a_log_boundary() -> None:
    assert next_segment("0000000100000000000000FE") == "0000000100000000000000FF"
    assert next_segment("0000000100000000000000FF") == "000000010000000100000000"
    assert missing_between("0000000100000000000000FE", "000000010000000100000001",
                           {"0000000100000000000000FE", "000000010000000100000001"}) == [
        "0000000100000000000000FF", "000000010000000100000000"]


def test_a_stale_archive_fails_the_freshness_check() -> None:
    policy = load_policy()
    job = policy.database("akko_data").wal_job
    fresh = check_wal_fresh(policy, job, FakeArchive(["000000010000000000000003"]), NOW)
    assert fresh.status == "passed", fresh.reason
    old = FakeArchive(["000000010000000000000003"], age=timedelta(hours=1))
    stale = check_wal_fresh(policy, job, old, NOW)
    assert stale.status == "failed" and "1h old > 20m allowed" in stale.reason, stale.reason


def test_a_gap_after_the_newest_base_backup_is_named() -> None:
    job = load_policy().database("akko_data").wal_job
    names = ["000000010000000000000003", "000000010000000000000004", "000000010000000000000006"]
    archive = FakeArchive(names, backups=[_backup("000000010000000000000003", NOW)])
    result = check_wal_chain(job, archive)
    assert result.status == "failed" and "000000010000000000000005" in result.reason, result.reason
    archive.names.insert(2, "000000010000000000000005")
    assert check_wal_chain(job, archive).status == "passed"


def test_an_archive_behind_the_server_is_a_gap() -> None:
    job = load_policy().database("akko_data").wal_job
    behind = ArchiverStats(5, "000000010000000000000009", NOW, 0, None, None)
    archive = FakeArchive(["000000010000000000000003"], stats=behind,
                          backups=[_backup("000000010000000000000003", NOW)])
    result = check_wal_chain(job, archive)
    assert result.status == "failed" and "the server archived 000000010000000000000009" in result.reason


def test_archive_command_failures_are_visible() -> None:
    job = load_policy().database("akko_data").wal_job
    failing = ArchiverStats(3, "000000010000000000000003", NOW - timedelta(minutes=2), 7,
                            "000000010000000000000004", NOW, pending=2)
    result = check_archiver(job, FakeArchive([], stats=failing))
    assert result.status == "failed"
    assert "7 failure(s), last on 000000010000000000000004" in result.reason, result.reason
    recovered = ArchiverStats(5, "000000010000000000000005", NOW, 7, "000000010000000000000004",
                              NOW - timedelta(minutes=1))
    assert check_archiver(job, FakeArchive([], stats=recovered)).status == "passed"


def test_a_recovery_target_before_every_base_backup_is_refused() -> None:
    backup = _backup("000000010000000000000003", NOW)
    assert choose_base_backup([backup], NOW + timedelta(seconds=1), "s3://x") == backup
    with pytest.raises(DrillError, match="is before the oldest base backup 20261129T110000"):
        choose_base_backup([backup], NOW - timedelta(hours=1), "s3://x")
    with pytest.raises(DrillError, match="no base backup in the WAL archive"):
        choose_base_backup([], NOW, "s3://x")


# -- the real archive on the sandbox -----------------------------------------------------------------
def _closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_an_archive_endpoint_down_fails_the_check_and_loses_nothing_once_back(target: Target) -> None:
    """archive_command pointed at a port where nothing listens while WAL accumulates, then back."""
    wal, archive = target.port("pitr"), target.port("wal_archive")
    job = target.policy.database("akko_data").wal_job
    failures_before = archive.archiver().failed_count
    wal.archive_to(_closed_port())
    try:
        target.db.execute("postgres", "SELECT pg_switch_wal()")
        wait_for("archive_command to fail", lambda: archive.archiver().failed_count > failures_before,
                 OUTAGE_DEADLINE, 0.2)
        down = check_archiver(job, archive)
        written_during_outage = target.port("canary").newest_write("akko_data")
    finally:
        wal.archive_to(wal.cloud.endpoint)
    assert down.status == "failed" and "archive_command failing" in down.reason, down.reason
    wait_for("the archiver to catch up", lambda: not archive.archiver().failing and
             archive.archiver().pending == 0, OUTAGE_DEADLINE, 0.2)
    recover_to = datetime.now(UTC)  # replay stops at the first commit after it: wait for one, archive it
    wait_for_write(target.port("canary"), "akko_data", after=recover_to)
    wal.switch_wal(OUTAGE_DEADLINE)
    assert check_archiver(job, archive).status == "passed"
    chain = check_wal_chain(job, archive)
    assert chain.status == "passed", chain.reason
    newest = max(archive.base_backups(), key=lambda b: b.end_time)
    recovery = wal.recover(newest, recover_to, "outage")
    try:
        assert recovery.promoted, recovery.log[-3:]
        came_back = recovery.database.latest_canary("akko_data")
    finally:
        wal.discard(recovery)
    assert came_back >= written_during_outage, (
        f"a write made while the endpoint was down is lost: newest recovered {came_back} < "
        f"{written_during_outage}")


# -- a live target ----------------------------------------------------------------------------------
def test_a_target_file_names_its_wal_archive(tmp_path: Path) -> None:
    path = tmp_path / "target.yaml"
    path.write_text("wal_archive: {bucket: akko-backups, prefix: wal, server: akko-pg}\n")
    assert load_target_file(path).wal_archive == ("akko-backups", "wal", "akko-pg")
    path.write_text("wal_archive: {bucket: akko-backups}\n")
    with pytest.raises(PolicyError, match="wal_archive: expected bucket, prefix and server"):
        load_target_file(path)


def test_without_the_opt_in_the_drill_plans_and_touches_nothing(target: Target) -> None:
    """On a target without --allow-destructive the drill reads the archive, then stops at its first write."""
    live = replace(target, kind="live", name="live plan-only", destructive_allowed=False, fresh_backup=False)
    drill = PointInTimeDrill(live, "akko_data", new_run_id())
    objects = len(target.store.list(target.policy.storage.backups_bucket, "wal/"))
    before = drill.swap.content()
    assert drill.location == target.port("wal_archive").location
    with pytest.raises(NotApplicable, match="plan only, destructive step not allowed: drop table"):
        drill.drop_table("transactions")
    with pytest.raises(NotApplicable, match="plan only"):
        drill.recover(datetime.now(UTC))
    plan = drill.plan()
    assert any("barman-cloud-restore" in step for step in plan) and any("RENAME" in step for step in plan)
    assert drill.swap.content() == before
    assert len(target.store.list(target.policy.storage.backups_bucket, "wal/")) >= objects
    assert drill.recovery is None and not drill.discard()


def test_without_barman_the_sandbox_says_why(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AKKO_DR_TOOLS", str(tmp_path))
    reason = start_wal_archiving(SimpleNamespace(policy=load_policy()))
    assert reason == (f"Barman 3.19.1 cloud commands are not installed in {tmp_path} "
                      "(run scripts/real-services.sh barman)")


@pytest.mark.parametrize(("reached", "restored", "expected"), [
    (NOW, ["000000010000000000000003"], "it could reach 2026-11-29T12:00:00.000+00:00, not the target"),
    (None, ["000000010000000000000003"], "it could reach the end of base backup 20261129T110000"),
    (None, [], "no consistent point (base backup 20261129T110000 needs 000000010000000000000003 onwards)"),
])
def test_a_recovery_stopped_early_names_the_segment_and_how_far_it_got(reached, restored, expected) -> None:
    backup = _backup("000000010000000000000003", NOW)
    recovery = Recovery(None, NOW + timedelta(minutes=1), backup, "second", reached=reached,
                        missing_segment="000000010000000000000004", restored_segments=restored)
    reason = stopped_early(recovery, "s3://akko-backups/wal/akko-pg")
    assert reason.startswith("recovery stopped early: WAL segment 000000010000000000000004 is missing from "
                             "the archive s3://akko-backups/wal/akko-pg;"), reason
    assert expected in reason, reason


def test_a_reader_without_pg_monitor_still_sees_archiver_failures(target: Target) -> None:
    """A read-only role (pg_read_all_data, no pg_monitor) reads pg_stat_archiver; the waiting count is
    unknown, and said so, rather than an error."""
    password = secrets.token_hex(8)
    target.db.execute("postgres", "DROP ROLE IF EXISTS akko_dr_wal_reader")
    target.db.execute("postgres", f"CREATE ROLE akko_dr_wal_reader LOGIN PASSWORD '{password}'")
    try:
        admin = target.port("wal_archive")
        dsn = target.db.dsn("postgres").replace("postgres:@", f"akko_dr_wal_reader:{password}@", 1)
        reader = BarmanCloudArchive(target.store, admin.bucket, "wal", admin.server, dsn)
        stats = reader.archiver()
        assert stats.pending is None and 0 < stats.archived_count <= admin.archiver().archived_count
        job = target.policy.database("akko_data").wal_job
        assert check_archiver(job, reader).status == "passed"
    finally:
        target.db.execute("postgres", "DROP ROLE IF EXISTS akko_dr_wal_reader")
