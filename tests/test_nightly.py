"""The nightly restore test on the real sandbox, a second real PostgreSQL server, and a real Pushgateway."""

from __future__ import annotations

import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from akko_dr import nightly
from akko_dr.errors import DrillError
from akko_dr.evidence import metrics
from akko_dr.measure import utcnow, wait_for
from akko_dr.policy import load_policy
from akko_dr.ports import CANARY_TABLE
from akko_dr.sandbox import faults
from akko_dr.targets import Target

PUSHGATEWAY = Path("/usr/bin/prometheus-pushgateway")
READY_DEADLINE = 20.0  # seconds for the Pushgateway to answer /-/ready
STOP_DEADLINE = 10.0
ARCHIVE_DEADLINE = 60.0  # seconds for a completed WAL segment to reach the archive
Samples = dict[tuple[str, str, str], float]  # (metric, job, database) -> value


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def pushgateway() -> Iterator[str]:
    """Debian's prometheus-pushgateway on 127.0.0.1, stopped after the module."""
    if not PUSHGATEWAY.exists():
        pytest.skip(f"{PUSHGATEWAY} not installed (apt-get install prometheus-pushgateway)")
    url = f"http://127.0.0.1:{_free_port()}"
    proc = subprocess.Popen([str(PUSHGATEWAY), f"--web.listen-address={url.removeprefix('http://')}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for("the Pushgateway to be ready", lambda: proc.poll() is None and _ready(url), READY_DEADLINE)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(STOP_DEADLINE)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def pushed(url: str) -> Samples:
    """What the Pushgateway serves now, keyed by metric, job and database."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {(s.name, s.labels.get("job", ""), s.labels.get("database", "")): s.value
            for family in text_string_to_metric_families(text) for s in family.samples
            if s.name.startswith("akko_dr_")}


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    """The sandbox with a second embedded PostgreSQL server as the segregated restore server."""
    with nightly.sandbox_nightly_target(load_policy()) as target:
        yield target


@pytest.fixture
def database(target: Target) -> str:
    return target.policy.drill("drill-1")["database"]


@pytest.fixture
def added_dumps_removed(target: Target) -> Iterator[None]:
    """Dumps a fault adds to the store are removed after the test."""
    bucket = target.policy.storage.backups_bucket
    before = {o.key for o in target.store.list(bucket)}
    yield
    for obj in target.store.list(bucket):
        if obj.key not in before:
            target.store.delete(bucket, obj.key)


def _store_state(target: Target) -> set[tuple[str, str, int, object]]:
    """Every object of the platform's buckets but the WAL archive's: the server's archive command keeps
    writing there whenever a segment is done (a running service, like the canary; never the nightly test)."""
    st = target.policy.storage
    wal = f"{target.wal_archive.location}/" if target.wal_archive else None  # s3://bucket/prefix/server/
    buckets = (st.backups_bucket, st.audit_bucket, st.replica_bucket, *st.hot_buckets)
    return {(o.bucket, o.key, o.size, o.last_modified) for b in buckets for o in target.store.list(b)
            if not (wal and f"s3://{o.bucket}/{o.key}".startswith(wal))}


def _source_state(target: Target, database: str) -> dict[str, object]:
    """The source database without the canary its consumer keeps appending to."""
    return {t: v for t, v in target.db.fingerprint(database).items() if t != CANARY_TABLE}


def _wal_segment_archived(target: Target) -> None:
    """A WAL segment completed now and archived, as the server does on its own (when WAL is archived)."""
    wal = target.wal_archive
    if wal is None:
        return
    before = len(wal.segments())
    target.db.execute("postgres", "SELECT pg_switch_wal()")  # the consumer's canary writes fill it
    wait_for("a WAL segment in the archive", lambda: len(wal.segments()) > before, ARCHIVE_DEADLINE)


def test_the_newest_dump_is_restored_on_the_segregated_server_and_nothing_else_is_written(
        target: Target, database: str) -> None:
    store, source = _store_state(target), _source_state(target, database)
    source_dbs, segregated_dbs = target.db.databases(), target.segregated_db.databases()
    result = nightly.restore_test(target, database)
    _wal_segment_archived(target)  # the archive command writes meanwhile, as it does every few minutes
    assert result.passed, result.line()
    assert "manifest fingerprint taken in the dump's snapshot: table rows" in result.reason
    assert 0 < result.rpo < 3600 and result.duration > 0, result.line()
    assert target.segregated_db.databases() == segregated_dbs, "the scratch database was left behind"
    assert target.db.databases() == source_dbs and _source_state(target, database) == source
    assert _store_state(target) == store


def test_its_figures_land_in_the_pushgateway(target: Target, database: str, pushgateway: str) -> None:
    result = nightly.restore_test(target, database)
    assert nightly.push([result], pushgateway) == (True, "pushed to the configured Pushgateway")
    got = pushed(pushgateway)
    assert got[("akko_dr_nightly_restore_success", nightly.JOB, database)] == 1
    assert got[("akko_dr_restore_duration_seconds", nightly.JOB, database)] == pytest.approx(result.duration)
    assert got[("akko_dr_rpo_seconds", nightly.JOB, database)] == pytest.approx(result.rpo)


def test_the_command_restores_on_the_sandbox_and_pushes(pushgateway: str, capsys) -> None:
    assert nightly.main(["--target", "sandbox", "--pushgateway", pushgateway]) == 0
    out = capsys.readouterr().out
    database = load_policy().drill("drill-1")["database"]
    assert f"PASSED  {database}: s3://" in out and "pushed to the configured Pushgateway" in out
    got = pushed(pushgateway)
    assert got[("akko_dr_nightly_restore_success", nightly.JOB, database)] == 1
    assert 0 < got[("akko_dr_rpo_seconds", nightly.JOB, database)] < 3600


def test_the_drills_and_the_nightly_figures_live_side_by_side_in_one_pushgateway(
        target: Target, database: str, pushgateway: str, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(metrics.PUSHGATEWAY_ENV, pushgateway)
    row = {"run_id": "r1", "finished_at": "2026-11-27T10:00:00+00:00", "target": "sandbox",
           "drill": "drill-1", "database": database, "status": "passed", "rto_seconds": 12.0,
           "rto_target_seconds": 3600.0, "rpo_seconds": 3.0, "rpo_target_seconds": 3600.0}
    assert metrics.write(tmp_path, [row], [row])[1] == "pushed to the configured Pushgateway"
    assert nightly.push([nightly.restore_test(target, database)], pushgateway)[0]
    got = pushed(pushgateway)
    assert got[("akko_dr_restore_duration_seconds", metrics.JOB, database)] == 12.0
    assert ("akko_dr_restore_duration_seconds", nightly.JOB, database) in got


def test_a_corrupt_dump_is_a_finding_pushed_as_a_failure(target: Target, database: str, pushgateway: str,
                                                         added_dumps_removed: None) -> None:
    faults.corrupt_backup(target, database)
    result = nightly.restore_test(target, database)
    assert result.status == "finding" and "is corrupt" in result.reason, result.line()
    assert nightly.push([result], pushgateway)[0]
    assert pushed(pushgateway)[("akko_dr_nightly_restore_success", nightly.JOB, database)] == 0
    assert nightly.exit_code([result], pushed=True) == 1


def test_a_dump_of_another_database_without_manifest_does_not_match_the_source(
        target: Target, database: str, added_dumps_removed: None) -> None:
    segregated_dbs = target.segregated_db.databases()
    faults.wrong_database_backup(target, database)
    result = nightly.restore_test(target, database)
    assert result.status == "finding", result.line()
    assert f"does not match {database}: " in result.reason and "dashboards missing" in result.reason
    assert target.segregated_db.databases() == segregated_dbs, "the scratch database was left behind"


def test_a_stale_dump_is_a_finding_though_it_restores(target: Target, database: str) -> None:
    job = target.policy.database(database).job
    later = utcnow() + job.interval() + target.policy.schedule_tolerance + timedelta(hours=1)
    result = nightly.restore_test(target, database, now=later)
    assert result.status == "finding" and result.reason.startswith("stale:"), result.line()
    assert result.duration is not None and result.rpo > job.interval().total_seconds()


def test_a_missing_dump_is_a_finding_with_no_figures_but_the_failure(target: Target, database: str,
                                                                      pushgateway: str) -> None:
    policy = target.policy
    elsewhere = replace(policy, storage=replace(policy.storage, dump_prefix="nothing-here/"))
    result = nightly.restore_test(replace(target, policy=elsewhere), database)
    assert result.status == "finding" and result.reason.startswith("missing: no dump"), result.line()
    assert nightly.push([result], pushgateway)[0]
    got = pushed(pushgateway)
    assert got[("akko_dr_nightly_restore_success", nightly.JOB, database)] == 0
    assert ("akko_dr_rpo_seconds", nightly.JOB, database) not in got


def test_without_a_segregated_server_the_test_cannot_run(target: Target, database: str) -> None:
    alone = replace(target, segregated_db=None, gaps={"segregated_db": "no second server named"})
    result = nightly.restore_test(alone, database)
    assert (result.status, result.reason) == ("error", "not applicable on sandbox: no second server named")
    assert nightly.exit_code([result], pushed=True) == 2


def test_a_failed_push_is_a_harness_error_and_names_no_address() -> None:
    result = nightly.NightlyResult("db", "sandbox", "passed", "ok", duration=1.0, rpo=2.0)
    ok, how = nightly.push([result], f"http://user:s3cret@127.0.0.1:{_free_port()}")
    assert not ok and how.startswith("push to the Pushgateway failed") and "s3cret" not in how
    assert nightly.exit_code([result], pushed=ok) == 2


def _socket_dir(db: object) -> str:
    """The Unix socket folder of a sandbox server (its DSN's host parameter)."""
    return parse_qs(urlsplit(db.dsn("postgres")).query)["host"][0]


def _live_file(tmp_path: Path, target: Target, segregated: str | dict) -> Path:
    """A live target file naming the sandbox's real parts, and a kubeconfig whose server never answers."""
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "nowhere",
        "clusters": [{"name": "nowhere", "cluster": {"server": f"https://127.0.0.1:{_free_port()}"}}],
        "users": [{"name": "nobody", "user": {"token": "unused"}}],
        "contexts": [{"name": "nowhere", "context": {"cluster": "nowhere", "user": "nobody"}}]}))
    path = tmp_path / "target.yaml"
    path.write_text(yaml.safe_dump({
        "kube": {"context": "nowhere", "namespace": "akko", "kubeconfig": str(kubeconfig)},
        "s3": {"endpoint": target.store.endpoint, "access_key": {"env": "AKKO_S3_ACCESS_KEY"},
               "secret_key": {"env": "AKKO_S3_SECRET_KEY"}},
        "postgres": {"host": _socket_dir(target.db), "user": "postgres"},
        "segregated_postgres": segregated if isinstance(segregated, dict) else {"host": segregated},
        "nightly": {"databases": [target.policy.drill("drill-1")["database"]]}}))
    return path


def test_the_live_wiring_restores_with_credentials_from_the_environment_and_no_kubernetes_call(
        target: Target, database: str, pushgateway: str, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    key, secret = target.platform.s3_keys()  # the sandbox store's own keys (real MinIO checks them)
    monkeypatch.setenv("AKKO_S3_ACCESS_KEY", key)
    monkeypatch.setenv("AKKO_S3_SECRET_KEY", secret)
    target_file = _live_file(tmp_path, target, _socket_dir(target.segregated_db))
    segregated_dbs = target.segregated_db.databases()
    assert nightly.main(["--target", "live", "--target-file", str(target_file),
                         "--pushgateway", pushgateway]) == 0, capsys.readouterr()
    out = capsys.readouterr().out
    assert "nightly restore test on live nowhere/akko" in out and f"PASSED  {database}: s3://" in out
    assert pushed(pushgateway)[("akko_dr_nightly_restore_success", nightly.JOB, database)] == 1
    assert target.segregated_db.databases() == segregated_dbs


def test_the_live_wiring_can_restore_on_a_server_of_its_own_in_its_pod(
        target: Target, database: str, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    key, secret = target.platform.s3_keys()  # the sandbox store's own keys (real MinIO checks them)
    monkeypatch.setenv("AKKO_S3_ACCESS_KEY", key)
    monkeypatch.setenv("AKKO_S3_SECRET_KEY", secret)
    target_file = _live_file(tmp_path, target, {"embedded": True})
    source_dbs = target.db.databases()
    assert nightly.main(["--target", "live", "--target-file", str(target_file)]) == 0, capsys.readouterr()
    assert f"PASSED  {database}: s3://" in capsys.readouterr().out
    assert target.db.databases() == source_dbs


def test_a_restore_server_that_is_the_source_is_refused(target: Target, tmp_path: Path, capsys) -> None:
    target_file = _live_file(tmp_path, target, segregated=_socket_dir(target.db))
    assert nightly.main(["--target", "live", "--target-file", str(target_file)]) == 2
    err = capsys.readouterr().err.strip()
    assert "is the source server; a segregated restore needs another one" in err
    assert len(err.splitlines()) == 1


def test_a_password_written_in_the_target_file_is_refused_and_not_echoed(target: Target, tmp_path: Path,
                                                                         capsys) -> None:
    target_file = _live_file(tmp_path, target, "/elsewhere")
    raw = yaml.safe_load(target_file.read_text())
    raw["segregated_postgres"]["password"] = "hunter2-literal"
    target_file.write_text(yaml.safe_dump(raw))
    assert nightly.main(["--target", "live", "--target-file", str(target_file)]) == 2
    err = capsys.readouterr().err
    assert "credentials never go in the target file" in err and "hunter2-literal" not in err


def test_the_read_only_store_refuses_every_write(target: Target, tmp_path: Path) -> None:
    view = nightly.ReadOnlyStore(target.store)
    bucket = target.policy.storage.backups_bucket
    assert view.list(bucket) == target.store.list(bucket)
    for write in (lambda: view.put_bytes(bucket, "x", b"x"), lambda: view.delete(bucket, "x"),
                  lambda: view.put(bucket, "x", tmp_path)):
        with pytest.raises(DrillError, match="writes nothing to the object store"):
            write()
