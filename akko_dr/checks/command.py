"""``akko-dr check``: run the verification, schedule, scope and policy features with a progress display.

Exit status: 0 when every check passed or was a coverage gap, 1 on any finding, 2 on a harness error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from akko_dr.evidence import console

CHECK_STEPS = ("test_policy_analysis.py", "test_verification.py", "test_backup_schedule.py", "test_scope.py")


def _check(args: argparse.Namespace, extra: list[str]) -> int:
    steps = Path(args.steps)
    files = [str(steps / name) for name in CHECK_STEPS]
    if missing := [f for f in files if not Path(f).is_file()]:
        print(f"akko-dr: no check steps at {', '.join(missing)} (run from the checkout)", file=sys.stderr)
        return 2
    argv = [*files, "--target", args.target, "--evidence-dir", args.evidence_dir]
    if args.target_file:
        argv += ["--target-file", args.target_file]
    return console.run("check", argv, extra, args.evidence_dir)


def add_check_command(sub: argparse._SubParsersAction) -> None:
    from akko_dr.wiring import TARGET_KINDS

    check = sub.add_parser("check", help="run the verification checks and policy analysis (1 on failure)")
    check.add_argument("--target", choices=TARGET_KINDS, default="sandbox")
    check.add_argument("--target-file", default=None, help="live target description (YAML)")
    check.add_argument("--evidence-dir", default="reports")
    check.add_argument("--steps", default="steps", help="the step definitions folder")
    check.set_defaults(handler=_check)
