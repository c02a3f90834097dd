"""Object store adapter: any S3-compatible endpoint through boto3."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO

import boto3
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    FlexibleChecksumError,
    ReadTimeoutError,
)
from botocore.response import StreamingBody
from urllib3.exceptions import ProtocolError

from akko_dr.errors import DrillError, TargetUnavailable
from akko_dr.ports import BucketLock, StoredObject, StoreRefused

DEFAULT_TIMEOUT = 30.0  # seconds; a target passes its policy's cadence.deadlines.object_store
ATTEMPTS = 2  # a request is tried at most this often before the store is reported unavailable


def _config(timeout: float) -> Config:
    """Connect and read timeouts from the policy's deadline: a stalled endpoint fails, never hangs."""
    return Config(connect_timeout=min(timeout, 3.0), read_timeout=timeout,
                  retries={"total_max_attempts": ATTEMPTS, "mode": "standard"},
                  s3={"addressing_style": "path"})


_STREAMED = TransferConfig(multipart_threshold=8 << 20, multipart_chunksize=8 << 20, max_concurrency=2)
_STREAMED.max_in_memory_upload_chunks = 3  # a stream read ahead of the upload holds 3 parts, not 10


class S3ObjectStore:
    """S3 through boto3; credentials come from the caller or the environment, never from files we write."""

    def __init__(self, endpoint: str | None, region: str = "us-east-1",
                 access_key: str | None = None, secret_key: str | None = None,
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        self.endpoint = endpoint or "aws"
        self.timeout = timeout
        self.client = boto3.client("s3", endpoint_url=endpoint, region_name=region, config=_config(timeout),
                                   aws_access_key_id=access_key, aws_secret_access_key=secret_key)

    def __repr__(self) -> str:
        return f"S3ObjectStore({self.endpoint})"

    def _call(self, what: str, fn, **kwargs):
        try:
            return fn(**kwargs)
        except EndpointConnectionError:
            raise TargetUnavailable(f"object store unreachable at {self.endpoint} ({what})") from None
        except (ReadTimeoutError, ConnectTimeoutError):
            raise TargetUnavailable(f"object store at {self.endpoint} did not answer within the deadline of "
                                    f"{self.timeout:g}s ({what}; {ATTEMPTS} attempts)") from None
        except ClientError as err:
            raise refusal(what, err) from None
        except BotoCoreError as err:
            raise TargetUnavailable(f"object store error at {self.endpoint} ({what}): "
                                    f"{type(err).__name__}") from None

    def put(self, bucket: str, key: str, path: Path, metadata: dict[str, str] | None = None) -> None:
        with open(path, "rb") as body:
            self._call(f"put s3://{bucket}/{key}", self.client.put_object, Bucket=bucket, Key=key,
                       Body=body, Metadata=metadata or {})

    def put_stream(self, bucket: str, key: str, body: BinaryIO,
                   metadata: dict[str, str] | None = None) -> None:
        """Upload ``body`` as it is produced (multipart, a few chunks in memory at most); an error raised
        by ``body.read`` aborts the upload, so a failed producer never leaves a partial object."""
        what = f"put s3://{bucket}/{key}"
        try:
            self._call(what, self.client.upload_fileobj, Fileobj=body, Bucket=bucket, Key=key,
                       ExtraArgs={"Metadata": metadata or {}}, Config=_STREAMED)
        except S3UploadFailedError as err:
            raise TargetUnavailable(f"object store at {self.endpoint} failed ({what}): "
                                    f"{str(err).splitlines()[0]}") from None

    def put_bytes(self, bucket: str, key: str, body: bytes) -> None:
        self._call(f"put s3://{bucket}/{key}", self.client.put_object, Bucket=bucket, Key=key, Body=body)

    def download(self, bucket: str, key: str, path: Path) -> None:
        resp = self._call(f"get s3://{bucket}/{key}", self.client.get_object, Bucket=bucket, Key=key)
        with open(path, "wb") as out:
            for chunk in resp["Body"].iter_chunks(1 << 20):
                out.write(chunk)

    def stream(self, bucket: str, key: str) -> BinaryIO:
        """The object's bytes as a reader, fetched as they are read (never held whole)."""
        resp = self._call(f"get s3://{bucket}/{key}", self.client.get_object, Bucket=bucket, Key=key)
        return _Body(resp["Body"], f"s3://{bucket}/{key} at {self.endpoint}")

    def read(self, bucket: str, key: str) -> bytes:
        resp = self._call(f"get s3://{bucket}/{key}", self.client.get_object, Bucket=bucket, Key=key)
        return resp["Body"].read()

    def delete(self, bucket: str, key: str) -> None:
        self._call(f"delete s3://{bucket}/{key}", self.client.delete_object, Bucket=bucket, Key=key)

    def versions(self, bucket: str, prefix: str = "") -> list[tuple[str, str]]:
        """Every (key, version id) of a versioned bucket."""
        out: list[tuple[str, str]] = []
        token: dict[str, str] = {}
        while True:
            page = self._call(f"list versions s3://{bucket}/{prefix}", self.client.list_object_versions,
                              Bucket=bucket, Prefix=prefix, **token)
            out += [(v["Key"], v["VersionId"]) for v in page.get("Versions", [])]
            if not page.get("IsTruncated"):
                return out
            token = {"KeyMarker": page["NextKeyMarker"], "VersionIdMarker": page["NextVersionIdMarker"]}

    def read_version(self, bucket: str, key: str, version: str) -> bytes:
        resp = self._call(f"get s3://{bucket}/{key}?versionId={version}", self.client.get_object,
                          Bucket=bucket, Key=key, VersionId=version)
        return resp["Body"].read()

    def delete_version(self, bucket: str, key: str, version: str) -> None:
        self._call(f"delete s3://{bucket}/{key}?versionId={version}", self.client.delete_object,
                   Bucket=bucket, Key=key, VersionId=version)

    def retention(self, bucket: str, key: str, version: str) -> tuple[str, datetime | None]:
        """Object Lock mode and retain-until date of one version (read with HEAD)."""
        head = self._call(f"head s3://{bucket}/{key}?versionId={version}", self.client.head_object,
                          Bucket=bucket, Key=key, VersionId=version)
        return head.get("ObjectLockMode", ""), head.get("ObjectLockRetainUntilDate")

    def set_retention(self, bucket: str, key: str, version: str, mode: str, until: datetime) -> None:
        self._call(f"put retention s3://{bucket}/{key}?versionId={version}", self.client.put_object_retention,
                   Bucket=bucket, Key=key, VersionId=version,
                   Retention={"Mode": mode, "RetainUntilDate": until})

    def put_locked(self, bucket: str, key: str, body: bytes, mode: str, until: datetime) -> str:
        """Write ``body`` locked in ``mode`` until ``until`` (its own retain-until date); its version id."""
        reply = self._call(f"put locked s3://{bucket}/{key}", self.client.put_object, Bucket=bucket, Key=key,
                           Body=body, ObjectLockMode=mode, ObjectLockRetainUntilDate=until)
        return reply.get("VersionId", "")

    def list(self, bucket: str, prefix: str = "") -> list[StoredObject]:
        out: list[StoredObject] = []
        token: dict[str, str] = {}
        while True:
            page = self._call(f"list s3://{bucket}/{prefix}", self.client.list_objects_v2,
                              Bucket=bucket, Prefix=prefix, **token)
            out += [StoredObject(bucket, o["Key"], o["Size"], o["LastModified"])
                    for o in page.get("Contents", [])]
            if not page.get("IsTruncated"):
                return out
            token = {"ContinuationToken": page["NextContinuationToken"]}


class _Body:
    """A streaming GET's body; a connection lost mid-read is the store unavailable, in one line."""

    def __init__(self, body: StreamingBody, where: str) -> None:
        self._body, self._where = body, where

    def read(self, n: int = -1) -> bytes:
        try:
            return self._body.read(None if n < 0 else n)
        except FlexibleChecksumError:
            raise DrillError(f"object {self._where} is corrupt: its bytes do not match the checksum the "
                             "store recorded") from None
        except (BotoCoreError, ProtocolError, OSError) as err:
            raise TargetUnavailable(f"object store connection lost reading {self._where}: "
                                    f"{type(err).__name__}") from None

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._body.close()


def refusal(what: str, err: ClientError) -> StoreRefused:
    """The store's error answer as a StoreRefused: code, message and HTTP status (never credentials)."""
    error = err.response.get("Error", {})
    status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    message = " ".join(str(error.get("Message", "")).split())
    server = err.response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("server", "")
    return StoreRefused(what, str(error.get("Code", "Error")), message, int(status or 0), server)


_NO_LOCK = ("ObjectLockConfigurationNotFoundError", "ObjectLockConfigurationNotFound")
_NO_LIFECYCLE = ("NoSuchLifecycleConfiguration",)


class S3BucketInspector:
    """Object Lock and lifecycle configuration of buckets, read through the S3 API (read-only)."""

    def __init__(self, store: S3ObjectStore) -> None:
        self.store = store

    def _get(self, what: str, fn, absent: tuple[str, ...], **kwargs):
        try:
            return fn(**kwargs)
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code", "Error")
            if code in absent:
                return None
            raise refusal(what, err) from None
        except BotoCoreError as err:
            raise TargetUnavailable(f"object store error ({what}): {type(err).__name__}") from None

    def lock(self, bucket: str) -> BucketLock:
        conf = self._get(f"reading the Object Lock configuration of {bucket}",
                         self.store.client.get_object_lock_configuration, _NO_LOCK, Bucket=bucket)
        if conf is None:
            return BucketLock(False, None, None)
        lock = conf.get("ObjectLockConfiguration", {})
        default = lock.get("Rule", {}).get("DefaultRetention", {})
        days = default.get("Days") or 365 * default.get("Years", 0)
        return BucketLock(lock.get("ObjectLockEnabled") == "Enabled", default.get("Mode"),
                          timedelta(days=days) if days else None)

    def expiry(self, bucket: str, key_prefix: str) -> timedelta | None:
        """The lifecycle expiration that applies to keys starting with ``key_prefix`` (None: never)."""
        conf = self._get(f"reading the lifecycle rules of {bucket}",
                         self.store.client.get_bucket_lifecycle_configuration, _NO_LIFECYCLE, Bucket=bucket)
        days = [rule["Expiration"]["Days"] for rule in (conf or {}).get("Rules", [])
                if rule.get("Status") == "Enabled" and "Days" in rule.get("Expiration", {})
                and key_prefix.startswith(_rule_prefix(rule))]
        return timedelta(days=min(days)) if days else None


def _rule_prefix(rule: dict) -> str:
    filt = rule.get("Filter", {})
    return filt.get("Prefix", filt.get("And", {}).get("Prefix", rule.get("Prefix", "")))
