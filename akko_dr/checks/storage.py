"""How the checks judge a bucket's Object Lock (read through the target's ``BucketInspector`` port)."""

from __future__ import annotations

from datetime import timedelta

from akko_dr.policy import format_duration
from akko_dr.ports import BucketLock


def lock_text(lock: BucketLock) -> str:
    if not lock.enabled:
        return "no Object Lock"
    retention = format_duration(lock.retention) if lock.retention else "no default retention"
    return f"{lock.mode or 'no default mode'}, {retention}"


def lock_problems(bucket: str, lock: BucketLock, mode: str | None, keep: timedelta) -> list[str]:
    """Why a bucket's lock does not keep objects ``keep`` long in ``mode`` (empty when it does)."""
    if not lock.enabled:
        wanted = f"{mode or 'a lock'}, {format_duration(keep)}"
        return [f"s3://{bucket} is not WORM: no Object Lock (policy: {wanted})"]
    problems = []
    if mode and lock.mode != mode:
        problems.append(f"s3://{bucket} lock mode is {lock.mode or 'unset'}, the policy says {mode}")
    if lock.retention is None or lock.retention < keep:
        have = format_duration(lock.retention) if lock.retention else "none"
        problems.append(f"s3://{bucket} lock retention {have} < policy {format_duration(keep)}")
    return problems
