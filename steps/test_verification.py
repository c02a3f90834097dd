"""Steps of features/verification.feature (checks: akko_dr/checks/verification.py, schedule.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from pytest_bdd import given, parsers, scenarios, then, when

from akko_dr.checks import CheckResult
from akko_dr.checks.bdd import conclude, platform_of, ready_for_checks
from akko_dr.checks.schedule import check_job_ran
from akko_dr.checks.verification import (
    WormProbe,
    check_audit_lock,
    check_databases_present,
    check_delete_refused,
    check_dump_freshness,
    check_shorten_refused,
    check_velero,
    check_worm_read_only,
    remove_probe,
    write_probe,
)
from akko_dr.checks.wal import check_archiver, check_wal_chain, check_wal_fresh, no_wal_job, wal_jobs
from akko_dr.checks.warehouse import (
    WarehouseContext,
    check_files_present,
    check_retention,
    check_snapshots_fresh,
)
from akko_dr.evidence.record import ScenarioRecord
from akko_dr.measure import utcnow
from akko_dr.policy import BackupJob
from akko_dr.ports import WalArchive
from akko_dr.targets import Target

scenarios("verification.feature")


@given("the drill target is ready to be checked")
def _(target: Target, evidence: ScenarioRecord) -> None:
    ready_for_checks(target, evidence)


@when(parsers.parse('the platform is asked for the last runs of the "{job}" backup job'),
      target_fixture="check")
def _(target: Target, job: str) -> CheckResult:
    return check_job_ran(target.policy, target.policy.jobs[job], platform_of(target), utcnow())


@then("its last run succeeded within its schedule interval plus the tolerance")
@then("every database has a dump younger than its backup interval plus the tolerance")
@then("the newest completed one is younger than the Velero schedule interval plus the tolerance")
@then("the lock has the policy's mode and at least the policy's retention")
@then("every one of them is there")
@then("every table's current snapshot is younger than the RPO of its class")
@then("each file is in the warehouse and in the replica with the size its manifest records")
@then("it keeps snapshots for at least the RPO of its class and what the policy declares")
def _(check: CheckResult, evidence: ScenarioRecord, target: Target) -> None:
    conclude(check, evidence, target.name)


@when("the database server is asked for the databases of the policy", target_fixture="check")
def _(target: Target) -> CheckResult:
    return check_databases_present(target.policy, target.db)


@when("the object store is listed for the latest dump of every database in the policy",
      target_fixture="check")
def _(target: Target) -> CheckResult:
    return check_dump_freshness(target.policy, target.store, utcnow())


@when("the platform is asked for its Velero backups", target_fixture="check")
def _(target: Target) -> CheckResult:
    return check_velero(target.policy, platform_of(target), utcnow())


@when("the Object Lock configuration of the audit bucket is read", target_fixture="check")
def _(target: Target) -> CheckResult:
    return check_audit_lock(target.policy, target.port("buckets"))


@pytest.fixture
def probe_record(target: Target, evidence: ScenarioRecord) -> Iterator[list[WormProbe]]:
    """The probe written by the scenario; removed afterwards where the store lets us."""
    written: list[WormProbe] = []
    yield written
    for probe in written:
        evidence.details["probe afterwards"] = remove_probe(probe, target.port("audit_trail").store)


@given("a probe record is written to the audit bucket under its lock", target_fixture="probe")
def _(target: Target, probe_record: list[WormProbe], evidence: ScenarioRecord) -> WormProbe | None:
    if not target.probes_allowed:  # live without --allow-probes: nothing is written
        evidence.details["probe"] = "not written: probes need --allow-probes; the lock is read instead"
        return None
    probe_record.append(write_probe(target.policy, target.port("audit_trail").store, utcnow()))
    return probe_record[-1]


@when("someone tries to delete the locked version of the probe record", target_fixture="check")
def _(target: Target, probe: WormProbe | None) -> CheckResult:
    if probe is None:
        return check_worm_read_only(target.policy, target.port("buckets"), "verification.worm.delete",
                                    "a locked audit record cannot be deleted")
    return check_delete_refused(probe, target.port("audit_trail").store, target.emulator_of("audit_trail"))


@when("someone tries to shorten the retention of the probe record", target_fixture="check")
def _(target: Target, probe: WormProbe | None) -> CheckResult:
    if probe is None:
        return check_worm_read_only(target.policy, target.port("buckets"), "verification.worm.shorten",
                                    "the retention of a locked audit record cannot be shortened")
    return check_shorten_refused(probe, target.port("audit_trail").store, utcnow(),
                                 target.emulator_of("audit_trail"))


@then("the object store refuses the deletion")
@then("the object store refuses to shorten it")
def _(check: CheckResult, evidence: ScenarioRecord, target: Target) -> None:
    conclude(check, evidence, target.name)


@pytest.fixture
def warehouse_context(target: Target) -> WarehouseContext:
    """The warehouse checks on this target: its catalog and store, judged by the Iceberg scope row's class."""
    return WarehouseContext(target.policy, target.port("warehouse"), target.store, utcnow(),
                            target.policy.probe_deadline)


@when("the catalog is asked for the current snapshot of every Iceberg table", target_fixture="check")
def _(warehouse_context: WarehouseContext) -> CheckResult:
    return check_snapshots_fresh(warehouse_context)


@when("the manifests of every current Iceberg snapshot are read for the files they reference",
      target_fixture="check")
def _(warehouse_context: WarehouseContext) -> CheckResult:
    return check_files_present(warehouse_context)


@when("the snapshot retention of every Iceberg table is read", target_fixture="check")
def _(warehouse_context: WarehouseContext) -> CheckResult:
    return check_retention(warehouse_context)
def _wal_check(target: Target, check: Callable[[BackupJob, WalArchive], CheckResult],
               what: str) -> CheckResult:
    """The check on each wal-archive job of the policy; not applicable when the policy has none."""
    jobs = wal_jobs(target.policy)
    if not jobs:
        return no_wal_job(target.policy, what)
    archive = target.port("wal_archive")
    results = [check(job, archive) for job in jobs]
    return next((r for r in results if not r.ok), results[0])


@when("the WAL archive is listed for its newest segment", target_fixture="check")
def _(target: Target) -> CheckResult:
    return _wal_check(target, lambda job, archive: check_wal_fresh(target.policy, job, archive, utcnow()),
                      "wal-fresh")


@when("the WAL archive is listed from its newest base backup", target_fixture="check")
def _(target: Target) -> CheckResult:
    return _wal_check(target, check_wal_chain, "wal-chain")


@when("the database server is asked how its WAL archiving went", target_fixture="check")
def _(target: Target) -> CheckResult:
    return _wal_check(target, check_archiver, "wal-archiver")


@then("it is younger than the archive timeout plus the tolerance")
@then("every change from that base backup to the newest archived one is there")
@then("no archiving failure is left unresolved")
def _(check: CheckResult, evidence: ScenarioRecord, target: Target) -> None:
    conclude(check, evidence, target.name)
