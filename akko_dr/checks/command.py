"""``akko-dr check``: run the verification, schedule, scope and policy features with a progress display.

Exit status: 0 when every check passed or was a coverage gap, 1 on any finding, 2 on a harness error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from akko_dr import bundle
from akko_dr.evidence import console

CHECK_STEPS = ("test_policy_analysis.py", "test_verification.py", "test_backup_schedule.py", "test_scope.py")


def _check(args: argparse.Namespace, extra: list[str]) -> int:
    steps = Path(args.steps)
    files = [str(steps / name) for name in CHECK_STEPS]
    if missing := [f for f in files if not Path(f).is_file()]:
        print(f"akko-dr: no check steps at {', '.join(missing)}", file=sys.stderr)
        return 2
    evidence = str(Path(args.evidence_dir).resolve())  # relative to where the operator runs it
    argv = [*files, "--target", args.target, "--evidence-dir", evidence]
    if args.target_file:
        argv += ["--target-file", args.target_file]
    if args.allow_probes:
        argv.append("--allow-probes")
    return console.run("check", argv, extra, evidence)


def add_check_command(sub: argparse._SubParsersAction) -> None:
    from akko_dr.wiring import TARGET_KINDS

    check = sub.add_parser("check", help="run the verification checks and policy analysis (1 on failure)")
    check.add_argument("--target", choices=TARGET_KINDS, default="sandbox")
    check.add_argument("--target-file", default=None, help="live target description (YAML)")
    check.add_argument("--allow-probes", action="store_true",
                       help="live only: write WORM probe records and replication canaries (under dr-probe/); "
                            "without it the checks use read-only methods and say so")
    check.add_argument("--evidence-dir", default="reports")
    check.add_argument("--steps", default=str(bundle.steps_dir()), help="the step definitions folder")
    check.set_defaults(handler=_check)
