"""``akko-dr check``: run the verification, schedule, scope and policy features with a progress display.

Exit status: 0 when every check passed or was not applicable, non-zero on any failure (for cron and CI).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TextIO

import pytest

CHECK_STEPS = ("test_policy_analysis.py", "test_verification.py", "test_backup_schedule.py", "test_scope.py")


class Progress:
    """One line per scenario as it ends: counter, status, name, and the verdict or reason."""

    def __init__(self, out: TextIO = sys.stdout) -> None:
        self.out, self.total, self.done, self.started = out, 0, 0, time.monotonic()
        self.counts: dict[str, int] = {}
        self.names: dict[str, str] = {}

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.total = len(session.items)
        self.names = {item.nodeid: scenario_name(item) for item in session.items}
        print(f"akko-dr check: {self.total} checks", file=self.out, flush=True)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not (report.when == "call" or (report.when == "setup" and not report.passed)):
            return
        self.done += 1
        status = "skipped" if report.skipped and not hasattr(report, "wasxfail") else report.outcome
        status = "failed" if hasattr(report, "wasxfail") else status
        self.counts[status] = self.counts.get(status, 0) + 1
        name = self.names.get(report.nodeid, report.nodeid)
        why = _reason(report)
        print(f"[{self.done:>3}/{self.total}] {status.upper():7} {name}" + (f" — {why}" if why else ""),
              file=self.out, flush=True)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        summary = ", ".join(f"{n} {s}" for s, n in sorted(self.counts.items()))
        print(f"akko-dr check: {summary or 'nothing ran'} in {time.monotonic() - self.started:.1f}s",
              file=self.out, flush=True)


def scenario_name(item: pytest.Item) -> str:
    """The scenario's name as the feature reads, its outline placeholders filled in."""
    doc = getattr(getattr(item, "function", None), "__doc__", None) or item.name
    name = doc.rpartition(": ")[2]
    example = getattr(getattr(item, "callspec", None), "params", {}).get("_pytest_bdd_example", {})
    for key, value in (example or {}).items():
        name = name.replace(f"<{key}>", str(value))
    return name


def _reason(report: pytest.TestReport) -> str:
    if report.skipped and isinstance(report.longrepr, tuple):
        return str(report.longrepr[2]).removeprefix("Skipped: ")
    if report.failed or hasattr(report, "wasxfail"):
        crash = getattr(report.longrepr, "reprcrash", None)
        text = crash.message if crash is not None else ""
        return text.splitlines()[0].removeprefix("AssertionError: ") if text else ""
    return ""


def _check(args: argparse.Namespace, extra: list[str]) -> int:
    steps = Path(args.steps)
    files = [str(steps / name) for name in CHECK_STEPS]
    if missing := [f for f in files if not Path(f).is_file()]:
        print(f"akko-dr: no check steps at {', '.join(missing)} (run from the checkout)", file=sys.stderr)
        return 2
    argv = [*files, "--target", args.target, "--evidence-dir", args.evidence_dir, "-p", "no:terminal", *extra]
    if args.target_file:
        argv += ["--target-file", args.target_file]
    code = int(pytest.main(argv, plugins=[Progress()]))
    latest = Path(args.evidence_dir) / "latest"
    if (latest / "results.json").exists():
        print(f"Evidence: {latest.resolve() / 'report.html'}")
    return code


def add_check_command(sub: argparse._SubParsersAction) -> None:
    from akko_dr.wiring import TARGET_KINDS

    check = sub.add_parser("check", help="run the verification checks and policy analysis (1 on failure)")
    check.add_argument("--target", choices=TARGET_KINDS, default="sandbox")
    check.add_argument("--target-file", default=None, help="live target description (YAML)")
    check.add_argument("--evidence-dir", default="reports")
    check.add_argument("--steps", default="steps", help="the step definitions folder")
    check.set_defaults(handler=_check)
