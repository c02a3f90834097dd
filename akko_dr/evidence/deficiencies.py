"""The deficiencies register: findings (with their owner fields) kept apart from coverage gaps."""

from __future__ import annotations

from html import escape

from akko_dr.evidence import history, register, tables
from akko_dr.evidence.objectives import ChecklistItem
from akko_dr.evidence.record import GAPS, RunRecord, ScenarioRecord, status_word
from akko_dr.evidence.verdict import interrupted_line


def _label(rec: ScenarioRecord) -> str:
    return f"{history.drill_of(rec) or rec.feature}: {rec.name}"


def findingstable(run: RunRecord, items: list[ChecklistItem], owners: dict[str, dict[str, str]]) -> str:
    """Failed scenarios and failed checklist items, each with its owner fields (findings file)."""
    rows = []
    for r in run.scenarios:
        if r.status == "failed":
            fields = register.entry(owners, r.ids)
            rows.append([escape(r.id), escape(_label(r)), escape(r.error or "—"),
                         *(escape(v) for v in fields.values())])
    rows += [[escape(f"checklist/{c.text}"), escape(c.text), escape(c.detail),
              *(escape(v) for v in register.entry(owners, [f"checklist/{c.text}"]).values())]
             for c in items if c.status == "failed"]
    return tables.table(["Id", "Finding", "Reason", *register.FIELDS.values()], rows, "findings")


def gapstable(run: RunRecord, items: list[ChecklistItem]) -> str:
    """What this run did not prove: not applicable, skipped, inconclusive, not run, open checklist items."""
    rows = [[escape(r.id), escape(_label(r)), escape(status_word(r.status, r.error).lower()),
             escape(r.error or "—")] for r in run.scenarios
            if r.status in GAPS and not (run.incomplete and r.status == "not run")]
    rows += [["—", escape(name), "not run", escape(interrupted_line(run))] for name in run.not_run]
    rows += [[escape(r.id), escape(f"{_label(r)} — {step}"), "not applicable", escape(str(why))]
             for r in run.scenarios for step, why in r.details.get("not applicable", {}).items()]
    rows += [["—", escape(c.text), escape(c.status.replace("-", " ")), escape(c.detail)]
             for c in items if c.status not in ("covered", "failed")]
    return tables.table(["Id", "Item", "Status", "Reason"], rows, "gaps")


def deficiencies(run: RunRecord, items: list[ChecklistItem],
                 owners: dict[str, dict[str, str]] | None = None) -> str:
    """Findings (something failed) kept apart from coverage gaps (something was not proven)."""
    return ("<h2>Deficiencies register</h2><h3>Findings</h3><p>Each failed scenario or item; severity, "
            "owner, due date, root cause and re-test come from the findings file (--findings-file), "
            f"\"{register.UNASSIGNED}\" where it names none.</p>" + findingstable(run, items, owners or {})
            + "<h3>Coverage gaps</h3><p>Not findings, and not passed: what this run did not prove.</p>"
            + gapstable(run, items))
