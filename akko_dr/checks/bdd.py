"""Glue between the checks and the features: what a target answers with, and how a result ends a step."""

from __future__ import annotations

import sys
from collections.abc import Callable
from contextlib import nullcontext

import pytest

from akko_dr.checks import CheckResult
from akko_dr.errors import Inconclusive, NotApplicable
from akko_dr.evidence.record import ScenarioRecord
from akko_dr.ports import PlatformSource
from akko_dr.targets import Target


def platform_of(target: Target) -> PlatformSource:
    """Where the checks read job runs and Velero backups (the target's ``source`` port)."""
    return target.port("source")


def ready_for_checks(target: Target, evidence: ScenarioRecord) -> None:
    """A check's own precondition: the target as it is (the sandbox undoes damage an earlier scenario
    left). Nothing else: each check reaches only the parts it judges."""
    if target.heal and (healed := target.heal()):
        evidence.details["re-seeded before the scenario"] = healed


def progress_to_console(evidence: ScenarioRecord, config: pytest.Config) -> Callable[[str], None]:
    """Where a waiting probe reports: the console (past pytest's capture) and the evidence."""
    capture = config.pluginmanager.getplugin("capturemanager")

    def say(line: str) -> None:
        evidence.details.setdefault("progress", []).append(line)
        with capture.global_and_fixture_disabled() if capture else nullcontext():
            print(f"  … {line}", file=sys.stderr, flush=True)

    return say


def conclude(result: CheckResult, evidence: ScenarioRecord, where: str) -> None:
    """Record the result; skip when not applicable, a coverage gap when inconclusive, fail with the reason
    when failed or uncovered."""
    evidence.details.setdefault("checks", []).append(f"{result.id}: {result.status}")
    evidence.details.update({k: v for k, v in result.measured.items()})
    evidence.details["refs"] = list(result.refs)
    evidence.verdicts.append(f"{result.status}: {result.reason}")
    if result.status == "not-applicable":
        raise NotApplicable(f"not applicable on {where}: {result.reason}")
    if result.status == "inconclusive":
        raise Inconclusive(result.reason)
    if result.status == "uncovered":
        raise AssertionError(f"uncovered (no check can judge it here): {result.reason}")
    assert result.ok, result.reason
