"""Glue between the checks and the features: what a target answers with, and how a result ends a step."""

from __future__ import annotations

from typing import Any

import pytest

from akko_dr.checks import CheckResult
from akko_dr.errors import DrillError
from akko_dr.evidence.record import ScenarioRecord
from akko_dr.ports import PlatformSource
from akko_dr.targets import Target


def platform_of(target: Target) -> PlatformSource:
    """Where the checks read job runs and Velero backups (the target's ``source`` port)."""
    return target.port("source")


def s3_client(target: Target) -> Any:
    """The boto3 client of the target's object store (Object Lock and lifecycle questions)."""
    s3 = getattr(target.store, "client", None)
    if s3 is None:
        raise DrillError(f"the {target.kind} target's object store offers no S3 API client")
    return s3


def conclude(result: CheckResult, evidence: ScenarioRecord, where: str) -> None:
    """Record the result; skip when not applicable, fail with the reason when failed or uncovered."""
    evidence.details.setdefault("checks", []).append(f"{result.id}: {result.status}")
    evidence.details.update({k: v for k, v in result.measured.items()})
    evidence.details["refs"] = list(result.refs)
    evidence.verdicts.append(f"{result.status}: {result.reason}")
    if result.status == "not-applicable":
        pytest.skip(f"not applicable on the {where} target: {result.reason}")
    if result.status == "uncovered":
        raise AssertionError(f"uncovered (no check can judge it here): {result.reason}")
    assert result.ok, result.reason
