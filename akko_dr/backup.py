"""Backup jobs and backup objects: dump a database, upload it, find the newest one again."""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from concurrent.futures import ThreadPoolExecutor, wait
from datetime import UTC, datetime
from pathlib import Path

from akko_dr.dumpstream import HashingWriter, SealedReader
from akko_dr.errors import DrillError
from akko_dr.policy import Policy
from akko_dr.ports import DUMP_SUFFIXES, BackupObject, Database, Fingerprint, JobRun, ObjectStore
from akko_dr.replication import mirror

KEY_TIME = "%Y%m%d%H%M%S"


def dump_key(policy: Policy, database: str, when: datetime, fmt: str = "plain") -> str:
    return f"{policy.storage.dump_prefix}{database}_{when.strftime(KEY_TIME)}{DUMP_SUFFIXES[fmt]}"


def dump_pattern(policy: Policy, database: str) -> re.Pattern[str]:
    """Dump keys of ``database``, in any format; group 1 is the time in the key."""
    suffixes = "|".join(re.escape(s) for s in DUMP_SUFFIXES.values())
    return re.compile(rf"^{re.escape(policy.storage.dump_prefix + database)}_(\d{{14}})(?:{suffixes})$")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def backup_database(policy: Policy, db: Database, store: ObjectStore, database: str,
                    workdir: Path) -> BackupObject:
    """Dump one database and upload ``pg/<db>_<YYYYmmddHHMMSS>.sql.gz`` (or ``.dump``, the custom format
    the policy's ``storage.dump_format`` may ask for) with its manifest, written last."""
    taken_at, fmt = datetime.now(UTC), policy.storage.dump_format
    obj = BackupObject(database=database, bucket=policy.storage.backups_bucket,
                       key=dump_key(policy, database, taken_at, fmt), taken_at=taken_at,
                       job=policy.database(database).job.name)
    if fmt == "plain":
        obj.fingerprint = _dump_streamed(db, store, obj)
    else:
        with tempfile.TemporaryDirectory(dir=workdir) as tmp:
            path = Path(tmp) / f"dump{DUMP_SUFFIXES[fmt]}"
            obj.fingerprint = db.dump(database, path, fmt)
            obj.size, obj.sha256 = path.stat().st_size, sha256_of(path)
            store.put(obj.bucket, obj.key, path, metadata={"database": database, "sha256": obj.sha256})
    store.put_bytes(obj.bucket, obj.manifest_key, obj.manifest())
    return obj


def _dump_streamed(db: Database, store: ObjectStore, obj: BackupObject) -> Fingerprint:
    """pg_dump → gzip → the object store through a pipe, uploaded while it is written (no file): the
    sha256 and size are taken on the way. Returns the fingerprint of the dump's snapshot."""
    read_fd, write_fd = os.pipe()
    reader = SealedReader(read_fd, f"the dump of {obj.database}")

    def upload() -> None:
        try:
            store.put_stream(obj.bucket, obj.key, reader, metadata={"database": obj.database})
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


def latest_backup(policy: Policy, store: ObjectStore, database: str) -> BackupObject:
    """The newest dump of ``database`` (by the timestamp in its key), with its manifest if any."""
    bucket = policy.storage.backups_bucket
    pattern = dump_pattern(policy, database)
    found = [(m[1], o) for o in store.list(bucket, policy.storage.dump_prefix + database + "_")
             if (m := pattern.match(o.key))]
    if not found:
        raise DrillError(f"no backup of {database} in s3://{bucket}/{policy.storage.dump_prefix}")
    stamp, newest = max(found, key=lambda pair: pair[0])
    obj = BackupObject(database=database, bucket=bucket, key=newest.key, size=newest.size,
                       taken_at=datetime.strptime(stamp, KEY_TIME).replace(tzinfo=UTC))
    if any(o.key == obj.manifest_key for o in store.list(bucket, obj.manifest_key)):
        data = json.loads(store.read(bucket, obj.manifest_key))
        obj.sha256, obj.job, obj.fingerprint = data["sha256"], data["job"], data["fingerprint"]
    return obj
