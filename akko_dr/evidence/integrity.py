"""Integrity of a run directory: a sha256 manifest, its Ed25519 signature, countersignatures, the chain.

``manifest.json`` lists every file of the run with its sha256 and names the previous sealed run's
manifest hash, so a deleted or replaced past run is detectable. ``manifest.json.sig`` is a detached
Ed25519 signature over the manifest's exact bytes. Reviewers add ``countersignatures/<key-id>.json``
over the same bytes. Private keys are never written into the run directory.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from akko_dr.backup import sha256_of as sha256_file
from akko_dr.measure import utcnow

MANIFEST = "manifest.json"
SIGNATURE = "manifest.json.sig"
COUNTERSIGNATURES = "countersignatures"
FORMAT = "akko-dr-manifest/1"
KEY_ENV = "AKKO_DR_SIGNING_KEY"
EPHEMERAL_NOTE = ("ephemeral key generated for this run and discarded: the signature proves the files are "
                  "unchanged since the run, not who ran it (rehearsal)")


class IntegrityError(Exception):
    """A key or manifest that cannot be used, with the reason in one line."""


@dataclass(frozen=True)
class Signer:
    """A private key and how it was obtained (``configured`` file or ``ephemeral``)."""

    key: Ed25519PrivateKey
    kind: str
    source: str = ""

    @property
    def public_b64(self) -> str:
        return public_b64(self.key.public_key())

    @property
    def key_id(self) -> str:
        return key_id(self.key.public_key())

    def describe(self) -> dict[str, str]:
        out = {"kind": self.kind, "key_id": self.key_id, "public_key": self.public_b64,
               "algorithm": "Ed25519"}
        if self.kind == "ephemeral":
            out["note"] = EPHEMERAL_NOTE
        return out


def public_b64(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def key_id(key: Ed25519PublicKey) -> str:
    """A short, stable name of a public key: the first 16 hex digits of its sha256."""
    return hashlib.sha256(base64.b64decode(public_b64(key))).hexdigest()[:16]


def load_public_key(b64: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(b64))


def load_private_key(path: Path) -> Ed25519PrivateKey:
    """An unencrypted PEM Ed25519 private key (see ``akko-dr keygen``)."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as err:
        raise IntegrityError(f"signing key {path}: cannot load ({type(err).__name__})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise IntegrityError(f"signing key {path}: not an Ed25519 key")
    return key


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


def signer_for(key_path: str | Path | None, evidence_dir: Path) -> Signer:
    """The configured key (option or ``AKKO_DR_SIGNING_KEY``), else an ephemeral one for this run only."""
    chosen = key_path or os.environ.get(KEY_ENV)
    if not chosen:
        return Signer(Ed25519PrivateKey.generate(), "ephemeral")
    path = Path(chosen)
    if _inside(path, evidence_dir):
        raise IntegrityError(f"signing key {path} lies inside the evidence directory {evidence_dir}: "
                             "move it out, evidence must never hold a private key")
    return Signer(load_private_key(path), "configured", str(path))


def write_private_key(path: Path) -> Ed25519PublicKey:
    """Create a new Ed25519 key at ``path`` (mode 0600, refuses to overwrite); returns its public key."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    return key.public_key()


def _sealing_file(rel: str) -> bool:
    return rel in (MANIFEST, SIGNATURE) or rel.startswith(COUNTERSIGNATURES + "/")


def run_files(run_dir: Path) -> list[str]:
    """Every file of a run (relative, sorted), except the manifest, its signature and countersignatures."""
    rels = (p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*") if p.is_file() or p.is_symlink())
    return sorted(r for r in rels if not _sealing_file(r))


def previous_link(run_dir: Path) -> dict[str, str] | None:
    """The newest earlier sealed run beside ``run_dir``: its id and manifest hash (None for the first)."""
    earlier = [p for p in sealed_runs(run_dir.parent) if p.name < run_dir.name]
    if not earlier:
        return None
    prev = earlier[-1]
    return {"run_id": prev.name, "manifest_sha256": sha256_file(prev / MANIFEST)}


def build_manifest(run_dir: Path, signer: Signer, previous: dict[str, str] | None,
                   extra: dict[str, Any] | None = None) -> dict[str, Any]:
    files = {rel: {"sha256": sha256_file(run_dir / rel), "size": (run_dir / rel).stat().st_size}
             for rel in run_files(run_dir)}
    return {"format": FORMAT, "run_id": run_dir.name, "sealed_at": utcnow().isoformat(),
            "files": files, "previous": previous, "signer": signer.describe(), **(extra or {})}


def seal(run_dir: Path, signer: Signer, previous: dict[str, str] | None,
         extra: dict[str, Any] | None = None) -> Path:
    """Write ``manifest.json`` over every file of the run and its detached signature."""
    manifest = build_manifest(run_dir, signer, previous, extra)
    body = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    (run_dir / MANIFEST).write_bytes(body)
    (run_dir / SIGNATURE).write_text(base64.b64encode(signer.key.sign(body)).decode() + "\n")
    return run_dir / MANIFEST


def countersign(run_dir: Path, key: Ed25519PrivateKey, reviewer: str, role: str) -> Path:
    """Add a reviewer's signature over the run's manifest (verifies the run first)."""
    result = verify(run_dir)
    if not result.ok:
        raise IntegrityError(f"{run_dir} does not verify, not countersigning: {result.problems[0]}")
    body = (run_dir / MANIFEST).read_bytes()
    record = {"reviewer": reviewer, "role": role, "signed_at": utcnow().isoformat(),
              "manifest_sha256": hashlib.sha256(body).hexdigest(), "algorithm": "Ed25519",
              "public_key": public_b64(key.public_key()),
              "signature": base64.b64encode(key.sign(body)).decode()}
    folder = run_dir / COUNTERSIGNATURES
    folder.mkdir(exist_ok=True)
    path = folder / f"{key_id(key.public_key())}.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


@dataclass
class Verification:
    """What ``verify`` found: problems fail it, notes describe what was checked."""

    run_dir: Path
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _signature_ok(key_b64: str, signature_b64: str, body: bytes) -> bool:
    try:
        load_public_key(key_b64).verify(base64.b64decode(signature_b64), body)
    except (InvalidSignature, ValueError):
        return False
    return True


def _check_files(run_dir: Path, listed: dict[str, Any], out: Verification) -> None:
    present = set(run_files(run_dir))
    for rel in sorted(listed):
        if rel not in present:
            out.problems.append(f"missing file: {rel}")
        elif sha256_file(run_dir / rel) != listed[rel]["sha256"]:
            out.problems.append(f"altered file: {rel} (sha256 differs from the manifest)")
    out.problems += [f"extra file: {rel} (not in the manifest)" for rel in sorted(present - set(listed))]
    out.notes.append(f"{len(listed)} files checked against their sha256")


UNSIGNED = "unsigned rehearsal: no trusted key"


def _check_signature(run_dir: Path, manifest: dict[str, Any], body: bytes, pinned: str | None,
                     out: Verification) -> None:
    """The signature matches the manifest; it is *verified* only against a key given from outside."""
    signer = manifest.get("signer") or {}
    sig = run_dir / SIGNATURE
    if not sig.is_file():
        out.problems.append(f"missing file: {SIGNATURE} (the manifest is not signed)")
        return
    if not _signature_ok(signer.get("public_key", ""), sig.read_text().strip(), body):
        out.problems.append(f"bad signature: {SIGNATURE} does not match {MANIFEST}")
        return
    if pinned and signer.get("public_key") != pinned:
        out.problems.append(f"signed by key {signer.get('key_id')}, not by the expected key "
                            f"{key_id(load_public_key(pinned))}")
    elif pinned:
        out.notes.append(f"signature verified against the trusted key {signer.get('key_id')} "
                         f"({signer.get('kind')})")
    else:
        out.notes.append(f"integrity checked (the signature matches key {signer.get('key_id')} named in the "
                         "manifest); signature NOT verified against a trusted key: give --public-key KEY.pub")
    if signer.get("kind") == "ephemeral":
        out.notes.append(f"{UNSIGNED}: the key was made for this run and discarded")


def _check_countersignatures(run_dir: Path, body: bytes, out: Verification) -> None:
    folder = run_dir / COUNTERSIGNATURES
    for path in sorted(folder.glob("*")) if folder.is_dir() else []:
        rel = f"{COUNTERSIGNATURES}/{path.name}"
        try:
            rec = json.loads(path.read_text())
            valid = _signature_ok(rec["public_key"], rec["signature"], body)
        except (ValueError, KeyError, TypeError):
            valid, rec = False, {}
        if valid:
            who = f"{rec.get('reviewer')} ({rec.get('role')})"
            out.notes.append(f"countersigned by {who} at {rec.get('signed_at')}")
        else:
            out.problems.append(f"bad countersignature: {rel}")


def _check_chain(run_dir: Path, previous: dict[str, str] | None, out: Verification) -> None:
    if previous is None:
        out.notes.append("first run of the chain (no previous sealed run)")
        return
    prev = run_dir.parent / previous["run_id"] / MANIFEST
    if not prev.is_file():
        out.problems.append(f"previous run {previous['run_id']} is missing: the chain is broken")
    elif sha256_file(prev) != previous["manifest_sha256"]:
        out.problems.append(f"previous run {previous['run_id']} was replaced: its manifest hash differs")
    else:
        out.notes.append(f"chained to previous run {previous['run_id']}")


def verify(run_dir: Path, pinned_public_key: str | None = None) -> Verification:
    """Check a run's manifest, signature, countersignatures, files and its link to the previous run."""
    out = Verification(run_dir)
    path = run_dir / MANIFEST
    if not path.is_file():
        out.problems.append(f"missing file: {MANIFEST} (the run was never sealed)")
        return out
    body = path.read_bytes()
    try:
        manifest = json.loads(body)
    except ValueError:
        out.problems.append(f"altered file: {MANIFEST} is not valid JSON")
        return out
    _check_signature(run_dir, manifest, body, pinned_public_key, out)
    _check_files(run_dir, manifest.get("files", {}), out)
    _check_countersignatures(run_dir, body, out)
    _check_chain(run_dir, manifest.get("previous"), out)
    return out


def missing_runs(evidence_dir: Path, recorded: list[str]) -> Verification:
    """Runs the history store recorded whose sealed folder is gone (catches deleting the newest run)."""
    out = Verification(evidence_dir)
    present, runs = {p.name for p in sealed_runs(evidence_dir)}, list(dict.fromkeys(recorded))
    out.problems += [f"run {r} is in the history store but its sealed folder is missing"
                     for r in runs if r not in present]
    out.notes.append(f"{len(runs)} runs in the history store, {len(present)} sealed folders")
    return out


def sealed_runs(evidence_dir: Path) -> list[Path]:
    """Run folders of an evidence directory that hold a manifest, oldest first."""
    return sorted(p for p in evidence_dir.iterdir()
                  if p.is_dir() and not p.is_symlink() and (p / MANIFEST).is_file())
