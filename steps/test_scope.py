"""Steps of features/scope.feature (checks: akko_dr/checks/scope.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_bdd import given, parsers, scenarios, then, when
from pytest_bdd.feature import get_feature

from akko_dr.checks import CheckResult, result
from akko_dr.checks.bdd import conclude, platform_of, progress_to_console, ready_for_checks
from akko_dr.checks.scope import ScopeContext, check_artefact, check_component
from akko_dr.checks.warehouse import ICEBERG_MECHANISM, WarehouseContext, check_iceberg_scope
from akko_dr.evidence.record import ScenarioRecord
from akko_dr.measure import utcnow
from akko_dr.policy import Policy
from akko_dr.targets import Target

FEATURE = "scope.feature"
scenarios(FEATURE)


@pytest.fixture
def scope_context(target: Target, evidence: ScenarioRecord, pytestconfig: pytest.Config) -> ScopeContext:
    """A target that runs its jobs on demand (no scheduler) does not replicate continuously: its mirror
    job stands in, run once per canary."""
    source, jobs = platform_of(target), target.jobs
    mirror = next((j for j in target.policy.jobs.values() if j.kind == "mirror"), None)
    on_demand = jobs is not None and mirror is not None and source.no_scheduler() is not None
    run_mirror = (lambda: jobs.run_job(mirror.name)) if on_demand else None
    say = progress_to_console(evidence, pytestconfig)
    return ScopeContext(target.policy, source, target.store, utcnow(), run_mirror,
                        probes_allowed=target.probes_allowed, progress=say, wal_archive=target.wal_archive)


@given("the drill target is ready to be checked")
def _(target: Target, evidence: ScenarioRecord) -> None:
    ready_for_checks(target, evidence)


@when(parsers.parse('the backup artefacts of "{component}" are looked for on the drill target'),
      target_fixture="check")
def _(policy: Policy, scope_context: ScopeContext, target: Target, component: str) -> CheckResult:
    rows = [row for row in policy.scope if row.component == component]
    assert rows, f"no component {component!r} in the policy's scope table"
    if ICEBERG_MECHANISM in rows[0].mechanism.lower() and target.warehouse is not None:
        ctx = WarehouseContext(policy, target.warehouse, target.store, utcnow(), policy.probe_deadline)
        parts = [check_artefact(scope_context, job) for job in rows[0].jobs]
        return check_iceberg_scope(ctx, rows[0], parts)
    return check_component(scope_context, rows[0])


@then("each of them exists, is not empty and is fresh")
@then("none of them is left unchecked")
def _(check: CheckResult, evidence: ScenarioRecord, target: Target) -> None:
    conclude(check, evidence, target.name)


@when("the components of the policy's scope table are compared with the components above",
      target_fixture="check")
def _(policy: Policy, pytestconfig: pytest.Config) -> CheckResult:
    base = Path(pytestconfig.rootpath, pytestconfig.getini("bdd_features_base_dir"))
    feature = get_feature(str(base), FEATURE)
    listed = {ctx["component"] for sc in feature.scenarios.values() for ex in sc.examples
              for ctx in ex.as_contexts() if "component" in ctx}
    missing = [row.component for row in policy.scope if row.component not in listed]
    return result("scope.coverage", "every scope component is checked", [
        f"uncovered: {', '.join(missing)} not checked by {FEATURE}"] if missing else [],
        f"all {len(policy.scope)} components of the scope table are checked", ("playbook: Scope",),
        components=sorted(listed))
