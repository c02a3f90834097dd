"""Steps of features/policy_analysis.feature (checks: akko_dr/checks/policy_analysis.py)."""

from __future__ import annotations

from pytest_bdd import given, parsers, scenarios, then

from akko_dr.checks.bdd import conclude
from akko_dr.checks.policy_analysis import check_class_rpo, check_retention_covers_drills, check_scope_mapped
from akko_dr.evidence.record import ScenarioRecord
from akko_dr.policy import Policy, TargetClass

scenarios("policy_analysis.feature")


@given(parsers.parse("the {title} class of the policy"), target_fixture="klass")
def _(policy: Policy, title: str) -> TargetClass:
    return policy.klass(title)


@then("every component of the class is backed up at least as often as the class RPO")
def _(policy: Policy, klass: TargetClass, evidence: ScenarioRecord) -> None:
    conclude(check_class_rpo(policy, klass), evidence, "policy")


@then("every backup job's retention covers the interval between quarterly drills")
def _(policy: Policy, evidence: ScenarioRecord) -> None:
    conclude(check_retention_covers_drills(policy), evidence, "policy")


@then("every scope row maps to a backup job and every job to a scope row")
def _(policy: Policy, evidence: ScenarioRecord) -> None:
    conclude(check_scope_mapped(policy), evidence, "policy")
