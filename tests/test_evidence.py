"""The evidence plugin: every scenario lands in results.json and the HTML report, failures with one line."""

import json
import re
from pathlib import Path

import pytest

FEATURE = """\
@drill-x @dora-12.2
Feature: Evidence probe
  Scenario: A step that works and one that is refused
    Given a step that works
    When a step is refused
    Then nothing after it runs
"""

STEPS = """\
from pytest_bdd import given, scenarios, then, when
from akko_dr.errors import DrillError

scenarios("probe.feature")

@given("a step that works")
def _():
    pass

@when("a step is refused")
def _():
    raise DrillError("backup pg/x.sql.gz is corrupt: CRC check failed\\nwith a second line")

@then("nothing after it runs")
def _():
    raise AssertionError("must not run")
"""


@pytest.fixture
def probe_run(pytester: pytest.Pytester) -> tuple[pytest.RunResult, Path]:
    pytester.makefile(".feature", probe=FEATURE)
    pytester.makepyfile(test_probe=STEPS)
    pytester.makeini("[pytest]\nmarkers =\n    drill-x\n    dora-12.2\n")
    result = pytester.runpytest_subprocess("-p", "akko_dr.evidence.plugin", "--evidence-dir", "ev")
    return result, pytester.path / "ev"


def test_a_refused_step_fails_the_scenario_with_a_one_line_reason(probe_run) -> None:
    result, evidence = probe_run
    result.assert_outcomes(failed=1)
    data = json.loads((evidence / "latest" / "results.json").read_text())
    [scenario] = data["scenarios"]
    assert scenario["status"] == "failed"
    assert scenario["error"] == "backup pg/x.sql.gz is corrupt: CRC check failed with a second line"
    assert [s["status"] for s in scenario["steps"]] == ["passed", "failed", "not run"]
    assert scenario["tags"] == ["dora-12.2", "drill-x"]
    assert data["summary"] == {"passed": 0, "failed": 1, "inconclusive": 0, "not-applicable": 0, "skipped": 0,
                               "not run": 0}
    assert scenario["id"] == "probe/a-step-that-works-and-one-that-is-refused"


def test_the_report_says_rehearsal_first_and_shows_the_reason(probe_run) -> None:
    _, evidence = probe_run
    html = (evidence / "latest" / "report.html").read_text()
    title = re.search(r"<title[^>]*>(.*?)</title>", html)[1]
    assert title.startswith("SANDBOX REHEARSAL — not production evidence")
    assert "CRC check failed" in html
    assert "Id: probe/a-step-that-works-and-one-that-is-refused" in html
