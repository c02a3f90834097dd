"""An object store spread over several S3 servers: each bucket lives on one of them (the platform's
store, and the off-site replica on a server of its own). Every call goes to the bucket's server."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from akko_dr.adapters.s3 import S3BucketInspector, S3ObjectStore
from akko_dr.ports import BucketLock, StoredObject


class SitedObjectStore:
    """S3 calls routed by bucket: ``sites`` names the buckets held elsewhere than ``home``."""

    def __init__(self, home: S3ObjectStore, sites: dict[str, S3ObjectStore]) -> None:
        self.home, self.sites = home, sites
        self.endpoint = home.endpoint
        self.client = home.client  # the platform's own server (bucket administration of the hot buckets)

    def __repr__(self) -> str:
        elsewhere = ", ".join(f"{b} at {s.endpoint}" for b, s in self.sites.items())
        return f"SitedObjectStore({self.endpoint}; {elsewhere})"

    def at(self, bucket: str) -> S3ObjectStore:
        """The server holding ``bucket``."""
        return self.sites.get(bucket, self.home)

    def put(self, bucket: str, key: str, path: Path, metadata: dict[str, str] | None = None) -> None:
        self.at(bucket).put(bucket, key, path, metadata)

    def put_stream(self, bucket: str, key: str, body: BinaryIO,
                   metadata: dict[str, str] | None = None) -> None:
        self.at(bucket).put_stream(bucket, key, body, metadata)

    def stream(self, bucket: str, key: str) -> BinaryIO:
        return self.at(bucket).stream(bucket, key)

    def put_bytes(self, bucket: str, key: str, body: bytes) -> None:
        self.at(bucket).put_bytes(bucket, key, body)

    def download(self, bucket: str, key: str, path: Path) -> None:
        self.at(bucket).download(bucket, key, path)

    def read(self, bucket: str, key: str) -> bytes:
        return self.at(bucket).read(bucket, key)

    def list(self, bucket: str, prefix: str = "") -> list[StoredObject]:
        return self.at(bucket).list(bucket, prefix)

    def delete(self, bucket: str, key: str) -> None:
        self.at(bucket).delete(bucket, key)

    def versions(self, bucket: str, prefix: str = "") -> list[tuple[str, str]]:
        return self.at(bucket).versions(bucket, prefix)

    def read_version(self, bucket: str, key: str, version: str) -> bytes:
        return self.at(bucket).read_version(bucket, key, version)

    def delete_version(self, bucket: str, key: str, version: str) -> None:
        self.at(bucket).delete_version(bucket, key, version)

    def retention(self, bucket: str, key: str, version: str) -> tuple[str, datetime | None]:
        return self.at(bucket).retention(bucket, key, version)

    def set_retention(self, bucket: str, key: str, version: str, mode: str, until: datetime) -> None:
        self.at(bucket).set_retention(bucket, key, version, mode, until)

    def put_locked(self, bucket: str, key: str, body: bytes, mode: str, until: datetime) -> str:
        return self.at(bucket).put_locked(bucket, key, body, mode, until)


class SitedBucketInspector:
    """Object Lock and lifecycle rules read from the server holding each bucket."""

    def __init__(self, store: SitedObjectStore) -> None:
        self.store = store

    def lock(self, bucket: str) -> BucketLock:
        return S3BucketInspector(self.store.at(bucket)).lock(bucket)

    def expiry(self, bucket: str, key_prefix: str) -> timedelta | None:
        return S3BucketInspector(self.store.at(bucket)).expiry(bucket, key_prefix)
