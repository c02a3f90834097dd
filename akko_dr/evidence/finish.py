"""After the run: history, metrics, the audit report and its PDF, then the signed, chained manifest."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from akko_dr.evidence import audit, browser, history, integrity, metrics
from akko_dr.evidence.objectives import checklist
from akko_dr.evidence.record import RunRecord
from akko_dr.policy import Policy

PDF = "audit-report.pdf"


@dataclass
class Finishing:
    """What the closing step needs besides the run: the signer, the policy, whether to print a PDF."""

    signer: integrity.Signer
    policy: Policy
    pdf: bool = True
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _timed(fin: Finishing, name: str, t0: float) -> float:
    now = time.monotonic()
    fin.timings[name] = round(now - t0, 3)
    return now


def _outputs(run: RunRecord, pdf: bool) -> dict[str, str]:
    out = {"report.html": "execution log (pytest-html)", "results.json": "every scenario, machine-readable",
           "junit.xml": "JUnit XML", "cucumber.json": "Cucumber JSON",
           metrics.METRICS: "Prometheus text exposition", audit.AUDIT_REPORT: "this report"}
    if pdf:
        out[PDF] = "this report as PDF (headless Chromium)"
    return {k: v for k, v in out.items() if k in (audit.AUDIT_REPORT, PDF) or (run.run_dir / k).exists()}


def _pdf(run_dir: Path, fin: Finishing) -> None:
    try:
        browser.print_pdf(run_dir / audit.AUDIT_REPORT, run_dir / PDF)
    except (OSError, subprocess.SubprocessError) as err:
        fin.notes.append(f"PDF not produced: {type(err).__name__}")


def finish(run: RunRecord, fin: Finishing) -> Path:
    """Write everything after results.json and seal the run; returns the manifest path."""
    t0 = start = time.monotonic()
    rows = history.figures(run)
    past = history.append(run.run_dir.parent, rows)
    t0 = _timed(fin, "history", t0)
    _, pushed = metrics.write(run.run_dir, rows, past)
    fin.notes.append(f"metrics {pushed}")
    t0 = _timed(fin, "metrics", t0)
    make_pdf = fin.pdf and browser.chromium() is not None
    if fin.pdf and not make_pdf:
        fin.notes.append("PDF not produced: chromium is not installed")
    previous = integrity.previous_link(run.run_dir)
    inputs = audit.AuditInputs(run, checklist(run, fin.policy), past, fin.signer.describe(), previous,
                               _outputs(run, make_pdf), fin.notes)
    (run.run_dir / audit.AUDIT_REPORT).write_text(audit.render(inputs))
    t0 = _timed(fin, "audit report", t0)
    if make_pdf:
        _pdf(run.run_dir, fin)
        t0 = _timed(fin, "pdf", t0)
    fin.timings["total before sealing"] = round(time.monotonic() - start, 3)
    path = integrity.seal(run.run_dir, fin.signer, previous,
                          {"evidence_step_seconds": fin.timings, "notes": fin.notes})
    _timed(fin, "seal", t0)
    fin.timings["total"] = round(time.monotonic() - start, 3)
    return path
