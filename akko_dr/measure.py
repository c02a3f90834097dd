"""Measured figures (RTO, RPO, ages) and their judgement against the policy's targets."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from akko_dr.errors import DrillError
from akko_dr.policy import TargetClass, format_duration

T = TypeVar("T")


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Measurement:
    """A measured duration next to its target: ``RTO 14.2s <= 4h (Control plane)``."""

    name: str
    measured: timedelta
    target: timedelta
    klass: TargetClass

    @property
    def met(self) -> bool:
        return self.measured <= self.target

    def verdict(self) -> str:
        if self.met:
            return (f"{self.name} met: measured {format_duration(self.measured)} <= target "
                    f"{format_duration(self.target)} (class {self.klass.key})")
        return (f"{self.name} missed: measured {format_duration(self.measured)} > target "
                f"{format_duration(self.target)} (class {self.klass.key})")


def wait_for(what: str, probe: Callable[[], T | None], deadline: float, interval: float = 0.05) -> T:
    """Poll ``probe`` until it returns a truthy value or ``deadline`` seconds pass (named in the error)."""
    end = time.monotonic() + deadline
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > end:
            raise DrillError(f"timed out after {deadline:g}s waiting for {what}")
        time.sleep(interval)
