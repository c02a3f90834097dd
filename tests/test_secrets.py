"""The last guard before sealing: a secret a step leaks into the evidence is redacted and named."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest

from akko_dr.evidence import integrity, redact

FEATURE = """\
@drill-x
Feature: Leak probe
  Scenario: A careless step
    Given a step that records its connection settings
"""

STEPS = """\
import os
from pathlib import Path
import yaml
from pytest_bdd import given, scenarios

scenarios("leak.feature")

@given("a step that records its connection settings")
def _(evidence):
    target = yaml.safe_load(Path("target.yaml").read_text())
    evidence.details["connection"] = f"user=akko password={os.environ['PGPASSWORD']}"
    evidence.details["target"] = target
"""


def _leak_run(pytester: pytest.Pytester, steps: str, target_file: str) -> pytest.RunResult:
    """The leak probe with these steps and this target file, in a subprocess."""
    pytester.makefile(".feature", leak=FEATURE)
    pytester.makepyfile(test_leak=steps)
    pytester.makeini("[pytest]\nmarkers =\n    drill-x\n")
    pytester.makefile(".yaml", target=target_file)
    pytester.makeconftest("""
def pytest_addoption(parser):
    parser.addoption("--target-file", default=None)
""")
    return pytester.runpytest_subprocess("-p", "akko_dr.evidence.plugin", "--evidence-dir", "ev",
                                         "--no-audit-pdf", "--target-file", "target.yaml")


def test_secret_names_come_from_the_environment_and_the_target_file(tmp_path: Path) -> None:
    target = tmp_path / "target.yaml"
    target.write_text("namespace: akko\ns3:\n  secret_key: abcdef123456\n  endpoint: https://s3.example\n")
    found = redact.secrets_of({"PGPASSWORD": "hunter22", "HOME": "/root", "GITHUB_TOKEN": "x"}, target)
    assert found == {"$PGPASSWORD": "hunter22", "target file s3.secret_key": "abcdef123456"}


def test_a_leaked_secret_is_redacted_named_and_the_run_still_verifies(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    password, key = f"canary-{secrets.token_hex(8)}", f"canary-{secrets.token_hex(8)}"
    monkeypatch.setenv("PGPASSWORD", password)
    result = _leak_run(pytester, STEPS, f"namespace: akko\nobject_store:\n  secret_access_key: {key}\n")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*FAILED: secret $PGPASSWORD found in results.json: redacted*"])
    evidence = pytester.path / "ev"
    leaks = [p.name for p in evidence.rglob("*") if p.is_file()
             and (password.encode() in p.read_bytes() or key.encode() in p.read_bytes())]
    assert not leaks, f"secret still in {leaks}"
    run = (evidence / "latest").resolve()
    assert integrity.verify(run).ok
    failures = json.loads((run / integrity.MANIFEST).read_text())["failures"]
    assert "secret target file object_store.secret_access_key found in report.html: redacted" in failures
    assert redact.REDACTED in (run / "results.json").read_text()


RUNTIME_STEPS = """\
import os
from pytest_bdd import given, scenarios
from akko_dr.targetfile import Credential, resolve

scenarios("leak.feature")

@given("a step that records its connection settings")
def _(evidence):
    password = resolve(Credential(secret=("akko", "akko-postgresql", "postgres-password")),
                       lambda ns, name, key: os.environ["FAKE_STORE_ANSWER"])
    evidence.details["connection"] = f"user=akko password={password}"
"""

REFERENCES = """\
s3:
  access_key: {env: AKKO_S3_ACCESS_KEY}
  secret_key: {secret: akko/akko-minio#rootPassword}
postgres:
  password: {secret: akko/akko-postgresql#postgres-password}
"""


def test_credential_references_are_not_secrets(tmp_path: Path) -> None:
    target = tmp_path / "target.yaml"
    target.write_text(REFERENCES)
    assert redact.secrets_of({"HOME": "/root"}, target) == {}


def test_a_value_read_from_a_secret_is_redacted_everywhere(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    value = f"canary-{secrets.token_hex(8)}"
    monkeypatch.setenv("FAKE_STORE_ANSWER", value)  # what the fake Secret store answers
    result = _leak_run(pytester, RUNTIME_STEPS, REFERENCES)
    result.assert_outcomes(passed=1)
    evidence = pytester.path / "ev"
    assert not [p.name for p in evidence.rglob("*") if p.is_file() and value.encode() in p.read_bytes()]
    run = (evidence / "latest").resolve()
    failures = json.loads((run / integrity.MANIFEST).read_text())["failures"]
    assert failures, "the leak is named"
    assert all("credential from secret akko/akko-postgresql#postgres-password found in" in f
               for f in failures), failures
    assert not any("akko-minio" in f or "target file" in f for f in failures), "a reference is no secret"
    assert result.ret == 2, "a secret reaching the evidence is a harness error"


def test_console_lines_mask_values_read_at_run_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redact, "RUNTIME", {})
    value = f"canary-{secrets.token_hex(8)}"
    redact.remember("credential from env AKKO_S3_ACCESS_KEY", value)
    redact.remember("short", "abc")
    assert redact.mask(f"login as {value} refused; abc") == f"login as {redact.REDACTED} refused; abc"
