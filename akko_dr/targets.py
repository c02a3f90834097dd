"""Drill targets: one interface (database, object store, orchestrator), several backends."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from akko_dr.errors import DrillError
from akko_dr.policy import Policy
from akko_dr.ports import Database, IdentityProvider, JobRunner, ObjectStore, Orchestrator, Platform


@dataclass
class Target:
    """Everything a drill may touch, wired once (in ``conftest.py`` or the CLI)."""

    kind: str  # "sandbox" | "live" | "docker"
    policy: Policy
    db: Database
    store: ObjectStore
    orchestrator: Orchestrator
    workdir: Path
    jobs: JobRunner | None = None
    heal: Callable[[], list[str]] | None = None  # sandbox only: undo damage left by an earlier scenario
    platform: Platform | None = None  # Drill 2: lose and provision the whole platform
    identities: IdentityProvider | None = None  # Drill 3: suspend and rotate a compromised identity
    components: dict[str, str] = field(default_factory=dict)
    emulated: list[str] = field(default_factory=list)
    destructive_allowed: bool = False
    production: bool = False

    @property
    def rehearsal(self) -> bool:
        return self.kind != "live"

    def require_destructive(self, action: str) -> None:
        """Refuse a destructive action unless this target explicitly allows it."""
        if not self.destructive_allowed:
            raise DrillError(f"destructive step not allowed on the {self.kind} target: {action} "
                             "(plan only; opt in with --allow-destructive)")


def new_run_id() -> str:
    """A sortable run id that is also a valid SQL identifier suffix."""
    return datetime.now(UTC).strftime("%Y%m%dt%H%M%Sz") + "_" + secrets.token_hex(2)
