"""Copy a verified run folder to the Object Lock audit bucket, so the evidence itself is WORM."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from akko_dr.evidence import integrity

if TYPE_CHECKING:
    from akko_dr.adapters.s3 import S3ObjectStore

PREFIX = "evidence/"


@dataclass(frozen=True)
class Archived:
    key: str
    lock_mode: str  # "" when the store applied no Object Lock
    retain_until: datetime | None


def _sealed_files(run_dir: Path) -> list[str]:
    sealing = [integrity.MANIFEST, integrity.SIGNATURE]
    folder = run_dir / integrity.COUNTERSIGNATURES
    sealing += [f"{integrity.COUNTERSIGNATURES}/{p.name}" for p in sorted(folder.glob("*"))] \
        if folder.is_dir() else []
    return [*integrity.run_files(run_dir), *sealing]


def archive(run_dir: Path, store: S3ObjectStore, bucket: str) -> list[Archived]:
    """Upload every file of a run that verifies; returns each object's lock as the store reports it."""
    result = integrity.verify(run_dir)
    if not result.ok:
        raise integrity.IntegrityError(f"{run_dir} does not verify, not archiving: {result.problems[0]}")
    base = f"{PREFIX}{run_dir.name}/"
    for rel in _sealed_files(run_dir):
        store.put(bucket, base + rel, run_dir / rel, {"sha256": integrity.sha256_file(run_dir / rel)})
    return [Archived(key, *store.retention(bucket, key, version))
            for key, version in store.versions(bucket, base)]
