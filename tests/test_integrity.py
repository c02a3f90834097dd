"""Integrity of the evidence: every change to a sealed run, its signature or the chain is named by verify;
a verified run is archived under Object Lock."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
import requests

from akko_dr.cli import main
from akko_dr.evidence import archive, integrity
from akko_dr.measure import wait_for
from akko_dr.policy import load_policy

FEATURE = """\
@drill-x
Feature: Seal probe
  Scenario: One step
    Given a step that works
"""

STEPS = """\
from pytest_bdd import given, scenarios

scenarios("seal.feature")

@given("a step that works")
def _():
    pass
"""


def _make_run(evidence: Path, name: str) -> Path:
    """A run folder with a few files, sealed with an ephemeral key and chained like the plugin does."""
    run = evidence / name
    (run / "sub").mkdir(parents=True)
    (run / "results.json").write_text(json.dumps({"run": name}))
    (run / "report.html").write_text(f"<html>{name}</html>")
    (run / "sub" / "nested.txt").write_bytes(b"\x00\x01 nested")
    signer = integrity.signer_for(None, evidence)
    integrity.seal(run, signer, integrity.previous_link(run))
    return run


@pytest.fixture
def sealed(tmp_path: Path) -> Path:
    return _make_run(tmp_path / "ev", "20261127t090000z_aaaa")


@pytest.fixture
def plugin_run(pytester: pytest.Pytester) -> Path:
    """A run folder written and sealed by the evidence plugin itself."""
    pytester.makefile(".feature", seal=FEATURE)
    pytester.makepyfile(test_seal=STEPS)
    pytester.makeini("[pytest]\nmarkers =\n    drill-x\n")
    result = pytester.runpytest_subprocess("-p", "akko_dr.evidence.plugin", "--evidence-dir", "ev",
                                           "--no-audit-pdf")
    result.assert_outcomes(passed=1)
    return (pytester.path / "ev" / "latest").resolve()


def _flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def test_the_plugin_seals_every_file_of_the_run_and_it_verifies(plugin_run: Path) -> None:
    manifest = json.loads((plugin_run / integrity.MANIFEST).read_text())
    assert set(manifest["files"]) == set(integrity.run_files(plugin_run))
    assert {"report.html", "results.json", "junit.xml", "cucumber.json", "audit-report.html"} <= set(
        manifest["files"])
    assert manifest["signer"]["kind"] == "ephemeral" and "rehearsal" in manifest["signer"]["note"]
    result = integrity.verify(plugin_run)
    assert result.ok, result.problems


def test_one_byte_changed_in_any_file_is_named(plugin_run: Path, tmp_path: Path) -> None:
    unnamed = []
    for rel in [*integrity.run_files(plugin_run), integrity.MANIFEST, integrity.SIGNATURE]:
        copy = tmp_path / rel.replace("/", "_") / plugin_run.name
        shutil.copytree(plugin_run, copy)
        _flip_one_byte(copy / rel)
        problems = integrity.verify(copy).problems
        if not any(rel in p for p in problems):
            unnamed.append(f"{rel}: {problems}")
    assert not unnamed, "changes verify did not name:\n" + "\n".join(unnamed)


def test_a_removed_file_is_named(sealed: Path) -> None:
    (sealed / "sub" / "nested.txt").unlink()
    assert integrity.verify(sealed).problems == ["missing file: sub/nested.txt"]


def test_an_added_file_is_named(sealed: Path) -> None:
    (sealed / "planted.html").write_text("<p>all good</p>")
    assert integrity.verify(sealed).problems == ["extra file: planted.html (not in the manifest)"]


def test_a_manifest_rewritten_to_match_altered_files_fails_its_signature(sealed: Path) -> None:
    (sealed / "results.json").write_text('{"run": "forged"}')
    manifest = json.loads((sealed / integrity.MANIFEST).read_text())
    manifest["files"]["results.json"]["sha256"] = integrity.sha256_file(sealed / "results.json")
    (sealed / integrity.MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    assert integrity.verify(sealed).problems == [
        f"bad signature: {integrity.SIGNATURE} does not match {integrity.MANIFEST}"]


def test_verify_command_exits_non_zero_and_names_the_file(sealed: Path, capsys) -> None:
    assert main(["verify", str(sealed)]) == 0
    (sealed / "report.html").write_text("<html>edited</html>")
    assert main(["verify", str(sealed)]) == 1
    assert "altered file: report.html" in capsys.readouterr().out


def test_runs_are_chained_and_a_deleted_past_run_is_detected(tmp_path: Path) -> None:
    first = _make_run(tmp_path, "20261127t090000z_aaaa")
    second = _make_run(tmp_path, "20261127t100000z_bbbb")
    link = json.loads((second / integrity.MANIFEST).read_text())["previous"]
    digest = integrity.sha256_file(first / integrity.MANIFEST)
    assert link == {"run_id": first.name, "manifest_sha256": digest}
    assert integrity.verify(second).ok
    shutil.rmtree(first)
    assert integrity.verify(second).problems == [
        f"previous run {first.name} is missing: the chain is broken"]


def test_a_replaced_past_run_is_detected(tmp_path: Path) -> None:
    first = _make_run(tmp_path, "20261127t090000z_aaaa")
    second = _make_run(tmp_path, "20261127t100000z_bbbb")
    shutil.rmtree(first)
    _make_run(tmp_path, first.name)  # a fresh, validly signed run under the old name
    assert integrity.verify(first).ok
    assert integrity.verify(second).problems == [
        f"previous run {first.name} was replaced: its manifest hash differs"]


def test_a_reviewer_countersigns_the_same_manifest(sealed: Path, tmp_path: Path, capsys) -> None:
    key = tmp_path / "keys" / "reviewer.pem"
    key.parent.mkdir()
    assert main(["keygen", str(key), "--evidence-dir", str(sealed.parent)]) == 0
    assert key.stat().st_mode & 0o777 == 0o600
    assert main(["keygen", str(key), "--evidence-dir", str(sealed.parent)]) == 2  # never overwrites a key
    assert main(["countersign", str(sealed), "--key", str(key), "--reviewer", "R. Eviewer"]) == 0
    result = integrity.verify(sealed)
    assert result.ok, result.problems
    assert any(n.startswith("countersigned by R. Eviewer (independent reviewer)") for n in result.notes)
    [record] = (sealed / integrity.COUNTERSIGNATURES).glob("*.json")
    forged = json.loads(record.read_text()) | {"signature": json.loads(record.read_text())["signature"][::-1]}
    record.write_text(json.dumps(forged))
    assert integrity.verify(sealed).problems == [f"bad countersignature: countersignatures/{record.name}"]


def test_countersign_refuses_a_run_that_does_not_verify(sealed: Path, tmp_path: Path) -> None:
    key = tmp_path / "reviewer.pem"
    integrity.write_private_key(key)
    (sealed / "results.json").write_text("{}")
    assert main(["countersign", str(sealed), "--key", str(key), "--reviewer", "R"]) == 1
    assert not (sealed / integrity.COUNTERSIGNATURES).exists()


def test_a_configured_key_signs_and_can_be_pinned(tmp_path: Path, monkeypatch) -> None:
    key = tmp_path / "keys" / "owner.pem"
    key.parent.mkdir()
    public = integrity.write_private_key(key)
    monkeypatch.setenv(integrity.KEY_ENV, str(key))
    signer = integrity.signer_for(None, tmp_path / "ev")
    assert signer.kind == "configured" and signer.key_id == integrity.key_id(public)
    run = tmp_path / "ev" / "20261127t090000z_aaaa"
    run.mkdir(parents=True)
    (run / "results.json").write_text("{}")
    integrity.seal(run, signer, None)
    assert integrity.verify(run, integrity.public_b64(public)).ok
    other = integrity.public_b64(integrity.write_private_key(tmp_path / "keys" / "other.pem"))
    assert integrity.verify(run, other).problems[0].startswith(f"signed by key {signer.key_id}, not by")


def test_a_signing_key_inside_the_evidence_folder_is_refused(tmp_path: Path) -> None:
    key = tmp_path / "ev" / "owner.pem"
    key.parent.mkdir()
    integrity.write_private_key(key)
    with pytest.raises(integrity.IntegrityError, match="inside the evidence directory"):
        integrity.signer_for(key, tmp_path / "ev")
    assert main(["keygen", str(tmp_path / "ev" / "new.pem"), "--evidence-dir", str(tmp_path / "ev")]) == 2



@pytest.mark.parametrize(("breakage", "failure"), [
    ("history store", "history failed: IsADirectoryError"),
    ("policy file", "audit report failed: the policy could not be loaded"),
])
def test_a_broken_part_of_the_evidence_step_is_named_and_the_run_sealed(
        pytester: pytest.Pytester, breakage: str, failure: str) -> None:
    pytester.makefile(".feature", seal=FEATURE)
    pytester.makepyfile(test_seal=STEPS)
    pytester.makeini("[pytest]\nmarkers =\n    drill-x\n")
    pytester.makeconftest("def pytest_addoption(parser):\n    parser.addoption('--policy', default=None)\n")
    pytester.makefile(".yaml", broken="classes: [not, a, mapping]\n")
    (pytester.path / "ev").mkdir()
    if breakage == "history store":
        (pytester.path / "ev" / "history.jsonl").mkdir()
    policy = ["--policy", "broken.yaml"] if breakage == "policy file" else []
    result = pytester.runpytest_subprocess("-p", "akko_dr.evidence.plugin", "--evidence-dir", "ev",
                                           "--no-audit-pdf", *policy)
    result.stdout.fnmatch_lines([f"*akko-dr evidence step FAILED: {failure}*"])
    run = (pytester.path / "ev" / "latest").resolve()
    assert integrity.verify(run).ok
    manifest = json.loads((run / integrity.MANIFEST).read_text())
    assert [f.split(":")[0] for f in manifest["failures"]] == [failure.split(":")[0]]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).ok
    except requests.ConnectionError:
        return False


@pytest.fixture
def audit_bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The policy's audit bucket with its Object Lock default, on moto's S3 emulator in its own process
    (an in-process emulator would share its state with the session's sandbox)."""
    for name, value in (("AWS_ACCESS_KEY_ID", "emulator"), ("AWS_SECRET_ACCESS_KEY", "emulator"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(name, value)
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        wait_for("the S3 emulator to answer", lambda: _answers(f"{endpoint}/moto-api/"), deadline=30)
        st = load_policy().storage
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        s3.create_bucket(Bucket=st.audit_bucket, ObjectLockEnabledForBucket=True)
        s3.put_object_lock_configuration(Bucket=st.audit_bucket, ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": st.audit_lock_mode, "Days": st.audit_lock_retention.days}}})
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_verified_run_is_archived_under_the_policy_lock(sealed: Path, audit_bucket: str, capsys) -> None:
    assert main(["archive", str(sealed), "--endpoint", audit_bucket]) == 0
    out = capsys.readouterr().out
    policy = load_policy()
    expected = [*integrity.run_files(sealed), integrity.MANIFEST, integrity.SIGNATURE]
    keys = [line.split()[0] for line in out.splitlines() if line.startswith("  s3://")]
    prefix = f"s3://{policy.storage.audit_bucket}/{archive.PREFIX}{sealed.name}/"
    assert sorted(keys) == sorted(prefix + rel for rel in expected)
    assert all(f"  {policy.storage.audit_lock_mode}  until " in line for line in out.splitlines()
               if line.startswith("  s3://"))
    until = datetime.fromisoformat(out.splitlines()[0].split("until ")[1])
    assert (until - datetime.now(UTC)).days in (policy.storage.audit_lock_retention.days - 1,
                                                policy.storage.audit_lock_retention.days)


def test_a_run_that_does_not_verify_is_not_archived(sealed: Path, audit_bucket: str, capsys) -> None:
    (sealed / "results.json").write_text("{}")
    assert main(["archive", str(sealed), "--endpoint", audit_bucket]) == 1
    assert "altered file: results.json" in capsys.readouterr().err
