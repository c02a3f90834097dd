"""Drill 3 — ransomware / compromise (playbook: "attacker obtained admin credentials, deleted tables").

The six phases, each with its own evidence: contain (suspend the identity, rotate its credentials,
prove the stolen ones no longer work), preserve (audit trail and restore receipts copied to a bundle
with a sha256 per file, before anything is eradicated), identify (the identity's actions in the audit
window), eradicate, recover (Drill 1 reused), and the WORM proof of the audit trail. Lessons learned
become an ADR written from the run's evidence.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol, runtime_checkable

from akko_dr.drills.full_rebuild import FullRebuildDrill
from akko_dr.drills.restore_database import RestoreDatabaseDrill
from akko_dr.errors import DrillError, NotApplicable
from akko_dr.evidence.record import ScenarioRecord
from akko_dr.measure import Measurement, utcnow
from akko_dr.policy import parse_duration
from akko_dr.ports import AuditEvent, AuditTrail, IdentityProvider, VersionedObjectStore
from akko_dr.targets import Target
from akko_dr.worm import Attempt, attempt

Version = tuple[str, str]  # (key, version id)


@runtime_checkable
class QueriedTrail(Protocol):
    """An audit trail read through a logs layer's queries (each with a ``line()`` for the evidence)."""

    queries: list


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class RansomwareDrill:
    """The state of one Drill 3 run; each method is one phase of the playbook."""

    target: Target
    identity: str
    run_id: str
    stolen: str = field(default="", repr=False)  # the credential the attacker holds: never reported
    bundle: dict[str, str] = field(default_factory=dict)  # file -> sha256
    identified: list[AuditEvent] = field(default_factory=list)
    statements: list[str] = field(default_factory=list)  # the identity provider's log of its actions
    queries: list[str] = field(default_factory=list)  # the logs layer's queries of the identify phase
    recovery: RestoreDatabaseDrill | None = None
    drill_backups: set[str] = field(default_factory=set)  # backups the drill took itself, for the RPO basis
    rebuild: FullRebuildDrill | None = None  # when the damage declared is the whole platform
    statement_gap: str = ""  # why the identity provider's statement log is not readable here
    realm_restored: str = ""  # what serves the realm restored from its export (containment)
    log: list[str] = field(default_factory=list)

    @property
    def window(self) -> timedelta:
        window = self.target.policy.drill("drill-3")["audit_window"]
        return parse_duration(window, "drills.drill-3.audit_window")

    @property
    def audit(self) -> AuditTrail:
        return self.target.port("audit_trail")

    def _identities(self) -> IdentityProvider:
        return self.target.port("identities")

    def _note(self, line: str) -> None:
        self.log.append(f"{utcnow().isoformat(timespec='milliseconds')} {line}")

    # -- the incident (sandbox) ------------------------------------------------------------
    def steal_credentials(self) -> None:
        """The attacker's starting point: the identity active again with a fresh secret (as before the
        breach), and that secret in the attacker's hands. A write to the identity provider: opt-in."""
        identities = self._identities()
        self.target.require_destructive(f"give {self.identity} a fresh password in {identities.kind} "
                                        "(the rehearsal's breach)")
        identities.provision(self.identity)
        self.stolen = identities.credential(self.identity)
        self._note(f"attacker holds the credentials of {self.identity}")

    def attack(self, database: str, table: str) -> RestoreDatabaseDrill:
        """Log in with the stolen credentials and drop ``table``; the platform's own logs record it.

        The incident is the start of the recovery clock (RTO runs from the attack, not from an inner
        step). Returns the Drill 1 run that will recover ``database``, primed with the incident."""
        adversary = self.target.port("adversary")
        self.target.require_destructive(f"drop table {table} in {database} as {self.identity}")
        recovery = RestoreDatabaseDrill(self.target, database, self.run_id, drill_backups=self.drill_backups)
        recovery.last_write_before_incident = self.target.port("canary").newest_write(database)
        recovery.declare_incident()
        adversary.act_as(self.identity, self.stolen, database, f'DROP TABLE "{table}" CASCADE')
        recovery.dropped_table = table
        recovery.after_incident = {t: v for t, v in self.target.db.fingerprint(database).items()
                                   if t != "dr_canary"}
        self.recovery = recovery
        self._note(f"incident: {self.identity} dropped {database}.{table}")
        return recovery

    # -- 1. contain ------------------------------------------------------------------------
    def contain(self) -> int:
        """Suspend the identity (its sessions ended) and rotate its credentials."""
        identities = self._identities()
        identities.require(self.identity)  # an unknown identity is refused before anything is planned
        self.target.require_destructive(f"suspend {self.identity} in {identities.kind}, end its sessions "
                                        "and rotate its credentials")
        ended = identities.suspend(self.identity)
        identities.rotate(self.identity)
        self._note(f"contained: {self.identity} suspended ({ended} sessions ended), credentials rotated")
        return ended

    def stolen_credentials_work(self) -> tuple[bool, str]:
        """Whether the attacker's credentials still log in, and the provider's answer."""
        return self._identities().can_authenticate(self.identity, self.stolen)

    def export_realm(self) -> str:
        """Run the realm-export job now, after containment (the export then holds the rotated password,
        not the stolen one); return where it wrote."""
        self.target.port("realm_restore")  # a target that cannot restore a realm says why, before any export
        jobs = [name for name, job in self.target.policy.jobs.items() if job.kind == "realm-export"]
        if not jobs:
            raise DrillError("the policy names no realm-export job: no realm export to restore")
        run = self.target.port("jobs").run_job(jobs[0])
        if not run.succeeded:
            raise DrillError(f"realm-export job {jobs[0]} failed: {run.error or run.last_log_line}")
        self._note(f"realm export: {run.last_log_line}")
        return run.last_log_line

    def restore_realm(self) -> str:
        """Restore the newest realm export into a fresh identity provider of its own."""
        restorer = self.target.port("realm_restore")
        where = self.target.port("source").realm_exports
        if where is None:
            raise DrillError("the target names no location for realm exports")
        exports = [o for o in self.target.store.list(where.bucket, where.prefix) if o.key.endswith(".json")]
        if not exports:
            raise DrillError(f"no realm export in s3://{where.bucket}/{where.prefix}")
        newest = max(exports, key=lambda o: (o.last_modified, o.key))
        self.realm_restored = restorer.restore(where.bucket, newest.key)
        self._note(f"realm restored: {self.realm_restored}")
        return self.realm_restored

    def restored_realm_login(self) -> tuple[bool, str]:
        """A realm user's real login on the fresh identity provider, and its answer."""
        return self.target.port("realm_restore").user_login()

    def stolen_credentials_work_on_restored_realm(self) -> tuple[bool, str]:
        """Whether the attacker's credentials log in on the fresh identity provider."""
        return self.target.port("realm_restore").can_authenticate(self.identity, self.stolen)

    # -- 2. preserve -----------------------------------------------------------------------
    def preserve(self, bundle_dir: Path) -> dict[str, str]:
        """Copy every audit object version and every backup manifest (the restore receipts) to
        ``bundle_dir``, with a ``SHA256SUMS`` file; return file -> sha256."""
        store, storage = self.audit.store, self.target.policy.storage
        for key, version in store.versions(storage.audit_bucket):
            body = store.read_version(storage.audit_bucket, key, version)
            self._keep(bundle_dir, f"audit/{key}@{version}", body)
        for obj in store.list(storage.backups_bucket, storage.dump_prefix):
            if obj.key.endswith(".manifest.json"):
                self._keep(bundle_dir, f"receipts/{obj.key}", store.read(storage.backups_bucket, obj.key))
        statements = self._statement_log()
        if statements is not None:
            self._keep(bundle_dir, f"identity-provider/{self.identity}.log", "\n".join(statements).encode())
        sums = "".join(f"{digest}  {name}\n" for name, digest in sorted(self.bundle.items()))
        (bundle_dir / "SHA256SUMS").write_text(sums)
        self._note(f"evidence preserved: {len(self.bundle)} files in {bundle_dir}")
        return self.bundle

    def _keep(self, bundle_dir: Path, name: str, data: bytes) -> None:
        path = bundle_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.bundle[name] = sha256(data)

    def unhashed_bundle_files(self, bundle_dir: Path) -> list[str]:
        """Bundle files whose bytes do not match the recorded sha256, or with none recorded."""
        files = {str(p.relative_to(bundle_dir)) for p in bundle_dir.rglob("*") if p.is_file()}
        files.discard("SHA256SUMS")
        return sorted(name for name in files | set(self.bundle)
                      if not (bundle_dir / name).is_file()
                      or self.bundle.get(name) != sha256((bundle_dir / name).read_bytes()))

    # -- 3. identify -----------------------------------------------------------------------
    def identify(self) -> list[AuditEvent]:
        """The identity's actions in the audit window, from the audit trail (on a platform with a logs
        layer, the playbook's query run there; each query and its answer kept for the evidence)."""
        self.identified = self.audit.events(self.identity, self.window)
        if isinstance(self.audit, QueriedTrail):
            self.queries = [run.line() for run in self.audit.queries]
        self.statements = self._statement_log() or []
        self._note(f"identified {len(self.identified)} actions of {self.identity} in the last {self.window}")
        return self.identified

    def _statement_log(self) -> list[str] | None:
        """The identity provider's log of the identity; None (and why, in ``statement_gap``) where the
        harness cannot read it on this target."""
        try:
            return self._identities().statement_log(self.identity)
        except NotApplicable as err:
            self.statement_gap = f"not applicable on {self.target.name}: {err}"
            return None

    # -- 4. eradicate ----------------------------------------------------------------------
    def require_preserved(self) -> None:
        """Nothing is eradicated before the evidence is preserved."""
        if not self.bundle:
            raise DrillError("evidence not preserved yet: preserve the audit trail before eradicating")

    def eradicate(self) -> list[str]:
        """Remove the attacker's ServiceAccounts and Secrets (after the evidence is preserved)."""
        self.require_preserved()
        eradicator = self.target.port("eradicator")
        self.target.require_destructive(f"delete the ServiceAccounts and Secrets of {self.identity}")
        removed = eradicator.remove(self.identity)
        self._note(f"eradicated: {', '.join(removed) or 'nothing found'}")
        return removed

    # -- 5. recover ------------------------------------------------------------------------
    def declare_platform_damage(self) -> FullRebuildDrill:
        """The damage reaches the whole platform: recovery will be Drill 2."""
        self.rebuild = FullRebuildDrill(self.target, self.run_id)
        if self.recovery is not None and self.recovery.declared_at is not None:
            self.rebuild.clock_from(self.recovery)  # the recovery time runs from the attack
        self._note("damage declared: the whole platform (recovery with Drill 2)")
        return self.rebuild

    def recover(self) -> None:
        """Drill 1 on the damaged database, or Drill 2 when the whole platform is declared damaged
        (the compromised platform is set aside, kept for forensics), reused as they are."""
        if self.rebuild is not None:
            self.rebuild.lose_platform()
            self.rebuild.recover()
            self._note("recovered the whole platform with Drill 2")
        elif self.recovery is not None:
            self.recovery.recover()
            self._note(f"recovered {self.recovery.database} with Drill 1")
        else:
            raise DrillError("no damage declared: nothing to recover")

    def recover_figure(self, kind: str) -> Measurement:
        """The recovery's RTO or RPO, as Drill 1 or Drill 2 measured it."""
        drill = self.rebuild or self.recovery
        if drill is None:
            raise DrillError("nothing recovered: no figures")
        return drill.rto() if kind == "rto" else drill.rpo()

    def plan(self) -> list[str]:
        """The phases, with the calls each would make: recorded where the target cannot run them."""
        bucket = self.target.policy.storage.audit_bucket
        return [f"contain: suspend {self.identity}, end its sessions, rotate its credentials "
                "(identity provider admin API)",
                f"preserve: copy every version of s3://{bucket} and every backup manifest to a hashed "
                "bundle in the run folder (S3 ListObjectVersions, GetObject)",
                f"identify: {self.identity}'s actions in the last {self.window} from the audit trail (read)",
                f"eradicate: delete the ServiceAccounts and Secrets labelled as {self.identity}'s "
                "(DELETE v1 serviceaccounts, secrets)",
                "recover: Drill 1 on the damaged database (or Drill 2 for the whole platform)",
                f"WORM proof: as {self.identity}, try to delete and to shorten every audit object version "
                f"in s3://{bucket} (S3 DeleteObject, PutObjectRetention: must be refused by the lock)"]

    def evidence(self) -> dict[str, object]:
        out: dict[str, object] = {"compromised identity": self.identity,
                                  "audit window": str(self.window),
                                  "identified actions": [e.line() for e in self.identified],
                                  "logs layer queries": self.queries or "no logs layer: read from the bucket",
                                  "identity provider's statement log": self.statement_gap or self.statements,
                                  "evidence bundle (sha256)": self.bundle, "log": self.log}
        if self.realm_restored:
            out["realm restored from its export"] = self.realm_restored
        if self.recovery is not None:
            out["recovery (Drill 1)"] = self.recovery.evidence()
        if self.rebuild is not None:
            out["recovery (Drill 2)"] = self.rebuild.evidence()
        return out


# -- 6. WORM proof ---------------------------------------------------------------------------
def audit_versions(trail: AuditTrail) -> dict[Version, str]:
    """Every version of the audit trail's objects with the sha256 of its bytes."""
    store, bucket = trail.store, trail.bucket
    return {(k, v): sha256(store.read_version(bucket, k, v)) for k, v in store.versions(bucket, trail.prefix)}


def try_delete(attacker: VersionedObjectStore, bucket: str, versions: list[Version]) -> list[Attempt]:
    """Try to delete each version as the attacker; each answer classified (only a lock refusal counts)."""
    return [attempt(f"deleting {key}@{version}",
                    lambda k=key, v=version: attacker.delete_version(bucket, k, v))
            for key, version in versions]


def try_shorten(attacker: VersionedObjectStore, bucket: str, versions: list[Version], mode: str,
                until: datetime) -> list[Attempt]:
    """Try to move each version's retention to ``until`` as the attacker; each answer classified."""
    return [attempt(f"shortening {key}@{version}",
                    lambda k=key, v=version: attacker.set_retention(bucket, k, v, mode, until))
            for key, version in versions]


def worm_verdict(attempts: list[Attempt]) -> tuple[list[str], list[str]]:
    """The attempts the store accepted, and those whose answer proves nothing about the lock."""
    return ([a.action for a in attempts if a.outcome == "accepted"],
            [a.line() for a in attempts if a.outcome == "inconclusive"])


def changed_versions(before: dict[Version, str], after: dict[Version, str]) -> list[str]:
    """Versions that existed before and are now gone or hold other bytes."""
    return [f"{k}@{v}" for (k, v), digest in before.items() if after.get((k, v)) != digest]


# -- 7. lessons learned ------------------------------------------------------------------------
def write_adr(path: Path, run_id: str, records: list[ScenarioRecord]) -> str:
    """An ADR from the run's Drill 3 evidence: timeline, measured figures, what failed."""
    lines = [f"# ADR: lessons learned from Drill 3 (ransomware / compromise), run {run_id}", "",
             "Status: proposed (generated from the drill's evidence; to be reviewed and accepted)", "",
             "## Timeline", ""]
    for rec in records:
        lines.append(f"- {rec.started_at} — {rec.name}: **{rec.status}**")
        lines += [f"  - {s.keyword} {s.text}: {s.status}" for s in rec.steps]
    lines += ["", "## Measured figures", ""]
    lines += [f"- {rec.name}: {v}" for rec in records for v in rec.verdicts] or ["- none measured"]
    failed = [rec for rec in records if rec.status == "failed"]
    lines += ["", "## What failed", ""]
    lines += [f"- {rec.name}: {rec.error}" for rec in failed] or ["- Nothing failed."]
    skipped = [rec for rec in records if rec.status == "skipped"]
    lines += ["", "## Not done", ""]
    lines += [f"- {rec.name}: {rec.error}" for rec in skipped] or ["- Everything ran."]
    lines += ["", "## Decision", "",
              "Each failure above becomes a tracked action; the playbook gets the measured figures.",
              ""]
    text = "\n".join(lines)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return text
