"""The deficiencies register's owner fields, from an optional findings file keyed by scenario or check id.

    verification.worm.shorten:
      severity: high
      owner: Platform team
      due: 2026-12-31
      root_cause: the object store does not enforce COMPLIANCE retention
      retest: the next quarterly drill (2027-Q1)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from akko_dr.errors import PolicyError

FIELDS = {"severity": "Severity", "owner": "Owner", "due": "Due date", "root_cause": "Root cause",
          "retest": "Re-tested by"}
UNASSIGNED = "unassigned"


def load(path: str | Path | None) -> dict[str, dict[str, str]]:
    """Id -> its owner fields; an absent path gives an empty register (every finding "unassigned")."""
    if path is None:
        return {}
    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise PolicyError(f"{path}: cannot read the findings file ({type(err).__name__})") from None
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise PolicyError(f"{path}: expected a mapping of scenario or check ids to {', '.join(FIELDS)}")
    for key, row in raw.items():
        if unknown := set(row) - set(FIELDS):
            raise PolicyError(f"{path}: {key}: unknown {', '.join(sorted(unknown))} "
                              f"(expected {', '.join(FIELDS)})")
    return {str(k): {f: str(v) for f, v in row.items()} for k, row in raw.items()}


def entry(register: dict[str, dict[str, Any]], ids: list[str]) -> dict[str, str]:
    """The owner fields of the first id the register names; each missing field reads "unassigned"."""
    row = next((register[i] for i in ids if i in register), {})
    return {f: str(row.get(f) or UNASSIGNED) for f in FIELDS}
