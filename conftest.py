"""Picks the drill target (sandbox by default, live by explicit opt-in) and wires its adapters."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from akko_dr.attestation import load_answers
from akko_dr.docker_target import check_present, load_images
from akko_dr.errors import PolicyError
from akko_dr.evidence.plugin import record_of
from akko_dr.evidence.record import RunRecord
from akko_dr.findings import KNOWN_FINDING, load_known_findings, match_finding
from akko_dr.policy import Policy, load_policy
from akko_dr.sandbox import Sandbox
from akko_dr.targetfile import load_target_file
from akko_dr.targets import Target
from akko_dr.wiring import (
    TARGET_KINDS,
    docker_engine_unavailable,
    live_target,
    open_docker,
    open_sandbox,
    run_lock,
)

pytest_plugins = ["akko_dr.evidence.plugin", "akko_dr.attestation"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("akko-dr", "AKKO DR evidence")
    group.addoption("--target", choices=TARGET_KINDS, default="sandbox",
                    help="where drills run: sandbox (default), live (needs --target-file), docker")
    group.addoption("--target-file", type=Path, default=None,
                    help="live target description (YAML); docker: its images (default: the file "
                         "scripts/docker-images.sh writes)")
    group.addoption("--allow-destructive", default=None, metavar="NAMESPACE",
                    help="live only: let drills change the cluster, repeating the target's namespace "
                         "(otherwise they print their plan and make no mutating call)")
    group.addoption("--approved-by", default=None, metavar="NAME",
                    help="who approved a destructive run on a production target (goes into the evidence)")
    group.addoption("--fresh-backup", action="store_true",
                    help="live only: a drill runs the backup job first instead of restoring the newest "
                         "scheduled backup")
    group.addoption("--allow-probes", action="store_true",
                    help="live only: let checks write probe records and canaries (under dr-probe/)")
    group.addoption("--policy", type=Path, default=None, help="policy file (default: AKKO 2026.04)")
    group.addoption("--known-findings", type=Path, default=None,
                    help="test command only: findings expected here (YAML); each must fail as stated")


@pytest.fixture(scope="session")
def policy(pytestconfig: pytest.Config, run_record: RunRecord) -> Policy:
    policy = load_policy(pytestconfig.getoption("policy"))
    run = run_record
    run.policy_name, run.policy_version, run.policy_source = policy.name, policy.version, policy.source
    return policy


@pytest.fixture(scope="session")
def sandbox_and_target(pytestconfig: pytest.Config, policy: Policy,
                       run_record: RunRecord) -> Iterator[tuple[Sandbox | None, Target]]:
    kind = pytestconfig.getoption("target")
    run = run_record
    run.target = kind
    opt = pytestconfig.getoption
    if kind == "live":
        live = live_target(policy, opt("target_file"), opt("allow_destructive"), opt("approved_by"),
                           opt("fresh_backup"), opt("allow_probes"))
        run.production, run.components = live.production, dict(live.components)  # the report names them
        with run_lock(live, run.run_id) as notes:
            _note_lock(run, notes)
            yield None, live
        return
    platform = docker_platform(policy, opt("target_file")) if kind == "docker" else open_sandbox(policy)
    with platform as (sandbox, target), run_lock(target, run.run_id) as notes:
        run.components = dict(target.components, sandbox_start=f"{sandbox.started_in:.2f}s")
        run.emulated = list(target.emulated)
        _note_lock(run, notes)
        yield sandbox, target


def docker_platform(policy: Policy,
                    target_file: Path | None) -> AbstractContextManager[tuple[Sandbox, Target]]:
    """The docker target's platform, or a skip with its reason (no engine: found in under a second; no
    images built)."""
    reason = docker_engine_unavailable()
    if reason is not None:
        pytest.skip(reason)
    try:
        images = check_present(load_images(target_file))
    except PolicyError as err:
        pytest.skip(f"docker target: {err}")
    return open_docker(policy, images)
def _note_lock(run: RunRecord, notes: list[str]) -> None:
    """The run lock in the evidence: where it is held, and any stale lock taken over."""
    run.components["run lock"] = notes[0]
    run.notes += notes[1:]


@pytest.fixture(scope="session")
def target(sandbox_and_target: tuple[Sandbox | None, Target]) -> Target:
    """The drill target every step talks to."""
    return sandbox_and_target[1]


@pytest.fixture(scope="session")
def sandbox(sandbox_and_target: tuple[Sandbox | None, Target]) -> Sandbox:
    """The sandbox itself, for steps that act on it directly (backup jobs, faults)."""
    if sandbox_and_target[0] is None:
        pytest.skip("this step needs the sandbox target")
    return sandbox_and_target[0]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Check every input file before anything runs (policy, target file, answers: a malformed one stops
    the run, naming the file, the key and the expected form); load the findings the test command expects
    on this target (see known_findings); expired ones stop."""
    path = config.getoption("known_findings")
    try:
        check_inputs(config)
        if path is not None:
            config.stash[KNOWN_FINDING] = load_known_findings(path, config.getoption("target"))
    except PolicyError as err:
        raise pytest.UsageError(str(err)) from None


def check_inputs(config: pytest.Config) -> None:
    """Parse the policy, the target file and the answers file now, so a bad one stops the run at once."""
    load_policy(config.getoption("policy"))
    if config.getoption("target") == "live" and config.getoption("target_file") is not None:
        load_target_file(config.getoption("target_file"))  # (a sandbox run reads it for redaction only)
    if config.getoption("answers", None) is not None:
        load_answers(config.getoption("answers"))


@pytest.hookimpl(hookwrapper=True, tryfirst=True)  # outermost: runs after the evidence plugin recorded it
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """A known finding stays a failed scenario in the evidence and an xfail here, while it fails for its
    reason; failing for another reason, or no longer failing, fails the test."""
    outcome = yield
    report = outcome.get_result()
    findings = item.config.stash.get(KNOWN_FINDING, [])
    if not findings or report.when != "call" or "_pytest_bdd_example" not in item.fixturenames:
        return
    record = record_of(item)
    finding = match_finding(findings, record.ids)
    if finding is None:
        return
    waived = f"{finding.id}: {finding.justification} (waived until {finding.expires})"
    record.details["known finding"] = waived
    if record.status == "failed" and finding.reason in record.error:
        report.outcome, report.wasxfail = "skipped", f"known finding {finding.id}: {finding.reason}"
    elif record.status == "failed":
        report.longrepr = (f"failed for another reason than the known finding {finding.id} "
                           f"({finding.reason!r}): {record.error}")
    else:
        report.outcome, report.longrepr = "failed", (
            f"known finding {finding.id} did not fail as stated ({record.status}): remove or update it")
