"""``akko-dr``: the operator's entry point. ``akko-dr drill`` runs the drills and prints the evidence path."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from akko_dr import bundle
from akko_dr.evidence import console
from akko_dr.wiring import TARGET_KINDS


def _drill(args: argparse.Namespace, extra: list[str]) -> int:
    if not Path(args.steps).is_dir():
        print(f"akko-dr: no steps folder at {args.steps}", file=sys.stderr)
        return 2
    evidence = str(Path(args.evidence_dir).resolve())  # relative to where the operator runs it
    argv = [args.steps, "--target", args.target, "--evidence-dir", evidence]
    for option in ("target_file", "allow_destructive", "approved_by"):
        if value := getattr(args, option):
            argv += [f"--{option.replace('_', '-')}", value]
    if args.fresh_backup:
        argv.append("--fresh-backup")
    return console.run("drill", argv, extra, evidence)


def add_drill_command(sub: argparse._SubParsersAction) -> None:
    drill = sub.add_parser("drill", help="run the drill features and write evidence to reports/")
    drill.add_argument("--target", choices=TARGET_KINDS, default="sandbox")
    drill.add_argument("--target-file", default=None)
    drill.add_argument("--allow-destructive", default=None, metavar="NAMESPACE",
                       help="live only: let drills change the cluster, repeating the target's namespace")
    drill.add_argument("--approved-by", default=None, metavar="NAME",
                       help="who approved a destructive run on a production target")
    drill.add_argument("--fresh-backup", action="store_true",
                       help="live only: run the backup job first, not restore the newest scheduled one")
    drill.add_argument("--evidence-dir", default="reports")
    drill.add_argument("--steps", default=str(bundle.steps_dir()), help="the step definitions folder")
    drill.set_defaults(handler=_drill)


# Each sub-command registers itself: (module, function) — add one line per command.
COMMANDS: tuple[tuple[str, str], ...] = (
    ("akko_dr.cli", "add_drill_command"),
    ("akko_dr.commands_verify", "add_verify_command"),
    ("akko_dr.commands_verify", "add_countersign_command"),
    ("akko_dr.commands_verify", "add_keygen_command"),
    ("akko_dr.commands_verify", "add_archive_command"),
    ("akko_dr.checks.command", "add_check_command"),
    ("akko_dr.nightly", "add_nightly_command"),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="akko-dr", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for module, function in COMMANDS:
        getattr(importlib.import_module(module), function)(sub)
    args, extra = parser.parse_known_args(argv)
    return args.handler(args, extra)


if __name__ == "__main__":
    sys.exit(main())
