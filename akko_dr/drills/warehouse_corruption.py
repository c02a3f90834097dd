"""Drill — Iceberg warehouse corruption (playbook Targets: Critical data, "Iceberg warehouse corruption").

Two incidents: a bad write (a commit deleting rows it should not), and data files of the current snapshot
lost or corrupted in the warehouse bucket. Recovery rolls the table back to the last good snapshot (from the
snapshot log and the incident time), or copies the files back from the replica, checked by size and by
reading them; when the replica lacks them, it rolls back to the newest snapshot whose files are all intact.
Every data file of the recovered snapshot is then read and compared with what was recorded before the
incident. What the recovery replaced (metadata pointer, damaged files) is kept until sign-off. Anything that
cannot be trusted is refused with one line, and the table stays as the incident left it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from akko_dr.checks.warehouse import iceberg_row, sizes
from akko_dr.errors import DrillError, NotApplicable
from akko_dr.measure import Measurement, utcnow, wait_for
from akko_dr.policy import TargetClass
from akko_dr.ports import CatalogUnreachable, FileContent, IcebergFile, IcebergSnapshot, Warehouse
from akko_dr.targets import Target

KEPT_PREFIX = "dr-kept/"  # damaged files the recovery replaced, kept in the warehouse bucket until sign-off
WRITER_DEADLINE = 60.0  # seconds the writer may take to commit again after its restart
INJECT_TRIES = 20  # a bad write races the writer's commits: tries before giving up


class Refused(DrillError):
    """The recovery refused: nothing it could trust; the table is as the incident left it."""


@dataclass
class Record:
    """A table's state, recorded before the incident: its snapshot and the content of every data file."""

    snapshot: IcebergSnapshot
    metadata_location: str
    files: dict[str, FileContent] = field(default_factory=dict)  # data file key -> content

    @property
    def rows(self) -> int:
        return sum(c.rows for c in self.files.values())


@dataclass
class Damage:
    """A data file of the current snapshot as the recovery found it."""

    file: IcebergFile
    problem: str


@dataclass
class WarehouseCorruptionDrill:
    """One run of the drill on one table; each method is one step."""

    target: Target
    table: str
    run_id: str
    record: Record | None = None
    incident_at: datetime | None = None
    declared_at: datetime | None = None
    writer_back_at: datetime | None = None
    newest_before_incident: datetime | None = None
    newest_before_declaration: datetime | None = None
    came_back: datetime | None = None
    recovered: IcebergSnapshot | None = None
    bad: IcebergSnapshot | None = None  # the bad write's snapshot, when the drill injected it
    writer_stopped: bool = False
    incident: str = ""  # "bad write" | "files"
    pointer_after_incident: str = ""  # the table's metadata pointer as the incident left it
    kept: list[str] = field(default_factory=list)  # what the recovery replaced, kept until sign-off
    destroyed: dict[str, bytes] = field(default_factory=dict)  # rehearsal only: to undo the incident
    damaged: list[str] = field(default_factory=list)  # keys of the data files the recovery found damaged
    copied: list[str] = field(default_factory=list)  # keys copied back from the replica
    log: list[str] = field(default_factory=list)
    verification: dict[str, object] = field(default_factory=dict)
    _seen: dict[str, FileContent] = field(default_factory=dict, repr=False)  # before the incident only

    @property
    def wh(self) -> Warehouse:
        return self.target.port("warehouse")

    @property
    def klass(self) -> TargetClass:
        return iceberg_row(self.target.policy).klass

    def _note(self, line: str) -> None:
        self.log.append(f"{utcnow().isoformat(timespec='milliseconds')} {line}")

    # -- before the incident ----------------------------------------------------------------------
    def newest_writer_commit(self, history: list[IcebergSnapshot] | None = None) -> datetime | None:
        """The newest commit of the canary writer in the table's current history."""
        history = self.wh.history(self.table) if history is None else history
        return max((s.committed_at for s in history if s.writer == self.wh.writer), default=None)

    def wait_for_writer(self, after: datetime | None = None) -> datetime:
        """Wait until the writer has committed (after ``after``); its commit time."""
        if not self.wh.writer or not self.table:
            raise NotApplicable(f"not applicable on {self.target.name}: no canary writer of the warehouse is "
                                "named (target file: iceberg.writer)")
        def newer() -> datetime | None:
            t = self.newest_writer_commit()
            return t if t and (after is None or t > after) else None

        return wait_for(f"a commit of {self.wh.writer} to {self.table}", newer, WRITER_DEADLINE)

    def record_state(self) -> Record:
        """Read every data file of the current snapshot: the content the recovery must bring back."""
        history = self.wh.history(self.table)
        if not history:
            raise DrillError(f"{self.table} has no snapshot to record")
        location = self.wh.metadata_location(self.table)
        snap = history[-1]
        files = {f.key: self._content_before(f) for f in self._data_files(snap.snapshot_id)}
        self.record = Record(snap, location, files)
        self.newest_before_incident = self.newest_writer_commit(history)
        self._note(f"recorded {self.table} at snapshot {snap.snapshot_id}: {len(files)} data files, "
                   f"{self.record.rows} rows")
        return self.record

    def _content_before(self, f: IcebergFile) -> FileContent:
        """A data file's content before the incident; read once (Iceberg never rewrites a data file), so a
        record taken again while racing the writer reads only its new files."""
        if f.key not in self._seen:
            self._seen[f.key] = self.wh.read_file(self.table, f)
        return self._seen[f.key]

    def _data_files(self, snapshot_id: int) -> list[IcebergFile]:
        return [f for f in self.wh.files(self.table, snapshot_id) if f.kind == "data"]

    # -- the incidents (a drill injects them; rehearsals only) ------------------------------------
    def bad_write(self, row_filter: str) -> IcebergSnapshot:
        """Commit a snapshot deleting the rows matching ``row_filter``, right on the recorded snapshot."""
        self.target.require_destructive(f"commit a snapshot deleting rows of {self.table} ({row_filter})")
        for _ in range(INJECT_TRIES):
            record = self.record_state()
            self.incident_at = utcnow()
            try:
                bad = self.wh.delete_rows(self.table, row_filter, record.snapshot.snapshot_id)
            except DrillError as err:
                if "moved on" not in str(err):
                    raise
                continue
            if bad.parent_id != record.snapshot.snapshot_id:
                raise DrillError(f"the bad write {bad.snapshot_id} landed on snapshot {bad.parent_id}, "
                                 f"not on the recorded {record.snapshot.snapshot_id}")
            self.bad, self.incident = bad, "bad write"
            self._note(f"incident: snapshot {bad.snapshot_id} deleted rows of {self.table} ({row_filter})")
            self.pointer_after_incident = self.wh.metadata_location(self.table)
            return bad
        raise DrillError(f"the bad write lost the race with the writer {INJECT_TRIES} times")

    def damage_files(self, deleted: int, corrupted: int, which: str = "any",
                     from_replica: bool = False) -> list[str]:
        """Delete ``deleted`` and corrupt ``corrupted`` data files of the current snapshot in the warehouse
        (``which``: "newest commit", "oldest snapshot" or "any"); with ``from_replica`` the replica loses
        them too."""
        self.target.require_destructive(f"delete or corrupt data files of {self.table}")
        record = self.record_state()
        self.incident_at = utcnow()
        files = self._chosen(record.snapshot, which)[:deleted + corrupted]
        store, replica = self.target.store, self.target.policy.storage.replica_bucket
        if not from_replica:  # the premise: replication has caught up with the files the incident hits
            self._wait_replicated(files)
        for i, f in enumerate(files):
            if self.target.rehearsal:
                self.destroyed[f.key] = store.read(f.bucket, f.key)
            if i < deleted:
                store.delete(f.bucket, f.key)
            else:
                store.put_bytes(f.bucket, f.key, _garble(store.read(f.bucket, f.key)))
            if from_replica:
                store.delete(replica, f.key)
        self._note(f"incident: {deleted} deleted, {corrupted} corrupted in s3://{self.wh.bucket}"
                   + (f" and gone from s3://{replica}" if from_replica else "")
                   + f": {[f.key for f in files]}")
        self.pointer_after_incident = self.wh.metadata_location(self.table)
        self.incident = "files"
        return [f.key for f in files]

    def _wait_replicated(self, files: list[IcebergFile]) -> None:
        replica, deadline = self.target.policy.storage.replica_bucket, self.target.policy.probe_deadline
        wait_for(f"{len(files)} data files of {self.table} in s3://{replica}", lambda: all(
            sizes(self.target.store, replica, files).get(f.key) == f.size for f in files),
            deadline.total_seconds(), interval=0.2)

    def _chosen(self, current: IcebergSnapshot, which: str) -> list[IcebergFile]:
        """The data files the newest commit added, those of the oldest snapshot, or any (by key)."""
        files = sorted(self._data_files(current.snapshot_id), key=lambda f: f.key)
        if which == "newest commit":
            older = {f.key for f in self._data_files(current.parent_id)} if current.parent_id else set()
            return [f for f in files if f.key not in older]
        if which == "oldest snapshot":
            first = {f.key for f in self._data_files(self.wh.history(self.table)[0].snapshot_id)}
            return [f for f in files if f.key in first]
        return files

    # -- the response -----------------------------------------------------------------------------
    def declare(self, incident_at: datetime | None = None) -> None:
        """The incident is declared (the RTO starts); the writer is stopped; the newest commit it made is
        what data loss is measured from."""
        self.declared_at = utcnow()
        self.incident_at = incident_at or self.incident_at
        self.target.orchestrator.scale(self.wh.writer, 0)
        self.writer_stopped = True
        try:
            self.newest_before_declaration = self.newest_writer_commit()
            self.pointer_after_incident = self.wh.metadata_location(self.table)
        except CatalogUnreachable as err:
            self._note(f"declared while the catalog does not answer: {err}")
            return
        self._note(f"declared; {self.wh.writer} stopped; its newest commit {self.newest_before_declaration}")

    def recover(self) -> IcebergSnapshot:
        """The recovery the incident calls for (it writes: behind the destructive opt-in)."""
        self.target.require_destructive(f"recover {self.table} (roll back, or copy files back)")
        if self.incident == "bad write":
            return self.roll_back_bad_write()
        if self.incident == "files":
            return self.repair_files()
        raise DrillError("no incident to recover from")

    def roll_back_bad_write(self) -> IcebergSnapshot:
        """Roll back to the newest snapshot of the log committed before the incident; when the bad snapshot is
        known, among those before it only (its parent at the latest, whatever the clocks say)."""
        if self.incident_at is None:
            raise Refused("no incident time: the last good snapshot cannot be told from the log")
        history = self.wh.history(self.table)
        ids = [s.snapshot_id for s in history]
        before_bad = history[:ids.index(self.bad.snapshot_id)] if self.bad and self.bad.snapshot_id in ids \
            else history
        good = [s for s in before_bad if s.committed_at < self.incident_at]
        if not good:
            oldest = history[0].committed_at.isoformat() if history else "none"
            raise Refused(f"no good snapshot: {self.table} keeps no snapshot older than the incident "
                          f"({self.incident_at.isoformat()}; oldest kept {oldest}); table left as it is")
        return self._roll_back(good[-1], history)

    def _roll_back(self, good: IcebergSnapshot, history: list[IcebergSnapshot]) -> IcebergSnapshot:
        if good.snapshot_id != history[-1].snapshot_id:
            replaced = self.wh.rollback(self.table, good.snapshot_id)
            self.kept.append(f"metadata pointer {replaced}")
            self._note(f"rolled back {self.table} to snapshot {good.snapshot_id}; replaced {replaced} (kept)")
        self.recovered = good
        return good

    def find_damage(self) -> list[Damage]:
        """Every data file of the current snapshot missing, of the wrong size, or unreadable."""
        current = self.wh.history(self.table)[-1]
        files = self._data_files(current.snapshot_id)
        found = sizes(self.target.store, self.wh.bucket, files)
        return [Damage(f, p) for f in files if (p := self._problem(f, found.get(f.key)))]

    def _problem(self, f: IcebergFile, size: int | None) -> str:
        if size is None:
            return "missing"
        if size != f.size:
            return f"{size} bytes, the manifest records {f.size}"
        try:
            content = self.wh.read_file(self.table, f)
        except DrillError as err:
            return str(err)
        return "" if content.rows == f.records else f"{content.rows} rows, the manifest records {f.records}"

    def repair_files(self) -> IcebergSnapshot:
        """Copy the damaged files back from the replica when it holds good copies of them all; otherwise roll
        back to the newest snapshot whose files are all intact; refuse when there is none."""
        damage = self.find_damage()
        self.damaged = [d.file.key for d in damage]
        history = self.wh.history(self.table)
        self._note(f"damaged: {[(d.file.key, d.problem) for d in damage]}")
        bad_copies = [f"{d.file.key}: {p}" for d in damage if (p := self._replica_problem(d.file))]
        if not bad_copies:
            for d in damage:
                self._copy_back(d.file)
            self.recovered = history[-1]
            return self.recovered
        lost = {d.file.key for d in damage}
        for snap in reversed(history[:-1]):
            if self._intact(snap, lost):
                return self._roll_back(snap, history)
        raise Refused(f"the replica lacks good copies of {len(bad_copies)} damaged files "
                      f"({'; '.join(bad_copies[:3])}) and no snapshot of {self.table} has all its files; "
                      "table left as it is")

    def _replica_problem(self, f: IcebergFile) -> str:
        """What is wrong with the replica's copy of ``f``: missing, the wrong size, or unreadable. It is read
        staged in the warehouse bucket, where the table's own file IO reaches (the replica may live on a
        server of its own), and the staged copy removed after."""
        store, replica = self.target.store, self.target.policy.storage.replica_bucket
        copy = IcebergFile(f"s3://{replica}/{f.key}", f.size, f.kind, f.records)
        size = sizes(store, replica, [copy]).get(f.key)
        if size != f.size:
            return self._problem(copy, size)
        staged = f"{KEPT_PREFIX}{self.run_id}/staged/{f.key}"
        store.put_bytes(f.bucket, staged, store.read(replica, f.key))
        try:
            return self._problem(IcebergFile(f"s3://{f.bucket}/{staged}", f.size, f.kind, f.records), f.size)
        finally:
            store.delete(f.bucket, staged)

    def _intact(self, snap: IcebergSnapshot, lost: set[str]) -> bool:
        files = self._data_files(snap.snapshot_id)
        found = sizes(self.target.store, self.wh.bucket, files)
        return all(f.key not in lost and found.get(f.key) == f.size for f in files)

    def _copy_back(self, f: IcebergFile) -> None:
        store, replica = self.target.store, self.target.policy.storage.replica_bucket
        body = store.read(replica, f.key)
        if len(body) != f.size:
            raise Refused(f"replica copy of {f.key} changed while copying "
                          f"({len(body)} bytes, manifest {f.size})")
        if any(o.key == f.key for o in store.list(f.bucket, f.key)):
            kept = f"{KEPT_PREFIX}{self.run_id}/{f.key}"
            store.put_bytes(f.bucket, kept, store.read(f.bucket, f.key))
            self.kept.append(f"damaged file s3://{f.bucket}/{kept}")
        store.put_bytes(f.bucket, f.key, body)
        written = hashlib.sha256(store.read(f.bucket, f.key)).hexdigest()
        if written != hashlib.sha256(body).hexdigest():
            raise DrillError(f"{f.key} copied back from the replica does not match it (sha256)")
        self.copied.append(f.key)
        self._note(f"copied {f.key} back from s3://{replica} ({f.size} bytes, sha256 {written[:12]}…)")

    # -- verification and measures ----------------------------------------------------------------
    def verify(self) -> dict[str, object]:
        """Read every data file of the recovered snapshot; compare rows and content with the record."""
        if self.recovered is None or self.record is None:
            raise DrillError("nothing recovered to verify")
        files = self._data_files(self.recovered.snapshot_id)
        read = {f.key: self.wh.read_file(self.table, f) for f in files}
        problems = [f"{f.key}: {read[f.key].rows} rows, manifest {f.records}" for f in files
                    if read[f.key].rows != f.records]
        recorded = [k for k in read if k in self.record.files]
        problems += [f"{k}: content differs from the record before the incident" for k in recorded
                     if read[k] != self.record.files[k]]
        if problems:
            raise DrillError(f"recovered snapshot {self.recovered.snapshot_id} of {self.table} does not "
                             "match: " + "; ".join(problems[:5]))
        self.verification = {"files read": len(files), "rows": sum(c.rows for c in read.values()),
                             "files matching the record": f"{len(recorded)} of {len(self.record.files)}",
                             "method": "every data file read (pyarrow); rows and a content checksum compared "
                                       "with those recorded before the incident"}
        return self.verification

    def restart_writer(self) -> datetime:
        """Start the writer again and wait for its first commit: the end of the RTO."""
        self.came_back = self._newest_in(self.recovered)
        restarted = utcnow()
        self.target.orchestrator.scale(self.wh.writer, 1)
        self.writer_stopped = False
        self.writer_back_at = self.wait_for_writer(after=max(restarted, self.came_back or restarted))
        self._note(f"{self.wh.writer} committed again at {self.writer_back_at.isoformat()}")
        return self.writer_back_at

    def _newest_in(self, snap: IcebergSnapshot | None) -> datetime | None:
        history = self.wh.history(self.table)
        chain = history[:next((i + 1 for i, s in enumerate(history)
                               if snap and s.snapshot_id == snap.snapshot_id), len(history))]
        return self.newest_writer_commit(chain)

    def rto(self) -> Measurement:
        if self.declared_at is None or self.writer_back_at is None:
            raise DrillError("RTO not measured: the writer never committed again after the declaration")
        return Measurement("RTO", self.writer_back_at - self.declared_at, self.klass.rto, self.klass)

    def rpo(self) -> Measurement:
        before, back = self.newest_before_declaration, self.came_back
        if before is None or back is None:
            raise DrillError("RPO not measured: no writer commit before the incident, or none came back")
        return Measurement("RPO", max(before - back, timedelta(0)), self.klass.rpo, self.klass)

    def abort(self) -> list[str]:
        """After a refusal or a failure: the writer runs again; nothing else is touched."""
        if not self.writer_stopped:
            return []
        self.target.orchestrator.scale(self.wh.writer, 1)
        self.writer_stopped = False
        self._note(f"abort: {self.wh.writer} restarted; the table left as it was")
        return [f"{self.wh.writer} restarted"]

    def undo_rehearsal(self) -> list[str]:
        """Rehearsals only, after a refused recovery: undo the injected incident so that the next scenario
        starts from a healthy table (the bad write rolled back, destroyed files put back)."""
        if not self.target.rehearsal or self.recovered is not None or self.record is None:
            return []
        undone = []
        store, replica = self.target.store, self.target.policy.storage.replica_bucket
        for key, body in self.destroyed.items():
            for bucket in (self.wh.bucket, replica):
                store.put_bytes(bucket, key, body)
            undone.append(f"put back {key}")
        if self.incident == "bad write":
            self.wh.rollback(self.table, self.record.snapshot.snapshot_id)
            undone.append(f"rolled back to {self.record.snapshot.snapshot_id}")
        return undone

    def evidence(self) -> dict[str, object]:
        times = {"incident at": self.incident_at, "declared at": self.declared_at,
                 "writer's newest commit before the incident": self.newest_before_incident,
                 "writer's newest commit before the declaration": self.newest_before_declaration,
                 "newest writer commit that came back": self.came_back,
                 "writer committing again at": self.writer_back_at}
        return {"table": self.table, "catalog": self.wh.catalog,
                **{k: v.isoformat() for k, v in times.items() if v},
                "recovered snapshot": self.recovered.snapshot_id if self.recovered else None,
                "damaged": list(self.damaged), "copied back from the replica": list(self.copied),
                "kept until sign-off": list(self.kept), "verification": dict(self.verification),
                "log": list(self.log)}


def _garble(body: bytes) -> bytes:
    """The same number of bytes, the middle ones flipped: what a bad disk or a partial overwrite leaves."""
    middle = len(body) // 4
    return body[:middle] + bytes(b ^ 0xFF for b in body[middle:3 * middle]) + body[3 * middle:]
