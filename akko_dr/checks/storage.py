"""What the object store says about its own buckets: Object Lock and lifecycle rules (boto3 client)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from akko_dr.errors import DrillError, TargetUnavailable
from akko_dr.policy import format_duration
from akko_dr.ports import BucketLock

_NO_LOCK = ("ObjectLockConfigurationNotFoundError", "ObjectLockConfigurationNotFound")
_NO_LIFECYCLE = ("NoSuchLifecycleConfiguration",)


def s3_call(what: str, fn: Callable[..., Any], absent: tuple[str, ...] = (), **kwargs: Any) -> Any:
    """Call boto3; an error code in ``absent`` means "not configured" (None), others a one-line reason."""
    try:
        return fn(**kwargs)
    except ClientError as err:
        code = err.response.get("Error", {}).get("Code", "Error")
        if code in absent:
            return None
        raise DrillError(f"object store refused {what}: {code}") from None
    except BotoCoreError as err:
        raise TargetUnavailable(f"object store error ({what}): {type(err).__name__}") from None


def refused(fn: Callable[..., Any], **kwargs: Any) -> str:
    """Try a write the store must refuse: the error code when refused, "" when accepted."""
    try:
        fn(**kwargs)
    except ClientError as err:
        return err.response.get("Error", {}).get("Code", "Error")
    return ""


def bucket_lock(s3: Any, bucket: str) -> BucketLock:
    conf = s3_call(f"reading the Object Lock configuration of {bucket}", s3.get_object_lock_configuration,
                   absent=_NO_LOCK, Bucket=bucket)
    if conf is None:
        return BucketLock(False, None, None)
    lock = conf.get("ObjectLockConfiguration", {})
    default = lock.get("Rule", {}).get("DefaultRetention", {})
    days = default.get("Days") or 365 * default.get("Years", 0)
    return BucketLock(lock.get("ObjectLockEnabled") == "Enabled", default.get("Mode"),
                      timedelta(days=days) if days else None)


def expiry_for(s3: Any, bucket: str, key_prefix: str) -> timedelta | None:
    """The lifecycle expiration that applies to keys starting with ``key_prefix`` (None: never expire)."""
    conf = s3_call(f"reading the lifecycle rules of {bucket}", s3.get_bucket_lifecycle_configuration,
                   absent=_NO_LIFECYCLE, Bucket=bucket)
    days = [rule["Expiration"]["Days"] for rule in (conf or {}).get("Rules", [])
            if rule.get("Status") == "Enabled" and "Days" in rule.get("Expiration", {})
            and key_prefix.startswith(_rule_prefix(rule))]
    return timedelta(days=min(days)) if days else None


def _rule_prefix(rule: dict[str, Any]) -> str:
    filt = rule.get("Filter", {})
    return filt.get("Prefix", filt.get("And", {}).get("Prefix", rule.get("Prefix", "")))


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
