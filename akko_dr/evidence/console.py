"""What ``akko-dr drill`` and ``check`` print: a line per scenario, a summary, where the evidence is.

No pytest traceback and no fixture internals reach the console (the full traceback stays in report.html);
``-v`` gives pytest's own verbose output instead. Exit codes: 0 all passed, 1 findings, 2 harness error.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TextIO

import pytest

from akko_dr.evidence.plugin import scenario_name
from akko_dr.evidence.record import one_line, status_word
from akko_dr.evidence.redact import mask

VERBOSE = ("-v", "-vv", "-vvv", "--verbose")


class Progress:
    """One line per scenario as it ends: counter, status, name, and the one-line reason."""

    def __init__(self, command: str, out: TextIO = sys.stdout) -> None:
        self.command, self.out, self.total, self.done, self.started = command, out, 0, 0, time.monotonic()
        self.counts: dict[str, int] = {}
        self.names: dict[str, str] = {}

    def _print(self, line: str) -> None:
        print(mask(line), file=self.out, flush=True)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.total = len(session.items)
        self.names = {item.nodeid: scenario_name(item) for item in session.items}
        self._print(f"akko-dr {self.command}: {self.total} scenarios")

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            lines = [ln for ln in str(report.longrepr).splitlines() if ln.strip()]
            last = lines[-1] if lines else "unknown"
            self._print(f"ERROR collecting {report.nodeid or 'the steps'}: {last}")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not (report.when == "call" or (report.when == "setup" and not report.passed)):
            return
        self.done += 1
        status = getattr(report, "akko_status", None) or _outcome(report)
        self.counts[status] = self.counts.get(status, 0) + 1
        why = getattr(report, "akko_reason", "") or _reason(report)
        known = " (known finding)" if hasattr(report, "wasxfail") else ""
        word = status_word(status, why) + known
        self._print(f"[{self.done:>3}/{self.total}] {word:7} {self.names.get(report.nodeid, report.nodeid)}"
                    + (f" — {why}" if why else ""))

    def pytest_internalerror(self, excrepr: object) -> None:
        lines = [ln for ln in str(excrepr).splitlines() if ln.strip()]
        self._print(f"akko-dr: harness error: {lines[-1] if lines else 'unknown'}")

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        self._print(f"akko-dr {self.command}: interrupted ({one_line(excinfo.value) or 'SIGINT'}); "
                    "the evidence is sealed as INCOMPLETE")

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        summary = ", ".join(f"{n} {s.replace('-', ' ')}" for s, n in sorted(self.counts.items()))
        took = time.monotonic() - self.started
        self._print(f"akko-dr {self.command}: {summary or 'nothing ran'} in {took:.1f}s")


def _outcome(report: pytest.TestReport) -> str:
    if hasattr(report, "wasxfail"):
        return "failed"
    return report.outcome


def _reason(report: pytest.TestReport) -> str:
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    if report.failed or hasattr(report, "wasxfail"):
        crash = getattr(report.longrepr, "reprcrash", None)
        text = crash.message if crash is not None else ""
        return text.splitlines()[0].removeprefix("AssertionError: ") if text else ""
    return ""


def exit_code(pytest_code: int) -> int:
    """0 all passed, 1 findings reported, 2 harness error (interrupted, usage, internal, none collected)."""
    return pytest_code if pytest_code in (0, 1) else 2


def run(command: str, argv: list[str], extra: list[str], evidence_dir: str) -> int:
    """Run pytest quietly (``-v`` in ``extra``: pytest's verbose output) and say where the evidence is."""
    if any(arg in VERBOSE for arg in extra):
        code = int(pytest.main([*argv, *extra]))
    else:
        code = int(pytest.main([*argv, "-p", "no:terminal", *extra], plugins=[Progress(command)]))
    where(Path(evidence_dir))
    return exit_code(code)


def where(evidence_dir: Path) -> None:
    latest = evidence_dir / "latest"
    if not (latest / "results.json").exists():
        print(f"akko-dr: no evidence was written under {evidence_dir}", file=sys.stderr)
        return
    run_dir = latest.resolve()
    results = json.loads((run_dir / "results.json").read_text())
    if results.get("incomplete"):
        print(f"INCOMPLETE: interrupted at {results['interrupted'].get('at')}; "
              f"{len(results.get('not_run', []))} scenarios not run")
    print(f"Report:   {run_dir / 'audit-report.html'}")
    print(f"Log:      {run_dir / 'report.html'}  (full tracebacks)")
    print(f"Verify:   akko-dr verify {run_dir}")
