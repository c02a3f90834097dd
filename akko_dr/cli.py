"""``akko-dr``: the operator's entry point. ``akko-dr drill`` runs the drills and prints the evidence path."""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

from akko_dr.evidence import console
from akko_dr.wiring import TARGET_KINDS


def _drill(args: argparse.Namespace, extra: list[str]) -> int:
    if not Path(args.steps).is_dir():
        print(f"akko-dr: no steps folder at {args.steps} (run from the harness checkout)", file=sys.stderr)
        return 2
    argv = [args.steps, "--target", args.target, "--evidence-dir", args.evidence_dir]
    if args.target_file:
        argv += ["--target-file", args.target_file]
    if args.allow_destructive:
        argv.append("--allow-destructive")
    return console.run("drill", argv, extra, args.evidence_dir)


def add_drill_command(sub: argparse._SubParsersAction) -> None:
    drill = sub.add_parser("drill", help="run the drill features and write evidence to reports/")
    drill.add_argument("--target", choices=TARGET_KINDS, default="sandbox")
    drill.add_argument("--target-file", default=None)
    drill.add_argument("--allow-destructive", action="store_true")
    drill.add_argument("--evidence-dir", default="reports")
    drill.add_argument("--steps", default="steps", help="the step definitions folder")
    drill.set_defaults(handler=_drill)


# Each sub-command registers itself: (module, function) — add one line per command.
COMMANDS: tuple[tuple[str, str], ...] = (
    ("akko_dr.cli", "add_drill_command"),
    ("akko_dr.commands_verify", "add_verify_command"),
    ("akko_dr.commands_verify", "add_countersign_command"),
    ("akko_dr.commands_verify", "add_keygen_command"),
    ("akko_dr.commands_verify", "add_archive_command"),
    ("akko_dr.checks.command", "add_check_command"),
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
