"""The WAL archive as Barman's cloud commands write it, read through the object store port.

Layout (barman-cloud-wal-archive, barman-cloud-backup): ``<prefix>/<server>/wals/<tli+log>/<segment>[.gz…]``
and ``<prefix>/<server>/base/<backup id>/backup.info``. The archiver's own record of success and failure
is ``pg_stat_archiver`` on the server that archives.
"""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg

from akko_dr.errors import TargetUnavailable
from akko_dr.ports import ArchiverStats, BaseBackup, ObjectStore, WalSegment

_COMPRESSED = (".gz", ".bz2", ".xz", ".snappy", ".zst", ".lz4")
_STATS = ("SELECT archived_count, last_archived_wal, last_archived_time, failed_count, last_failed_wal, "
          "last_failed_time FROM pg_stat_archiver")
_PENDING = "SELECT count(*) FROM pg_ls_archive_statusdir() WHERE name LIKE '%.ready'"  # needs pg_monitor


def _time(text: str) -> datetime:
    value = datetime.fromisoformat(text.strip())
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def parse_backup_info(text: str) -> dict[str, str]:
    """``key=value`` lines of Barman's backup.info (values may be quoted)."""
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line)
    return {k.strip(): v.strip().strip("'\"") for k, v in pairs}


class BarmanCloudArchive:
    """A WAL archive in Barman's cloud layout under ``s3://bucket/prefix/server``."""

    def __init__(self, store: ObjectStore, bucket: str, prefix: str, server: str, archiver_dsn: str) -> None:
        self.store, self.bucket, self.server = store, bucket, server
        self.root = f"{prefix.strip('/')}/{server}/" if prefix.strip("/") else f"{server}/"
        self.location = f"s3://{bucket}/{self.root.rstrip('/')}"
        self._dsn = archiver_dsn

    def __repr__(self) -> str:
        return f"BarmanCloudArchive({self.location})"

    def segments(self) -> list[WalSegment]:
        out = []
        for obj in self.store.list(self.bucket, self.root + "wals/"):
            name = obj.key.rsplit("/", 1)[-1]
            for suffix in _COMPRESSED:
                name = name.removesuffix(suffix)
            out.append(WalSegment(name, obj.last_modified, obj.size))
        return sorted(out, key=lambda s: s.name)

    def base_backups(self) -> list[BaseBackup]:
        out = []
        for obj in self.store.list(self.bucket, self.root + "base/"):
            if not obj.key.endswith("/backup.info"):
                continue
            info = parse_backup_info(self.store.read(self.bucket, obj.key).decode())
            if not info.get("end_time") or not info.get("end_wal"):
                continue  # a backup still running, or one that died before it ended
            out.append(BaseBackup(info.get("backup_id") or obj.key.split("/")[-2], info["begin_wal"],
                                  info["end_wal"], _time(info["begin_time"]), _time(info["end_time"]),
                                  info.get("status", ""), f"s3://{self.bucket}/{obj.key.rsplit('/', 1)[0]}"))
        return sorted(out, key=lambda b: b.end_time)

    def archiver(self) -> ArchiverStats:
        try:
            with psycopg.connect(self._dsn, autocommit=True, connect_timeout=5) as conn:
                row = conn.execute(_STATS).fetchone()
                return ArchiverStats(*row, pending=_pending(conn))
        except psycopg.OperationalError as err:
            raise TargetUnavailable(f"PostgreSQL unreachable for pg_stat_archiver: "
                                    f"{str(err).strip().splitlines()[0]}") from None


def _pending(conn: psycopg.Connection) -> int | None:
    """Segments waiting for archive_command; None when the role may not list them (no pg_monitor)."""
    try:
        with conn.transaction():
            return conn.execute(_PENDING).fetchone()[0]
    except psycopg.errors.InsufficientPrivilege:
        return None
