"""Drill 1 — restore a single PostgreSQL database (playbook: "someone dropped a table").

Safer than the paper procedure: the dump is restored into a scratch database, verified against
the fingerprint recorded at backup time, then swapped in by rename; the damaged database is kept
until sign-off. Any failure rolls back to the untouched original and restarts the consumer.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from akko_dr import dump_content
from akko_dr.backup import BackupObject, latest_backup, restore_globals
from akko_dr.canary import wait_for_write
from akko_dr.dump_content import DumpContent
from akko_dr.dumpstream import BackupStream, restore_into
from akko_dr.errors import DrillError
from akko_dr.fidelity import categories, compare, implausible_rows, rows_only, stale_write
from akko_dr.measure import Measurement, utcnow, wait_for
from akko_dr.policy import Database as PolicyDatabase
from akko_dr.policy import format_duration
from akko_dr.ports import CANARY_TABLE, Catalog, Database, Fingerprint, StoreRefused
from akko_dr.targets import Target

STOP_DEADLINE = 30.0


def quote_ident(name: str) -> str:
    """A table name as an SQL identifier, whatever it holds (quotes doubled): never interpolated raw."""
    return '"' + name.replace('"', '""') + '"'


def take_backup(target: Target, database: str) -> BackupObject:
    """Run the database's backup job now (the sandbox, or a live target with --fresh-backup)."""
    job = target.policy.database(database).job.name
    run = target.port("jobs").run_job(job)
    if not run.succeeded:
        raise DrillError(f"backup job {job} failed: {run.error or run.last_log_line}")
    return latest_backup(target.policy, target.store, database)


@dataclass
class RestoreDatabaseDrill:
    """The state of one Drill 1 run; each method is one step of the playbook."""

    target: Target
    database: str
    run_id: str
    backup: BackupObject | None = None
    scratch_created: bool = False
    swapped: bool = False
    consumer_stopped: bool = False
    declared_at: datetime | None = None
    last_write_before_incident: datetime | None = None
    newest_surviving_write: datetime | None = None
    validated_at: datetime | None = None
    dropped_table: str | None = None
    incident_at: datetime | None = None
    drill_backups: set[str] = field(default_factory=set)  # keys of backups the drill took itself
    verified_how: str = ""  # the integrity check the restored copy passed
    service_answer: str = ""  # the service's own answer after the restore (Keycloak: a real login)
    compared: list[str] = field(default_factory=list)  # what it compared: categories, or plausibility checks
    replicas_before: int = 1  # the service's replicas before the drill stopped it
    restore_server: Database | None = None  # a server segregated from the source; None: the source's own
    after_incident: Fingerprint = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    _t0: float = 0.0
    _t1: float = 0.0
    _sql: Path | None = None  # a plain-SQL file restored by other means (use_restored)
    _stream: BackupStream | None = None  # the newest dump, opened by pull_latest_backup
    _table_seen: bool | None = None  # whether the head of the streamed SQL showed a table
    _files: list[Path] = field(default_factory=list)  # what the drill wrote in the target's workdir

    @property
    def info(self) -> PolicyDatabase:
        return self.target.policy.database(self.database)

    @property
    def started_clock(self) -> float:
        """The monotonic time the incident was declared (the RTO's start)."""
        return self._t0

    @property
    def server(self) -> Database:
        """Where the scratch restore goes: a segregated server when one is given, else the source's."""
        return self.restore_server or self.target.db

    @property
    def scratch(self) -> str:
        return f"{self.database}__restore_{self.run_id}"

    @property
    def kept(self) -> str:
        return f"{self.database}__predrill_{self.run_id}"

    def use_restored(self, sql: Path, source: BackupObject) -> None:
        """Take a plain-SQL copy restored by other means (a point-in-time recovery) as the backup to load."""
        self.backup, self._sql = source, sql

    def _note(self, line: str) -> None:
        self.log.append(f"{utcnow().isoformat(timespec='milliseconds')} {line}")

    # -- the incident ----------------------------------------------------------------------
    def drop_table(self, table: str) -> None:
        """Inject the playbook's incident: a table dropped by mistake."""
        self.target.require_destructive(f"drop table {table} in {self.database}")
        self.last_write_before_incident = self.target.port("canary").newest_write(self.database)
        self.incident_at = utcnow()
        self.target.db.execute(self.database, f"DROP TABLE {quote_ident(table)} CASCADE")
        self.dropped_table = table
        self.after_incident = self.content()
        self._note(f"incident injected: table {table} dropped in {self.database}")

    def declare_incident(self) -> None:
        """Start the RTO clock."""
        self._t0 = time.monotonic()
        self.declared_at = utcnow()
        self._note("incident declared")

    # -- the recovery ----------------------------------------------------------------------
    def stop_consumer(self) -> None:
        """Scale the database's service to zero, noting how many replicas it had to put them back."""
        service = self.info.consumer
        self.replicas_before = max(self.target.orchestrator.running(service), 1)
        self.target.orchestrator.scale(service, 0)
        self.consumer_stopped = True
        wait_for(f"{service} to stop", lambda: self.target.orchestrator.running(service) == 0,
                 STOP_DEADLINE)
        self._note(f"consumer {service} stopped")

    def pull_latest_backup(self) -> BackupObject:
        """Open the newest dump as a stream and read its head: refused now when it is no dump, holds no
        table or comes from a newer server. The rest streams into the restore, its sha256 computed on
        the way (a custom-format archive is spooled to a file first, ``pg_restore -j`` seeks in it, and is
        refused the same ways by its table of contents)."""
        self.backup = latest_backup(self.target.policy, self.target.store, self.database)
        spool = self.target.workdir / f"{self.run_id}-{self.database}.dump"
        self._files.append(spool)
        try:
            self._stream = BackupStream(self.target.store, self.backup, spool)
        except StoreRefused as err:
            if err.code not in ("NoSuchKey", "404"):
                raise
            raise DrillError(f"backup {self.backup.key} vanished between the listing and the download "
                             f"({err.code})") from None
        if self._stream.archive is None:
            content, whole = self._stream.head()
            self._table_seen = content.has_table
            self._refuse_unusable(content, whole)
        elif content := self._archive_content(self._stream.archive):  # its table of contents says
            self._table_seen = True
            self._refuse_unusable(content, True)
        self._note(f"backup opened: s3://{self.backup.bucket}/{self.backup.key} ({self.backup.size} bytes, "
                   f"{self._describe(self._stream)})")
        if self.backup.unparsed:
            self._note(f"keys not parsed as dumps of {self.database} (storage.dump_key "
                       f"{self.target.policy.storage.dump_key.text!r}): {', '.join(self.backup.unparsed)}")
        return self.backup

    def _archive_content(self, archive: Path) -> DumpContent | None:
        """What a spooled archive holds (None: no local pg_restore reads its format, the restore decides);
        one pg_restore cannot read, or whose table of contents lists no table, is refused before any
        restore."""
        try:
            content = self.server.archive_content(archive)
        except DrillError as err:
            raise DrillError(f"backup {self.backup.key} {err}") from None
        if content is None:
            self._note("archive's table of contents not read here (no local pg_restore reads its format): "
                       "the restore decides")
        elif not content.has_table:
            raise DrillError(f"backup {self.backup.key} holds no table (its table of contents lists none): "
                             "nothing to restore")
        return content

    @staticmethod
    def _describe(stream: BackupStream) -> str:
        if stream.archive is not None:
            return "custom-format archive, spooled whole for pg_restore -j, sha256 checked"
        return "gzipped plain SQL, streamed into the restore; its sha256 is compared once it has passed"

    def _refuse_unusable(self, content: DumpContent, whole: bool) -> None:
        """Refuse, before any restore, a dump that holds no table (``whole``: all of it was read) or
        comes from a newer server."""
        assert self.backup is not None
        if whole and not content.has_table:
            self._refuse_empty(content.sql_bytes)
        if problem := dump_content.too_new(content, self.backup.key, self.server.server_version()):
            raise DrillError(problem)

    def _refuse_empty(self, sql_bytes: int) -> None:
        raise DrillError(f"backup {self.backup.key} holds no table ({sql_bytes} bytes of SQL): "
                         "nothing to restore")

    def restore_to_scratch(self, jobs: int | None = None) -> None:
        """Restore the opened dump into a new scratch database as it downloads (``jobs``: the cores it may
        use, all by default: pg_restore workers for a custom-format archive, parallel index builds for
        plain SQL); refusals found on the way (a checksum that differs, a gzip error, no table restored)
        drop nothing but the scratch database."""
        jobs = jobs or os.cpu_count() or 1
        assert self._stream is not None or self._sql is not None, "pull the backup first"
        db = self.server
        db.drop(self.scratch)
        db.create(self.scratch)
        self.scratch_created = True
        if self._stream is None:
            db.load(self.scratch, self._sql, jobs)
        else:
            self._restore_stream(jobs)
        self._note(f"backup restored into scratch database {self.scratch}")

    def _restore_stream(self, jobs: int) -> None:
        """Stream the opened dump into the scratch database; the sha256 is compared once it has passed.
        A dump whose head showed no table (a very long head) is refused when none was restored."""
        stream, self._stream = self._stream, None
        recorded = " as recorded at backup time" if stream.backup.sha256 else " (no manifest to compare)"
        with stream:
            restore_into(self.server, self.scratch, stream, jobs)
        self._note(f"backup streamed whole: {stream.backup.size} bytes, sha256 "
                   f"{stream.backup.sha256[:12]}…{recorded}")
        if self._table_seen is False and not self.server.fingerprint(self.scratch):
            self._refuse_empty(stream.sql_bytes)

    def verify_scratch(self) -> dict[str, object]:
        """Compare the scratch database with the fingerprint the backup's manifest recorded, category
        by category; without a manifest, judge its plausibility. Refuse, before any swap, on a problem."""
        assert self.backup is not None
        with ThreadPoolExecutor(max_workers=1) as pool:  # the catalog described while the rows are hashed
            catalog = pool.submit(self.server.catalog, self.scratch) if (
                self.backup.fingerprint and self.backup.catalog) else None
            restored = self.server.fingerprint(self.scratch)
            if self.backup.fingerprint:
                described = catalog.result() if catalog else {}
                problems, how, compared = self._against_manifest(restored, described)
            else:
                problems, how, compared = self._plausibility(restored)
        if problems:
            raise DrillError(f"restored backup {self.backup.key} does not match {self.database}: "
                             + "; ".join(problems))
        self.newest_surviving_write = self.server.latest_canary(self.scratch)
        self.verified_how, self.compared = how, compared
        self._note(f"scratch database verified ({how})")
        return {"method": how, "tables": len(restored), "compared": compared}

    def _against_manifest(self, restored: Fingerprint, catalog: Catalog) -> tuple[list[str], str, list[str]]:
        expected, recorded = self.backup.fingerprint, self.backup.catalog
        compared = categories(expected, recorded)
        how = f"manifest fingerprint taken in the dump's snapshot: {', '.join(compared)} compared"
        if older := rows_only(expected, restored):
            how += (f"; {', '.join(older)}: row counts only, their checksums recorded by an older "
                    "fingerprint (bound to OIDs a restore changes)")
        return compare(expected, recorded, restored, catalog), how, compared

    def _plausibility(self, restored: Fingerprint) -> tuple[list[str], str, list[str]]:
        """No manifest (AKKO's own CronJob dumps): plausible row counts against the damaged source, and
        a newest restored write recent enough for the backup's time."""
        ratio, interval = self.target.policy.min_row_ratio, self.info.job.interval()
        source = self.target.db.fingerprint(self.database)
        destroyed = {self.dropped_table} if self.dropped_table else set()
        problems = implausible_rows(source, restored, destroyed, ratio)
        spared = f" but the destroyed {', '.join(sorted(destroyed))}" if destroyed else ""
        compared = [f"row counts of the source's {len(set(source) - destroyed)} tables{spared}: "
                    f"at least {ratio:g}x the source's"]
        source_newest = self.target.db.latest_canary(self.database)
        if source_newest is None:
            compared.append(f"newest restored write: not checkable, {self.database} has no canary writes")
        else:
            compared.append(f"newest restored write within {format_duration(interval)} of the backup time")
            stale = stale_write(self.server.latest_canary(self.scratch), source_newest,
                                self.backup.taken_at, interval)
            problems += [stale] if stale else []
        how = ("plausibility (no manifest; schema, privileges, owners, sequences and large objects not "
               "comparable): " + "; ".join(compared))
        return problems, how, compared

    def swap_in(self) -> None:
        """Rename the damaged database aside (kept for sign-off) and the verified copy into place."""
        db = self.target.db
        copied = db.copy_database_settings(self.database, self.scratch)
        self._note(f"database-level owner, privileges and settings of {self.database} given to the restored "
                   f"copy: {', '.join(copied)}")
        db.rename(self.database, self.kept)
        try:
            db.rename(self.scratch, self.database)
        except Exception:
            db.rename(self.kept, self.database)
            raise
        self.swapped = True
        self._note(f"restored database swapped in; damaged copy kept as {self.kept}")

    def restart_consumer(self) -> None:
        self.target.orchestrator.scale(self.info.consumer, self.replicas_before)
        self.consumer_stopped = False
        self._note(f"consumer {self.info.consumer} restarted with {self.replicas_before} replica(s)")

    def validate_service(self) -> None:
        """The service is back once its consumer commits to the restored database and, where the target
        has a check of the service itself (Keycloak: a real login), that check passes; stops the RTO clock."""
        wait_for_write(self.target.port("canary"), self.database, after=self.newest_surviving_write)
        if check := self.target.service_checks.get(self.database):
            self.service_answer = check()
            self._note(f"service answers: {self.service_answer}")
        self._t1 = time.monotonic()
        self.validated_at = utcnow()
        self._note("service validated")

    def table_exists(self, table: str) -> bool:
        return table in self.target.db.fingerprint(self.database)

    def content(self) -> Fingerprint:
        """The source database's content without the canary, which its service keeps appending to."""
        fp = self.target.db.fingerprint(self.database)
        return {t: v for t, v in fp.items() if t != CANARY_TABLE}

    def changes_since_incident(self) -> list[str]:
        """Tables whose content differs from right after the incident (empty when untouched)."""
        now = self.content()
        names = sorted(set(now) | set(self.after_incident))
        return [t for t in names if now.get(t) != self.after_incident.get(t)]

    def leftover_files(self) -> list[Path]:
        """Files this run wrote in the target's workdir still there (the downloaded and decompressed dump)."""
        return sorted(self.target.workdir.glob(f"{self.run_id}-*"))

    def leftover_databases(self) -> list[str]:
        """Scratch databases of this run still on the server."""
        return [name for name in self.server.databases() if name == self.scratch]

    # -- the figures -----------------------------------------------------------------------
    def rto(self) -> Measurement:
        if not self._t1:
            raise DrillError("RTO not measured: the service was never validated")
        klass = self.info.klass
        return Measurement("RTO", timedelta(seconds=self._t1 - self._t0), klass.rto, klass)

    def rpo(self) -> Measurement:
        before, survived = self.last_write_before_incident, self.newest_surviving_write
        if before is None or survived is None:
            raise DrillError("RPO not measured: no canary write before the incident or none restored")
        klass = self.info.klass
        return Measurement("RPO", max(before - survived, timedelta(0)), klass.rpo, klass)

    def rpo_worst_case(self) -> Measurement:
        """The data loss the schedule allows: the interval of the job protecting the database (or the
        measured loss, when larger). This, not the restore path's figure, is judged against the class."""
        measured, job = self.rpo(), self.info.job
        return Measurement("RPO", max(measured.measured, job.interval()), measured.target, measured.klass)

    def rpo_basis(self) -> str:
        """What the measured RPO stands for: the restore path, or the schedule's real data loss."""
        job, interval = self.info.job.name, format_duration(self.info.job.interval())
        if self.backup is None:
            return f"no backup restored; the schedule ({job}) allows up to {interval} of loss"
        when = self.incident_at or self.declared_at or utcnow()
        age = format_duration(max(when - self.backup.taken_at, timedelta(0)))
        if self.backup.key in self.drill_backups:
            return (f"backup taken by the drill {age} before the incident; this RPO shows the restore path, "
                    f"not the schedule; the schedule ({job}, every {interval}) allows up to {interval}")
        return (f"newest scheduled backup by {job}, taken {age} before the incident; the schedule "
                f"allows up to {interval}")

    def segregation(self) -> tuple[bool, str]:
        """Where the restore went (DORA Art. 12(3)): a scratch database on the source server is not
        segregated from it; one on a second server is."""
        if self.restore_server is not None:
            return True, f"second PostgreSQL server {self.restore_server!r}: segregated from the source"
        return False, f"separate database {self.scratch}, same server as {self.database}: not segregated"

    def restore_segregated(self) -> dict[str, object]:
        """Restore the newest backup on the segregated server and verify it there; the copy is dropped
        afterwards (the source is never touched). Returns the verification."""
        self.restore_server = self.target.port("segregated_db")
        self.declare_incident()
        try:
            self._note(restore_globals(self.target.policy, self.target.store, self.restore_server,
                                       self.target.workdir, required=False))
            self.pull_latest_backup()
            self.restore_to_scratch()
            verified = self.verify_scratch()
            self._t1 = time.monotonic()
            self.validated_at = utcnow()
        finally:
            self._drop_scratch()
        return verified

    def restore_time(self) -> timedelta:
        """Declaration to a verified copy (the segregated restore, which swaps nothing in)."""
        if not self._t1:
            raise DrillError("restore time not measured: the copy was never verified")
        return timedelta(seconds=self._t1 - self._t0)

    def plan(self) -> list[str]:
        """What the drill would do, step by step, with the call each step makes: printed instead of
        acting when destructive steps are not allowed."""
        db, consumer, orch = self.database, self.info.consumer, self.target.orchestrator.kind
        bucket, job = self.target.policy.storage.backups_bucket, self.info.job.name
        steps = [f"run backup job {job} (Job from CronJob {job}: POST batch/v1 jobs)"] if (
            self.target.fresh_backup) else []
        return [
            *steps,
            f"stop {consumer}: scale to 0 on {orch} (PATCH apps/v1 deployments/{consumer}/scale)",
            f"pull the newest {self.target.policy.storage.dump_prefix}"
            f"{self.target.policy.storage.dump_key.text.replace('{database}', db)} from s3://{bucket} "
            "(S3 ListObjectsV2, GetObject)",
            "read its head: refuse what is no dump, holds no table or comes from a newer server (local)",
            f"stream it into a new scratch database {self.scratch} as it downloads, its sha256 computed on "
            "the way and compared with the backup manifest at the end; a mismatch or a gzip error drops the "
            "scratch database (SQL CREATE DATABASE, psql or pg_restore)",
            "compare the scratch database with the fingerprint recorded at backup time: rows, schema, "
            "privileges, owners, sequences, large objects; without a manifest, plausible row counts and "
            "a recent newest write (SQL SELECT, pg_dump --schema-only)",
            f"rename {db} to {self.kept} (kept until sign-off), then {self.scratch} to {db} "
            "(SQL ALTER DATABASE … RENAME)",
            f"start {consumer}: scale to its replicas (PATCH apps/v1 deployments/{consumer}/scale) and wait "
            "for its first write to the restored database (SQL SELECT)"]

    # -- safety ----------------------------------------------------------------------------
    def abort(self) -> list[str]:
        """Undo whatever a failed drill left: scratch dropped, original in place, consumer running."""
        actions: list[str] = []
        for action, step in (("scratch database dropped", self._drop_scratch),
                             ("consumer restarted", self._restart_if_stopped),
                             ("downloaded dump removed", self.discard_files)):
            try:
                if step():
                    actions.append(action)
            except Exception as err:  # every undo is tried; a failed one is named, never hidden
                actions.append(f"{action} FAILED: {type(err).__name__}: {' '.join(str(err).split())}")
        for line in actions:
            self._note(f"abort: {line}")
        return actions

    def _drop_scratch(self) -> bool:
        if not self.scratch_created or self.swapped:
            return False
        self.server.drop(self.scratch)
        self.scratch_created = False
        return True

    def discard_files(self) -> bool:
        """Close a backup stream still open and remove the dump files this drill wrote in the target's
        workdir; whether there were any."""
        if self._stream is not None:
            stream, self._stream = self._stream, None
            stream.close()
        present = [path for path in self._files if path.exists()]
        for path in present:
            path.unlink()
        self._files.clear()
        return bool(present)

    def _restart_if_stopped(self) -> bool:
        if not self.consumer_stopped:
            return False
        self.restart_consumer()
        return True

    def run(self, table: str) -> None:
        """The whole drill: the incident, then the recovery."""
        self.drop_table(table)
        self.recover()

    def recover(self) -> None:
        """Every recovery step in order, as the feature file runs them; aborts safely on failure."""
        try:
            if self.declared_at is None:  # Drill 3 declares at the attack
                self.declare_incident()
            self.stop_consumer()
            self.pull_latest_backup()
            self.restore_to_scratch()
            self.verify_scratch()
            self.swap_in()
            self.restart_consumer()
            self.validate_service()
        except BaseException:  # a refusal, an interrupt, or a harness bug: undo, then let it through as is
            self.abort()
            raise

    def evidence(self) -> dict[str, object]:
        """What the report shows for this drill."""
        segregated, segregation = self.segregation()
        out: dict[str, object] = {
            "database": self.database, "class": self.info.klass.title,
            "restore_target": self.scratch, "segregated_restore": segregated, "segregation": segregation,
            "kept_for_signoff": self.kept if self.swapped else None, "log": self.log,
        }
        if self.verified_how:
            out["integrity check"] = self.verified_how
            out["compared"] = self.compared
        if self.service_answer:
            out["service check"] = self.service_answer
        if self.backup:
            out["backup"] = self.backup.provenance()
        return out
