"""A run stopped mid-way (Ctrl-C, or SIGTERM at a CronJob pod's deadline) is sealed as INCOMPLETE.

SIGTERM is turned into the KeyboardInterrupt pytest already handles for SIGINT: the session still
finishes, the evidence plugin names the scenario it was in and every scenario not run, and seals.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any

from akko_dr.evidence.record import RunRecord
from akko_dr.measure import utcnow


class Interrupts:
    """Which signal stopped the run; SIGTERM handled like SIGINT (a second one is ignored while sealing)."""

    def __init__(self) -> None:
        self.signal = "SIGINT"
        self._previous: Any = None

    def install(self) -> None:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._on_term)

    def restore(self) -> None:
        if self._previous is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None

    def _on_term(self, signum: int, frame: FrameType | None) -> None:
        self.signal = "SIGTERM"
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # let the evidence be sealed
        raise KeyboardInterrupt("SIGTERM")


def mark(run: RunRecord, how: str, current: str, not_run: list[str]) -> None:
    """Record the interruption: when, by what, in which scenario, and what never ran."""
    run.interrupted = {"signal": how, "at": utcnow().isoformat(timespec="seconds"), "in": current}
    run.not_run = list(not_run)
    for rec in run.scenarios:
        if rec.status == "not run":
            rec.error = rec.error or f"interrupted ({how}) before it finished"
