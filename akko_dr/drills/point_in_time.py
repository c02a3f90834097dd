"""Drill 1, point in time: a dropped table is brought back as it was just before the drop.

The newest base backup taken before the incident is restored on a SECOND PostgreSQL server (segregated
from the source, DORA Art. 12(3)) and the archived WAL replayed up to the moment the incident began.
The recovered database is checked against the source's content just before the incident, then brought
back by Drill 1's own swap (scratch database, verified, renamed in; the damaged one kept for sign-off).
The data loss is measured from canary writes: the last one committed before the drop against the
newest one that came back.
"""

from __future__ import annotations

import gzip
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from akko_dr.backup import latest_backup
from akko_dr.drills.restore_database import RestoreDatabaseDrill
from akko_dr.errors import DrillError
from akko_dr.measure import Measurement, utcnow
from akko_dr.policy import BackupJob, format_duration
from akko_dr.ports import CANARY_TABLE, BackupObject, BaseBackup, Fingerprint, Recovery
from akko_dr.targets import Target


def _when(value: datetime | None) -> str:
    return value.isoformat(timespec="milliseconds") if value else "no transaction replayed"


def choose_base_backup(backups: list[BaseBackup], target_time: datetime, location: str) -> BaseBackup:
    """The newest base backup that ended before ``target_time``; refused, with the reason, when none did
    (WAL replays forward only)."""
    usable = [b for b in backups if b.end_time <= target_time]
    if usable:
        return max(usable, key=lambda b: b.end_time)
    if not backups:
        raise DrillError(f"no base backup in the WAL archive {location}: nothing to replay WAL onto")
    oldest = min(backups, key=lambda b: b.end_time)
    raise DrillError(f"recovery target {_when(target_time)} is before the oldest base backup {oldest.id} "
                     f"(ended {_when(oldest.end_time)}): WAL replays forward from a base backup, never "
                     "backwards; choose a later target or restore a dump")


def stopped_early(recovery: Recovery, location: str) -> str:
    """Why a recovery that did not reach its target stopped, naming the segment and the time reached."""
    if recovery.reached:
        got = _when(recovery.reached)
    elif recovery.restored_segments:
        got = f"the end of base backup {recovery.backup.id} ({_when(recovery.backup.end_time)})"
    else:
        backup = recovery.backup
        got = f"no consistent point (base backup {backup.id} needs {backup.begin_wal} onwards)"
    reached = f"it could reach {got}, not the target {_when(recovery.target_time)}"
    if recovery.missing_segment:
        return (f"recovery stopped early: WAL segment {recovery.missing_segment} is missing from the archive "
                f"{location}; {reached}")
    last = recovery.log[-1] if recovery.log else "no log"
    return f"recovery did not reach its target: {reached} (server log: {last})"


@dataclass
class PointInTimeDrill:
    """One run of the point-in-time variant of Drill 1; each method is one step."""

    target: Target
    database: str
    run_id: str
    swap: RestoreDatabaseDrill = field(init=False)
    base_backup: BaseBackup | None = None
    recovery: Recovery | None = None
    before_incident: Fingerprint = field(default_factory=dict)
    incident_segment: str = ""
    recovered: Fingerprint = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.swap = RestoreDatabaseDrill(self.target, self.database, self.run_id)

    @property
    def wal_job(self) -> BackupJob:
        job = self.swap.info.wal_job
        if job is None or job.archive is None:
            raise DrillError(f"the policy names no WAL archive job for {self.database}")
        return job

    @property
    def location(self) -> str:
        return self.target.port("wal_archive").location

    # -- the incident ----------------------------------------------------------------------------
    def drop_table(self, table: str) -> None:
        """Record the content just before, then drop the table (Drill 1's incident)."""
        self.target.require_destructive(f"drop table {table} in {self.database}")
        self.before_incident = self.swap.content()
        self.swap.drop_table(table)

    def declare_incident(self) -> None:
        self.swap.declare_incident()

    def recovery_target(self) -> datetime:
        """Just before the incident: the moment the drop was issued (exclusive)."""
        if self.swap.incident_at is None:
            raise DrillError("no incident recorded: nothing to recover to")
        return self.swap.incident_at

    # -- the recovery ----------------------------------------------------------------------------
    def archive_incident_wal(self) -> str:
        """Close the WAL segment holding the last writes before the incident and wait until it is archived
        (a live server still holds them; the archive timeout bounds the loss if it were lost too)."""
        self.target.require_destructive(f"switch to a new WAL segment on the server of {self.database}")
        deadline = max(self.wal_job.archive.timeout.total_seconds() * 2, 60.0)
        self.incident_segment = self.target.port("pitr").switch_wal(deadline)
        self.swap.log.append(f"{_when(utcnow())} WAL segment {self.incident_segment} archived")
        return self.incident_segment

    def recover(self, target_time: datetime | None = None) -> Recovery:
        """Restore the newest base backup before the target on a second server and replay WAL to it;
        refuses a target before every base backup; fails when replay stops short of the target."""
        when = target_time or self.recovery_target()
        self.base_backup = choose_base_backup(self.target.port("wal_archive").base_backups(), when,
                                              self.location)
        self.target.require_destructive(f"start a second server restored from {self.base_backup.id}")
        self.recovery = self.target.port("pitr").recover(self.base_backup, when, self.run_id)
        if not self.recovery.promoted:
            raise DrillError(stopped_early(self.recovery, self.location))
        self.swap.log.append(f"{_when(utcnow())} WAL replayed to {_when(when)} on {self.recovery.server} "
                             f"in {self.recovery.replay.total_seconds():.2f}s")
        return self.recovery

    def verify_recovered(self) -> None:
        """The recovered database holds exactly the content of the source just before the incident."""
        assert self.recovery is not None, "recover first"
        fp = self.recovery.database.fingerprint(self.database)
        self.recovered = {t: v for t, v in fp.items() if t != CANARY_TABLE}
        names = sorted(set(self.recovered) | set(self.before_incident))
        differ = [t for t in names if self.recovered.get(t) != self.before_incident.get(t)]
        if differ:
            raise DrillError(f"the recovered {self.database} differs from its content just before the "
                             f"incident: {', '.join(differ)}")

    def bring_back(self) -> None:
        """Drill 1's swap: a dump of the recovered copy goes into a scratch database on the source server,
        is verified against that copy, and replaces the damaged database (kept for sign-off)."""
        assert self.recovery is not None and self.base_backup is not None, "recover first"
        gz = self.target.workdir / f"{self.run_id}-{self.database}-pitr.sql.gz"
        taken = self.recovery.database.dump(self.database, gz)
        sql = gz.with_suffix("")
        with gzip.open(gz, "rb") as src, open(sql, "wb") as dst:
            shutil.copyfileobj(src, dst)
        bucket, _, key = self.base_backup.location.removeprefix("s3://").partition("/")
        self.swap.use_restored(sql, BackupObject(
            database=self.database, bucket=bucket, key=key, taken_at=self.base_backup.begin_time,
            size=sql.stat().st_size, job=self.wal_job.name, fingerprint=taken.tables, catalog=taken.catalog))
        self.swap.restore_to_scratch()
        self.swap.verify_scratch()
        self.swap.swap_in()

    def abort(self) -> list[str]:
        """Undo what a failed run left: the recovery server, the scratch database, a stopped service."""
        done = self.discard()
        return done + self.swap.abort()

    def discard(self) -> list[str]:
        """Stop the recovery server and remove its data directory (the source was never touched by it)."""
        if self.recovery is None:
            return []
        self.target.port("pitr").discard(self.recovery)
        return [f"recovery server removed ({self.recovery.server})"]

    # -- the figures ------------------------------------------------------------------------------
    def rto(self) -> Measurement:
        return self.swap.rto()

    def rpo(self) -> Measurement:
        return self.swap.rpo()

    def rpo_worst_case(self) -> Measurement:
        """What the WAL archive allows at worst: the archive timeout (a write may wait that long for its
        segment to be shipped, if the server were lost with it), or the measured loss when larger."""
        measured = self.rpo()
        window = self.wal_job.rpo_window()
        return Measurement("RPO", max(measured.measured, window), measured.target, measured.klass)

    def rpo_basis(self) -> str:
        job, window = self.wal_job.name, format_duration(self.wal_job.rpo_window())
        backup = self.base_backup.id if self.base_backup else "none"
        return (f"point-in-time recovery to just before the incident: base backup {backup} and the WAL "
                f"archived by {job}; a server lost with its unarchived WAL loses up to {window} "
                "(archive timeout)")

    def replay_time(self) -> timedelta:
        if self.recovery is None:
            raise DrillError("WAL replay not measured: no recovery ran")
        return self.recovery.replay

    def dump_based_rpo(self) -> str:
        """The loss a restore of the newest dump of the same database would have had, for comparison."""
        job = self.swap.info.job
        allowed = f"{job.name} every {format_duration(job.interval())} allows up to " \
                  f"{format_duration(job.interval())}"
        try:
            dump = latest_backup(self.target.policy, self.target.store, self.database)
        except DrillError as err:
            return f"no dump to compare ({err}); {allowed}"
        before = self.swap.last_write_before_incident or self.recovery_target()
        lost = max(before - dump.taken_at, timedelta(0))
        return f"{format_duration(lost)} (newest dump {dump.key}); the schedule {allowed}"

    def segregation(self) -> tuple[bool, str]:
        if self.recovery is None:
            return False, "no recovery ran"
        return True, f"{self.recovery.server}: segregated from the source server (DORA Art. 12(3))"

    def plan(self) -> list[str]:
        """What the drill would do on a live target, step by step (printed instead of acting)."""
        consumer = self.swap.info.consumer
        return [
            f"stop {consumer}: scale to 0 (PATCH apps/v1 deployments/{consumer}/scale)",
            "close the current WAL segment and wait until it is archived (SQL SELECT pg_switch_wal(); "
            "pg_stat_archiver)",
            f"list base backups and WAL in {self.location} (S3 ListObjectsV2, GetObject backup.info)",
            "restore the newest base backup before the incident on the segregated restore server and replay "
            "WAL to just before the incident (barman-cloud-restore, barman-cloud-wal-restore)",
            "compare the recovered database with its content just before the incident (SQL SELECT)",
            f"dump it into a scratch database {self.swap.scratch} on the source, verify, rename "
            f"{self.database} to {self.swap.kept} and the scratch into place (SQL ALTER DATABASE … RENAME)",
            f"start {consumer} and wait for its first write to the restored database (SQL SELECT)"]

    def evidence(self) -> dict[str, object]:
        segregated, where = self.segregation()
        out = {**self.swap.evidence(), "segregated_restore": segregated, "segregation": where,
               "WAL archive": self.location}
        if self.base_backup:
            out["base backup"] = self.base_backup.provenance()
        if self.recovery:
            out |= {"recovery target": _when(self.recovery.target_time),
                    "WAL replay time": f"{self.recovery.replay.total_seconds():.2f}s",
                    "WAL segments replayed": len(self.recovery.restored_segments),
                    "last transaction replayed": _when(self.recovery.reached)}
        if self.swap.newest_surviving_write:
            out |= {"last write before the incident": _when(self.swap.last_write_before_incident),
                    "newest write restored": _when(self.swap.newest_surviving_write)}
        return out
