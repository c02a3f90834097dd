"""Steps of features/verification.feature (checks: akko_dr/checks/verification.py, schedule.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pytest_bdd import given, parsers, scenarios, then, when

from akko_dr.checks import CheckResult
from akko_dr.checks.bdd import conclude, platform_of, s3_client
from akko_dr.checks.schedule import check_job_ran
from akko_dr.checks.verification import (
    WormProbe,
    check_audit_lock,
    check_delete_refused,
    check_dump_freshness,
    check_shorten_refused,
    check_velero,
    remove_probe,
    write_probe,
)
from akko_dr.evidence.record import ScenarioRecord
from akko_dr.measure import utcnow
from akko_dr.targets import Target

scenarios("verification.feature")


@pytest.fixture
def s3(target: Target) -> Any:
    return s3_client(target)


@when(parsers.parse('the platform is asked for the last runs of the "{job}" backup job'),
      target_fixture="check")
def _(target: Target, job: str) -> CheckResult:
    return check_job_ran(target.policy, target.policy.jobs[job], platform_of(target), utcnow())


@then("its last run succeeded within its schedule interval plus the tolerance")
@then("every database has a dump younger than its backup interval plus the tolerance")
@then("the newest completed one is younger than the Velero schedule interval plus the tolerance")
@then("the lock has the policy's mode and at least the policy's retention")
def _(check: CheckResult, evidence: ScenarioRecord, target: Target) -> None:
    conclude(check, evidence, target.kind)


@when("the object store is listed for the latest dump of every database in the policy",
      target_fixture="check")
def _(target: Target) -> CheckResult:
    return check_dump_freshness(target.policy, target.store, utcnow())


@when("the platform is asked for its Velero backups", target_fixture="check")
def _(target: Target) -> CheckResult:
    return check_velero(target.policy, platform_of(target), utcnow())


@when("the Object Lock configuration of the audit bucket is read", target_fixture="check")
def _(target: Target, s3: Any) -> CheckResult:
    return check_audit_lock(target.policy, s3)


@pytest.fixture
def probe_record(target: Target, s3: Any, evidence: ScenarioRecord) -> Iterator[list[WormProbe]]:
    """The probe written by the scenario; removed afterwards wherever the store lets us."""
    written: list[WormProbe] = []
    yield written
    for probe in written:
        evidence.details["probe afterwards"] = remove_probe(probe, s3, utcnow())


@given("a probe record is written to the audit bucket under its lock", target_fixture="probe")
def _(target: Target, s3: Any, probe_record: list[WormProbe]) -> WormProbe:
    probe_record.append(write_probe(target.policy, s3, utcnow()))
    return probe_record[-1]


@when("someone tries to delete the locked version of the probe record", target_fixture="check")
def _(probe: WormProbe, s3: Any) -> CheckResult:
    return check_delete_refused(probe, s3)


@when("someone tries to shorten the retention of the probe record", target_fixture="check")
def _(probe: WormProbe, s3: Any) -> CheckResult:
    return check_shorten_refused(probe, s3, utcnow())


@then("the object store refuses the deletion")
@then("the object store refuses to shorten it")
def _(check: CheckResult, evidence: ScenarioRecord, target: Target) -> None:
    conclude(check, evidence, target.kind)
