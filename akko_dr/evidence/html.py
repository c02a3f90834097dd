"""HTML fragments for the pytest-html report: per-scenario steps, figures and provenance."""

from __future__ import annotations

from html import escape

from akko_dr.evidence.record import RunRecord, ScenarioRecord
from akko_dr.policy import format_duration

REHEARSAL = "SANDBOX REHEARSAL — not production evidence"


def counts_line(run: RunRecord) -> str:
    """``5 scenarios: 3 passed, 1 failed, 1 not applicable``: the counts of results.json."""
    counts = run.counts()
    parts = ", ".join(f"{n} {s.replace('-', ' ')}" for s, n in counts.items() if n)
    return f"{sum(counts.values())} scenarios: {parts or 'none ran'}" + (" — INCOMPLETE" if run.incomplete
                                                                          else "")


def title(run: RunRecord) -> str:
    where = REHEARSAL if run.rehearsal else "LIVE target"
    return f"{where} · AKKO DR drills · run {run.run_id} · {counts_line(run)}"


def _fig(value: float | None) -> str:
    return "—" if value is None else format_duration(value)


def figures_cell(rec: ScenarioRecord) -> str:
    if rec.rto_seconds is None and rec.rpo_seconds is None:
        return ""
    return (f"RTO {_fig(rec.rto_seconds)} / {_fig(rec.rto_target_seconds)}; "
            f"RPO {_fig(rec.rpo_seconds)} / {_fig(rec.rpo_target_seconds)}")


def _rows(pairs: list[tuple[str, object]]) -> str:
    return "".join(f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in pairs)


def summary(run: RunRecord) -> str:
    rows = [("Run", run.run_id), ("Target", run.target + (" (rehearsal)" if run.rehearsal else "")),
            ("Policy", f"{run.policy_name} {run.policy_version} ({run.policy_source})"),
            ("Started (UTC)", run.started_at)]
    rows += [(f"Component: {k}", v) for k, v in run.components.items()]
    rows += [("Emulated", e) for e in run.emulated]
    body = _rows(rows)
    banner = f'<p style="font-weight:bold;color:#a00">{escape(REHEARSAL)}</p>' if run.rehearsal else ""
    return f"{banner}<table class='akko-context'>{body}</table>"


def scenario(rec: ScenarioRecord) -> str:
    """Steps with status and duration, then figures against targets, then the backup used."""
    steps = "".join(
        f"<tr><td>{escape(s.keyword)} {escape(s.text)}</td><td>{escape(s.status)}</td>"
        f"<td>{s.duration_s:.3f}s</td><td>{escape(s.error)}</td></tr>" for s in rec.steps)
    parts = [f"<h4>{escape(rec.feature)} — {escape(rec.name)}</h4>",
             f"<p>Id: {escape(rec.id)} · Tags: {escape(' '.join(rec.tags))}</p>"]
    if rec.error:
        parts.append(f"<p><b>Reason:</b> {escape(rec.error)}</p>")
    parts.append("<table class='akko-steps'><tr><th>Step</th><th>Status</th><th>Duration</th>"
                 f"<th>Error</th></tr>{steps}</table>")
    if rec.verdicts:
        parts.append("<ul>" + "".join(f"<li>{escape(v)}</li>" for v in rec.verdicts) + "</ul>")
    if rec.backup:
        backup = _rows(list(rec.backup.items()))
        parts.append(f"<p>Backup used:</p><table class='akko-backup'>{backup}</table>")
    for key, value in rec.details.items():
        if isinstance(value, list):
            items = "".join(f"<li>{escape(str(v))}</li>" for v in value)
            parts.append(f"<p>{escape(key)}:</p><ul>{items}</ul>")
        else:
            parts.append(f"<p>{escape(key)}: {escape(str(value))}</p>")
    return "<div class='akko-scenario'>" + "".join(parts) + "</div>"
