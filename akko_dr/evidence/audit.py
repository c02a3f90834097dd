"""``audit-report.html``: the signed drill report the playbook annexes, first page readable in a minute."""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from typing import Any

from akko_dr.evidence import history, register
from akko_dr.evidence.html import REHEARSAL
from akko_dr.evidence.objectives import ChecklistItem
from akko_dr.evidence.record import GAPS, RunRecord, ScenarioRecord, status_word
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


def _verdict(status: str, error: str = "") -> str:
    cls = {"passed": "pass", "failed": "fail"}.get(status, "other")
    return f"<span class='{cls}'>{escape(status_word(status, error))}</span>"


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


def _rpo_cell(rec: ScenarioRecord) -> str:
    """The RPO judged against the class: the schedule's worst case when known, the measured one beside it."""
    if rec.rpo_worst_case_seconds is None:
        return _met(rec.rpo_seconds, rec.rpo_target_seconds)
    judged = _met(rec.rpo_worst_case_seconds, rec.rpo_target_seconds)
    return (f"worst case by schedule {judged}<br>restore path {escape(_fig(rec.rpo_seconds))} "
            f"({escape(rec.rpo_basis or 'basis not recorded')})")


def _judged_row(rec: ScenarioRecord) -> list[str]:
    drill = history.drill_of(rec)
    return [escape(drill), escape(rec.name), escape(rec.target_class or "—"),
            _met(rec.rto_seconds, rec.rto_target_seconds), _rpo_cell(rec), _verdict(rec.status, rec.error)]


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
                     _verdict(status, emulated)])
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
    parts.append(_dora(run, rec))
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
        text = _verdict("failed") + f" — {counts['failed']} scenario(s) failed" + (f"; {escape(gaps)}"
                                                                                   if gaps else "")
    elif gaps:
        text = (f"<span class='other'>NOT PROVEN</span> — no failure, but not everything was proven: "
                f"{escape(gaps)}")
    elif run.rehearsal:
        text = (f"<span class='other'>REHEARSED</span> — every scenario passed on the {escape(run.target)} "
                "target; a rehearsal shows the procedure works, not that production is protected")
    else:
        text = _verdict("passed") + " — every scenario passed"
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
    table = _table(["Drill", "Scenario", "Class", "RTO measured / target", "RPO judged / target",
                    "Result"], rows, "verdict")
    basis = "".join(_basis(run, r) for r in run.scenarios if _has_basis(r))
    return (overall(run) + _not_run(run) + table + _reasons(run)
            + (f"<p>Basis:</p><ul>{basis}</ul>" if basis else ""))


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
    banner = f"<p class='banner'>{escape(REHEARSAL)}</p>" if run.rehearsal else ""
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
            + _table(["Drill", "Title", "Objective", "Scope", "Success criteria"], rows))


def _immutability(run: RunRecord, b: dict[str, Any], retention: dict[str, str]) -> str:
    said = b.get("object_lock") or b.get("immutability")
    if said:
        return str(said)
    store = "; ".join(e for e in run.emulated if e.startswith("object store"))
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


def _dora(run: RunRecord, rec: ScenarioRecord) -> str:
    refs = [run.dora_refs.get(t, t) for t in rec.tags if t.startswith("dora-")]
    return "; ".join(refs) or "none tagged"


def _rpo_pairs(rec: ScenarioRecord) -> list[tuple[str, str]]:
    measured = f"{_fig(rec.rpo_seconds)}" + (f" ({rec.rpo_basis})" if rec.rpo_basis else "")
    if rec.rpo_worst_case_seconds is None:
        return [("RPO measured / target", f"{measured} / {_fig(rec.rpo_target_seconds)}")]
    return [("RPO worst case by schedule / target (judged)",
             f"{_fig(rec.rpo_worst_case_seconds)} / {_fig(rec.rpo_target_seconds)}"),
            ("RPO measured on the restore path", measured)]


def drill_detail(run: RunRecord, rec: ScenarioRecord, retention: dict[str, str]) -> str:
    d = rec.details
    where = f" — restored into {d['restore_target']}" if d.get("restore_target") else ""
    pairs = [("Id", rec.id), ("Feature", rec.feature), ("Scenario", rec.name),
             ("Result", status_word(rec.status, rec.error)),
             ("Reason", rec.error or "—"), ("Database", str(d.get("database", "—"))),
             ("Class", rec.target_class or "—"),
             ("RTO measured / target", f"{_fig(rec.rto_seconds)} / {_fig(rec.rto_target_seconds)}"),
             *_rpo_pairs(rec), *_backup(run, rec, retention),
             ("Integrity checks", str(d.get("integrity check", "not recorded"))),
             ("Segregated restore (DORA Art. 12(3))", segregation(d) + where),
             ("Kept for sign-off", str(d.get("kept_for_signoff") or "—")),
             ("DORA references", _dora(run, rec)), ("Verdicts", "; ".join(rec.verdicts) or "—")]
    return f"<h3>{escape(history.drill_of(rec))}: {escape(rec.name)}</h3>" + _rows(pairs)


def _record_number(run: RunRecord, drill: str) -> tuple[str, str]:
    """What goes in the blank, and a note beside it: a rehearsal never fills the blank."""
    measured = [r for r in run.scenarios if drill in r.tags and r.rto_seconds is not None]
    figures = "; ".join(f"{_fig(r.rto_seconds)} (RPO {_fig(r.rpo_seconds)}, {r.status})" for r in measured)
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
    rows = [[("☑ " if c.status == "covered" else "☐ ") + escape(c.text), _verdict(c.status) if c.status in
             ("failed",) else escape(c.status.replace("-", " ")), escape(c.detail)] for c in items]
    return "<h2>Quarterly drill checklist</h2>" + _table(["Item", "This run", "Detail"], rows)


def _label(rec: ScenarioRecord) -> str:
    return f"{history.drill_of(rec) or rec.feature}: {rec.name}"


def findings_table(run: RunRecord, items: list[ChecklistItem], owners: dict[str, dict[str, str]]) -> str:
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
    return _table(["Id", "Finding", "Reason", *register.FIELDS.values()], rows, "findings")


def gaps_table(run: RunRecord, items: list[ChecklistItem]) -> str:
    """What this run did not prove: not applicable, skipped, inconclusive, not run, open checklist items."""
    rows = [[escape(r.id), escape(_label(r)), escape(status_word(r.status, r.error).lower()),
             escape(r.error or "—")] for r in run.scenarios
            if r.status in GAPS and not (run.incomplete and r.status == "not run")]
    rows += [["—", escape(name), "not run", escape(interrupted_line(run))] for name in run.not_run]
    rows += [[escape(r.id), escape(f"{_label(r)} — {step}"), "not applicable", escape(str(why))]
             for r in run.scenarios for step, why in r.details.get("not applicable", {}).items()]
    rows += [["—", escape(c.text), escape(c.status.replace("-", " ")), escape(c.detail)]
             for c in items if c.status not in ("covered", "failed")]
    return _table(["Id", "Item", "Status", "Reason"], rows, "gaps")


def deficiencies(run: RunRecord, items: list[ChecklistItem],
                 owners: dict[str, dict[str, str]] | None = None) -> str:
    """Findings (something failed) kept apart from coverage gaps (something was not proven)."""
    return ("<h2>Deficiencies register</h2><h3>Findings</h3><p>Each failed scenario or item; severity, "
            "owner, due date, root cause and re-test come from the findings file (--findings-file), "
            f"\"{register.UNASSIGNED}\" where it names none.</p>" + findings_table(run, items, owners or {})
            + "<h3>Coverage gaps</h3><p>Not findings, and not passed: what this run did not prove.</p>"
            + gaps_table(run, items))


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
            checklist_section(inp.checklist), deficiencies(run, inp.checklist, inp.register),
            history_section(inp.history),
            integrity_section(inp), people_and_versions(run), sign_off(), execution_log(run), "</div>"]
    title = f"{REHEARSAL + ' · ' if run.rehearsal else ''}DR drill report {run.run_id}"
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{escape(title)}</title>"
            f"<style>{CSS}</style></head><body class='{'rehearsal' if run.rehearsal else 'live'}'>"
            f"{''.join(body)}</body></html>\n")
