"""``audit-report.html``: the signed drill report the playbook annexes, first page readable in a minute."""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from typing import Any

from akko_dr.evidence import deficiencies, history, tables
from akko_dr.evidence.html import REHEARSAL
from akko_dr.evidence.objectives import ChecklistItem
from akko_dr.evidence.record import RunRecord, ScenarioRecord, status_word
from akko_dr.evidence.verdict import backups_used, dora, fig, interrupted_line, segregation, verdict, word

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
.page { break-before: page; }
.rehearsal .pass { color: #345; } .mono { font-family: monospace; font-size: 10px; word-break: break-all; }
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
    register: dict[str, dict[str, str]] = field(default_factory=dict)  # id -> owner fields (findings file)


def _target_line(run: RunRecord) -> str:
    if run.rehearsal:
        return f"{run.target} — rehearsal, not production"
    return f"{run.target} — {'PRODUCTION' if run.production else 'not production'}"


def _identity(run: RunRecord) -> str:
    """The cluster API and namespace of a live target; the host for the sandbox."""
    if "kubernetes" in run.components:
        return f"cluster {run.components['kubernetes']}"
    return f"{run.target} on host {run.host}, namespace {run.namespace or '—'}"


def identification(run: RunRecord) -> str:
    pairs = [("Test id", run.run_id), ("Playbook", f"{run.policy_name} {run.policy_version}"),
             ("Trigger", run.trigger), ("Target", _target_line(run)),
             ("Target identity", _identity(run)),
             ("Start (UTC)", run.started_at), ("End (UTC)", run.finished_at),
             ("Clock source", run.clock_source), ("Objectives declared (UTC)", run.declared_at)]
    return tables.rows(pairs, "ident")


UNSIGNED = "unsigned rehearsal: no trusted key"


def signature_line(signer: dict[str, str]) -> str:
    """How the evidence is sealed: an ephemeral key is no signature anyone can trust."""
    if signer.get("kind") == "ephemeral":
        return (f"{UNSIGNED} (files sealed by the throw-away key {signer['key_id']}: tampering shows, "
                "but not who ran the test)")
    return (f"signed with Ed25519 key {signer['key_id']} ({signer.get('kind')}): verified only against "
            "the owner's public key, akko-dr verify --public-key KEY.pub")


def first_page(inp: AuditInputs) -> str:
    run = inp.run
    banner = f"<p class='banner'>{escape(REHEARSAL)}</p>" if run.rehearsal else (
        f"<p class='banner'>LIVE: {escape(_identity(run))}</p>")
    if run.incomplete:
        banner += f"<p class='banner'>INCOMPLETE ({escape(interrupted_line(run))})</p>"
    counts = {s: sum(c.status == s for c in inp.checklist) for s in ("covered", "rehearsed")}
    left = len(inp.checklist) - counts["covered"] - counts["rehearsed"]
    return (f"{banner}<h1>Disaster recovery drill report — {escape(run.policy_name)} "
            f"{escape(run.policy_version)}</h1>{identification(run)}<h2>Verdict</h2>{verdict(run)}"
            f"<p>Quarterly checklist ({len(inp.checklist)} items): {counts['covered']} covered by this run, "
            f"{counts['rehearsed']} rehearsed on the sandbox, {left} open or failed "
            "(see the checklist and deficiencies). "
            f"Evidence: {escape(signature_line(inp.signer))}; "
            "check it with <code>akko-dr verify</code>.</p>")


def objectives(run: RunRecord) -> str:
    rows = [[escape(d["drill"]), escape(d["title"]), escape(d["objective"]),
             "<br>".join(escape(s) for s in d["scope"]), "<br>".join(escape(c) for c in d["criteria"])]
            for d in run.declared]
    return (f"<h2>Objectives and success criteria (declared before the run, {escape(run.declared_at)}, "
            f"from {escape(run.policy_source)})</h2>"
            + tables.table(["Drill", "Title", "Objective", "Scope", "Success criteria"], rows))


def _immutability(run: RunRecord, b: dict[str, Any], retention: dict[str, str]) -> str:
    said = b.get("object_lock") or b.get("immutability")
    if said:
        return str(said)
    store = "; ".join(e for e in run.emulated if e.startswith("object store")) or (
        f"object store: {run.components['object-store']}" if run.components.get("object-store") else "")
    return "; ".join(p for p in (f"policy: {retention.get(str(b.get('job')), 'job not in the policy')}",
                                 store) if p)


def _backup(run: RunRecord, rec: ScenarioRecord, retention: dict[str, str]) -> list[tuple[str, str]]:
    if rec.details.get("backups"):
        return [("Backup provenance", backups_used(rec))]
    if not rec.backup:
        return [("Backup provenance", "no backup was used")]
    b = rec.backup
    lock = _immutability(run, b, retention)
    return [("Backup object", str(b.get("uri", b.get("key", "")))),
            ("Backup taken (UTC)", str(b.get("taken_at"))),
            ("Backup size (bytes)", str(b.get("size"))), ("Backup sha256", str(b.get("sha256"))),
            ("Backup job", str(b.get("job"))), ("Immutability", str(lock))]


def _rpo_pairs(rec: ScenarioRecord) -> list[tuple[str, str]]:
    measured = f"{fig(rec.rpo_seconds)}" + (f" ({rec.rpo_basis})" if rec.rpo_basis else "")
    if rec.rpo_worst_case_seconds is None:
        return [("RPO measured / target", f"{measured} / {fig(rec.rpo_target_seconds)}")]
    return [("RPO worst case by schedule / target (judged)",
             f"{fig(rec.rpo_worst_case_seconds)} / {fig(rec.rpo_target_seconds)}"),
            ("RPO measured on the restore path", measured)]


def drill_detail(run: RunRecord, rec: ScenarioRecord, retention: dict[str, str]) -> str:
    d = rec.details
    where = f" — restored into {d['restore_target']}" if d.get("restore_target") else ""
    pairs = [("Id", rec.id), ("Feature", rec.feature), ("Scenario", rec.name),
             ("Result", status_word(rec.status, rec.error)),
             ("Reason", rec.error or "—"), ("Database", str(d.get("database", "—"))),
             ("Class", rec.target_class or "—"),
             ("RTO measured / target", f"{fig(rec.rto_seconds)} / {fig(rec.rto_target_seconds)}"),
             *_rpo_pairs(rec), *_backup(run, rec, retention),
             ("Integrity checks", str(d.get("integrity check", "not recorded"))),
             ("Segregated restore (DORA Art. 12(3))", segregation(d) + where),
             ("Kept for sign-off", str(d.get("kept_for_signoff") or "—")),
             ("DORA references", dora(run, rec)), ("Verdicts", "; ".join(rec.verdicts) or "—")]
    return f"<h3>{escape(history.drill_of(rec))}: {escape(rec.name)}</h3>" + tables.rows(pairs)


def _record_number(run: RunRecord, drill: str) -> tuple[str, str]:
    """What goes in the blank, and a note beside it: a rehearsal never fills the blank."""
    measured = [r for r in run.scenarios if drill in r.tags and r.rto_seconds is not None]
    figures = "; ".join(f"{fig(r.rto_seconds)} (RPO {fig(r.rpo_seconds)}, {r.status})" for r in measured)
    if not figures:
        return BLANK, "not run in this test"
    if run.rehearsal or run.incomplete:
        why = f"{run.target}, not for the annex" if run.rehearsal else "incomplete run, not for the annex"
        return BLANK, f"rehearsal: {figures} ({why})"
    return f"{figures}, run {run.run_id}", ""


def record_lines(run: RunRecord) -> str:
    """The playbook's "Record your number here: ____" lines, filled only from a complete live run."""
    items = []
    for d in run.declared:
        if not d.get("reference_rto"):
            continue
        number, note = _record_number(run, d["drill"])
        items.append(f"<li><b>{escape(d['drill'])} — {escape(d['title'])}</b>: Measured RTO : "
                     f"~{escape(str(d['reference_rto']))} on reference hardware. Record your number here: "
                     f"<b>{escape(number)}</b>" + (f" — {escape(note)}" if note else "") + "</li>")
    return "<h2>The playbook's record lines</h2><ul>" + "".join(items) + "</ul>"


def checklist_section(items: list[ChecklistItem]) -> str:
    rows = [[("☑ " if c.status == "covered" else "☐ ") + escape(c.text), word(c.status) if c.status in
             ("failed",) else escape(c.status.replace("-", " ")), escape(c.detail)] for c in items]
    return "<h2>Quarterly drill checklist</h2>" + tables.table(["Item", "This run", "Detail"], rows)


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
    pairs = [("Signature", signature_line(inp.signer)),
             ("Public key", inp.signer["public_key"]), ("Key note", inp.signer.get("note", "configured key")),
             ("Previous run", "none: first sealed run in this evidence folder" if prev is None else
              f"{prev['run_id']}, manifest sha256 {prev['manifest_sha256']}"),
             ("Check", "akko-dr verify <this folder> names any altered, missing or extra file"),
             *((f"File {name}", what) for name, what in inp.outputs.items()),
             *(("Note", n) for n in inp.notes)]
    return "<h2>Integrity and evidence files</h2>" + tables.rows(pairs)


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
            f"<h2>Tool and server versions</h2>{tables.rows([('Host', run.host), *versions])}")


def execution_log(run: RunRecord) -> str:
    parts = ["<h2>Execution log</h2><p>Step by step; the full log is report.html, the machine-readable "
             "forms results.json, junit.xml and cucumber.json.</p>"]
    for rec in run.scenarios:
        rows = [[escape(f"{s.keyword} {s.text}"), escape(s.status), f"{s.duration_s:.3f}s", escape(s.error)]
                for s in rec.steps]
        parts.append(f"<h3>{escape(rec.feature)} — {escape(rec.name)} ({escape(rec.status)})</h3>"
                     + tables.table(["Step", "Status", "Duration", "Error"], rows))
    return "".join(parts)


def sign_off() -> str:
    rows = [[escape(role), BLANK, BLANK, BLANK] for role in ("Test owner", "Independent reviewer",
                                                           "Compliance officer")]
    return ("<h2>Sign-off</h2>" + tables.table(["Role", "Name", "Date", "Signature"], rows)
            + "<p>Digital countersignature over the same manifest: <code>akko-dr countersign &lt;run-dir&gt; "
              "--key KEY --reviewer NAME</code>.</p>")


def render(inp: AuditInputs) -> str:
    """The whole report: first page, then objectives, detail, checklist, deficiencies, history, the rest."""
    run = inp.run
    detail = "".join(drill_detail(run, r, inp.retention) for r in run.scenarios if history.judged(r))
    body = [first_page(inp), "<div class='page'>", objectives(run), "<h2>Drill detail</h2>",
            detail or "<p>No drill measured figures in this run.</p>", record_lines(run),
            checklist_section(inp.checklist), deficiencies.deficiencies(run, inp.checklist, inp.register),
            history_section(inp.history),
            integrity_section(inp), people_and_versions(run), sign_off(), execution_log(run), "</div>"]
    title = f"{REHEARSAL + ' · ' if run.rehearsal else ''}DR drill report {run.run_id}"
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{escape(title)}</title>"
            f"<style>{CSS}</style></head><body class='{'rehearsal' if run.rehearsal else 'live'}'>"
            f"{''.join(body)}</body></html>\n")
