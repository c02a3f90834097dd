"""Issue 16.12 and 16.9 on a live target (the Kubernetes API emulator, the sandbox's S3 and PostgreSQL):
the console keeps its one-line rule, and the value read from a Secret reaches no output."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

from test_console import _no_internals
from test_kube import _secret, _target_file, cluster, emulator_url  # noqa: F401  (fixtures)

from akko_dr.adapters.kube import KubeCluster
from akko_dr.sandbox import Sandbox

ROOT = Path(__file__).resolve().parents[1]
KUBECONFIG = """\
apiVersion: v1
kind: Config
clusters: [{{name: emu, cluster: {{server: "{url}"}}}}]
users: [{{name: emu, user: {{token: not-checked}}}}]
contexts: [{{name: emu, context: {{cluster: emu, user: emu}}}}]
current-context: emu
"""


def test_a_live_check_prints_one_line_per_scenario_and_no_secret(
        cluster: KubeCluster, sandbox: Sandbox, emulator_url: str, tmp_path: Path) -> None:  # noqa: F811
    value = f"s3-{secrets.token_hex(8)}"
    _secret(cluster, "akko-minio", **{"secret-key": value})
    target = _target_file(tmp_path, cluster, sandbox)
    (tmp_path / "kubeconfig").write_text(KUBECONFIG.format(url=emulator_url))
    kubeconfig = f"kube: {{kubeconfig: {tmp_path / 'kubeconfig'}, "
    target.write_text(target.read_text().replace("kube: {", kubeconfig))
    evidence = tmp_path / "ev"
    run = subprocess.run([sys.executable, "-m", "akko_dr.cli", "check", "--target", "live", "--target-file",
                          str(target), "--evidence-dir", str(evidence), "-k", "not scope"],
                         cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
                         env={**os.environ, "AKKO_TEST_S3_ACCESS": f"AKIA{secrets.token_hex(8).upper()}"})
    assert run.returncode == 1, run.stdout[-3000:] + run.stderr[-3000:]
    _no_internals(run)
    lines = [ln for ln in run.stdout.splitlines() if ln.startswith("[")]
    assert lines and all(" — " in ln for ln in lines if "FAIL" in ln), lines
    assert "Report:   " in run.stdout
    assert value not in run.stdout + run.stderr
    leaks = [p.name for p in evidence.rglob("*") if p.is_file() and value.encode() in p.read_bytes()]
    assert not leaks, f"the Secret's value is in {leaks}"
