"""A harness bug is a harness error (exit 2), never a refusal of the backup; a refusal stays a finding."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import BinaryIO

import pytest

from akko_dr.canary import wait_for_write
from akko_dr.drills.restore_database import RestoreDatabaseDrill
from akko_dr.errors import (
    ConfigurationError,
    DrillError,
    DrillRefused,
    HarnessBug,
    PolicyError,
    TargetUnavailable,
    is_harness_bug,
)
from akko_dr.targets import Target, new_run_id

FEATURE = """\
@drill-x
Feature: Harness probe
  Scenario: A drill step
    Given a drill step that {outcome}
"""

STEPS = """\
from pytest_bdd import given, scenarios
from akko_dr.errors import DrillError

scenarios("probe.feature")

@given("a drill step that refuses the backup")
def _():
    raise DrillError("backup pg/x.sql.gz is corrupt")

@given("a drill step that has a bug")
def _():
    return {}["no such key"]
"""


def _probe(pytester: pytest.Pytester, outcome: str) -> tuple[int, dict]:
    pytester.makefile(".feature", probe=FEATURE.format(outcome=outcome))
    pytester.makepyfile(test_probe=STEPS)
    pytester.makeini("[pytest]\nmarkers =\n    drill-x\n")
    result = pytester.runpytest_subprocess("-p", "akko_dr.evidence.plugin", "--evidence-dir", "ev",
                                           "--no-audit-pdf")
    return result.ret, json.loads((pytester.path / "ev" / "latest" / "results.json").read_text())


def test_a_bug_in_a_step_is_a_harness_error_and_exits_2(pytester: pytest.Pytester) -> None:
    code, results = _probe(pytester, "has a bug")
    [scenario] = results["scenarios"]
    assert code == 2, f"exit code: expected 2 (harness error), got {code}"
    assert scenario["error"] == "harness error: KeyError: 'no such key'"
    assert results["harness_errors"] == ["A drill step: harness error: KeyError: 'no such key'"]


def test_a_refused_backup_stays_a_finding_and_exits_1(pytester: pytest.Pytester) -> None:
    code, results = _probe(pytester, "refuses the backup")
    assert code == 1, f"exit code: expected 1 (a finding), got {code}"
    assert results["harness_errors"] == []
    assert results["scenarios"][0]["error"] == "backup pg/x.sql.gz is corrupt"


@pytest.mark.parametrize("exc, bug", [
    (KeyError("x"), True), (TypeError("x"), True), (HarnessBug("x"), True), (DrillError("x"), False),
    (TargetUnavailable("x"), False), (PolicyError("x"), False), (AssertionError("x"), False),
    (KeyboardInterrupt(), False)])
def test_the_hierarchy_tells_a_bug_from_a_refusal(exc: BaseException, bug: bool) -> None:
    assert is_harness_bug(exc) is bug, f"{exc!r}: expected harness bug {bug}"


def test_the_historical_names_still_import_and_mean_the_same() -> None:
    assert PolicyError is ConfigurationError and DrillRefused is DrillError
    assert issubclass(TargetUnavailable, DrillError) and issubclass(PolicyError, ValueError)


class BuggyStore:
    """The sandbox's store, whose download has a bug of the harness (not a fault of the backup)."""

    def __init__(self, inner: object) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)

    def download(self, bucket: str, key: str, path: Path) -> None:
        raise TypeError("download() got an unexpected keyword argument 'chunk'")

    def stream(self, bucket: str, key: str) -> BinaryIO:
        raise TypeError("stream() got an unexpected keyword argument 'chunk'")


def test_drill_1_lets_a_harness_bug_through_and_still_undoes_what_it_did(target: Target) -> None:
    if target.heal:
        target.heal()
    wait_for_write(target.port("canary"), "superset_metadata")
    drill = RestoreDatabaseDrill(replace(target, store=BuggyStore(target.store)), "superset_metadata",
                                 new_run_id())
    drill.drop_table("dashboards")
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        drill.recover()
    assert drill.changes_since_incident() == [] and not drill.leftover_databases()
    assert target.orchestrator.running("akko-superset") == 1
