"""After the run: history, metrics, the audit report and its PDF, then the signed, chained manifest."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from akko_dr.errors import PolicyError
from akko_dr.evidence import audit, browser, exports, history, integrity, metrics, redact
from akko_dr.evidence.objectives import checklist
from akko_dr.evidence.record import RunRecord, one_line
from akko_dr.policy import Policy, format_duration

PDF = "audit-report.pdf"
T = TypeVar("T")


@dataclass
class Finishing:
    """What the closing step needs besides the run: the signer, the policy, whether to print a PDF."""

    signer: integrity.Signer
    policy: Policy | None
    pdf: bool = True
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    secrets: dict[str, str] = field(default_factory=dict)  # name -> value, never written
    register: dict[str, dict[str, str]] = field(default_factory=dict)  # id -> owner fields (findings file)
    signed: dict[str, Any] = field(default_factory=dict)  # policy, playbook, harness, participants


def _outputs(run: RunRecord, pdf: bool) -> dict[str, str]:
    out = {"report.html": "execution log (pytest-html)", "results.json": "every scenario, machine-readable",
           "junit.xml": "JUnit XML", "cucumber.json": "Cucumber JSON",
           metrics.METRICS: "Prometheus text exposition", audit.AUDIT_REPORT: "this report"}
    if pdf:
        out[PDF] = "this report as PDF (headless Chromium)"
    return {k: v for k, v in out.items() if k in (audit.AUDIT_REPORT, PDF) or (run.run_dir / k).exists()}


def retention(policy: Policy) -> dict[str, str]:
    """Each backup job's retention as the policy states it, and whether it is WORM."""
    out = {}
    for job in policy.jobs.values():
        kept = [f"{where} {format_duration(d)}" for where, d in (("local", job.retention.local),
                                                                 ("cold", job.retention.cold)) if d]
        out[job.name] = f"{', '.join(kept) or 'no retention'}; WORM: {'yes' if job.retention.worm else 'no'}"
    return out


def _step(fin: Finishing, name: str, action: Callable[[], T]) -> T | None:
    """Run one part of the closing step, timed; a failing part is named, and the run is still sealed."""
    t0 = time.monotonic()
    try:
        return action()
    except Exception as err:  # one broken part must not leave the run unsealed
        fin.failures.append(f"{name} failed: {one_line(err)}")
        return None
    finally:
        fin.timings[name] = round(time.monotonic() - t0, 3)


def _report(run: RunRecord, fin: Finishing, past: list[dict[str, Any]], previous: dict[str, str] | None,
            make_pdf: bool) -> Path:
    if fin.policy is None:
        raise PolicyError("the policy could not be loaded: no checklist or retention to report")
    inputs = audit.AuditInputs(run, checklist(run, fin.policy), past, fin.signer.describe(), previous,
                               outputs=_outputs(run, make_pdf), notes=fin.notes,
                               retention=retention(fin.policy), register=fin.register)
    path = run.run_dir / audit.AUDIT_REPORT
    path.write_text(audit.render(inputs))
    return path


def _scan(run_dir: Path, secrets: dict[str, str]) -> list[str]:
    """Redact secrets from the run's text files and the history store, before the PDF and the seal."""
    files = [run_dir / f for f in integrity.run_files(run_dir)] + [run_dir.parent / history.HISTORY]
    return redact.scrub((f for f in files if f.is_file()), {**secrets, **redact.RUNTIME})


def finish(run: RunRecord, fin: Finishing) -> Path:
    """Write everything after results.json and seal the run; returns the manifest path."""
    start = time.monotonic()
    rows = history.figures(run)
    past = _step(fin, "history", lambda: history.append(run.run_dir.parent, rows)) or rows
    pushed = _step(fin, "metrics", lambda: metrics.write(run.run_dir, rows, past))
    if pushed:
        fin.notes.append(f"metrics {pushed[1]}")
    make_pdf = fin.pdf and browser.chromium() is not None
    if fin.pdf and not make_pdf:
        fin.notes.append("PDF not produced: chromium is not installed")
    _step(fin, "cucumber", lambda: exports.fix_cucumber(run))
    previous = integrity.previous_link(run.run_dir)
    report = _step(fin, "audit report", lambda: _report(run, fin, past, previous, make_pdf))
    fin.failures += _step(fin, "secrets scan", lambda: _scan(run.run_dir, fin.secrets)) or []
    if make_pdf and report:
        _step(fin, "pdf", lambda: browser.print_pdf(report, run.run_dir / PDF))
    fin.timings["total before sealing"] = round(time.monotonic() - start, 3)
    t0 = time.monotonic()
    extra = {"evidence_step_seconds": fin.timings, "notes": fin.notes, "failures": fin.failures,
             "incomplete": run.interrupted or None, **fin.signed}
    path = integrity.seal(run.run_dir, fin.signer, previous, extra)
    fin.timings["seal"] = round(time.monotonic() - t0, 3)
    fin.timings["total"] = round(time.monotonic() - start, 3)
    return path
