"""Steps of features/drill_2_full_rebuild.feature (logic: akko_dr/drills/full_rebuild.py).

Drill 2 destroys a whole platform, so on the sandbox it runs on a sandbox of its own, never on the
session's shared one.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pytest_bdd import given, parsers, scenarios, then, when

from akko_dr.attestation import Answers, attest_step, record_not_applicable
from akko_dr.backup import latest_backup
from akko_dr.canary import wait_for_write
from akko_dr.checks.verification import check_dump_freshness
from akko_dr.drills.full_rebuild import FullRebuildDrill
from akko_dr.errors import DrillError, NotApplicable
from akko_dr.evidence.record import ScenarioRecord
from akko_dr.measure import utcnow
from akko_dr.targets import Target, new_run_id

scenarios("drill_2_full_rebuild.feature")


@pytest.fixture(scope="module")
def rebuild_target(target: Target) -> Iterator[Target | None]:
    """The platform Drill 2 destroys and rebuilds, of its own (a service per database), which each
    scenario rebuilds again on a newer server: never the session's shared platform. None where the
    target offers no such platform."""
    try:
        platform_of_its_own = target.port("scratch_platform")
    except NotApplicable:
        yield None
        return
    with platform_of_its_own() as own:
        yield own


@pytest.fixture
def drill_2(target: Target, rebuild_target: Target | None,
            evidence: ScenarioRecord) -> Iterator[FullRebuildDrill]:
    """One Drill 2 run; whatever happens, no half-done restore is left on the new platform. Where the
    target has no platform of its own to destroy, its plan is recorded and the scenario is not run."""
    if rebuild_target is None or not rebuild_target.destructive_allowed:
        evidence.details["plan (not executed)"] = FullRebuildDrill(target, new_run_id()).plan()
        target.port("scratch_platform")
        rebuild_target.require_destructive("lose and rebuild the scratch platform")
    drill = FullRebuildDrill(rebuild_target, new_run_id())
    evidence.details["drill target"] = dict(rebuild_target.components, note="a sandbox of its own: "
                                            "Drill 2 never touches the shared one")
    yield drill
    if drill.validated_at is None:
        drill.abort()
    evidence.details.update(drill.evidence())


@given("a whole AKKO platform is running on a drill target of its own")
def _(drill_2: FullRebuildDrill) -> None:
    target = drill_2.target
    silent = [name for name in target.policy.databases
              if target.orchestrator.running(target.policy.database(name).consumer) < 1]
    assert not silent, f"services not running for {', '.join(silent)}"


@given("fresh backups of every database and a mirror of the object data are off-site")
def _(drill_2: FullRebuildDrill) -> None:
    target = drill_2.target
    jobs = target.port("jobs")
    for name in target.policy.databases:
        wait_for_write(target.port("canary"), name)
    for job in {info.job.name for info in target.policy.databases.values()} | {"akko-minio-replicate"}:
        run = jobs.run_job(job)
        assert run.succeeded, f"backup job {job} failed: {run.error}"
        drill_2.drill_backups.update(b.key for b in run.objects)


@given("every service has written new data since those backups")
def _(drill_2: FullRebuildDrill) -> None:
    target = drill_2.target
    for name in target.policy.databases:
        taken = latest_backup(target.policy, target.store, name).taken_at
        wait_for_write(target.port("canary"), name, after=taken)


@given(parsers.parse("the latest backup of the {database} database is corrupt"))
def _(drill_2: FullRebuildDrill, database: str) -> None:
    drill_2.target.port("faults")["a corrupt backup"].apply(drill_2.target, database)


@when("the whole platform is lost")
def _(drill_2: FullRebuildDrill) -> None:
    drill_2.lose_platform()


@when("the incident is declared")
def _(drill_2: FullRebuildDrill) -> None:
    drill_2.declare_incident()


@when("a new, empty platform is provisioned")
def _(drill_2: FullRebuildDrill, evidence: ScenarioRecord) -> None:
    drill_2.provision_platform()
    if emulator := drill_2.target.emulator_of("orchestrator"):
        evidence.details["provisioning"] = (f"stand-in ({emulator}): a fresh PostgreSQL server in a new "
                                            "directory and empty hot buckets (live: new cluster + AKKO "
                                            "from Harbor)")


@when("the platform's namespace is restored from the newest Velero backup")
def _(drill_2: FullRebuildDrill, request: pytest.FixtureRequest, evidence: ScenarioRecord) -> None:
    try:
        evidence.details["Velero restore"] = drill_2.restore_namespace()
    except NotApplicable as err:
        drill_2.not_applicable_here("Velero restore", str(err))
        record_not_applicable(request, evidence, "Velero restore", str(err))


@when("every database is replayed from its latest backup, in parallel")
def _(drill_2: FullRebuildDrill) -> None:
    drill_2.replay_databases()


@when("the object data is restored from its replica")
def _(drill_2: FullRebuildDrill) -> None:
    drill_2.restore_objects()


@when("every service is restarted on the new platform")
def _(drill_2: FullRebuildDrill) -> None:
    drill_2.restart_services()


@when("DNS is re-pointed to the new platform")
def _(drill_2: FullRebuildDrill, request: pytest.FixtureRequest, evidence: ScenarioRecord,
      answers: Answers) -> None:
    if emulator := drill_2.target.emulator_of("orchestrator"):
        reason = f"no DNS or load balancer under the {emulator}: services reach the new server directly"
        drill_2.not_applicable_here("DNS re-point", reason)
        record_not_applicable(request, evidence, "DNS re-point", reason)
        return
    attest_step(request, evidence, answers, "drill-2-dns",
                "Which address does the platform's DNS name now resolve to, and who changed it?")


@then("every service is validated on the new platform")
@then("every service whose database came back is validated on the new platform")
def _(drill_2: FullRebuildDrill) -> None:
    drill_2.validate_services()


@then("every database matches what its backup recorded")
def _(drill_2: FullRebuildDrill) -> None:
    wrong = drill_2.mismatches()
    assert not wrong, f"expected every database as its backup recorded; actual: {'; '.join(wrong)}"


@then(parsers.parse("every other database matches what its backup recorded"))
def _(drill_2: FullRebuildDrill) -> None:
    broken = tuple(r.name for r in drill_2.databases.values() if r.error)
    wrong = drill_2.mismatches(skip=broken)
    assert not wrong, f"expected the other databases back as recorded; actual: {'; '.join(wrong)}"


@then("every object matches its replica")
def _(drill_2: FullRebuildDrill) -> None:
    wrong = drill_2.object_mismatches()
    assert drill_2.objects, "no object data was restored"
    assert not wrong, f"expected every object as in the replica; actual: {'; '.join(wrong)}"


@then(parsers.parse('the rebuild fails, naming {database} because "{reason}"'))
def _(drill_2: FullRebuildDrill, evidence: ScenarioRecord, database: str, reason: str) -> None:
    with pytest.raises(DrillError) as failure:
        drill_2.require_complete()
    message = str(failure.value)
    evidence.details["drill outcome"] = f"failed: {message}"
    assert f"{database}: " in message and reason in message, (
        f"expected the failure to name {database} because {reason!r}; actual: {message!r}")


@then(parsers.parse("the recovery time is within the {klass} RTO"))
def _(drill_2: FullRebuildDrill, evidence: ScenarioRecord, klass: str) -> None:
    evidence.judge(drill_2.rto(), drill_2.target.policy.klass(klass), "Drill 2")


@then(parsers.parse("the data loss is within the {klass} RPO"))
def _(drill_2: FullRebuildDrill, evidence: ScenarioRecord, klass: str) -> None:
    evidence.judge_rpo(drill_2.rpo(), drill_2.rpo_worst_case(), drill_2.rpo_basis(),
                       drill_2.target.policy.klass(klass), "Drill 2")


@then("every database is within the RTO of its own class and the RPO its backup schedule allows")
def _(drill_2: FullRebuildDrill) -> None:
    missed = drill_2.per_database_misses()
    assert not missed, "; ".join(missed)


@then("the parallel replay is timed against a sequential replay of the same backups")
def _(drill_2: FullRebuildDrill, evidence: ScenarioRecord) -> None:
    bench = drill_2.compare_replay()
    evidence.details["parallel replay speed-up"] = (
        f"{bench['speed_up']}x ({bench['sequential_s']}s sequential, {bench['parallel_s']}s with "
        f"{bench['workers']} workers, {bench['dumps']} backups, best of {bench['rounds']} rounds each)")
    restored = sum(r.restored for r in drill_2.databases.values())
    assert bench["dumps"] == restored, f"expected {restored} backups replayed twice; actual {bench['dumps']}"


@when("the database backup jobs run on the new platform")
def _(drill_2: FullRebuildDrill) -> None:
    target = drill_2.target
    jobs = target.port("jobs")
    for job in sorted({info.job.name for info in target.policy.databases.values()}):
        run = jobs.run_job(job)
        assert run.succeeded, f"backup job {job} failed on the new platform: {run.error}"


@then("the latest dump of every database is fresh")
def _(drill_2: FullRebuildDrill, evidence: ScenarioRecord) -> None:
    check = check_dump_freshness(drill_2.target.policy, drill_2.target.store, utcnow())
    evidence.details["verification after the rebuild"] = check.evidence()
    assert check.ok, check.reason


@then("the decision to rebuild the whole platform is attested")
def _(request: pytest.FixtureRequest, evidence: ScenarioRecord, answers: Answers) -> None:
    attest_step(request, evidence, answers, "drill-2-decision",
                "Who decided to rebuild the whole platform, when, and on what grounds?")


@then("the communication to management during the rebuild is attested")
def _(request: pytest.FixtureRequest, evidence: ScenarioRecord, answers: Answers) -> None:
    attest_step(request, evidence, answers, "drill-2-management",
                "Who informed management of the rebuild, when, and what was said?")

