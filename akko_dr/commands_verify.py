"""``akko-dr verify``, ``countersign`` and ``keygen``: check and sign the evidence of a run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from akko_dr.errors import DrillError
from akko_dr.evidence import archive, history, integrity
from akko_dr.policy import load_policy


def _targets(path: Path) -> list[Path]:
    """A run folder, or every sealed run of an evidence folder."""
    if (path / integrity.MANIFEST).is_file() or not path.is_dir():
        return [path]
    return integrity.sealed_runs(path) or [path]


def _pinned(path: str | None, evidence: Path) -> str | None:
    """The base64 public key held in a ``.pub`` file written by ``keygen``, from outside the evidence."""
    if not path:
        return None
    if Path(path).resolve().is_relative_to(evidence.resolve()):
        raise integrity.IntegrityError(f"--public-key {path} lies inside {evidence}: a key the evidence "
                                       "carries proves nothing; give the owner's key from elsewhere")
    try:
        return Path(path).read_text().strip()
    except OSError as err:
        raise integrity.IntegrityError(f"--public-key {path}: cannot read ({err.strerror})") from None


def _checks(path: Path, pinned: str | None) -> list[integrity.Verification]:
    """One check per run; for an evidence folder, also that every run in its history is still there."""
    out = [integrity.verify(run_dir, pinned) for run_dir in _targets(path)]
    if (path / history.HISTORY).is_file():
        out.append(integrity.missing_runs(path, [r["run_id"] for r in history.read(path)]))
    return out


def _verify(args: argparse.Namespace, extra: list[str]) -> int:
    failed = 0
    try:
        pinned = _pinned(args.public_key, Path(args.path))
    except integrity.IntegrityError as err:
        print(f"akko-dr: {err}", file=sys.stderr)
        return 2
    for result in _checks(Path(args.path), pinned):
        run_dir = result.run_dir
        print(f"{'OK  ' if result.ok else 'FAIL'} {run_dir}")
        for line in result.problems:
            print(f"  ✗ {line}")
        for line in result.notes:
            print(f"  · {line}")
        failed += not result.ok
    return 1 if failed else 0


def _countersign(args: argparse.Namespace, extra: list[str]) -> int:
    try:
        key = integrity.load_private_key(Path(args.key))
        path = integrity.countersign(Path(args.run_dir), key, args.reviewer, args.role)
    except integrity.IntegrityError as err:
        print(f"akko-dr: {err}", file=sys.stderr)
        return 1
    print(f"countersigned: {path}")
    return 0


def _archive(args: argparse.Namespace, extra: list[str]) -> int:
    from akko_dr.adapters.s3 import S3ObjectStore

    policy = load_policy(args.policy)
    bucket = args.bucket or policy.storage.audit_bucket
    try:
        done = archive.archive(Path(args.run_dir), S3ObjectStore(args.endpoint), bucket)
    except (integrity.IntegrityError, DrillError) as err:
        print(f"akko-dr: {err}", file=sys.stderr)
        return 1
    unlocked = [a.key for a in done if not a.lock_mode]
    for a in done:
        print(f"  s3://{bucket}/{a.key}  {a.lock_mode or 'NO OBJECT LOCK'}  until {a.retain_until}")
    print(f"archived {len(done)} objects; {len(unlocked)} without Object Lock")
    return 1 if unlocked else 0


def _keygen(args: argparse.Namespace, extra: list[str]) -> int:
    path = Path(args.path)
    if path.resolve().is_relative_to(Path(args.evidence_dir).resolve()):
        print(f"akko-dr: refusing to write a private key inside the evidence folder {args.evidence_dir}",
              file=sys.stderr)
        return 2
    try:
        public = integrity.write_private_key(path)
    except FileExistsError:
        print(f"akko-dr: {path} exists; not overwriting a key", file=sys.stderr)
        return 2
    pub = path.with_name(path.name + ".pub")
    pub.write_text(integrity.public_b64(public) + "\n")
    print(f"private key: {path} (keep it out of reports/)")
    print(f"public key:  {pub}  id {integrity.key_id(public)}")
    return 0


def add_verify_command(sub: argparse._SubParsersAction) -> None:
    cmd = sub.add_parser("verify", help="check a run's manifest, signature and chain; names altered files")
    cmd.add_argument("path", help="a run folder (reports/<run-id>) or the evidence folder (all runs)")
    cmd.add_argument("--public-key", default=None,
                     help="require this signer: the .pub file written by keygen")
    cmd.set_defaults(handler=_verify)


def add_countersign_command(sub: argparse._SubParsersAction) -> None:
    cmd = sub.add_parser("countersign", help="a reviewer signs a verified run's manifest")
    cmd.add_argument("run_dir")
    cmd.add_argument("--key", required=True, help="the reviewer's Ed25519 private key (PEM; see keygen)")
    cmd.add_argument("--reviewer", required=True, help="the reviewer's name")
    cmd.add_argument("--role", default="independent reviewer")
    cmd.set_defaults(handler=_countersign)


def add_archive_command(sub: argparse._SubParsersAction) -> None:
    cmd = sub.add_parser("archive", help="copy a verified run to the Object Lock audit bucket (WORM)")
    cmd.add_argument("run_dir")
    cmd.add_argument("--endpoint", default=None, help="S3 endpoint URL (default: AWS); credentials from "
                                                      "the environment, as boto3 reads them")
    cmd.add_argument("--bucket", default=None, help="default: the policy's audit bucket")
    cmd.add_argument("--policy", default=None, help="policy file (default: AKKO 2026.04)")
    cmd.set_defaults(handler=_archive)


def add_keygen_command(sub: argparse._SubParsersAction) -> None:
    cmd = sub.add_parser("keygen", help="create an Ed25519 signing key (never inside the evidence folder)")
    cmd.add_argument("path")
    cmd.add_argument("--evidence-dir", default="reports")
    cmd.set_defaults(handler=_keygen)
