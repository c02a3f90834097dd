"""What was signed: the policy, the playbook, the harness and the people; and what "verified" means."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from akko_dr.cli import main
from akko_dr.evidence import integrity, provenance

FEATURE = """\
@drill-x
Feature: Signed probe
  Scenario: A step that works
    Given a step that works
"""

STEPS = """\
from pytest_bdd import given, scenarios

scenarios("signed.feature")

@given("a step that works")
def _():
    pass
"""


@pytest.fixture
def signed_run(pytester: pytest.Pytester) -> Path:
    pytester.makefile(".feature", signed=FEATURE)
    pytester.makepyfile(test_signed=STEPS)
    pytester.makeini("[pytest]\nmarkers =\n    drill-x\n")
    playbook = pytester.makefile(".txt", playbook="# AKKO DR playbook 2026.04\n")
    result = pytester.runpytest_subprocess("-p", "akko_dr.evidence.plugin", "--evidence-dir", "ev",
                                           "--no-audit-pdf", "--participant", "A. Owner (test owner)",
                                           "--participant", "B. Ops (ops lead)", "--playbook", str(playbook))
    result.assert_outcomes(passed=1)
    assert result.ret == 0
    return (pytester.path / "ev" / "latest").resolve()


def test_the_manifest_records_policy_playbook_harness_and_people(signed_run: Path) -> None:
    manifest = json.loads((signed_run / integrity.MANIFEST).read_text())
    policy = hashlib.sha256(provenance.policy_bytes(None)).hexdigest()
    assert manifest["policy"] == {"file": "akko-2026.04.yaml", "sha256": policy, "version": "2026.04"}
    assert manifest["playbook"]["named_by_policy"] == "disaster-recovery-playbook.txt"
    playbook = signed_run.parents[1] / "playbook.txt"
    assert manifest["playbook"]["sha256"] == hashlib.sha256(playbook.read_bytes()).hexdigest()
    assert manifest["harness"]["version"] and len(manifest["harness"]["git_commit"].split("+")[0]) == 40
    assert manifest["participants"] == ["A. Owner (test owner)", "B. Ops (ops lead)"]


def test_verify_without_a_trusted_key_says_the_signature_is_not_verified(signed_run: Path, capsys) -> None:
    assert main(["verify", str(signed_run)]) == 0
    out = capsys.readouterr().out
    assert "signature NOT verified against a trusted key" in out
    assert "unsigned rehearsal: no trusted key" in out and "signature verified" not in out


def test_a_public_key_from_inside_the_run_folder_is_refused(signed_run: Path, capsys) -> None:
    manifest = json.loads((signed_run / integrity.MANIFEST).read_text())
    planted = signed_run.parent / "planted.pub"
    planted.write_text(manifest["signer"]["public_key"] + "\n")
    assert main(["verify", str(signed_run.parent), "--public-key", str(planted)]) == 2
    assert "a key the evidence carries proves nothing" in capsys.readouterr().err
    outside = signed_run.parents[1] / "owner.pub"
    shutil.move(planted, outside)
    assert main(["verify", str(signed_run), "--public-key", str(outside)]) == 0
    assert "signature verified against the trusted key" in capsys.readouterr().out
