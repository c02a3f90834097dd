"""Known findings: failures the harness must report on a given target (e.g. the S3 emulator is not WORM).

The drill run reports them as failed scenarios. The test command lists them in a YAML file so that the
suite stays green only while each one still fails, and for the stated reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from akko_dr.errors import PolicyError


@dataclass(frozen=True)
class KnownFinding:
    scenario: str  # a substring of "<feature>: <scenario>"
    reason: str  # must appear in the scenario's one-line failure reason
    target: str = "sandbox"


KNOWN_FINDING = pytest.StashKey[KnownFinding]()


def load_known_findings(path: Path, target: str) -> list[KnownFinding]:
    try:
        rows = yaml.safe_load(Path(path).read_text()) or []
    except (OSError, yaml.YAMLError) as err:
        raise PolicyError(f"{path}: cannot read known findings ({err})") from None
    findings = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or not {"scenario", "reason"} <= set(row):
            raise PolicyError(f"{path}[{i}]: expected a mapping with 'scenario' and 'reason'")
        findings.append(KnownFinding(row["scenario"], row["reason"], row.get("target", "sandbox")))
    return [f for f in findings if f.target == target]


def match_finding(findings: list[KnownFinding], item: pytest.Item) -> KnownFinding | None:
    """The finding whose scenario text appears in this BDD item's "<feature>: <scenario>" name."""
    title = getattr(getattr(item, "function", None), "__doc__", None) or ""
    return next((f for f in findings if f.scenario in title), None)
