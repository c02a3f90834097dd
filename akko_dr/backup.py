"""Backup jobs and backup objects: dump a database, upload it, find the newest one again."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from akko_dr.dump_keys import DEFAULT_TIME, MANIFEST_SUFFIX
from akko_dr.dumpstream import HashingWriter, SealedReader
from akko_dr.errors import DrillError
from akko_dr.policy import Policy
from akko_dr.ports import (
    FORMAT_SUFFIXES,
    BackupObject,
    Database,
    DatabaseFingerprint,
    JobRun,
    ObjectStore,
    StoredObject,
)
from akko_dr.replication import mirror

KEY_TIME = DEFAULT_TIME  # the default template's time format (kept for callers that write test keys)


def dump_key(policy: Policy, database: str, when: datetime, fmt: str | None = None) -> str:
    """The key a dump of ``database`` taken ``when`` gets, from the policy's ``storage.dump_key``;
    ``fmt``: the dump format (plain, custom) or the key's own format name (sql.gz, dump)."""
    name = FORMAT_SUFFIXES[fmt].removeprefix(".") if fmt in FORMAT_SUFFIXES else fmt
    return policy.storage.dump_prefix + policy.storage.dump_key.key(database, when, name)


def globals_key(policy: Policy, when: datetime) -> str:
    """The key of the roles dumped ``when`` (``storage.globals_key``), beside the database dumps."""
    return policy.storage.dump_prefix + policy.storage.globals_key.key("", when)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def backup_database(policy: Policy, db: Database, store: ObjectStore, database: str,
                    workdir: Path) -> BackupObject:
    """Dump one database and upload it under its key (``storage.dump_key``): plain SQL gzipped, streamed
    with no file, or the custom format the policy's ``storage.dump_format`` may ask for; its manifest
    is written last."""
    taken_at, fmt = datetime.now(UTC), policy.storage.dump_format
    obj = BackupObject(database=database, bucket=policy.storage.backups_bucket,
                       key=dump_key(policy, database, taken_at, fmt), taken_at=taken_at,
                       job=policy.database(database).job.name)
    if fmt == "plain":
        taken = _dump_streamed(db, store, obj)
    else:
        with tempfile.TemporaryDirectory(dir=workdir) as tmp:
            path = Path(tmp) / f"dump{FORMAT_SUFFIXES[fmt]}"
            taken = db.dump(database, path, fmt)
            obj.size, obj.sha256 = path.stat().st_size, sha256_of(path)
            store.put(obj.bucket, obj.key, path,  # S3 metadata is ASCII: the name percent-encoded
                      metadata={"database": quote(database, safe=""), "sha256": obj.sha256})
    obj.fingerprint, obj.catalog = taken.tables, taken.catalog
    store.put_bytes(obj.bucket, obj.manifest_key, obj.manifest())
    return obj


def backup_globals(policy: Policy, db: Database, store: ObjectStore, workdir: Path) -> str:
    """Dump the server's roles (``pg_dumpall --globals-only``) beside the database dumps; the key."""
    key = globals_key(policy, datetime.now(UTC))
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        path = Path(tmp) / "globals.sql.gz"
        db.dump_globals(path)
        store.put(policy.storage.backups_bucket, key, path, metadata={"sha256": sha256_of(path)})
    return key


def _dump_streamed(db: Database, store: ObjectStore, obj: BackupObject) -> DatabaseFingerprint:
    """pg_dump → gzip → the object store through a pipe, uploaded while it is written (no file): the
    sha256 and size are taken on the way. Returns the fingerprint of the dump's snapshot."""
    read_fd, write_fd = os.pipe()
    reader = SealedReader(read_fd, f"the dump of {obj.database}")

    def upload() -> None:
        try:
            store.put_stream(obj.bucket, obj.key, reader, metadata={"database": quote(obj.database, safe="")})
        finally:
            reader.close()  # a writer still writing gets a broken pipe instead of blocking

    with ThreadPoolExecutor(max_workers=1) as pool:
        uploaded = pool.submit(upload)
        try:
            with open(write_fd, "wb") as raw:
                out = HashingWriter(raw)
                fingerprint = db.dump(obj.database, out, "plain")
                reader.sealed = True
        except BrokenPipeError:
            uploaded.result()  # the upload failed first: its error is the reason
            raise
        except BaseException:
            wait([uploaded])  # the upload aborts: the reader was not sealed
            raise
        uploaded.result()
    obj.size, obj.sha256 = out.size, out.sha256.hexdigest()
    return fingerprint


def run_job(policy: Policy, job: str, db: Database, store: ObjectStore, workdir: Path) -> JobRun:
    """Run a backup job of kind pg-dump (every database it protects) or mirror (every hot bucket)."""
    run = JobRun(job=job, started_at=datetime.now(UTC))
    kind = policy.jobs[job].kind
    try:
        if kind == "pg-dump":
            run.globals_key = backup_globals(policy, db, store, workdir)
            for name, database in policy.databases.items():
                if database.job.name == job:
                    run.objects.append(backup_database(policy, db, store, name, workdir))
        elif kind == "mirror":
            for bucket in policy.storage.hot_buckets:
                run.copied += mirror(store, bucket, policy.storage.replica_bucket)
        else:
            raise DrillError(f"{job} (kind {kind}) cannot run on this target")
        run.succeeded = True
    except DrillError as err:
        run.error = str(err)
    run.finished_at = datetime.now(UTC)
    return run


@dataclass(frozen=True)
class Listing:
    """The dumps of one database found under its key prefix, and the keys that parse as no dump name."""

    found: list[tuple[datetime, StoredObject, str]]  # (taken at, object, format)
    unparsed: tuple[str, ...]


def list_dumps(policy: Policy, store: ObjectStore, database: str) -> Listing:
    """Every key under ``database``'s prefix, sorted into its dumps and the keys that parse as nothing
    (reported, not ignored). Manifests and other databases' dumps sharing the prefix are neither."""
    storage = policy.storage
    prefix = storage.dump_prefix + storage.dump_key.prefix(database)
    found, unparsed = [], []
    for obj in store.list(storage.backups_bucket, prefix):
        name = storage.dump_key.parse(obj.key.removeprefix(storage.dump_prefix))
        if name is not None and name.database == database:
            found.append((name.taken_at, obj, name.format))
        elif name is None and not obj.key.endswith(MANIFEST_SUFFIX):
            unparsed.append(obj.key)
    return Listing(found, tuple(unparsed))


def latest_backup(policy: Policy, store: ObjectStore, database: str) -> BackupObject:
    """The newest dump of ``database`` (by the time in its key), with its manifest if any; keys beside
    it that parse as no dump name travel with it (``unparsed``) so the evidence names them."""
    bucket, listing = policy.storage.backups_bucket, list_dumps(policy, store, database)
    if not listing.found:
        also = f"; keys not parsed as dumps: {', '.join(listing.unparsed)}" if listing.unparsed else ""
        raise DrillError(f"no backup of {database} in s3://{bucket}/{policy.storage.dump_prefix} "
                         f"(names {policy.storage.dump_key.text!r}){also}")
    taken_at, newest, _ = max(listing.found, key=lambda found: found[0])
    obj = BackupObject(database=database, bucket=bucket, key=newest.key, size=newest.size,
                       taken_at=taken_at, unparsed=listing.unparsed)
    if any(o.key == obj.manifest_key for o in store.list(bucket, obj.manifest_key)):
        data = json.loads(store.read(bucket, obj.manifest_key))
        obj.sha256, obj.job, obj.fingerprint = data["sha256"], data["job"], data["fingerprint"]
        obj.catalog = data.get("catalog") or {}
    return obj


def latest_globals(policy: Policy, store: ObjectStore) -> StoredObject | None:
    """The newest roles dump beside the database dumps, or None when there is none."""
    storage = policy.storage
    prefix = storage.dump_prefix + storage.globals_key.prefix("")
    found = [(name.taken_at, o) for o in store.list(storage.backups_bucket, prefix)
             if (name := storage.globals_key.parse(o.key.removeprefix(storage.dump_prefix)))]
    return max(found, key=lambda pair: pair[0])[1] if found else None


def restore_globals(policy: Policy, store: ObjectStore, db: Database, workdir: Path,
                    required: bool = True) -> str:
    """Replay the newest roles dump into ``db`` (before any database, whose owners and grants name
    them); one line saying what was restored, for the drill's log. Without a roles dump: refused when
    ``required``, else said in that line."""
    newest = latest_globals(policy, store)
    if newest is None and not required:
        return (f"no roles dump (storage.globals_key {policy.storage.globals_key.text!r}): restoring "
                "without; owners and grants naming a role the server lacks will fail the restore")
    if newest is None:
        raise DrillError(f"no roles dump (storage.globals_key {policy.storage.globals_key.text!r}) in "
                         f"s3://{policy.storage.backups_bucket}/{policy.storage.dump_prefix}: the restored "
                         "databases' owners and grants would name roles that do not exist")
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        path = Path(tmp) / "globals.sql.gz"
        store.download(newest.bucket, newest.key, path)
        kept = db.load_globals(path)
    return (f"roles restored from s3://{newest.bucket}/{newest.key}"
            + (f" ({len(kept)} already present, kept as they were)" if kept else ""))
