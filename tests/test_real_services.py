"""The sandbox on real servers (issue 10): MinIO (platform and off-site replica) and VictoriaLogs, as
scripts/real-services.sh provisions them; and the emulator path when their binaries are absent."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from kubernetes.client import ApiClient

from akko_dr.adapters.s3 import S3ObjectStore
from akko_dr.checks.scope import ScopeContext, check_artefact
from akko_dr.checks.verification import write_probe
from akko_dr.drills import ransomware
from akko_dr.drills.ransomware import RansomwareDrill
from akko_dr.measure import utcnow
from akko_dr.policy import Policy
from akko_dr.ports import StoreRefused
from akko_dr.sandbox import Sandbox
from akko_dr.sandbox.job_history import SandboxSource
from akko_dr.sandbox.platform import RealServers
from akko_dr.sandbox.processes import binary
from akko_dr.targetfile import load_target_file, open_live
from akko_dr.targets import Target, new_run_id
from akko_dr.wiring import open_sandbox, real_servers
from akko_dr.worm import classify

IDENTITY = "akko-admin"


@pytest.fixture
def real(sandbox: Sandbox, target: Target) -> Sandbox:
    """The session's sandbox, when real MinIO serves it (the default once provisioned)."""
    if sandbox.s3_users is None:
        pytest.skip("MinIO not provisioned here (run scripts/real-services.sh): the sandbox runs moto")
    return sandbox


def _client(store: S3ObjectStore):
    return store.client if isinstance(store, S3ObjectStore) else store.home.client


def test_every_bucket_is_versioned_and_the_audit_bucket_is_locked_for_365_days(real: Sandbox, target: Target,
                                                                               policy: Policy) -> None:
    st = policy.storage
    home = {b: _client(real.store) for b in (st.backups_bucket, st.audit_bucket, *st.hot_buckets)}
    for bucket, client in {**home, st.replica_bucket: real.replica.client}.items():
        status = client.get_bucket_versioning(Bucket=bucket).get("Status")
        assert status == "Enabled", f"expected s3://{bucket} versioned; actual: {status}"
    lock = target.port("buckets").lock(st.audit_bucket)
    assert (lock.enabled, lock.mode, lock.retention) == (True, "COMPLIANCE", timedelta(days=365)), lock
    assert "MinIO" in target.components["object-store"] and "real server" in target.components["object-store"]
    assert not target.emulator_of("audit_trail") and not target.emulator_of("store")


@pytest.fixture
def attacker(real: Sandbox, target: Target) -> S3ObjectStore:
    key, secret = target.port("object_keys")(IDENTITY)
    return target.port("store_as")(key, secret)


@pytest.fixture
def locked(real: Sandbox, policy: Policy) -> list[tuple[str, str]]:
    """A record locked in the audit bucket under the probe prefix (the verification check's probe)."""
    probe = write_probe(policy, real.store, utcnow())
    return [(probe.key, probe.version_id)]


def test_the_identity_acts_with_its_own_access_key_and_policy(real: Sandbox, attacker: S3ObjectStore) -> None:
    key = attacker.client._request_signer._credentials.access_key
    assert key == IDENTITY, f"expected the identity's own access key; actual: {key}"
    assert real.s3_users.policies(IDENTITY) == [f"{IDENTITY}-policy"]
    assert real.s3_users.enabled(IDENTITY)


def test_the_object_lock_proof_passes_against_minio_as_the_compromised_identity(
        real: Sandbox, attacker: S3ObjectStore, locked: list, policy: Policy) -> None:
    bucket = policy.storage.audit_bucket
    before = {v: real.store.read_version(bucket, *v) for v in locked}
    deleted = ransomware.try_delete(attacker, bucket, locked)
    shortened = ransomware.try_shorten(attacker, bucket, locked, "COMPLIANCE", utcnow() + timedelta(hours=2))
    for tried in deleted + shortened:
        assert tried.outcome == "refused" and tried.answer == "InvalidRequest (HTTP 400)", tried.line()
    assert ransomware.worm_verdict(deleted + shortened) == ([], [])
    assert {v: real.store.read_version(bucket, *v) for v in locked} == before


def test_with_wrong_credentials_the_proof_is_inconclusive(real: Sandbox, target: Target, locked: list,
                                                          policy: Policy) -> None:
    wrong = target.port("store_as")(IDENTITY, "not-the-secret-" + secrets.token_hex(4))
    bucket = policy.storage.audit_bucket
    tried = ransomware.try_delete(wrong, bucket, locked) + ransomware.try_shorten(
        wrong, bucket, locked, "COMPLIANCE", utcnow() + timedelta(hours=2))
    for attempt in tried:
        assert attempt.outcome == "inconclusive" and "SignatureDoesNotMatch" in attempt.answer, attempt.line()
    accepted, unclear = ransomware.worm_verdict(tried)
    assert not accepted and len(unclear) == len(tried)


def test_a_disabled_or_policy_denied_identity_proves_nothing_about_the_lock(
        real: Sandbox, target: Target, locked: list, policy: Policy) -> None:
    """MinIO answers InvalidAccessKeyId for a disabled account and AccessDenied for its policy: neither is
    the lock (its lock refusal is InvalidRequest), so neither may pass the proof."""
    bucket, admin = policy.storage.audit_bucket, real.s3_users.server.admin()
    reader, secret = f"ro-{secrets.token_hex(3)}", secrets.token_urlsafe(16)
    admin.policy_add(f"{reader}-policy", policy={"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": [f"arn:aws:s3:::{bucket}"]}]})
    admin.user_add(reader, secret)
    admin.attach_policy([f"{reader}-policy"], user=reader)
    denied = ransomware.try_delete(target.port("store_as")(reader, secret), bucket, locked)[0]
    assert denied.outcome == "inconclusive" and denied.answer.startswith("AccessDenied"), denied.line()
    assert "policy" in denied.why, denied.why
    admin.user_disable(reader)
    disabled = ransomware.try_delete(target.port("store_as")(reader, secret), bucket, locked)[0]
    assert disabled.outcome == "inconclusive" and "InvalidAccessKeyId" in disabled.answer, disabled.line()


def test_a_rotated_key_is_refused_by_minio_and_a_disabled_user_stays_disabled(real: Sandbox,
                                                                              target: Target) -> None:
    users = real.s3_users
    old = target.port("object_keys")(IDENTITY)
    assert users.can_authenticate(*old) == (True, "accepted")
    users.rotate(IDENTITY)
    assert users.can_authenticate(*old) == (False, "SignatureDoesNotMatch (HTTP 403)")
    current = users.keys(IDENTITY)
    assert users.can_authenticate(*current) == (True, "accepted")
    users.disable(IDENTITY)
    users.rotate(IDENTITY)
    assert not users.enabled(IDENTITY)
    works, answer = users.can_authenticate(*users.keys(IDENTITY))
    assert not works and answer.startswith("InvalidAccessKeyId"), answer
    new = target.port("object_keys")(IDENTITY)  # the breach replayed: enabled again, a new secret
    assert new[1] != old[1] and users.enabled(IDENTITY)
    assert old[1] not in repr(users) and new[1] not in repr(target.components)


@pytest.fixture
def mirror_ctx(real: Sandbox, policy: Policy) -> Iterator[ScopeContext]:
    quick = replace(policy, probe_deadline=timedelta(seconds=3))
    mirror = next(name for name, job in policy.jobs.items() if job.kind == "mirror")
    yield ScopeContext(quick, SandboxSource(real), real.store, utcnow(), lambda: real.run_job(mirror),
                       probes_allowed=True)
    real.suspend_replication(False)


def test_the_replication_check_passes_against_the_replica_on_a_second_server(real: Sandbox, policy: Policy,
                                                                            mirror_ctx: ScopeContext) -> None:
    job = next(job for job in policy.jobs.values() if job.kind == "mirror")
    result = check_artefact(mirror_ctx, job)
    assert result.status == "passed", result.reason
    canary = result.measured["canary"]
    assert [o.key for o in real.replica.list(policy.storage.replica_bucket, canary)] == [canary]
    assert real.replica.endpoint != real.store.endpoint
    with pytest.raises(StoreRefused, match="NoSuchBucket"):  # the replica is not on the platform's server
        real.store.home.list(policy.storage.replica_bucket)


def test_the_replication_check_fails_naming_the_object_when_replication_is_stopped(
        real: Sandbox, policy: Policy, mirror_ctx: ScopeContext) -> None:
    job = next(job for job in policy.jobs.values() if job.kind == "mirror")
    real.suspend_replication()
    result = check_artefact(mirror_ctx, job)
    assert result.status == "failed", result.reason
    assert "did not reach s3://akko-replica" in result.reason and "dr-probe/replication-" in result.reason


def test_a_live_target_file_names_the_replica_on_a_second_server(
        real: Sandbox, policy: Policy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A live target whose replica bucket is on its own S3 server: the check finds its canary there."""
    for prefix, keys in (("AKKO_TEST_S3", real.s3_keys()), ("AKKO_TEST_REPLICA", real.replica_keys)):
        monkeypatch.setenv(f"{prefix}_KEY", keys[0])
        monkeypatch.setenv(f"{prefix}_SECRET", keys[1])
    path = tmp_path / "target.yaml"
    path.write_text(f"""
s3: {{endpoint: "{real.store.endpoint}", access_key: {{env: AKKO_TEST_S3_KEY}},
     secret_key: {{env: AKKO_TEST_S3_SECRET}},
     replica: {{endpoint: "{real.replica.endpoint}", access_key: {{env: AKKO_TEST_REPLICA_KEY}},
               secret_key: {{env: AKKO_TEST_REPLICA_SECRET}}}}}}
""")
    live = open_live(policy, load_target_file(path), allow_destructive=False, allow_probes=True,
                     api=ApiClient())
    assert real.replica.endpoint in live.components["object-store"], live.components
    quick = replace(live.policy, probe_deadline=timedelta(seconds=3))
    job = next(job for job in policy.jobs.values() if job.kind == "mirror")
    ctx = ScopeContext(quick, SandboxSource(real), live.store, utcnow(), lambda: real.run_job(job.name),
                       probes_allowed=True)
    result = check_artefact(ctx, job)
    assert result.status == "passed", result.reason
    canary = result.measured["canary"]
    assert [o.key for o in real.replica.list(policy.storage.replica_bucket, canary)] == [canary]
    assert [o.key for o in live.store.list(policy.storage.replica_bucket, canary)] == [canary]
    assert live.buckets.lock(policy.storage.audit_bucket).mode == policy.storage.audit_lock_mode


def test_identify_runs_the_playbooks_query_on_victorialogs_and_returns_the_users_events(
        real: Sandbox, target: Target) -> None:
    if real.logs is None:
        pytest.skip("VictoriaLogs not provisioned here (run scripts/real-services.sh)")
    real.identities.provision(IDENTITY)
    marker = f"marker_{secrets.token_hex(3)}"
    target.port("adversary").act_as(IDENTITY, real.identities.credential(IDENTITY), "aden",
                                    f"SELECT {marker} FROM (SELECT 1 AS {marker}) AS t")
    drill = RansomwareDrill(target, IDENTITY, new_run_id())
    found = drill.identify()
    lines = [e.line() for e in found]
    assert any(e.action == "SELECT" and e.target == f"aden.{marker}" for e in found), lines
    assert all(e.actor == IDENTITY for e in found)
    asked = f'audit_type:* AND user:"{IDENTITY}" AND _time:[72h ago, now]: '
    assert any(q.startswith(asked) for q in drill.queries), drill.queries  # other identities' may come first
    shipped = real.logs.client.query(f'user:"{IDENTITY}" AND "{marker}"').rows
    assert len(shipped) == 1 and shipped[0]["audit_type"] == "statement", shipped


def test_the_logs_layer_holds_only_events_that_were_recorded(real: Sandbox, target: Target) -> None:
    """Every event the logs layer returns has its archived twin in the WORM bucket, and an identity that
    did nothing has no event: nothing is invented."""
    if real.logs is None:
        pytest.skip("VictoriaLogs not provisioned here (run scripts/real-services.sh)")
    trail = target.port("audit_trail")
    assert trail.events(f"nobody-{secrets.token_hex(3)}", timedelta(hours=72)) == []
    events = trail.events(IDENTITY, timedelta(hours=72))
    archived = trail.archive.events(IDENTITY, timedelta(hours=72))
    # a WORM proof's overwrite attempt (Drill 3) leaves a newer, unreadable version over an event's object:
    # the archive says so, and the logs layer keeps the event as it was shipped
    readable = [e.line() for e in archived if e.action != "UNREADABLE EVENT"]
    assert len(events) == len(archived) and set(readable) <= {e.line() for e in events}, (
        sorted(e.line() for e in events), sorted(e.line() for e in archived))


def test_without_the_binaries_the_emulator_serves_and_the_report_says_so(
        policy: Policy, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AKKO_DR_BIN", str(tmp_path / "no-binaries-here"))
    assert real_servers() == RealServers(None, None)
    with open_sandbox(policy, scratch=True) as (sandbox, target):
        assert target.components["object-store"].startswith("moto S3 emulator"), target.components
        assert target.components["logs layer"].startswith("none:"), target.components
        assert target.emulator_of("audit_trail") and any(e.startswith("object store: moto") for e in
                                                          target.emulated)
        run = sandbox.run_job("akko-minio-replicate")
        st = policy.storage
        replica = {o.key for o in sandbox.store.list(st.replica_bucket)}
        hot = {o.key for bucket in st.hot_buckets for o in sandbox.store.list(bucket)}
        assert run.succeeded and hot and hot <= replica, (run.error, hot - replica)
        key, _ = target.port("object_keys")(IDENTITY)
        assert key == IDENTITY and sandbox.s3_users is None and sandbox.logs is None


def test_the_provisioned_binaries_are_found(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "minio").write_text("#!/bin/sh\n")
    (tmp_path / "minio").chmod(0o755)
    (tmp_path / "minio.version").write_text("v0.0.0-test\n")
    monkeypatch.setenv("AKKO_DR_BIN", str(tmp_path))
    assert real_servers() == RealServers(minio=tmp_path / "minio", victoria_logs=None)
    assert binary("victoria-logs") is None


def test_the_sandbox_run_records_which_server_served_each_component(target: Target) -> None:
    for component in ("object-store", "logs layer", "postgresql"):
        assert target.components.get(component), f"expected {component} named; actual: {target.components}"
    assert target.components["object-store"].startswith("MinIO") == (binary("minio") is not None)
    assert target.components["logs layer"].startswith("VictoriaLogs") == (binary("victoria-logs") is not None)



@pytest.mark.parametrize(("server", "code", "message", "outcome"), [
    ("MinIO", "InvalidRequest", "Object is WORM protected and cannot be overwritten", "refused"),
    ("MinIO", "AccessDenied", "Access Denied.", "inconclusive"),  # MinIO: the policy, never the lock
    ("AmazonS3", "AccessDenied", "Access Denied", "refused"),  # AWS and moto: a locked delete
    ("MinIO", "InvalidAccessKeyId", "Your account is disabled; please contact your administrator.",
     "inconclusive"),
])
def test_each_stores_own_lock_refusal_is_told_apart(server: str, code: str, message: str,
                                                    outcome: str) -> None:
    assert classify(StoreRefused("delete", code, message, 400, server))[0] == outcome
