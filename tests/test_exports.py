"""One run, four exports (results.json, JUnit, Cucumber, metrics) and the HTML title: they all agree."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from akko_dr.evidence import exports

FEATURE = """\
Feature: Exports probe
  @drill-1 @class-critical-data
  Scenario: A drill that passes with figures
    Given the drill runs
    Then its figures are recorded

  @drill-2 @class-full-cluster-rebuild
  Scenario: A drill that measures and then fails
    Given the drill runs
    Then its figures are recorded
    And the rebuilt platform is refused

  @drill-3
  Scenario: A drill this target cannot run
    Given the drill runs
    When the attacker acts
    Then nothing else runs

  @verification
  Scenario: A proof resting on an emulator
    Given the drill runs
    When the emulator refuses
    Then nothing else runs

  @verification
  Scenario: A step nobody answered
    Given nobody answers
    Then nothing else runs
"""

STEPS = """\
from datetime import timedelta
import pytest
from pytest_bdd import given, scenarios, then, when
from akko_dr.errors import Inconclusive, NotApplicable
from akko_dr.measure import Measurement
from akko_dr.policy import load_policy

scenarios("exports.feature")

@given("the drill runs")
def _():
    pass

@given("nobody answers")
def _():
    pytest.skip("tabletop: nobody attested it")

@then("its figures are recorded")
def _(evidence):
    klass = load_policy().klass("critical-data")
    evidence.details["database"] = "superset_metadata"
    evidence.measure(Measurement("RTO", timedelta(seconds=2), klass.rto, klass))
    evidence.measure(Measurement("RPO", timedelta(seconds=1), klass.rpo, klass))
    evidence.rpo_worst_case_seconds = 7200.0

@then("the rebuilt platform is refused")
def _():
    raise AssertionError("the rebuilt platform failed validation")

@when("the attacker acts")
def _():
    raise NotApplicable("not applicable on sandbox: no simulated attacker")

@when("the emulator refuses")
def _():
    raise Inconclusive("inconclusive (emulator): the refusal came from moto")

@then("nothing else runs")
def _():
    raise AssertionError("must not run")
"""

INI = """\
[pytest]
markers =
    drill-1: Drill 1
    drill-2: Drill 2
    drill-3: Drill 3
    verification: checks
    class-critical-data: Critical data
    class-full-cluster-rebuild: Full cluster rebuild
"""


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("exports")
    (root / "exports.feature").write_text(FEATURE)
    (root / "test_exports.py").write_text(STEPS)
    (root / "pytest.ini").write_text(INI)
    run = subprocess.run([sys.executable, "-m", "pytest", "-p", "akko_dr.evidence.plugin", "--evidence-dir",
                          "ev", "--no-audit-pdf", "-p", "no:cacheprovider", "-q"],
                         cwd=root, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stdout[-2000:] + run.stderr[-2000:]
    return (root / "ev" / "latest").resolve()


def _results(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())


def test_all_exports_count_the_same_scenarios(run_dir: Path) -> None:
    summary = _results(run_dir)["summary"]
    assert summary == {"passed": 1, "failed": 1, "inconclusive": 1, "not-applicable": 1, "skipped": 1,
                       "not run": 0}
    gaps = summary["inconclusive"] + summary["not-applicable"] + summary["skipped"]
    suite = ET.parse(run_dir / "junit.xml").getroot().find("testsuite")
    assert (int(suite.get("tests")), int(suite.get("failures")), int(suite.get("skipped"))) == (5, 1, gaps)
    assert exports.cucumber_counts(run_dir / "cucumber.json") == {"passed": 1, "failed": 1, "skipped": gaps}
    title = re.search(r"<title[^>]*>(.*?)</title>", (run_dir / "report.html").read_text())[1]
    assert ("5 scenarios: 1 passed, 1 failed, 1 inconclusive, 1 not applicable, 1 skipped"
            in title.replace("&#39;", "'")), title


def test_cucumber_keeps_skipped_steps_skipped(run_dir: Path) -> None:
    [feature] = json.loads((run_dir / "cucumber.json").read_text())
    steps = {e["name"]: [s["result"]["status"] for s in e["steps"]] for e in feature["elements"]}
    assert steps["A step nobody answered"] == ["skipped"] * len(steps["A step nobody answered"])
    assert "passed" not in steps["A drill this target cannot run"][1:]
    assert steps["A drill that passes with figures"] == ["passed", "passed"]


def test_junit_carries_rto_rpo_and_their_targets(run_dir: Path) -> None:
    cases = {c.get("name"): c for c in ET.parse(run_dir / "junit.xml").getroot().iter("testcase")}
    [case] = [c for name, c in cases.items() if "passes_with_figures" in name]
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert (props["akko_rto_seconds"], props["akko_rpo_seconds"]) == ("2.0", "1.0")
    assert props["akko_rto_target_seconds"] == "7200.0" and props["akko_rpo_target_seconds"] == "3600.0"
    assert props["akko_rpo_worst_case_seconds"] == "7200.0" and props["akko_status"] == "passed"


def test_metrics_have_every_measured_drill_and_success_only_for_passed_ones(run_dir: Path) -> None:
    text = (run_dir / "metrics.prom").read_text()
    samples = [s for f in text_string_to_metric_families(text) for s in f.samples]
    rto = {s.labels["drill"]: s.value for s in samples if s.name == "akko_dr_restore_duration_seconds"}
    assert rto == {"drill-1": 2.0, "drill-2": 2.0}
    success = {s.labels["drill"] for s in samples if s.name == "akko_dr_last_success_timestamp_seconds"}
    assert success == {"drill-1"}
