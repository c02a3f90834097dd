"""Drill 1 — restore a single PostgreSQL database (playbook: "someone dropped a table").

Safer than the paper procedure: the dump is restored into a scratch database, verified against
the fingerprint recorded at backup time, then swapped in by rename; the damaged database is kept
until sign-off. Any failure rolls back to the untouched original and restarts the consumer.
"""

from __future__ import annotations

import gzip
import shutil
import time
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from akko_dr.backup import BackupObject, latest_backup, sha256_of
from akko_dr.canary import wait_for_write
from akko_dr.errors import DrillError
from akko_dr.measure import Measurement, utcnow, wait_for
from akko_dr.policy import Database as PolicyDatabase
from akko_dr.ports import CANARY_TABLE, Fingerprint
from akko_dr.targets import Target

STOP_DEADLINE = 30.0


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
    after_incident: Fingerprint = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    _t0: float = 0.0
    _t1: float = 0.0
    _sql: Path | None = None

    @property
    def info(self) -> PolicyDatabase:
        return self.target.policy.database(self.database)

    @property
    def scratch(self) -> str:
        return f"{self.database}__restore_{self.run_id}"

    @property
    def kept(self) -> str:
        return f"{self.database}__predrill_{self.run_id}"

    @property
    def sql_file(self) -> Path | None:
        """The checked, decompressed dump once pulled (Drill 2 replays it again to time the replay)."""
        return self._sql

    def _note(self, line: str) -> None:
        self.log.append(f"{utcnow().isoformat(timespec='milliseconds')} {line}")

    # -- the incident ----------------------------------------------------------------------
    def drop_table(self, table: str) -> None:
        """Inject the playbook's incident: a table dropped by mistake."""
        self.target.require_destructive(f"drop table {table} in {self.database}")
        self.last_write_before_incident = self.target.port("canary").newest_write(self.database)
        self.target.db.execute(self.database, f'DROP TABLE "{table}" CASCADE')
        self.dropped_table = table
        self.after_incident = self._state()
        self._note(f"incident injected: table {table} dropped in {self.database}")

    def declare_incident(self) -> None:
        """Start the RTO clock."""
        self._t0 = time.monotonic()
        self.declared_at = utcnow()
        self._note("incident declared")

    # -- the recovery ----------------------------------------------------------------------
    def stop_consumer(self) -> None:
        service = self.info.consumer
        self.target.orchestrator.scale(service, 0)
        self.consumer_stopped = True
        wait_for(f"{service} to stop", lambda: self.target.orchestrator.running(service) == 0,
                 STOP_DEADLINE)
        self._note(f"consumer {service} stopped")

    def pull_latest_backup(self) -> BackupObject:
        """Fetch the newest dump, check its sha256 and that it decompresses whole."""
        self.backup = latest_backup(self.target.policy, self.target.store, self.database)
        gz = self.target.workdir / f"{self.run_id}-{self.database}.sql.gz"
        self.target.store.download(self.backup.bucket, self.backup.key, gz)
        actual = sha256_of(gz)
        if self.backup.sha256 and actual != self.backup.sha256:
            raise DrillError(f"backup {self.backup.key} is corrupt: sha256 {actual[:12]}… differs from "
                             f"the {self.backup.sha256[:12]}… recorded at backup time")
        self.backup.sha256, self.backup.size = actual, gz.stat().st_size
        self._sql = gz.with_suffix("")
        try:
            with gzip.open(gz, "rb") as src, open(self._sql, "wb") as dst:
                shutil.copyfileobj(src, dst)
        except (OSError, EOFError, zlib.error) as err:
            raise DrillError(f"backup {self.backup.key} is corrupt or truncated: {err}") from None
        self._note(f"backup pulled: s3://{self.backup.bucket}/{self.backup.key} ({self.backup.size} bytes)")
        return self.backup

    def restore_to_scratch(self) -> None:
        assert self._sql is not None, "pull the backup first"
        db = self.target.db
        db.drop(self.scratch)
        db.create(self.scratch)
        self.scratch_created = True
        db.load(self.scratch, self._sql)
        self._note(f"backup restored into scratch database {self.scratch}")

    def verify_scratch(self) -> dict[str, object]:
        """Compare the scratch database with what the backup recorded; refuse on any difference."""
        assert self.backup is not None
        restored = self.target.db.fingerprint(self.scratch)
        if self.backup.fingerprint:
            expected = self.backup.fingerprint
            how = "full: row count and content checksum of every table, against the backup manifest"
        else:
            expected = {t: {} for t in self._expected_tables()}
            restored_tables = {t: {} for t in restored}
            restored, how = restored_tables, "structural: table set of the live database (no manifest)"
        missing = sorted(set(expected) - set(restored))
        extra = sorted(set(restored) - set(expected))
        differ = sorted(t for t in set(expected) & set(restored) if expected[t] != restored[t])
        if missing or extra or differ:
            parts = [f"{label} {', '.join(names)}" for label, names in
                     (("missing", missing), ("unexpected", extra), ("differing", differ)) if names]
            raise DrillError(f"restored backup {self.backup.key} does not match {self.database}: "
                             + "; ".join(parts))
        self.newest_surviving_write = self.target.db.latest_canary(self.scratch)
        self._note(f"scratch database verified ({how})")
        return {"method": how, "tables": len(expected)}

    def _expected_tables(self) -> set[str]:
        tables = set(self.target.db.fingerprint(self.database))
        return tables | ({self.dropped_table} if self.dropped_table else set())

    def swap_in(self) -> None:
        """Rename the damaged database aside (kept for sign-off) and the verified copy into place."""
        db = self.target.db
        db.rename(self.database, self.kept)
        try:
            db.rename(self.scratch, self.database)
        except Exception:
            db.rename(self.kept, self.database)
            raise
        self.swapped = True
        self._note(f"restored database swapped in; damaged copy kept as {self.kept}")

    def restart_consumer(self) -> None:
        self.target.orchestrator.scale(self.info.consumer, 1)
        self.consumer_stopped = False
        self._note(f"consumer {self.info.consumer} restarted")

    def validate_service(self) -> None:
        """The service is back once its consumer commits to the restored database; stops the RTO clock."""
        wait_for_write(self.target.port("canary"), self.database, after=self.newest_surviving_write)
        self._t1 = time.monotonic()
        self.validated_at = utcnow()
        self._note("service validated")

    def table_exists(self, table: str) -> bool:
        return table in self.target.db.fingerprint(self.database)

    def _state(self) -> Fingerprint:
        """The database's content without the canary, which its service keeps appending to."""
        fp = self.target.db.fingerprint(self.database)
        return {t: v for t, v in fp.items() if t != CANARY_TABLE}

    def changes_since_incident(self) -> list[str]:
        """Tables whose content differs from right after the incident (empty when untouched)."""
        now = self._state()
        names = sorted(set(now) | set(self.after_incident))
        return [t for t in names if now.get(t) != self.after_incident.get(t)]

    def leftover_databases(self) -> list[str]:
        """Scratch databases of this run still on the server."""
        return [name for name in self.target.db.databases() if name == self.scratch]

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

    def plan(self) -> list[str]:
        """What the drill would do, step by step: printed instead of acting when not allowed to."""
        db, consumer = self.database, self.info.consumer
        return [f"stop {consumer} (scale to 0 on {self.target.orchestrator.kind})",
                f"pull the newest pg/{db}_*.sql.gz from s3://{self.target.policy.storage.backups_bucket}",
                "check its sha256 against the backup manifest and that it decompresses whole",
                f"restore it into a new scratch database {self.scratch}",
                "compare the scratch database with the fingerprint recorded at backup time",
                f"rename {db} to {self.kept} (kept until sign-off), then {self.scratch} to {db}",
                f"start {consumer} and wait for its first write to the restored database"]

    # -- safety ----------------------------------------------------------------------------
    def abort(self) -> list[str]:
        """Undo whatever a failed drill left: scratch dropped, original in place, consumer running."""
        actions: list[str] = []
        for action, step in (("scratch database dropped", self._drop_scratch),
                             ("consumer restarted", self._restart_if_stopped)):
            try:
                if step():
                    actions.append(action)
            except DrillError as err:
                actions.append(f"{action} FAILED: {err}")
        for line in actions:
            self._note(f"abort: {line}")
        return actions

    def _drop_scratch(self) -> bool:
        if not self.scratch_created or self.swapped:
            return False
        self.target.db.drop(self.scratch)
        self.scratch_created = False
        return True

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
            self.declare_incident()
            self.stop_consumer()
            self.pull_latest_backup()
            self.restore_to_scratch()
            self.verify_scratch()
            self.swap_in()
            self.restart_consumer()
            self.validate_service()
        except DrillError:
            self.abort()
            raise
        except KeyboardInterrupt:
            self.abort()
            raise DrillError(f"drill interrupted; {self.database} left as it was before") from None
        except Exception as err:
            self.abort()
            raise DrillError(f"{type(err).__name__}: {str(err).strip().splitlines()[0]}") from err

    def evidence(self) -> dict[str, object]:
        """What the report shows for this drill."""
        out: dict[str, object] = {
            "database": self.database, "class": self.info.klass.title,
            "restore_target": self.scratch, "segregated_restore": True,
            "kept_for_signoff": self.kept if self.swapped else None, "log": self.log,
        }
        if self.backup:
            out["backup"] = self.backup.provenance()
        return out
