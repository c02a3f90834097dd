"""Backup jobs and backup objects: dump a database, upload it, find the newest one again."""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

from akko_dr.errors import DrillError
from akko_dr.policy import Policy
from akko_dr.ports import BackupObject, Database, JobRun, ObjectStore
from akko_dr.replication import mirror

KEY_TIME = "%Y%m%d%H%M%S"


def dump_key(policy: Policy, database: str, when: datetime) -> str:
    return f"{policy.storage.dump_prefix}{database}_{when.strftime(KEY_TIME)}.sql.gz"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def backup_database(policy: Policy, db: Database, store: ObjectStore, database: str,
                    workdir: Path) -> BackupObject:
    """Dump one database and upload ``pg/<db>_<YYYYmmddHHMMSS>.sql.gz`` with its manifest."""
    taken_at = datetime.now(UTC)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        path = Path(tmp) / "dump.sql.gz"
        fingerprint = db.dump(database, path)
        obj = BackupObject(database=database, bucket=policy.storage.backups_bucket,
                           key=dump_key(policy, database, taken_at), taken_at=taken_at,
                           size=path.stat().st_size, sha256=sha256_of(path),
                           job=policy.database(database).job.name, fingerprint=fingerprint)
        store.put(obj.bucket, obj.key, path,  # S3 metadata is ASCII: the name percent-encoded
                  metadata={"database": quote(database, safe=""), "sha256": obj.sha256})
    store.put_bytes(obj.bucket, obj.manifest_key, obj.manifest())
    return obj


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


def _dump_pattern(policy: Policy, database: str) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(policy.storage.dump_prefix + database)}_(\d{{14}})\.sql\.gz$")


def latest_backup(policy: Policy, store: ObjectStore, database: str) -> BackupObject:
    """The newest dump of ``database`` (by the timestamp in its key), with its manifest if any."""
    bucket = policy.storage.backups_bucket
    pattern = _dump_pattern(policy, database)
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
