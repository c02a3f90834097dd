"""A run stopped mid-way (Ctrl-C, or SIGTERM at a CronJob pod's deadline) is sealed as INCOMPLETE."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from akko_dr.cli import main
from akko_dr.evidence import audit

ROOT = Path(__file__).resolve().parents[1]
FIRST_SCENARIO_DEADLINE_S = 300  # sandbox start and one Drill 1 scenario on a slow machine
SEALED_DEADLINE_S = 180  # teardown of the sandbox, the report and the seal after the signal


def _lines(proc: subprocess.Popen[str]) -> queue.Queue[str]:
    out: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [out.put(line) for line in proc.stdout], daemon=True).start()
    return out


def _wait_for(lines: queue.Queue[str], prefix: str, deadline_s: float) -> list[str]:
    seen, end = [], time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        seen.append(line)
        if line.startswith(prefix):
            return seen
    raise AssertionError(f"no line starting {prefix!r} within {deadline_s}s: {''.join(seen)[-2000:]}")


def _interruptible() -> None:
    """Ctrl-C's default in the run, as at a terminal: a suite started in the background (``cmd &``)
    passes SIGINT on ignored, and Python then installs no KeyboardInterrupt for it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_mid_run_seals_an_incomplete_run_that_verifies(tmp_path: Path, sig: signal.Signals,
                                                                  capsys) -> None:
    evidence = tmp_path / "ev"
    proc = subprocess.Popen([sys.executable, "-m", "akko_dr.cli", "drill", "-k", "drill_1",
                             "--evidence-dir", str(evidence)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, preexec_fn=_interruptible)
    try:
        lines = _lines(proc)
        first_line = _wait_for(lines, "[  1/", FIRST_SCENARIO_DEADLINE_S)[-1]  # the second is under way now
        total = int(first_line.split("/", 1)[1].split("]", 1)[0])
        proc.send_signal(sig)
        code = proc.wait(timeout=SEALED_DEADLINE_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = "".join(lines.queue)
    assert code == 2, output[-3000:]
    run_dir = (evidence / "latest").resolve()
    results = json.loads((run_dir / "results.json").read_text())
    assert results["incomplete"] is True and results["interrupted"]["signal"] == sig.name
    interrupted_in, not_run = results["interrupted"]["in"], results["not_run"]
    ran = [s for s in results["scenarios"] if s["status"] != "not run"]
    assert interrupted_in and len(ran) + len(not_run) == total and len(not_run) >= total - 2, (ran, not_run)
    assert results["summary"]["not run"] == len(not_run)
    first = (run_dir / audit.AUDIT_REPORT).read_text().split("<div class='page'>")[0]
    assert f"INCOMPLETE (interrupted at {results['interrupted']['at']} in {interrupted_in}" in first
    for name in results["not_run"]:
        assert name.replace("'", "&#x27;") in first, name
    assert "Traceback" not in output
    assert main(["verify", str(run_dir)]) == 0, capsys.readouterr().out
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["incomplete"]["signal"] == sig.name
