"""benchmarks/restore_speed.py runs end to end on a small database and prints its table and JSON line.

Only that it runs and reports every figure is checked: speed is judged by the benchmark itself, on the
1 GB database, never by a timed unit test."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIGURES = ("playbook_s", "floor_s", "drill_1_plain", "drill_1_custom", "backup_job_s", "backup_ref_s",
           "peak_rss_mb", "drill_2_sequential_s", "drill_2_sequential_one_core_s", "drill_2_parallel_s",
           "object_store", "targets")


def test_the_restore_speed_benchmark_runs_on_a_small_database() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "restore_speed.py"), "--size", "20",
                           "--rounds", "1"],
                          capture_output=True, text=True, env=env, timeout=900)
    assert done.returncode == 0, f"expected exit 0, got {done.returncode}: {done.stderr[-2000:]}"
    assert "| playbook Drill 1 (download, DROP/CREATE, `zcat \\| psql`) |" in done.stdout
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    missing = [name for name in FIGURES if name not in figures]
    assert not missing, f"figures missing from the JSON line: {missing}"
    assert figures["generated"]["logs"] > 0 and figures["drill_1_plain"]["rto"] > 0
