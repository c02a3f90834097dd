"""Velero through its CRDs (``velero.io/v1``): list Backups, restore one into a scratch namespace
(``namespaceMapping``, never onto its source), and wait for the Restore's phase."""

from __future__ import annotations

import re
import secrets
from datetime import datetime
from typing import Any

from kubernetes import client

from akko_dr.adapters.kube import go_duration
from akko_dr.adapters.kube_api import POLL_INTERVAL, KubeApi, poll
from akko_dr.errors import DrillError
from akko_dr.ports import VeleroBackup, VeleroRestore

GROUP, VERSION = "velero.io", "v1"
RESTORE_DEADLINE = 3600.0  # seconds a Velero restore may take (the policy may set another)
DONE = ("Completed", "PartiallyFailed", "Failed", "FailedValidation")  # a Restore's final phases
SCHEDULE_LABEL = "velero.io/schedule-name"
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def backup_from(item: dict[str, Any]) -> VeleroBackup:
    """A Backup object as the API returns it, read into the port's type."""
    meta, spec, status = item.get("metadata") or {}, item.get("spec") or {}, item.get("status") or {}
    return VeleroBackup(name=meta.get("name", "?"), phase=status.get("phase", ""),
                        completed_at=_time(status.get("completionTimestamp")),
                        ttl=go_duration(spec.get("ttl")),
                        schedule=(meta.get("labels") or {}).get(SCHEDULE_LABEL),
                        namespaces=tuple(spec.get("includedNamespaces") or ("*",)),
                        errors=int(status.get("errors") or 0), warnings=int(status.get("warnings") or 0))


def restore_from(item: dict[str, Any]) -> VeleroRestore:
    """A Restore object as the API returns it, read into the port's type."""
    meta, spec, status = item.get("metadata") or {}, item.get("spec") or {}, item.get("status") or {}
    return VeleroRestore(name=meta.get("name", "?"), backup=spec.get("backupName", ""),
                         phase=status.get("phase", ""),
                         namespace_mapping=tuple(sorted((spec.get("namespaceMapping") or {}).items())),
                         warnings=int(status.get("warnings") or 0), errors=int(status.get("errors") or 0),
                         failure_reason=status.get("failureReason") or "",
                         validation_errors=tuple(status.get("validationErrors") or ()),
                         started_at=_time(status.get("startTimestamp")),
                         completed_at=_time(status.get("completionTimestamp")))


def refuse_mapping(backup: VeleroBackup, mapping: dict[str, str]) -> str | None:
    """Why restoring ``backup`` with ``mapping`` could overwrite a namespace (None when it cannot)."""
    if not mapping:
        return f"a restore of {backup.name} needs a namespace mapping: without one it overwrites its source"
    for source, scratch in sorted(mapping.items()):
        if scratch == source or scratch in backup.namespaces or scratch in mapping:
            return f"namespace mapping {source} -> {scratch} restores onto a namespace of {backup.name}"
        if not _DNS_LABEL.match(scratch):
            return f"namespace mapping {source} -> {scratch}: not a valid namespace name"
        if source not in backup.namespaces and "*" not in backup.namespaces:
            return f"backup {backup.name} does not hold namespace {source}"
    return None


class VeleroCrds:
    """Velero in its namespace, read and driven through the ``velero.io/v1`` custom objects."""

    def __init__(self, api: KubeApi, namespace: str = "velero", deadline: float = RESTORE_DEADLINE,
                 interval: float = POLL_INTERVAL) -> None:
        self.kube, self.namespace = api, namespace
        self.deadline, self.interval = deadline, interval
        self._custom = client.CustomObjectsApi(api.api)

    def backups(self) -> list[VeleroBackup]:
        """Every Backup in Velero's namespace, with phase, completion time, schedule and counts."""
        listing = self.kube.call(f"listing Velero backups in {self.namespace}",
                                 self._custom.list_namespaced_custom_object, GROUP, VERSION, self.namespace,
                                 "backups")
        return [backup_from(item) for item in (listing or {}).get("items", [])]

    def newest_completed(self, schedule: str, namespace: str) -> VeleroBackup:
        """The newest Completed backup of ``schedule`` that holds ``namespace``."""
        fitting = [b for b in self.backups() if b.schedule == schedule and b.phase == "Completed"
                   and b.completed_at and (namespace in b.namespaces or "*" in b.namespaces)]
        if not fitting:
            raise DrillError(f"no Completed Velero backup of schedule {schedule} holds namespace {namespace}")
        return max(fitting, key=lambda b: b.completed_at)

    def restore(self, backup: VeleroBackup, namespace_mapping: dict[str, str]) -> str:
        """Create a Restore of ``backup``'s mapped namespaces only (no cluster-scoped resources)."""
        if why := refuse_mapping(backup, namespace_mapping):
            raise DrillError(f"restore refused: {why}")
        name = f"{backup.name[:50]}-dr-{secrets.token_hex(3)}"
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Restore",
                "metadata": {"name": name, "namespace": self.namespace},
                "spec": {"backupName": backup.name, "includedNamespaces": sorted(namespace_mapping),
                         "namespaceMapping": dict(namespace_mapping), "includeClusterResources": False}}
        self.kube.write(f"creating Velero restore {name} of backup {backup.name}",
                        self._custom.create_namespaced_custom_object, GROUP, VERSION, self.namespace,
                       "restores", body)
        return name

    def wait(self, restore: str) -> VeleroRestore:
        """The Restore once in a final phase (PartiallyFailed and Failed included: see ``succeeded``);
        a DrillError naming the phase reached when the deadline passes first."""
        done, state = poll(lambda: self._read(restore), self.deadline, self.interval)
        if not done:
            raise DrillError(f"Velero restore {restore} did not finish within {self.deadline:g}s "
                             f"(phase {state.phase or 'none yet'})")
        return state

    def _read(self, restore: str) -> tuple[bool, VeleroRestore]:
        item = self.kube.call(f"reading Velero restore {restore}", self._custom.get_namespaced_custom_object,
                              GROUP, VERSION, self.namespace, "restores", restore)
        state = restore_from(item)
        return state.phase in DONE, state
