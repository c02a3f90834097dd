"""Velero backups as the checks judge them."""

from __future__ import annotations

from akko_dr.ports import VeleroBackup


def newest_completed(backups: list[VeleroBackup]) -> VeleroBackup | None:
    """The newest backup in phase Completed."""
    done = [b for b in backups if b.phase == "Completed" and b.completed_at is not None]
    return max(done, key=lambda b: b.completed_at, default=None)
