"""``audit-report.html``: the signed drill report the playbook annexes, first page readable in a minute."""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from typing import Any

from akko_dr.evidence import history
from akko_dr.evidence.html import REHEARSAL
from akko_dr.evidence.objectives import ChecklistItem
from akko_dr.evidence.record import RunRecord, ScenarioRecord
from akko_dr.policy import format_duration

AUDIT_REPORT = "audit-report.html"
BLANK = "________________"
CSS = """
@page { size: A4; margin: 14mm; }
body { font: 12px/1.35 system-ui, sans-serif; color: #111; margin: 0 auto; max-width: 760px; }
h1 { font-size: 18px; margin: 4px 0; }
h2 { font-size: 14px; margin: 14px 0 4px; border-bottom: 1px solid #999; }
h3 { font-size: 12px; margin: 10px 0 2px; }
table { border-collapse: collapse; width: 100%; margin: 4px 0; }
th, td { border: 1px solid #bbb; padding: 2px 5px; text-align: left; vertical-align: top; }
th { background: #f0f0f0; } .ident th { width: 28%; }
.banner { background: #a00; color: #fff; font-weight: bold; padding: 4px 8px; }
.pass { color: #060; font-weight: bold; } .fail { color: #b00; font-weight: bold; }
.other { color: #555; font-weight: bold; } .overall { font-size: 14px; margin: 6px 0; }
.page { break-before: page; } .mono { font-family: monospace; font-size: 10px; word-break: break-all; }
"""


@dataclass
class AuditInputs:
    """Everything the report shows besides the run record itself."""

    run: RunRecord
    checklist: list[ChecklistItem]
    history: list[dict[str, Any]]
    signer: dict[str, str]
    previous: dict[str, str] | None
    outputs: dict[str, str] = field(default_factory=dict)  # file -> what it is
    retention: dict[str, str] = field(default_factory=dict)  # backup job -> its retention and WORM status
    notes: list[str] = field(default_factory=list)


def _rows(pairs: list[tuple[str, str]], cls: str = "") -> str:
    body = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in pairs)
    return f"<table class='{cls}'>{body}</table>"


def _table(header: list[str], rows: list[list[str]], ident: str = "") -> str:
    """A table whose cells are already escaped HTML."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    id_attr = f" id='{ident}'" if ident else ""
    return f"<table{id_attr}><tr>{head}</tr>{body}</table>"


def _fig(value: float | None) -> str:
    return "—" if value is None else format_duration(value)


def _verdict(status: str) -> str:
    cls = {"passed": "pass", "failed": "fail"}.get(status, "other")
    word = {"passed": "PASS", "failed": "FAIL"}.get(status, status.upper())
    return f"<span class='{cls}'>{escape(word)}</span>"


def _met(value: float | None, target: float | None) -> str:
    if value is None or target is None:
        return escape(f"{_fig(value)} / {_fig(target)}")
    mark = "<span class='pass'>met</span>" if value <= target else "<span class='fail'>missed</span>"
    return f"{escape(_fig(value))} / {escape(_fig(target))} {mark}"


def _target_line(run: RunRecord) -> str:
    if run.rehearsal:
        return f"{run.target} — rehearsal, not production"
    return f"{run.target} — {'PRODUCTION' if run.production else 'not production'}"


def _identity(run: RunRecord) -> str:
    """The cluster API and namespace of a live target; the host for the sandbox."""
    if "kubernetes" in run.components:
        return f"Kubernetes API {run.components['kubernetes']}"
    return f"{run.target} on host {run.host}, namespace {run.namespace or '—'}"


def identification(run: RunRecord) -> str:
    pairs = [("Test id", run.run_id), ("Playbook", f"{run.policy_name} {run.policy_version}"),
             ("Trigger", run.trigger), ("Target", _target_line(run)),
             ("Target identity", _identity(run)),
             ("Start (UTC)", run.started_at), ("End (UTC)", run.finished_at),
             ("Clock source", run.clock_source), ("Objectives declared (UTC)", run.declared_at)]
    return _rows(pairs, "ident")


def _judged_row(rec: ScenarioRecord) -> list[str]:
    drill = history.drill_of(rec)
    return [escape(drill), escape(rec.name), escape(rec.target_class or "—"),
            _met(rec.rto_seconds, rec.rto_target_seconds), _met(rec.rpo_seconds, rec.rpo_target_seconds),
            _verdict(rec.status)]


def _group_rows(run: RunRecord) -> list[list[str]]:
    groups: dict[str, list[ScenarioRecord]] = {}
    for rec in run.scenarios:
        if not history.judged(rec):
            groups.setdefault(rec.feature, []).append(rec)
    rows = []
    for feature, recs in groups.items():
        counts = {s: sum(r.status == s for r in recs) for s in ("passed", "failed", "skipped")}
        status = "failed" if counts["failed"] else ("passed" if counts["passed"] else "skipped")
        summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        rows.append([escape(history.drill_of(recs[0])), escape(f"{feature} ({summary})"), "—", "—", "—",
                     _verdict(status)])
    return rows


def _yes_no(flag: object) -> str:
    return {True: "yes", False: "NO"}.get(flag, "not recorded")  # type: ignore[call-overload]


def _basis(run: RunRecord, rec: ScenarioRecord) -> str:
    """One line: the backup used, the integrity check, segregation and DORA references of a scenario."""
    d, b = rec.details, rec.backup or {}
    parts = [f"backup {b.get('uri', b.get('key'))} taken {b.get('taken_at')}" if b else "no backup used",
             f"integrity check: {d.get('integrity check', 'not recorded')}",
             "segregated restore: " + _yes_no(d.get("segregated_restore")),
             _dora(run, rec)]
    return f"<li><b>{escape(history.drill_of(rec))}</b>: {escape('; '.join(parts))}</li>"


def _reasons(run: RunRecord) -> str:
    failed = [r for r in run.scenarios if r.status == "failed"]
    items = "".join(f"<li><b>{escape(r.name)}</b>: {escape(r.error or 'no reason recorded')}</li>"
                    for r in failed)
    return f"<p>Failed:</p><ul>{items}</ul>" if failed else ""


def verdict(run: RunRecord) -> str:
    """The verdict table: each judged scenario with RTO/RPO against target, other features summarised."""
    rows = [_judged_row(r) for r in run.scenarios if history.judged(r)] + _group_rows(run)
    failed = sum(r.status == "failed" for r in run.scenarios)
    overall = ("<p class='overall'>Overall: " + (_verdict("failed") + f" — {failed} scenario(s) failed"
               if failed else _verdict("passed") + " — every scenario that ran passed") + "</p>")
    table = _table(["Drill", "Scenario", "Class", "RTO measured / target", "RPO measured / target",
                    "Result"], rows, "verdict")
    basis = "".join(_basis(run, r) for r in run.scenarios if history.judged(r) and r.status != "skipped")
    return overall + table + _reasons(run) + (f"<p>Basis:</p><ul>{basis}</ul>" if basis else "")


def first_page(inp: AuditInputs) -> str:
    run = inp.run
    banner = f"<p class='banner'>{escape(REHEARSAL)}</p>" if run.rehearsal else ""
    counts = {s: sum(c.status == s for c in inp.checklist) for s in ("covered", "rehearsed")}
    left = len(inp.checklist) - counts["covered"] - counts["rehearsed"]
    return (f"{banner}<h1>Disaster recovery drill report — {escape(run.policy_name)} "
            f"{escape(run.policy_version)}</h1>{identification(run)}<h2>Verdict</h2>{verdict(run)}"
            f"<p>Quarterly checklist ({len(inp.checklist)} items): {counts['covered']} covered by this run, "
            f"{counts['rehearsed']} rehearsed on the sandbox, {left} open or failed "
            "(see the checklist and deficiencies). "
            f"Evidence signed with Ed25519 key {escape(inp.signer['key_id'])} "
            f"({escape(inp.signer['kind'])}); "
            "check it with <code>akko-dr verify</code>.</p>")


def objectives(run: RunRecord) -> str:
    rows = [[escape(d["drill"]), escape(d["title"]), escape(d["objective"]),
             "<br>".join(escape(s) for s in d["scope"]), "<br>".join(escape(c) for c in d["criteria"])]
            for d in run.declared]
    return (f"<h2>Objectives and success criteria (declared before the run, {escape(run.declared_at)}, "
            f"from {escape(run.policy_source)})</h2>"
            + _table(["Drill", "Title", "Objective (class scenario)", "Scope", "Success criteria"], rows))


def _immutability(run: RunRecord, b: dict[str, Any], retention: dict[str, str]) -> str:
    said = b.get("object_lock") or b.get("immutability")
    if said:
        return str(said)
    store = "; ".join(e for e in run.emulated if "WORM" in e)
    return "; ".join(p for p in (f"policy: {retention.get(str(b.get('job')), 'job not in the policy')}",
                                 store) if p)


def _backup(run: RunRecord, rec: ScenarioRecord, retention: dict[str, str]) -> list[tuple[str, str]]:
    if not rec.backup:
        return [("Backup provenance", "no backup was used")]
    b = rec.backup
    lock = _immutability(run, b, retention)
    return [("Backup object", str(b.get("uri", b.get("key", "")))),
            ("Backup taken (UTC)", str(b.get("taken_at"))),
            ("Backup size (bytes)", str(b.get("size"))), ("Backup sha256", str(b.get("sha256"))),
            ("Backup job", str(b.get("job"))), ("Immutability", str(lock))]


def _dora(run: RunRecord, rec: ScenarioRecord) -> str:
    refs = [run.dora_refs.get(t, t) for t in rec.tags if t.startswith("dora-")]
    return "; ".join(refs) or "none tagged"


def drill_detail(run: RunRecord, rec: ScenarioRecord, retention: dict[str, str]) -> str:
    d = rec.details
    segregated = d.get("segregated_restore")
    pairs = [("Feature", rec.feature), ("Scenario", rec.name), ("Result", rec.status.upper()),
             ("Reason", rec.error or "—"), ("Database", str(d.get("database", "—"))),
             ("Class", rec.target_class or "—"),
             ("RTO measured / target", f"{_fig(rec.rto_seconds)} / {_fig(rec.rto_target_seconds)}"),
             ("RPO measured / target", f"{_fig(rec.rpo_seconds)} / {_fig(rec.rpo_target_seconds)}"),
             *_backup(run, rec, retention),
             ("Integrity checks", str(d.get("integrity check", "not recorded"))),
             ("Segregated restore (DORA Art. 12(3))",
              "not recorded" if segregated is None else
              f"{'yes' if segregated else 'NO'} — restored into {d.get('restore_target', '?')}"),
             ("Kept for sign-off", str(d.get("kept_for_signoff") or "—")),
             ("DORA references", _dora(run, rec)), ("Verdicts", "; ".join(rec.verdicts) or "—")]
    return f"<h3>{escape(history.drill_of(rec))}: {escape(rec.name)}</h3>" + _rows(pairs)


def record_lines(run: RunRecord) -> str:
    """The playbook's "Record your number here: ____" lines, filled with this run's figures."""
    items = []
    for d in run.declared:
        if not d.get("reference_rto"):
            continue
        measured = [r for r in run.scenarios if d["drill"] in r.tags and r.rto_seconds is not None]
        number = "; ".join(f"{_fig(r.rto_seconds)} (RPO {_fig(r.rpo_seconds)}, {r.status}, run {run.run_id})"
                           for r in measured) or "not run in this test"
        items.append(f"<li><b>{escape(d['drill'])} — {escape(d['title'])}</b>: Measured RTO : "
                     f"~{escape(str(d['reference_rto']))} on reference hardware. Record your number here: "
                     f"<b>{escape(number)}</b></li>")
    return "<h2>The playbook's record lines, filled in</h2><ul>" + "".join(items) + "</ul>"


def checklist_section(items: list[ChecklistItem]) -> str:
    rows = [[("☑ " if c.status == "covered" else "☐ ") + escape(c.text), _verdict(c.status) if c.status in
             ("failed",) else escape(c.status), escape(c.detail)] for c in items]
    return "<h2>Quarterly drill checklist</h2>" + _table(["Item", "This run", "Detail"], rows)


def deficiencies(run: RunRecord, items: list[ChecklistItem]) -> str:
    bad = [r for r in run.scenarios if r.status in ("failed", "skipped")]
    rows = [[escape(f"{history.drill_of(r) or r.feature}: {r.name}"), escape(r.status),
             escape(r.error or "—"), BLANK, BLANK] for r in bad]
    na = [(r, step, why) for r in run.scenarios for step, why in r.details.get("not applicable", {}).items()]
    rows += [[escape(f"{history.drill_of(r) or r.feature}: {step}"), "not applicable", escape(str(reason)),
              BLANK, BLANK] for r, step, reason in na]
    rows += [[escape(c.text), escape(c.status), escape(c.detail), BLANK, BLANK]
             for c in items if c.status != "covered"]
    return ("<h2>Deficiencies register</h2><p>Every failed, not-applicable or open item; the owner and due "
            "date are filled in by the test owner.</p>"
            + _table(["Item", "Status", "Reason", "Owner", "Due date"], rows))


def history_section(rows: list[dict[str, Any]]) -> str:
    parts = ["<h2>RTO and RPO across runs</h2><p>Log scale; dashed lines are the policy targets, "
             "red points missed them.</p>"]
    measured = [r for r in rows if r.get("rto_seconds") is not None or r.get("rpo_seconds") is not None]
    for (drill, db), points in history.series(measured).items():
        title = f"{drill or 'scenario'} {db}".strip()
        parts.append(f"<h3>{escape(title)}</h3>{history.chart(points, f'RTO and RPO of {title} per run')}")
    if len(parts) == 1:
        parts.append("<p>No measured figures yet.</p>")
    return "".join(parts)


def integrity_section(inp: AuditInputs) -> str:
    prev = inp.previous
    pairs = [("Signature", f"Ed25519 over manifest.json, key {inp.signer['key_id']} ({inp.signer['kind']})"),
             ("Public key", inp.signer["public_key"]), ("Key note", inp.signer.get("note", "configured key")),
             ("Previous run", "none: first sealed run in this evidence folder" if prev is None else
              f"{prev['run_id']}, manifest sha256 {prev['manifest_sha256']}"),
             ("Check", "akko-dr verify <this folder> names any altered, missing or extra file"),
             *((f"File {name}", what) for name, what in inp.outputs.items()),
             *(("Note", n) for n in inp.notes)]
    return "<h2>Integrity and evidence files</h2>" + _rows(pairs)


def participants(run: RunRecord) -> list[str]:
    """The people named for the run, then everyone who attested a step (in order, once each)."""
    attesters = [f"{a['who']} ({a['role']}), attested {a['key']}" for r in run.scenarios
                 for a in r.details.get("attestations", []) if isinstance(a, dict) and a.get("who")]
    return list(dict.fromkeys([*run.participants, *attesters])) or [BLANK]


def people_and_versions(run: RunRecord) -> str:
    people = participants(run)
    versions = [*run.versions.items(), *((f"Component: {k}", v) for k, v in run.components.items()),
                *(("Emulated", e) for e in run.emulated)]
    return ("<h2>Participants</h2><ul>" + "".join(f"<li>{escape(p)}</li>" for p in people) + "</ul>"
            f"<h2>Tool and server versions</h2>{_rows([('Host', run.host), *versions])}")


def execution_log(run: RunRecord) -> str:
    parts = ["<h2>Execution log</h2><p>Step by step; the full log is report.html, the machine-readable "
             "forms results.json, junit.xml and cucumber.json.</p>"]
    for rec in run.scenarios:
        rows = [[escape(f"{s.keyword} {s.text}"), escape(s.status), f"{s.duration_s:.3f}s", escape(s.error)]
                for s in rec.steps]
        parts.append(f"<h3>{escape(rec.feature)} — {escape(rec.name)} ({escape(rec.status)})</h3>"
                     + _table(["Step", "Status", "Duration", "Error"], rows))
    return "".join(parts)


def sign_off() -> str:
    rows = [[escape(role), BLANK, BLANK, BLANK] for role in ("Test owner", "Independent reviewer",
                                                           "Compliance officer")]
    return ("<h2>Sign-off</h2>" + _table(["Role", "Name", "Date", "Signature"], rows)
            + "<p>Digital countersignature over the same manifest: <code>akko-dr countersign &lt;run-dir&gt; "
              "--key KEY --reviewer NAME</code>.</p>")


def render(inp: AuditInputs) -> str:
    """The whole report: first page, then objectives, detail, checklist, deficiencies, history, the rest."""
    run = inp.run
    detail = "".join(drill_detail(run, r, inp.retention) for r in run.scenarios if history.judged(r))
    body = [first_page(inp), "<div class='page'>", objectives(run), "<h2>Drill detail</h2>",
            detail or "<p>No drill measured figures in this run.</p>", record_lines(run),
            checklist_section(inp.checklist), deficiencies(run, inp.checklist), history_section(inp.history),
            integrity_section(inp), people_and_versions(run), sign_off(), execution_log(run), "</div>"]
    title = f"{REHEARSAL + ' · ' if run.rehearsal else ''}DR drill report {run.run_id}"
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{escape(title)}</title>"
            f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>\n")
