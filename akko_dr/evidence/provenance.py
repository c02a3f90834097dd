"""What was signed: the policy and playbook the run was judged against, the harness that ran, the people."""

from __future__ import annotations

import hashlib
import re
import subprocess
from importlib import metadata, resources
from pathlib import Path
from typing import Any

from akko_dr.policy import DEFAULT_POLICY

_SOURCE = re.compile(rb"^#\s*Source:\s*(\S+)", re.MULTILINE)


def policy_bytes(path: str | Path | None) -> bytes:
    """The policy file's exact bytes: the given file, or the packaged default."""
    if path is None:
        return resources.files("akko_dr.policies").joinpath(DEFAULT_POLICY).read_bytes()
    return Path(path).read_bytes()


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def playbook(policy: bytes, given: str | Path | None) -> dict[str, str]:
    """The playbook the policy came from: named by its ``# Source:`` line; hashed when given."""
    named = _SOURCE.search(policy)
    out = {"named_by_policy": named.group(1).decode() if named else "not named"}
    if given is None:
        out["sha256"] = "not hashed: no playbook file given (--playbook)"
    else:
        out |= {"file": str(given), "sha256": _sha256(Path(given).read_bytes())}
    return out


def git_commit(root: Path) -> str:
    """The checkout's commit (``+dirty`` when changed), or why there is none."""
    if not (root / ".git").exists():
        return "not run from a git checkout"
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "git checkout, commit unreadable"
    return head + ("+dirty" if dirty else "")


def harness() -> dict[str, str]:
    try:
        version = metadata.version("akko-dr")
    except metadata.PackageNotFoundError:
        version = "not installed"
    return {"version": version, "git_commit": git_commit(Path(__file__).resolve().parents[2])}


def signed(policy_path: str | Path | None, playbook_path: str | Path | None, policy_version: str,
           participants: list[str]) -> dict[str, Any]:
    """The manifest's record of what this run was judged against, by which harness, with whom."""
    try:
        data = policy_bytes(policy_path)
    except OSError as err:
        return {"policy": {"file": str(policy_path), "sha256": f"unreadable ({err.strerror})"},
                "harness": harness(), "participants": participants}
    return {"policy": {"file": str(policy_path or DEFAULT_POLICY), "sha256": _sha256(data),
                       "version": policy_version},
            "playbook": playbook(data, playbook_path), "harness": harness(), "participants": participants}
