"""What a run is judged against, fixed from the policy before the first scenario; the quarterly checklist."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from akko_dr.evidence.record import RunRecord, ScenarioRecord
from akko_dr.policy import Policy, TargetClass, format_duration


def _klass(policy: Policy, drill: dict[str, Any]) -> TargetClass | None:
    if "class" in drill:
        return policy.klass(drill["class"])
    if "database" in drill:
        return policy.database(drill["database"]).klass
    return None


def _scope(policy: Policy, klass: TargetClass | None, drill: dict[str, Any]) -> list[str]:
    if "database" in drill:
        db = policy.database(drill["database"])
        return [f"PostgreSQL database {db.name} (consumer {db.consumer}, backup job {db.job.name})"]
    return [item.component for item in policy.scope if klass and item.klass == klass]


def _criteria(klass: TargetClass | None, drill: dict[str, Any]) -> list[str]:
    out = []
    if klass:
        out += [f"RTO ≤ {format_duration(klass.rto)} ({klass.title})",
                f"RPO ≤ {format_duration(klass.rpo)} ({klass.title})"]
    out += [f"{key.replace('_', ' ')}: {value}" for key, value in drill.items()
            if key not in ("title", "class", "database", "reference_rto")]
    return out or ["completed and attested by the participants"]


def declare(policy: Policy) -> list[dict[str, Any]]:
    """Per drill of the policy: objective, scope and success criteria, as they stand before the run."""
    out = []
    for key, drill in policy.drills.items():
        klass = _klass(policy, drill)
        out.append({"drill": key, "title": drill.get("title", key),
                    "class": klass.title if klass else None,
                    "objective": klass.scenario if klass else drill.get("title", key),
                    "scope": _scope(policy, klass, drill), "criteria": _criteria(klass, drill),
                    "reference_rto": drill.get("reference_rto"),
                    "rto_target_seconds": klass.rto.total_seconds() if klass else None,
                    "rpo_target_seconds": klass.rpo.total_seconds() if klass else None})
    return out


@dataclass(frozen=True)
class ChecklistItem:
    text: str
    status: str  # covered | rehearsed (passed on the sandbox only) | failed | not run | open
    detail: str


def _of_drill(run: RunRecord, drill: str) -> list[ScenarioRecord]:
    return [s for s in run.scenarios if drill in s.tags]


def _drill_item(run: RunRecord, text: str, drill: str, needs_rto: bool) -> ChecklistItem:
    scenarios = _of_drill(run, drill)
    if not scenarios or all(s.status == "skipped" for s in scenarios):
        return ChecklistItem(text, "not run", "no scenario of this drill ran in this test")
    failed = [s for s in scenarios if s.status == "failed"]
    if failed:
        return ChecklistItem(text, "failed", f"{len(failed)} of {len(scenarios)} scenarios failed")
    if needs_rto and not any(s.rto_seconds is not None for s in scenarios):
        return ChecklistItem(text, "open", "ran, but no RTO was recorded")
    if run.rehearsal:
        return ChecklistItem(text, "rehearsed", f"{len(scenarios)} scenarios passed on the {run.target} "
                                                "target: a rehearsal; the live run is still due")
    return ChecklistItem(text, "covered", f"{len(scenarios)} scenarios passed")


def checklist(run: RunRecord, policy: Policy) -> list[ChecklistItem]:
    """The playbook's quarterly drill checklist, with what this run covered and what is still open."""
    db = policy.drills.get("drill-1", {}).get("database", "the drill database")
    return [
        _drill_item(run, f"Run Drill 1 on {db} and record RTO", "drill-1", True),
        _drill_item(run, "Run Drill 2 on a scratch cluster and record RTO", "drill-2", True),
        _drill_item(run, "Run Drill 3 tabletop exercise with ops + security", "drill-3", False),
        ChecklistItem("Review this playbook, update measured numbers", "open",
                      "people: the measured numbers are filled in below; a reviewer updates the playbook"),
        ChecklistItem("Sign-off by compliance officer", "open",
                      "people: sign the block at the end and countersign with `akko-dr countersign`"),
    ]
