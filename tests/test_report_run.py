"""A real Drill 1 run on the sandbox: sealed evidence that verifies, the report in a browser, no secrets."""

from __future__ import annotations

import json
import os
import re
import secrets
import struct
import subprocess
import sys
from dataclasses import dataclass
from html import escape
from pathlib import Path

import pytest

from akko_dr.cli import main
from akko_dr.evidence import audit, browser, finish, integrity
from akko_dr.policy import format_duration, load_policy

ROOT = Path(__file__).resolve().parents[1]
CANARY_ENV = ("AWS_SECRET_ACCESS_KEY", "PGPASSWORD", "AKKO_DR_S3_SECRET_KEY", "KUBECONFIG_TOKEN")
NEEDS_CHROMIUM = pytest.mark.skipif(browser.chromium() is None,
                                    reason="chromium is not installed (apt-get install -y chromium)")


@dataclass
class DrillRun:
    run_dir: Path
    output: str
    canaries: list[str]
    key: Path
    public: Path


def _canaries(tmp: Path) -> tuple[dict[str, str], Path, list[str]]:
    env = {name: f"canary-{name.lower()}-{secrets.token_hex(8)}" for name in CANARY_ENV}
    password = f"canary-target-password-{secrets.token_hex(8)}"
    target_file = tmp / "target.yaml"
    target_file.write_text(f"kube_context: akko-prod\nnamespace: akko\npostgres:\n  password: {password}\n")
    return env, target_file, [*env.values(), password]


@pytest.fixture(scope="module")
def drill_run(tmp_path_factory: pytest.TempPathFactory) -> DrillRun:
    """Drill 1 end to end in a subprocess, with canary secrets planted and a configured signing key."""
    tmp = tmp_path_factory.mktemp("drill-run")
    key = tmp / "keys" / "owner.pem"
    key.parent.mkdir()
    assert main(["keygen", str(key), "--evidence-dir", str(tmp / "ev")]) == 0
    env, target_file, canaries = _canaries(tmp)
    cmd = [sys.executable, "-m", "pytest", "steps/test_drill_1_restore_database.py", "-p", "no:cacheprovider",
           "--evidence-dir", str(tmp / "ev"), "--signing-key", str(key), "--target-file", str(target_file)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, **env})
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    return DrillRun((tmp / "ev" / "latest").resolve(), output, canaries, key,
                    key.with_name(key.name + ".pub"))


def test_the_run_is_sealed_by_the_configured_key_and_verifies(drill_run: DrillRun, capsys) -> None:
    assert main(["verify", str(drill_run.run_dir), "--public-key", str(drill_run.public)]) == 0
    out = capsys.readouterr().out
    assert "signature verified against the trusted key" in out and "(configured)" in out


def test_the_audit_report_carries_the_measured_figures(drill_run: DrillRun) -> None:
    results = json.loads((drill_run.run_dir / "results.json").read_text())
    [measured] = [s for s in results["scenarios"] if s["rto_seconds"] is not None]
    report = (drill_run.run_dir / audit.AUDIT_REPORT).read_text()
    first = report.split("<div class='page'>")[0]
    assert f"{format_duration(measured['rto_seconds'])} / {format_duration(measured['rto_target_seconds'])}" \
        in first
    assert measured["backup"]["sha256"] in report
    job_retention = finish.retention(load_policy())[measured["backup"]["job"]]
    assert f"Immutability</th><td>policy: {job_retention}; object store: " in report
    assert escape(audit.segregation(measured["details"])) in first  # as the drill recorded it


@NEEDS_CHROMIUM
def test_the_report_is_printed_to_pdf(drill_run: DrillRun) -> None:
    pdf = drill_run.run_dir / finish.PDF
    assert pdf.read_bytes()[:5] == b"%PDF-"
    pages = len(re.findall(rb"/Type\s*/Page\b", pdf.read_bytes()))
    assert pages >= 2, f"{pages} page(s): the first page should stand alone, the detail follow"
    manifest = json.loads((drill_run.run_dir / integrity.MANIFEST).read_text())
    assert manifest["files"][finish.PDF]["sha256"] == integrity.sha256_file(pdf)


def test_no_secret_appears_in_any_file_or_log_of_the_run(drill_run: DrillRun) -> None:
    """Canaries from the environment and the target file, and the signing key, are nowhere in the evidence."""
    pem = drill_run.key.read_text()
    key_body = "".join(line for line in pem.splitlines() if "PRIVATE KEY" not in line)
    raw = integrity.load_private_key(drill_run.key).private_bytes_raw()
    needles = {c: c.encode() for c in drill_run.canaries}
    needles |= {"signing key (PEM)": key_body.encode(), "signing key (raw)": raw,
                "signing key (hex)": raw.hex().encode()}
    files = [p for p in drill_run.run_dir.parent.rglob("*") if p.is_file()]
    assert len(files) >= 8
    found = [f"{name} in {p.name}" for p in files for name, needle in needles.items()
             if needle in p.read_bytes()]
    found += [f"{name} in the run's output" for name, needle in needles.items()
              if needle in drill_run.output.encode()]
    assert not found, found
    failures = json.loads((drill_run.run_dir / integrity.MANIFEST).read_text())["failures"]
    assert failures == [], f"the evidence step had to redact or failed: {failures}"


def _png_size(png: Path) -> tuple[int, int]:
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{png} is not a PNG"
    return struct.unpack(">II", data[16:24])


@NEEDS_CHROMIUM
def test_the_first_page_shows_the_verdict_table_in_chromium(drill_run: DrillRun) -> None:
    """Laid out as one printed A4 page, the verdict table ends within it; keep a screenshot of the page."""
    artefacts = drill_run.run_dir.parent / f"{drill_run.run_dir.name}.browser-test"
    artefacts.mkdir(exist_ok=True)
    probe = artefacts / "measure.html"
    probe.write_text((drill_run.run_dir / audit.AUDIT_REPORT).read_text().replace(
        "</body>", "<script>const t = document.getElementById('verdict');"
                   "document.body.dataset.verdictBottom = t ? t.getBoundingClientRect().bottom : -1;"
                   "document.body.dataset.verdictText = t ? t.innerText : '';"
                   "const green = [...document.querySelectorAll('body *')].filter(e => "
                   "getComputedStyle(e).color === 'rgb(0, 102, 0)' && e.getBoundingClientRect().top < "
                   f"{browser.A4_PRINT_AREA[1]});"
                   "document.body.dataset.green = green.map(e => e.innerText).join('|');"
                   "document.body.dataset.banner = document.querySelector('.banner').innerText;"
                   "</script></body>"))
    dom = browser.dump_dom(probe, browser.A4_PRINT_AREA)
    bottom = float(dom.split('data-verdict-bottom="')[1].split('"')[0])
    assert 0 < bottom <= browser.A4_PRINT_AREA[1], f"verdict table ends at {bottom}px, past the first page"
    assert "PASS" in dom.split('data-verdict-text="')[1].split('"')[0]
    assert dom.split('data-green="')[1].split('"')[0] == "", "a rehearsal's first page shows green"
    assert "SANDBOX REHEARSAL" in dom.split('data-banner="')[1].split('"')[0]
    assert "REHEARSED</span> — every scenario passed on the sandbox target" in dom
    shot = browser.screenshot(drill_run.run_dir / audit.AUDIT_REPORT, artefacts / "first-page.png")
    assert _png_size(shot) == browser.A4_96DPI
    assert shot.stat().st_size > 20_000, "the screenshot is nearly blank"
