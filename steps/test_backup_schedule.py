"""Steps of features/backup_schedule.feature (checks: akko_dr/checks/schedule.py)."""

from __future__ import annotations

from pytest_bdd import given, parsers, scenarios, then

from akko_dr.checks.bdd import conclude, platform_of, ready_for_checks
from akko_dr.checks.schedule import check_job_retention, check_job_schedule
from akko_dr.evidence.record import ScenarioRecord
from akko_dr.measure import utcnow
from akko_dr.policy import BackupJob
from akko_dr.targets import Target

scenarios("backup_schedule.feature")


@given("the drill target is ready to be checked")
def _(target: Target, evidence: ScenarioRecord) -> None:
    ready_for_checks(target, evidence)


@given(parsers.parse('the "{name}" job of the policy\'s backup schedule'), target_fixture="job")
def _(target: Target, name: str) -> BackupJob:
    assert name in target.policy.jobs, f"no job {name} in the policy (have {', '.join(target.policy.jobs)})"
    return target.policy.jobs[name]


@then("the platform schedules it as the policy says")
def _(target: Target, job: BackupJob, evidence: ScenarioRecord) -> None:
    conclude(check_job_schedule(target.policy, job, platform_of(target), utcnow()), evidence, target.name)


@then("the object store enforces its retention")
def _(target: Target, job: BackupJob, evidence: ScenarioRecord) -> None:
    result = check_job_retention(target.policy, job, platform_of(target), target.port("buckets"))
    conclude(result, evidence, target.name)
