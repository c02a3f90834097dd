"""Known findings: failures the harness must report on a given target (e.g. the S3 emulator is not WORM).

Kept as InSpec keeps waivers: keyed by the scenario's stable id (a check id such as
``verification.worm.shorten``, or ``<feature stem>/<scenario slug>``), each with the reason it must fail
with, a justification and an expiry date. The drill run reports them as failed scenarios; the test command
stays green only while each one still fails for its reason. An expired waiver stops the run with one line.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
import yaml

from akko_dr.errors import PolicyError

FIELDS = ("id", "reason", "justification", "expires")


@dataclass(frozen=True)
class KnownFinding:
    id: str  # the scenario's stable id (ScenarioRecord.id), or one of its check ids
    reason: str  # must appear in the scenario's one-line failure reason
    justification: str
    expires: date
    target: str = "sandbox"


KNOWN_FINDING = pytest.StashKey[list[KnownFinding]]()


def _expiry(value: object, where: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise PolicyError(f"{where}: expires: expected a date (YYYY-MM-DD), got {value!r}") from None


def _finding(row: object, where: str) -> KnownFinding:
    if not isinstance(row, dict) or not set(FIELDS) <= set(row):
        raise PolicyError(f"{where}: expected a mapping with {', '.join(FIELDS)} (and optionally target)")
    return KnownFinding(str(row["id"]), str(row["reason"]), str(row["justification"]),
                        _expiry(row["expires"], where), str(row.get("target", "sandbox")))


def load_known_findings(path: Path, target: str, today: date | None = None) -> list[KnownFinding]:
    """This target's waivers; an expired one is an error naming it (the finding must be fixed or renewed)."""
    try:
        rows = yaml.safe_load(Path(path).read_text()) or []
    except (OSError, yaml.YAMLError) as err:
        raise PolicyError(f"{path}: cannot read known findings ({err})") from None
    if not isinstance(rows, list):
        raise PolicyError(f"{path}: expected a list of known findings")
    findings = [_finding(row, f"{path}[{i}]") for i, row in enumerate(rows)]
    today = today or date.today()
    for f in findings:
        if f.expires < today:
            raise PolicyError(f"{path}: the waiver of known finding {f.id} expired on {f.expires} "
                              f"({f.justification}): fix the finding or renew the waiver")
    return [f for f in findings if f.target == target]


def match_finding(findings: list[KnownFinding], ids: list[str]) -> KnownFinding | None:
    """The waiver keyed by one of the scenario's ids."""
    return next((f for f in findings if f.id in ids), None)
