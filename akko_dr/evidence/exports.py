"""The machine-readable exports agree with the evidence: JUnit properties, Cucumber step statuses, counts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from akko_dr.evidence.record import RunRecord, ScenarioRecord

CUCUMBER = "cucumber.json"
_FIGURES = ("rto_seconds", "rto_target_seconds", "rpo_seconds", "rpo_target_seconds",
            "rpo_worst_case_seconds")


def junit_properties(rec: ScenarioRecord) -> list[tuple[str, str]]:
    """The scenario's id, status, class and every measured figure with its target, as JUnit properties."""
    props = [("akko_id", rec.id), ("akko_status", rec.status)]
    props += [(f"akko_{key}", str(getattr(rec, key))) for key in _FIGURES if getattr(rec, key) is not None]
    if rec.target_class:
        props.append(("akko_target_class", rec.target_class))
    return props


def _cucumber_status(step_status: str) -> str:
    if step_status == "failed":
        return "failed"
    if step_status == "passed" or step_status.startswith("attested by"):
        return "passed"
    return "skipped"  # not run, not applicable, inconclusive: never passed


def _record(run: RunRecord, uri: str, name: str) -> ScenarioRecord | None:
    return next((r for r in run.scenarios if r.name == name and r.feature_file.endswith(uri)), None)


def _fix_element(element: dict[str, Any], rec: ScenarioRecord) -> None:
    used: set[int] = set()
    for step in element.get("steps", []):
        mine = next((s for s in rec.steps if s.keyword.strip() == str(step.get("keyword", "")).strip()
                     and s.text == step.get("name") and id(s) not in used), None)
        status = _cucumber_status(mine.status if mine else "not run")
        if mine is not None:
            used.add(id(mine))
        result = step.setdefault("result", {})
        result["status"] = status
        if status != "failed":
            result.pop("error_message", None)
            if mine is not None and mine.error and status == "skipped":
                result["error_message"] = mine.error


def fix_cucumber(run: RunRecord) -> None:
    """Step statuses from the evidence: a step that did not pass (skipped, gap, not run) is "skipped"."""
    path = run.run_dir / CUCUMBER
    if not path.is_file():
        return
    features = json.loads(path.read_text())
    for feature in features:
        for element in feature.get("elements", []):
            if (rec := _record(run, str(feature.get("uri", "")), str(element.get("name", "")))) is not None:
                _fix_element(element, rec)
    path.write_text(json.dumps(features, indent=4) + "\n")


def cucumber_counts(path: Path) -> dict[str, int]:
    """Scenarios of a Cucumber JSON file by outcome: failed if a step failed, skipped if one was skipped."""
    out = {"passed": 0, "failed": 0, "skipped": 0}
    for feature in json.loads(path.read_text()):
        for element in feature.get("elements", []):
            statuses = {s.get("result", {}).get("status") for s in element.get("steps", [])}
            out["failed" if "failed" in statuses else "skipped" if "skipped" in statuses else "passed"] += 1
    return out
