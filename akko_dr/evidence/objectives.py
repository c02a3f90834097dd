"""What a run is judged against, fixed from the policy before the first scenario; the quarterly checklist."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from akko_dr.evidence.record import STATUSES, RunRecord, ScenarioRecord
from akko_dr.policy import Policy, TargetClass, format_duration


def _klass(policy: Policy, drill: dict[str, Any], judged_in: str | None) -> TargetClass | None:
    """The drill's class: the policy's entry names it, or its database's, or its scenarios' class tag."""
    if "class" in drill:
        return policy.klass(drill["class"])
    if "database" in drill:
        return policy.database(drill["database"]).klass
    return policy.klass(judged_in) if judged_in else None


def _objective(key: str, drill: dict[str, Any]) -> str:
    """What the drill sets out to do, from the policy's drill entry (not the class's example scenario)."""
    title = str(drill.get("title", key))
    if "database" in drill:
        return f"{title}: restore one database, {drill['database']}, from its latest backup"
    return title


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


def declare(policy: Policy, judged_in: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Per drill of the policy: objective, scope and success criteria, as they stand before the run.

    ``judged_in`` maps a drill to the class its scenarios are tagged with, for a drill whose policy entry
    names no class (Drill 3): its RTO and RPO targets are declared before the run like the others.
    """
    out = []
    for key, drill in policy.drills.items():
        klass = _klass(policy, drill, (judged_in or {}).get(key))
        out.append({"drill": key, "title": drill.get("title", key),
                    "class": klass.title if klass else None,
                    "objective": _objective(key, drill),
                    "scope": _scope(policy, klass, drill), "criteria": _criteria(klass, drill),
                    "reference_rto": drill.get("reference_rto"),
                    "rto_target_seconds": klass.rto.total_seconds() if klass else None,
                    "rpo_target_seconds": klass.rpo.total_seconds() if klass else None})
    return out


@dataclass(frozen=True)
class ChecklistItem:
    text: str
    status: str  # covered | rehearsed (sandbox) | failed | inconclusive | not applicable | not run | open
    detail: str


def _of_drill(run: RunRecord, drill: str) -> list[ScenarioRecord]:
    return [s for s in run.scenarios if drill in s.tags]


def _drill_item(run: RunRecord, text: str, drill: str, needs_rto: bool) -> ChecklistItem:
    scenarios = _of_drill(run, drill)
    if not scenarios or all(s.status in ("skipped", "not run") for s in scenarios):
        return ChecklistItem(text, "not run", "no scenario of this drill ran in this test")
    n = {st: sum(s.status == st for s in scenarios) for st in STATUSES}
    of = f"of {len(scenarios)} scenarios"
    if n["failed"]:
        return ChecklistItem(text, "failed", f"{n['failed']} {of} failed")
    if n["inconclusive"]:
        said = " ".join(s.error for s in scenarios if s.status == "inconclusive")
        word = "inconclusive (emulator)" if "emulator" in said else "inconclusive"
        return ChecklistItem(text, word, f"{n['inconclusive']} {of} inconclusive: {said}")
    if not n["passed"]:
        return ChecklistItem(text, "not applicable", f"no scenario {of} could run on the {run.target} target")
    if needs_rto and not any(s.rto_seconds is not None for s in scenarios):
        return ChecklistItem(text, "open", "ran, but no RTO was recorded")
    if n["passed"] < len(scenarios):
        return ChecklistItem(text, "open", f"only {n['passed']} {of} passed; the others were not run, "
                                           "skipped or not applicable")
    if run.rehearsal:
        return ChecklistItem(text, "rehearsed", f"{n['passed']} scenarios passed on the {run.target} "
                                                "target: a rehearsal; the live run is still due")
    return ChecklistItem(text, "covered", f"{n['passed']} scenarios passed")


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
