"""Drill targets: one interface (every port a drill or check uses), several backends.

A port a target cannot serve is ``None`` and ``gaps`` says why; ``Target.port`` turns that into a
:class:`~akko_dr.errors.NotApplicable` ("not applicable on <target>: <why>"), which the evidence
records as a coverage gap, never as a finding and never as passed.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from akko_dr.errors import NotApplicable
from akko_dr.policy import Policy
from akko_dr.ports import (
    Adversary,
    AuditTrail,
    BucketInspector,
    Canary,
    Database,
    Eradicator,
    Fault,
    IdentityProvider,
    JobRunner,
    ObjectStore,
    Orchestrator,
    Platform,
    PlatformSource,
    PointInTimeRecovery,
    RealmRestorer,
    VeleroRestorer,
    VersionedObjectStore,
    WalArchive,
    Warehouse,
)


@dataclass
class Target:
    """Everything a drill or check may touch, wired once (``akko_dr.wiring``)."""

    kind: str  # "sandbox" | "live" | "docker": for the evidence only; no step branches on it
    policy: Policy
    db: Database
    store: ObjectStore
    orchestrator: Orchestrator
    workdir: Path
    name: str = ""  # what the evidence calls it: "sandbox", or "live <context>/<namespace>"
    canary: Canary | None = None
    buckets: BucketInspector | None = None  # Object Lock and lifecycle rules
    source: PlatformSource | None = None  # backup job runs, CronJobs, Velero (read-only)
    jobs: JobRunner | None = None
    platform: Platform | None = None  # Drill 2: lose and provision the whole platform
    identities: IdentityProvider | None = None  # Drill 3: suspend and rotate a compromised identity
    adversary: Adversary | None = None  # Drill 3: the simulated attacker (rehearsals only)
    audit_trail: AuditTrail | None = None
    store_as: Callable[[str, str], VersionedObjectStore] | None = None  # the store with other credentials
    object_keys: Callable[[str], tuple[str, str]] | None = None  # Drill 3: the identity's own S3 keys, stolen
    velero: VeleroRestorer | None = None  # Drill 2: Velero restores into a namespace of the drill's own
    eradicator: Eradicator | None = None  # Drill 3: the attacker's ServiceAccounts and Secrets
    segregated_db: Database | None = None  # a second server for restores segregated from the source
    faults: dict[str, Fault] | None = None  # rehearsal faults a drill must survive, by name
    scratch_platform: Callable[[], AbstractContextManager[Target]] | None = None  # Drill 2's own platform
    heal: Callable[[], list[str]] | None = None  # sandbox only: undo damage left by an earlier scenario
    gaps: dict[str, str] = field(default_factory=dict)  # port -> why this target cannot serve it
    components: dict[str, str] = field(default_factory=dict)
    emulated: list[str] = field(default_factory=list)
    emulated_ports: dict[str, str] = field(default_factory=dict)  # port -> the emulator serving it
    destructive_allowed: bool = False
    probes_allowed: bool = False  # live: write probe objects and canaries (--allow-probes)
    fresh_backup: bool = False  # live: a drill takes its own backup first (--fresh-backup)
    production: bool = False
    warehouse: Warehouse | None = None  # the Iceberg tables through their catalog (issue 15)
    wal_archive: WalArchive | None = None  # the WAL archive (Barman cloud layout) and its archiver
    pitr: PointInTimeRecovery | None = None  # point-in-time recovery on a second server
    service_checks: dict[str, Callable[[], str]] = field(default_factory=dict)  # database -> its service's
    # own answer after a restore (Keycloak: a real login); raises DrillError when the service does not serve
    realm_restore: RealmRestorer | None = None  # Drill 3: the realm export restored into a fresh server

    def __post_init__(self) -> None:
        self.name = self.name or self.kind

    @property
    def rehearsal(self) -> bool:
        return self.kind != "live"

    def port(self, name: str) -> Any:
        """The adapter serving ``name``; NotApplicable with this target's reason when it has none."""
        adapter = getattr(self, name, None)
        if adapter is None:
            why = self.gaps.get(name, f"no {name} adapter is wired for this target")
            raise NotApplicable(f"not applicable on {self.name}: {why}")
        return adapter

    def emulator_of(self, name: str) -> str | None:
        """The emulator serving port ``name``, when its behaviour is not the real thing's."""
        return self.emulated_ports.get(name)

    def require_destructive(self, action: str) -> None:
        """Refuse a destructive action unless this target explicitly allows it: the step is not run
        (a coverage gap, its plan in the evidence), and nothing is touched."""
        if not self.destructive_allowed:
            raise NotApplicable(f"not run on {self.name}: plan only, destructive step not allowed: {action} "
                                "(opt in with --allow-destructive=<namespace>)")


def new_run_id() -> str:
    """A sortable run id that is also a valid SQL identifier suffix."""
    return datetime.now(UTC).strftime("%Y%m%dt%H%M%Sz") + "_" + secrets.token_hex(2)
