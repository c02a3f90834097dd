"""Drill 2 — restore the entire platform (playbook: "K8s cluster lost, cloud provider region down").

The platform is lost at once; a new one is provisioned empty and rebuilt from what survives
off-site: every database replayed from its latest dump in parallel (Drill 1's pull, scratch restore
and fingerprint check, reused per database), the object data mirrored back from the replica and
checked object by object, the services restarted on the new server. The old server's data is kept
until sign-off. A database that cannot come back is named with its reason; the others still do.
"""

from __future__ import annotations

import hashlib
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path

from akko_dr.backup import latest_backup, restore_globals
from akko_dr.canary import wait_for_write
from akko_dr.drills.restore_database import RestoreDatabaseDrill
from akko_dr.dumpstream import BackupStream, cores, restore_into
from akko_dr.errors import DrillError
from akko_dr.measure import Measurement, utcnow, wait_for
from akko_dr.policy import TargetClass, format_duration
from akko_dr.ports import CANARY_TABLE, BackupObject, Database, Fingerprint, ObjectStore, drill_namespace
from akko_dr.replication import mirror
from akko_dr.targets import Target

STOP_DEADLINE = 30.0


def replay_workers() -> int:
    """How many dumps replay at once: one per core of this machine."""
    return cores()


@dataclass
class DatabaseRebuild:
    """One database's way back: its Drill 1 restore steps and its figures."""

    name: str
    klass: TargetClass
    restore: RestoreDatabaseDrill
    last_write_before: datetime | None = None
    restored: bool = False
    error: str = ""
    replay_seconds: float = 0.0
    validated_after: float | None = None  # seconds from the declaration

    def rto(self) -> Measurement | None:
        if self.validated_after is None:
            return None
        return Measurement("RTO", timedelta(seconds=self.validated_after), self.klass.rto, self.klass)

    def rpo(self) -> Measurement | None:
        survived = self.restore.newest_surviving_write
        if self.last_write_before is None or survived is None:
            return None
        return Measurement("RPO", max(self.last_write_before - survived, timedelta(0)), self.klass.rpo,
                           self.klass)

    def rpo_worst_case(self) -> Measurement | None:
        """The loss the database's backup schedule allows (or the measured loss, when larger)."""
        measured = self.rpo()
        if measured is None:
            return None
        worst = max(measured.measured, self.restore.info.job.interval())
        return Measurement("RPO", worst, self.klass.rpo, self.klass)

    def row(self) -> dict[str, object]:
        """The evidence row of this database."""
        rto, rpo, worst = self.rto(), self.rpo(), self.rpo_worst_case()
        out: dict[str, object] = {"database": self.name, "class": self.klass.title,
                                  "restored": self.restored, "replay": f"{self.replay_seconds:.2f}s",
                                  "RTO": rto.verdict() if rto else "not measured",
                                  "RPO measured (restore path)": rpo.verdict() if rpo else "not measured",
                                  "RPO the schedule allows": worst.verdict() if worst else "not measured"}
        if self.restore.backup:
            out["backup"] = self.restore.backup.provenance()["uri"]
        if self.restore.compared:
            out["compared"] = self.restore.compared
        if self.error:
            out["error"] = self.error
        return out


def inventory(store: ObjectStore, bucket: str) -> dict[str, str]:
    """Every object of ``bucket`` with the sha256 of its bytes."""
    return {o.key: hashlib.sha256(store.read(bucket, o.key)).hexdigest() for o in store.list(bucket)}


def _content(fingerprint: Fingerprint) -> Fingerprint:
    return {t: v for t, v in fingerprint.items() if t != CANARY_TABLE}


def largest_first(sizes: dict[str, int]) -> list[str]:
    """The databases in the order their replays start: the biggest dump first, so the longest restore
    never starts last and the wall time tends to max(biggest, total / workers)."""
    return sorted(sizes, key=lambda name: (-sizes[name], name))


def restore_jobs(workers: int) -> int:
    """pg_restore workers of each archive while ``workers`` databases replay at once: cores shared out."""
    return max(cores() // max(workers, 1), 1)


def replay(db: Database, store: ObjectStore, backups: dict[str, BackupObject], workers: int, suffix: str,
           spool: Path, jobs: int | None = None) -> float:
    """Replay ``backups`` from the object store into scratch databases ``<name>__<suffix>`` with
    ``workers`` at once, the biggest first, each with ``jobs`` cores (the cores shared out by default);
    drop them. Returns the wall time (download included)."""

    def one(name: str) -> None:
        scratch = f"{name}__{suffix}"
        db.drop(scratch)
        db.create(scratch)
        with BackupStream(store, backups[name], spool / f"{scratch}.archive") as stream:
            restore_into(db, scratch, stream, jobs or restore_jobs(workers))

    t0 = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(one, largest_first({n: b.size for n, b in backups.items()})))
        return time.monotonic() - t0
    finally:
        for name in backups:
            db.drop(f"{name}__{suffix}")


@dataclass
class FullRebuildDrill:
    """The state of one Drill 2 run; each method is one step of the playbook."""

    target: Target
    run_id: str
    databases: dict[str, DatabaseRebuild] = field(default_factory=dict)
    lost: list[str] = field(default_factory=list)
    objects: dict[str, object] = field(default_factory=dict)
    benchmark: dict[str, object] = field(default_factory=dict)
    not_applicable: dict[str, str] = field(default_factory=dict)
    drill_backups: set[str] = field(default_factory=set)  # keys of backups the drill took itself
    provisioned: str | None = None  # the new platform's database server
    started: list[str] = field(default_factory=list)  # services started on it, stopped again by abort
    log: list[str] = field(default_factory=list)
    replay_seconds: float = 0.0
    roles: str = ""  # how the roles (globals) came back, before any database
    declared_at: datetime | None = None
    validated_at: datetime | None = None
    _t0: float = 0.0
    _t1: float = 0.0

    def __post_init__(self) -> None:
        for name, info in self.target.policy.databases.items():
            restore = RestoreDatabaseDrill(self.target, name, self.run_id, drill_backups=self.drill_backups)
            self.databases[name] = DatabaseRebuild(name, info.klass, restore)

    @property
    def klass(self) -> TargetClass:
        return self.target.policy.klass(self.target.policy.drill("drill-2")["class"])

    def _note(self, line: str) -> None:
        self.log.append(f"{utcnow().isoformat(timespec='milliseconds')} {line}")

    def _since_declared(self) -> float:
        return time.monotonic() - self._t0

    # -- the disaster ----------------------------------------------------------------------
    def lose_platform(self) -> list[str]:
        """Inject the disaster: note each database's last write, then lose the whole platform."""
        platform = self.target.port("platform")
        self.target.require_destructive("destroy the whole platform (databases, services, hot buckets)")
        self._stop_services()
        for rebuild in self.databases.values():
            rebuild.last_write_before = self.target.port("canary").newest_write(rebuild.name)
        self.lost += platform.lose_platform()
        self._note("disaster injected: " + "; ".join(self.lost))
        return self.lost

    def _stop_services(self) -> None:
        """Every service down first, so each database's last write is known exactly (the RPO's start)."""
        orchestrator, policy = self.target.orchestrator, self.target.policy
        services = [service for name in self.databases
                    if orchestrator.running(service := policy.database(name).consumer)]
        with ThreadPoolExecutor(max_workers=len(services) or 1) as pool:
            list(pool.map(lambda service: orchestrator.scale(service, 0), services))
        wait_for("every service to stop", lambda: not any(orchestrator.running(s) for s in services),
                 STOP_DEADLINE)
        self.lost.append(f"services stopped: {', '.join(services)}")

    def declare_incident(self) -> None:
        """Start the RTO clock."""
        self._t0 = time.monotonic()
        self.declared_at = utcnow()
        self._note("incident declared: full platform rebuild")

    def clock_from(self, incident: RestoreDatabaseDrill) -> None:
        """Run the RTO clock from an incident already declared (Drill 3's attack)."""
        self.declared_at, self._t0 = incident.declared_at, incident.started_clock

    def plan(self) -> list[str]:
        """What the drill would do on a platform of its own, step by step, with the calls it makes."""
        policy = self.target.policy
        services = ", ".join(sorted({policy.database(n).consumer for n in self.databases}))
        return [f"on a scratch platform of the drill's own (never the source): stop {services} "
                "(PATCH apps/v1 deployments/<name>/scale)",
                "lose the platform: the database server down, its data kept until sign-off; the hot buckets "
                f"{', '.join(policy.storage.hot_buckets)} emptied (S3 DeleteObject, DeleteBucket)",
                "provision a new PostgreSQL server and empty hot buckets (S3 CreateBucket)",
                "restore the namespace from the newest Velero backup of the schedule into a namespace of the "
                "drill's own (POST velero.io/v1 restores)",
                f"replay {len(self.databases)} databases from their newest dumps in parallel, each verified "
                "against its manifest, after the roles from the globals dump (S3 GetObject; SQL CREATE "
                "DATABASE, psql)",
                f"copy the object data back from s3://{policy.storage.replica_bucket} "
                "(S3 GetObject, PutObject)",
                "start every service and wait for its first write (PATCH …/scale; SQL SELECT)"]

    def not_applicable_here(self, step: str, reason: str) -> None:
        """Record a playbook step this target cannot run, with the reason (never reported as passed)."""
        self.not_applicable[step] = reason
        self._note(f"not applicable: {step} ({reason})")

    # -- the rebuild -----------------------------------------------------------------------
    def provision_platform(self) -> None:
        """A new, empty platform; from here on every step talks to the new database server."""
        db = self.target.port("platform").provision_platform()
        self.provisioned = repr(db)
        self.target = replace(self.target, db=db)
        for rebuild in self.databases.values():
            rebuild.restore.target = self.target
        self._note(f"new platform provisioned: {db!r}, holding {', '.join(db.databases())}")

    def restore_namespace(self) -> dict[str, object]:
        """The platform's namespace from the newest Velero backup of the policy's schedule, mapped
        onto a namespace of the drill's own so that it never overwrites the source."""
        velero, policy = self.target.port("velero"), self.target.policy
        schedule = next((j.name for j in policy.jobs.values() if j.kind == "velero"), None)
        if schedule is None:
            raise DrillError("the policy names no Velero schedule to restore the namespace from")
        mapping = {policy.namespace: drill_namespace(policy.namespace, self.run_id)}
        self.target.require_destructive(f"create a Velero Restore mapping {policy.namespace} onto "
                                        f"{mapping[policy.namespace]}")
        backup = velero.newest_completed(schedule, policy.namespace)
        outcome = velero.wait(velero.restore(backup, mapping))
        self._note(f"namespace restored from Velero backup {backup.name}: {outcome.summary()}")
        if not outcome.succeeded:
            raise DrillError(f"Velero restore of {backup.name} failed: {outcome.summary()}")
        return {"backup": backup.name, "restore": outcome.summary()}

    def restore_roles(self) -> str:
        """The roles first (``pg_dumpall --globals-only`` beside the dumps): every database's owners and
        grants name them, and the services log in as them."""
        target = self.target
        self.roles = restore_globals(target.policy, target.store, target.db, target.workdir)
        self._note(self.roles)
        return self.roles

    def replay_databases(self, workers: int | None = None) -> list[str]:
        """Restore the roles, then replay every database, as many at once as there are cores, the biggest
        dump first; return the names that came back."""
        if not self.roles:
            self.restore_roles()
        workers = workers or replay_workers()
        t0 = time.monotonic()
        order = largest_first({name: self._dump_size(name) for name in self.databases})
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(lambda name: self._replay_one(self.databases[name], restore_jobs(workers)), order))
        self.replay_seconds = time.monotonic() - t0
        back = [r.name for r in self.databases.values() if r.restored]
        self._note(f"{len(back)} of {len(self.databases)} databases replayed with {workers} workers "
                   f"in {format_duration(self.replay_seconds)}")
        return back

    def _dump_size(self, name: str) -> int:
        """The size of the newest dump of ``name`` (0 when none: it fails fast in its own replay)."""
        try:
            return latest_backup(self.target.policy, self.target.store, name).size
        except DrillError:
            return 0

    def _replay_one(self, rebuild: DatabaseRebuild, jobs: int = 1) -> None:
        drill, t0 = rebuild.restore, time.monotonic()
        try:
            drill.pull_latest_backup()
            drill.restore_to_scratch(jobs)
            drill.verify_scratch()
            if self.target.db.exists(rebuild.name):
                raise DrillError(f"{rebuild.name} already exists on the new server; refusing to replace it")
            self.target.db.rename(drill.scratch, rebuild.name)
            drill.swapped = rebuild.restored = True
        except DrillError as err:
            rebuild.error = str(err)
            drill.abort()
        rebuild.replay_seconds = time.monotonic() - t0

    def restore_objects(self) -> dict[str, object]:
        """Mirror the replica back into each hot bucket; check count and sha256 of every object."""
        storage, store = self.target.policy.storage, self.target.store
        expected = inventory(store, storage.replica_bucket)
        for bucket in storage.hot_buckets:
            copied = mirror(store, storage.replica_bucket, bucket)
            actual = inventory(store, bucket)
            differ = sorted(k for k in expected if actual.get(k) != expected[k])
            self.objects[bucket] = {"source": f"s3://{storage.replica_bucket}", "copied": len(copied),
                                    "expected": len(expected), "restored": len(actual),
                                    "sha256 mismatches or missing": differ}
        self._note(f"object data restored from s3://{storage.replica_bucket}: {self.objects}")
        return self.objects

    def object_mismatches(self) -> list[str]:
        """Hot buckets whose restored objects differ from the replica (empty when all match)."""
        return [f"{bucket}: {detail['restored']} objects of {detail['expected']}, differing "
                f"{', '.join(detail['sha256 mismatches or missing']) or 'none'}"
                for bucket, detail in self.objects.items()
                if detail["restored"] != detail["expected"] or detail["sha256 mismatches or missing"]]

    def restart_services(self) -> list[str]:
        """Start the service of every database that came back."""
        policy = self.target.policy
        services = [policy.database(r.name).consumer for r in self.databases.values() if r.restored]
        for service in services:
            self.target.orchestrator.scale(service, 1)
            self.started.append(service)
        self._note(f"services restarted: {', '.join(services)}")
        return services

    def validate_services(self) -> None:
        """Each restored database's service commits to the new server; stops the clocks."""
        for rebuild in self.databases.values():
            if rebuild.restored:
                after = rebuild.restore.newest_surviving_write or self.declared_at
                wait_for_write(self.target.port("canary"), rebuild.name, after=after)
                rebuild.validated_after = self._since_declared()
        self._t1 = time.monotonic()
        self.validated_at = utcnow()
        self._note("services validated on the new server")

    def recover(self) -> None:
        """Every rebuild step in order, once the platform is lost (or set aside); fails, after
        bringing back what it can, when any database did not come back."""
        try:
            if self.declared_at is None:  # Drill 3 declares at the attack
                self.declare_incident()
            self.provision_platform()
            self.replay_databases()
            self.restore_objects()
            self.restart_services()
            self.validate_services()
        except BaseException:  # a refusal, an interrupt, or a harness bug: undo, then let it through as is
            self.abort()
            raise
        self.require_complete()

    # -- the figures -----------------------------------------------------------------------
    def failures(self) -> list[str]:
        """Databases that did not come back, each with its reason."""
        return [f"{r.name}: {r.error}" for r in self.databases.values() if not r.restored]

    def mismatches(self, skip: tuple[str, ...] = ()) -> list[str]:
        """Databases (but ``skip``) not restored, or whose content now differs from their backup's manifest.

        The canary table is left out: the services keep writing to it."""
        out = []
        for r in self.databases.values():
            if r.name in skip:
                continue
            if not r.restored or r.restore.backup is None:
                out.append(f"{r.name}: not restored ({r.error})")
                continue
            expected = _content(r.restore.backup.fingerprint)
            actual = _content(self.target.db.fingerprint(r.name))
            if differ := sorted(t for t in set(expected) | set(actual) if expected.get(t) != actual.get(t)):
                out.append(f"{r.name}: tables {', '.join(differ)} differ from the backup manifest")
        return out

    def require_complete(self) -> None:
        """Fail the drill, in one line, when any database did not come back."""
        if failed := self.failures():
            back = len(self.databases) - len(failed)
            raise DrillError(f"rebuild incomplete: {back} of {len(self.databases)} databases restored; "
                             f"not restored: {'; '.join(failed)}")

    def rto(self) -> Measurement:
        if not self._t1:
            raise DrillError("RTO not measured: the rebuilt platform was never validated")
        return Measurement("RTO", timedelta(seconds=self._t1 - self._t0), self.klass.rto, self.klass)

    def rpo(self) -> Measurement:
        """The worst data loss over every database."""
        losses = {r.name: r.rpo() for r in self.databases.values()}
        if missing := sorted(name for name, m in losses.items() if m is None):
            raise DrillError(f"RPO not measured for {', '.join(missing)}: no canary write before the "
                             "disaster or none restored")
        worst = max(m.measured for m in losses.values() if m is not None)
        return Measurement("RPO", worst, self.klass.rpo, self.klass)

    def rpo_worst_case(self) -> Measurement:
        """The worst loss the backup schedules allow over every database: what is judged."""
        measured = self.rpo()
        allowed = max(r.restore.info.job.interval() for r in self.databases.values())
        return Measurement("RPO", max(measured.measured, allowed), self.klass.rpo, self.klass)

    def rpo_basis(self) -> str:
        taken = [r.restore.backup for r in self.databases.values() if r.restore.backup]
        own = [b for b in taken if b.key in self.drill_backups]
        jobs = sorted({r.restore.info.job.name for r in self.databases.values()})
        allowed = format_duration(max(r.restore.info.job.interval() for r in self.databases.values()))
        if taken and len(own) == len(taken):
            return (f"backups taken by the drill before the disaster; this RPO shows the restore path, not "
                    f"the schedule; the schedules ({', '.join(jobs)}) allow up to {allowed}")
        return f"newest scheduled backups ({', '.join(jobs)}); the schedules allow up to {allowed}"

    def per_database_misses(self) -> list[str]:
        """Per-database RTO and worst-case RPO verdicts that missed their own class's target."""
        figures = [(r.name, m) for r in self.databases.values() for m in (r.rto(), r.rpo_worst_case()) if m]
        return [f"{name}: {m.verdict()}" for name, m in figures if not m.met]

    def compare_replay(self, rounds: int = 2) -> dict[str, object]:
        """Replay the same dumps sequentially and in parallel into scratch databases; the speed-up.

        Rounds alternate the order (sequential first, then parallel first) and the best time of
        each mode is kept, so a burst of load on the machine does not decide the ratio alone."""
        dumps = {r.name: r.restore.backup for r in self.databases.values()
                 if r.restored and r.restore.backup is not None}
        workers = replay_workers()
        times: dict[int, list[float]] = {1: [], workers: []}
        for i in range(rounds):
            for n in ((1, workers) if i % 2 == 0 else (workers, 1)):
                times[n].append(replay(self.target.db, self.target.store, dumps, n,
                                       f"bench{i}w{n}_{self.run_id}", self.target.workdir))
        sequential, parallel = min(times[1]), min(times[workers])
        self.benchmark = {"dumps": len(dumps), "workers": workers, "rounds": rounds,
                          "sequential_s": round(sequential, 3), "parallel_s": round(parallel, 3),
                          "speed_up": round(sequential / parallel, 2),
                          "all_s": {"sequential": [round(t, 3) for t in times[1]],
                                    "parallel": [round(t, 3) for t in times[workers]]}}
        self._note(f"replay compared: {self.benchmark}")
        return self.benchmark

    # -- safety ----------------------------------------------------------------------------
    def abort(self) -> list[str]:
        """Drop what a failed rebuild left half-done on the new server; the old data stays kept."""
        actions = [f"{name}: {a}" for name, r in self.databases.items() for a in r.restore.abort()]
        for service in self.started:  # never left serving from a rebuild that was not validated
            self.target.orchestrator.scale(service, 0)
            actions.append(f"{service}: stopped again (the rebuild was not validated)")
        self.started.clear()
        for line in actions:
            self._note(f"abort: {line}")
        return actions

    def evidence(self) -> dict[str, object]:
        """What the report shows for this drill."""
        kept = self.target.platform.kept_for_signoff() if self.target.platform else []
        backups = [r.restore.backup.provenance() for r in self.databases.values() if r.restore.backup]
        verified = [r.name for r in self.databases.values() if r.restored]
        return {"class": self.klass.title, "platform lost": self.lost,
                "kept for sign-off": kept, "backups": backups,
                "roles": self.roles or "not restored",
                "integrity check": (f"sha256 of every dump against its manifest, then the restored copy "
                                    "against the manifest's fingerprint (categories compared: per database "
                                    "below): "
                                    f"{len(verified)} of {len(self.databases)} databases verified")
                if backups else "not reached",
                "segregated_restore": self.provisioned is not None,
                "segregation": (f"new PostgreSQL server {self.provisioned}: segregated from the lost one "
                                "(own process and data directory)") if self.provisioned
                else "no new server provisioned",
                "databases": [r.row() for r in self.databases.values()],
                "replay": {"workers": replay_workers(), "wall_s": round(self.replay_seconds, 3)},
                "replay sequential vs parallel": self.benchmark,
                "object data": self.objects, "not applicable on this target": self.not_applicable,
                "log": self.log}

