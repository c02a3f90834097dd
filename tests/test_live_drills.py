"""Issues 9 and 16: the drills on a live target, against the Kubernetes API emulator, the sandbox's real
PostgreSQL and its S3 endpoint (behind a recording proxy).

Without ``--allow-destructive`` every drill prints its plan and makes no mutating call: asserted from
the emulator's and the proxy's request logs and from the database itself. With the opt-in, Drill 1 runs
for real: a small stand-in for the Deployment controller reports rollouts and starts or stops the
sandbox's service process to match (the bridge from pod to process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client

from akko_dr.drills.restore_database import RestoreDatabaseDrill
from akko_dr.policy import Policy
from akko_dr.ports import CANARY_TABLE
from akko_dr.sandbox import Sandbox
from akko_dr.targetfile import load_target_file, open_live
from akko_dr.targets import new_run_id
from tests.kube_emulator import ADAPTER_AGENT, Emulator, emulator, write_kubeconfig
from tests.kube_world import NS, RolloutController, deployment, process_follows
from tests.s3_recorder import S3Recorder

ROOT = Path(__file__).resolve().parents[1]
DRILLS = ("test_drill_1_restore_database.py", "test_drill_1_refuses_bad_backups.py",
          "test_drill_2_full_rebuild.py", "test_drill_3_ransomware.py")
RUN_DEADLINE = 300.0  # seconds the whole plan-only run may take here
READS = ("GET", "HEAD")


@dataclass
class Live:
    kube: Emulator
    s3: S3Recorder
    target_file: Path


def _target_file(tmp: Path, kube_url: str, s3_url: str, sandbox: Sandbox) -> Path:
    kubeconfig = write_kubeconfig(tmp / "kubeconfig", kube_url)
    pg_host = sandbox.db.dsn("postgres").split("host=")[-1]
    path = tmp / "target.yaml"
    path.write_text(f"""
kube: {{context: emu, namespace: {NS}, velero_namespace: velero, kubeconfig: {kubeconfig}}}
s3: {{endpoint: "{s3_url}", access_key: {{env: AKKO_TEST_S3_KEY}}, secret_key: {{env: AKKO_TEST_S3_SECRET}}}}
postgres: {{host: {pg_host}, user: postgres, database: postgres}}
scratch_platform:   # Drill 2's own platform: plan only without the opt-in, so never reached here
  kube: {{context: emu, namespace: akko-rehearsal, kubeconfig: {kubeconfig}}}
  s3: {{endpoint: "http://127.0.0.1:9", access_key: {{env: AKKO_TEST_S3_KEY}},
       secret_key: {{env: AKKO_TEST_S3_SECRET}}}}
  postgres: {{host: 127.0.0.1, port: 9, user: postgres}}
  rebuild_postgres: {{host: 127.0.0.1, port: 10, user: postgres}}
""")
    return path


def _content(sandbox: Sandbox, database: str) -> dict:
    """The database's tables but the canary, which its service keeps writing to."""
    return {t: v for t, v in sandbox.db.fingerprint(database).items() if t != CANARY_TABLE}


@pytest.fixture(scope="module")
def live(sandbox: Sandbox, policy: Policy, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with emulator() as kube, S3Recorder(sandbox.store.endpoint) as s3:
        setup = kube.client()
        for name in sorted({db.consumer for db in policy.databases.values()}):
            deployment(setup, name, replicas=1)
        path = _target_file(tmp_path_factory.mktemp("live"), kube.url, s3.endpoint, sandbox)
        yield Live(kube, s3, path)


def test_without_the_opt_in_the_drills_plan_and_write_nothing(live: Live, sandbox: Sandbox, policy: Policy,
                                                                tmp_path: Path) -> None:
    database = policy.drill("drill-1")["database"]
    before = (sorted(sandbox.db.databases()), _content(sandbox, database))
    kube_before, s3_before = len(live.kube.requests()), len(live.s3.requests)
    key, secret = sandbox.s3_keys()  # the sandbox store's own keys (real MinIO checks them)
    env = dict(os.environ, PYTHONPATH=str(ROOT), AKKO_TEST_S3_KEY=key, AKKO_TEST_S3_SECRET=secret)
    argv = [sys.executable, "-m", "pytest", *(str(ROOT / "steps" / f) for f in DRILLS), "--target", "live",
            "--target-file", str(live.target_file), "--evidence-dir", str(tmp_path), "-q",
            "-p", "no:cacheprovider"]
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=RUN_DEADLINE)
    results = json.loads((tmp_path / "latest" / "results.json").read_text())
    statuses = {s["name"]: s["status"] for s in results["scenarios"]}
    assert "failed" not in statuses.values(), (statuses, done.stdout[-3000:])
    gaps = [s for s in results["scenarios"] if s["status"] == "not-applicable"]
    assert len(gaps) >= 4 and all(s["error"].startswith("not ") for s in gaps), gaps
    planned = [s for s in results["scenarios"] if any(k.startswith("plan") for k in s["details"])]
    assert {"drill-1", "drill-2", "drill-3"} <= {t for s in planned for t in s["tags"]}, planned
    kube = live.kube.requests()[kube_before:]
    assert kube and all(method == "GET" for method, _ in kube), [r for r in kube if r[0] != "GET"]
    s3 = live.s3.requests[s3_before:]
    assert s3 and all(method in READS for method, _ in s3), [r for r in s3 if r[0] not in READS]
    assert (sorted(sandbox.db.databases()), _content(sandbox, database)) == before
    first_line = (tmp_path / "latest" / "audit-report.html").read_text().split("<body")[1].split("</p>")[0]
    assert f"LIVE: cluster {live.kube.url}, context emu, namespace {NS}" in first_line, first_line


@pytest.fixture
def bridge(live: Live, sandbox: Sandbox, policy: Policy) -> Iterator[None]:
    """The Deployment controller's part (rollouts reported ready) and the pod's: the sandbox's service
    process runs while its Deployment wants a replica, and stops when it wants none."""
    name = policy.database(policy.drill("drill-1")["database"]).consumer
    api = live.kube.client()
    rollout = RolloutController(api, "Deployment", name, lag=0.05)
    apps = client.AppsV1Api(api)

    def wanted() -> int:
        rollout()
        return apps.read_namespaced_deployment(name, NS).spec.replicas

    with process_follows(sandbox.supervisor, name, wanted, RUN_DEADLINE):
        yield


def test_with_the_opt_in_drill_1_runs_on_the_live_target(live: Live, bridge: None, sandbox: Sandbox,
                                                         policy: Policy,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    key, secret = sandbox.s3_keys()
    monkeypatch.setenv("AKKO_TEST_S3_KEY", key)
    monkeypatch.setenv("AKKO_TEST_S3_SECRET", secret)
    target = open_live(policy, load_target_file(live.target_file), allow_destructive=True,
                       api=live.kube.client(agent=ADAPTER_AGENT))
    database = policy.drill("drill-1")["database"]
    if sandbox.heal:
        sandbox.heal()
    drill = RestoreDatabaseDrill(target, database, new_run_id())
    drill.run("dashboards")
    assert drill.table_exists("dashboards") and drill.kept in sandbox.db.databases()
    assert drill.rto().met and drill.rpo_basis().startswith("newest scheduled backup")
    scaled = [c for c in live.kube.calls() if c.resource == "deployments/scale"]
    assert [c.verb for c in scaled] == ["patch", "patch"], scaled
    consumer = policy.database(database).consumer
    assert client.AppsV1Api(live.kube.client()).read_namespaced_deployment(consumer, NS).spec.replicas == 1
