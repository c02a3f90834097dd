"""Drill 3 as a library: containment really locks the identity out, bad input is one clear line, the
answers file is validated, and the audit trail's WORM proof reports the emulator's gap."""

import shutil
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest

from akko_dr.adapters.postgres import CanaryTable
from akko_dr.attestation import Answers
from akko_dr.canary import wait_for_write
from akko_dr.drills import ransomware
from akko_dr.drills.ransomware import RansomwareDrill
from akko_dr.errors import DrillError, PolicyError
from akko_dr.measure import utcnow
from akko_dr.ports import AuditEvent
from akko_dr.sandbox import Sandbox, start_sandbox
from akko_dr.targets import Target, new_run_id
from akko_dr.wiring import sandbox_target


def test_a_contained_identity_cannot_log_in_and_no_secret_shows(target: Target, sandbox: Sandbox) -> None:
    if sandbox.keycloak is not None:  # an earlier test may have restarted the server Keycloak's pool uses
        sandbox.keycloak.serves_logins()
    sandbox.identities.provision("akko-admin")
    drill = RansomwareDrill(target, "akko-admin", new_run_id())
    drill.steal_credentials()
    assert drill.stolen_credentials_work()[0] is True
    sandbox.identities.act_as("akko-admin", drill.stolen, "aden", "SELECT 'marker-42'")
    assert any("marker-42" in line for line in sandbox.identities.statement_log("akko-admin"))
    drill.contain()
    works, answer = drill.stolen_credentials_work()
    assert not works and "password authentication failed" in answer
    new = sandbox.identities.credential("akko-admin")
    assert sandbox.identities.can_authenticate("akko-admin", new)[0] is False  # suspended: NOLOGIN
    assert drill.stolen not in repr(drill) and new not in repr(sandbox.identities) and new not in answer


def test_an_unknown_identity_is_one_clear_line(target: Target) -> None:
    with pytest.raises(DrillError, match=r"^identity 'akko-ghost' does not exist in .*nothing was changed$"):
        RansomwareDrill(target, "akko-ghost", new_run_id()).contain()


def test_the_audit_window_keeps_older_actions_out(target: Target) -> None:
    drill = RansomwareDrill(target, "akko-window-probe", new_run_id())
    now = utcnow()
    drill.audit.record(AuditEvent(now - drill.window - timedelta(hours=1), drill.identity, "login", "old"))
    drill.audit.record(AuditEvent(now, drill.identity, "DROP TABLE", "x.y"))
    assert [e.target for e in drill.identify()] == ["x.y"]


def test_locked_audit_versions_survive_deletion_and_only_the_emulator_lets_retention_shrink(
        target: Target, policy) -> None:
    drill = RansomwareDrill(target, "akko-admin", new_run_id())
    drill.audit.record(AuditEvent(utcnow(), "akko-worm-test", "login", "worm-test"))  # not the drill identity
    store, bucket = drill.audit.store, drill.audit.bucket
    before = ransomware.audit_versions(drill.audit)
    deletions = ransomware.try_delete(store, bucket, list(before))
    assert {a.outcome for a in deletions} == {"refused"} and ransomware.worm_verdict(deletions) == ([], [])
    assert ransomware.changed_versions(before, ransomware.audit_versions(drill.audit)) == []
    one = [next(iter(before))]
    shorter = utcnow() + timedelta(days=1)
    shortened = ransomware.try_shorten(store, bucket, one, policy.storage.audit_lock_mode, shorter)
    if not target.emulator_of("audit_trail"):  # real MinIO: the lock refuses it
        assert [a.outcome for a in shortened] == ["refused"], [a.line() for a in shortened]
        return
    assert ransomware.worm_verdict(shortened)[0] == [f"shortening {one[0][0]}@{one[0][1]}"], (
        "moto enforces retention now: the emulator gap is gone")


def test_the_evidence_bundle_hashes_every_file(target: Target, tmp_path: Path) -> None:
    drill = RansomwareDrill(target, "akko-admin", new_run_id())
    drill.audit.record(AuditEvent(utcnow(), "akko-bundle-test", "login", "bundle-test"))
    bundle = drill.preserve(tmp_path)
    assert {name.split("/")[0] for name in bundle} == {"audit", "receipts", "identity-provider"}
    assert drill.unhashed_bundle_files(tmp_path) == []
    (tmp_path / next(iter(bundle))).write_bytes(b"altered")
    assert drill.unhashed_bundle_files(tmp_path) == [next(iter(bundle))]


def test_an_answers_file_without_who_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "answers.yaml"
    path.write_text("drill-3-decision: {observed: something}\n")
    with pytest.raises(PolicyError, match="drill-3-decision: expected 'who' and 'observed'"):
        Answers(path, interactive=False)


def test_an_attestation_comes_from_the_answers_file(tmp_path: Path) -> None:
    path = tmp_path / "answers.yaml"
    path.write_text("k: {who: Ann, role: CISO, when: '2026-11-27T10:00:00', observed: decided}\n")
    att = Answers(path, interactive=False).attest("k", "who decided?")
    assert (att.who, att.observed) == ("Ann", "decided")
    assert att.label() == "attested by Ann (CISO) at 2026-11-27T10:00:00"
    assert att.source == f"answers file {path}"


def test_damage_to_the_whole_platform_is_recovered_with_drill_2(policy) -> None:
    root = Path(tempfile.mkdtemp(prefix="akko-dr-test-drill-3-"))
    try:
        with start_sandbox(policy, root=root / "sandbox", consumers=tuple(policy.databases)) as own:
            drill = RansomwareDrill(sandbox_target(own, root), "akko-admin", new_run_id())
            for name in policy.databases:
                wait_for_write(CanaryTable(lambda: own.db), name)
            for job in ("akko-pg-backup", "akko-pg-data-backup"):
                assert own.run_job(job).succeeded
            rebuild = drill.declare_platform_damage()
            drill.recover()
            assert rebuild.failures() == [] and rebuild.mismatches() == []
            assert drill.recover_figure("rto").klass.key == policy.drill("drill-2")["class"]
            assert own.kept_for_signoff(), "the compromised platform must be kept for forensics"
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_the_recovery_clock_starts_at_the_attack_and_only_real_actions_reach_the_trail(
        target: Target, sandbox: Sandbox) -> None:
    """Issue 8: Drill 3's RTO runs from the attack; issue 16: the drill writes no event of its own."""
    drill = RansomwareDrill(target, "akko-admin", new_run_id())
    drill.steal_credentials()
    before = {k for k, _ in drill.audit.store.versions(drill.audit.bucket)}
    attacked = utcnow()
    recovery = drill.attack("superset_metadata", "slices")
    try:
        assert attacked <= recovery.declared_at <= utcnow()
        written = [drill.audit.store.read(drill.audit.bucket, k).decode()
                   for k, _ in drill.audit.store.versions(drill.audit.bucket) if k not in before]
        assert len(written) == 2 and all("sandbox logs layer" in w for w in written)
        assert any('"DROP TABLE"' in w and "superset_metadata.slices" in w for w in written)
    finally:
        recovery.recover()
    since_attack = (recovery.validated_at - attacked).total_seconds()
    assert recovery.rto().measured.total_seconds() >= since_attack - 1
