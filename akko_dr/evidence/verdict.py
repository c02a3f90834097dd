"""The audit report's verdict: the overall line, the verdict table, and the basis of each drill."""

from __future__ import annotations

from html import escape
from typing import Any

from akko_dr.evidence import history, tables
from akko_dr.evidence.record import GAPS, RunRecord, ScenarioRecord, status_word
from akko_dr.policy import format_duration


def fig(value: float | None) -> str:
    return "—" if value is None else format_duration(value)


def word(status: str, error: str = "") -> str:
    cls = {"passed": "pass", "failed": "fail"}.get(status, "other")
    return f"<span class='{cls}'>{escape(status_word(status, error))}</span>"


def met(value: float | None, target: float | None) -> str:
    if value is None or target is None:
        return escape(f"{fig(value)} / {fig(target)}")
    mark = "<span class='pass'>met</span>" if value <= target else "<span class='fail'>missed</span>"
    return f"{escape(fig(value))} / {escape(fig(target))} {mark}"


def _rpo_cell(rec: ScenarioRecord) -> str:
    """The RPO judged against the class: the schedule's worst case when known, the measured one beside it."""
    if rec.rpo_worst_case_seconds is None:
        return met(rec.rpo_seconds, rec.rpo_target_seconds)
    judged = met(rec.rpo_worst_case_seconds, rec.rpo_target_seconds)
    return (f"worst case by schedule {judged}<br>restore path {escape(fig(rec.rpo_seconds))} "
            f"({escape(rec.rpo_basis or 'basis not recorded')})")


def _judged_row(rec: ScenarioRecord) -> list[str]:
    drill = history.drill_of(rec)
    return [escape(drill), escape(rec.name), escape(rec.target_class or "—"),
            met(rec.rto_seconds, rec.rto_target_seconds), _rpo_cell(rec), word(rec.status, rec.error)]


def group_status(recs: list[ScenarioRecord]) -> str:
    """One status for several scenarios: a failure, then an inconclusive one, decide; gaps make it partial."""
    statuses = {r.status for r in recs}
    for status in ("failed", "inconclusive"):
        if status in statuses:
            return status
    if statuses == {"passed"}:
        return "passed"
    return "partial" if "passed" in statuses else sorted(statuses)[0]


def _group_rows(run: RunRecord) -> list[list[str]]:
    groups: dict[str, list[ScenarioRecord]] = {}
    for rec in run.scenarios:
        if not history.judged(rec):
            groups.setdefault(rec.feature, []).append(rec)
    rows = []
    for feature, recs in groups.items():
        summary = count_text(_counts(recs))
        status = group_status(recs)
        emulated = " ".join(r.error for r in recs if r.status == "inconclusive")
        rows.append([escape(history.drill_of(recs[0])), escape(f"{feature} ({summary})"), "—", "—", "—",
                     word(status, emulated)])
    return rows


def count_text(counts: dict[str, int]) -> str:
    """``3 passed, 1 not applicable``: the non-zero counts."""
    return ", ".join(f"{n} {s.replace('-', ' ')}" for s, n in counts.items() if n)


def _counts(recs: list[ScenarioRecord]) -> dict[str, int]:
    return {s: sum(r.status == s for r in recs) for s in ("passed", "failed", *GAPS)}


def segregation(details: dict[str, Any]) -> str:
    """Where the restore went, as the drill recorded it; "segregated: yes" only when it really was."""
    said, flag = details.get("segregation"), details.get("segregated_restore")
    if not said and flag is None:
        return "segregation: not recorded"
    answer = "segregated: yes" if flag is True else "segregated: no"
    return f"{said} — {answer}" if said else answer


def _backup_text(b: dict[str, Any]) -> str:
    return f"{b.get('uri', b.get('key'))} taken {b.get('taken_at')}"


def backups_used(rec: ScenarioRecord) -> str:
    """Every backup a scenario restored: Drill 2's every dump replayed, else the one backup, else none."""
    many = [b for b in rec.details.get("backups") or [] if isinstance(b, dict)]
    if many:
        return f"{len(many)} backups replayed: " + ", ".join(_backup_text(b) for b in many)
    return f"backup {_backup_text(rec.backup)}" if rec.backup else "no backup used"


def _basis(run: RunRecord, rec: ScenarioRecord) -> str:
    """One line: the backups used, the integrity checks, segregation and DORA references of a scenario."""
    d = rec.details
    parts = [backups_used(rec), f"integrity check: {d.get('integrity check', 'not recorded')}",
             segregation(d)]
    if rec.rpo_basis:
        parts.append(f"RPO basis: {rec.rpo_basis}")
    parts.append(dora(run, rec))
    label = f"{history.drill_of(rec) or rec.feature}: {rec.name}"
    return f"<li><b>{escape(label)}</b>: {escape('; '.join(parts))}</li>"


def _has_basis(rec: ScenarioRecord) -> bool:
    used = rec.backup or rec.details.get("backups") or "integrity check" in rec.details
    return rec.status not in ("skipped", "not run") and bool(history.judged(rec) or used)


def _reasons(run: RunRecord) -> str:
    failed = [r for r in run.scenarios if r.status == "failed"]
    items = "".join(f"<li><b>{escape(r.name)}</b>: {escape(r.error or 'no reason recorded')}</li>"
                    for r in failed)
    return f"<p>Failed:</p><ul>{items}</ul>" if failed else ""


def overall(run: RunRecord) -> str:
    """The one-line verdict: INCOMPLETE, FAIL, NOT PROVEN (gaps only) or PASS, a rehearsal said first."""
    counts = run.counts()
    gaps = count_text({s: counts[s] for s in GAPS})
    if run.incomplete:
        text = ("<span class='fail'>INCOMPLETE</span> — " + escape(interrupted_line(run)))
    elif counts["failed"]:
        text = word("failed") + f" — {counts['failed']} scenario(s) failed" + (f"; {escape(gaps)}"
                                                                                   if gaps else "")
    elif gaps:
        text = (f"<span class='other'>NOT PROVEN</span> — no failure, but not everything was proven: "
                f"{escape(gaps)}")
    elif run.rehearsal:
        text = (f"<span class='other'>REHEARSED</span> — every scenario passed on the {escape(run.target)} "
                "target; a rehearsal shows the procedure works, not that production is protected")
    else:
        text = word("passed") + " — every scenario passed"
    where = f"rehearsal on the {escape(run.target)} target, not production evidence" if run.rehearsal \
        else "live target"
    return f"<p class='overall'>Overall ({where}): {text}</p>"


def interrupted_line(run: RunRecord) -> str:
    i = run.interrupted
    return f"interrupted at {i.get('at', '?')} in {i.get('in') or 'no scenario'} ({i.get('signal', '?')})"


def _not_run(run: RunRecord) -> str:
    if not run.incomplete:
        return ""
    items = "".join(f"<li>{escape(n)}</li>" for n in run.not_run) or "<li>none</li>"
    return f"<p>Not run ({len(run.not_run)} scenarios):</p><ul id='not-run'>{items}</ul>"


def verdict(run: RunRecord) -> str:
    """The verdict table: each judged scenario with RTO/RPO against target, other features summarised."""
    rows = [_judged_row(r) for r in run.scenarios if history.judged(r)] + _group_rows(run)
    table = tables.table(["Drill", "Scenario", "Class", "RTO measured / target", "RPO judged / target",
                    "Result"], rows, "verdict")
    basis = "".join(_basis(run, r) for r in run.scenarios if _has_basis(r))
    return (overall(run) + _not_run(run) + table + _reasons(run)
            + (f"<p>Basis:</p><ul>{basis}</ul>" if basis else ""))


def dora(run: RunRecord, rec: ScenarioRecord) -> str:
    refs = [run.dora_refs.get(t, t) for t in rec.tags if t.startswith("dora-")]
    return "; ".join(refs) or "none tagged"
