"""Verification checks and policy analysis: the playbook's verification commands, schedule and scope.

Every check returns a :class:`CheckResult`; the figures it is judged by come from the policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal

from akko_dr.policy import format_duration

Status = Literal["passed", "failed", "not-applicable", "uncovered", "inconclusive"]

# Harness settings, not playbook figures (the policy file has no key for them yet); stated in verdicts.


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check: what an auditor reads in the evidence."""

    id: str
    title: str
    status: Status
    reason: str  # one line
    measured: dict[str, object] = field(default_factory=dict)
    refs: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == "passed"

    def evidence(self) -> dict[str, object]:
        """The fields the evidence records (never a credential)."""
        return {"check": self.id, "status": self.status, "reason": self.reason, **self.measured,
                "refs": list(self.refs)}


def result(id: str, title: str, problems: list[str], verdict: str, refs: tuple[str, ...] = (),
           **measured: object) -> CheckResult:
    """Failed with the problems joined into one line, or passed with ``verdict``."""
    if problems:
        return CheckResult(id, title, "failed", "; ".join(problems), measured, refs)
    return CheckResult(id, title, "passed", verdict, measured, refs)


def not_applicable(id: str, title: str, reason: str, refs: tuple[str, ...] = ()) -> CheckResult:
    return CheckResult(id, title, "not-applicable", reason, {}, refs)


def uncovered(id: str, title: str, reason: str, refs: tuple[str, ...] = ()) -> CheckResult:
    return CheckResult(id, title, "uncovered", reason, {}, refs)


def inconclusive(id: str, title: str, reason: str, refs: tuple[str, ...] = (),
                 **measured: object) -> CheckResult:
    """The check ran, but its answer rests on an emulator or proves nothing either way."""
    return CheckResult(id, title, "inconclusive", reason, measured, refs)


def age_text(age: timedelta) -> str:
    """An age for a verdict; a negative age (a time in the future) says so."""
    return format_duration(age) if age >= timedelta(0) else f"-{format_duration(-age)} (in the future)"
