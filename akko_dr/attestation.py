"""Steps a person performs, or a target cannot run: attestations and "not applicable" records.

An attestation (who, role, when, what was observed) comes from an answers file (``--answers``, YAML)
or, when pytest runs with ``-s`` on a terminal, from a prompt. Without either, a tabletop scenario
is skipped with the reason: nothing is reported as passed that nobody did. A step that cannot run on
a target shows in the evidence as "not applicable: <reason>", never as passed.

Loaded as a pytest plugin by the root ``conftest.py``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from akko_dr.errors import PolicyError
from akko_dr.evidence.plugin import record_of
from akko_dr.evidence.record import ScenarioRecord
from akko_dr.measure import utcnow

STEP_LABEL = pytest.StashKey[str]()
ANSWERS_ENV = "AKKO_DR_ANSWERS"


@dataclass(frozen=True)
class Attestation:
    """A statement by a named person about what they did or observed."""

    key: str
    question: str
    who: str
    role: str
    when: str
    observed: str
    source: str

    def label(self) -> str:
        return f"attested by {self.who} ({self.role}) at {self.when}"


class Answers:
    """Attestations from an answers file, or asked at the terminal."""

    def __init__(self, path: Path | None, interactive: bool) -> None:
        self.path, self.interactive = path, interactive
        self._rows = load_answers(path) if path else {}

    def attest(self, key: str, question: str) -> Attestation:
        """The attestation for ``key``; skips the scenario (with the reason) when nobody can answer."""
        if key in self._rows:
            row = self._rows[key]
            return Attestation(key, question, row["who"], str(row.get("role", "")),
                               str(row.get("when") or utcnow().isoformat(timespec="seconds")),
                               row["observed"], f"answers file {self.path}")
        if self.interactive:
            return _ask(key, question)
        pytest.skip(f"tabletop: nobody attested {key!r} ({question}); give --answers FILE or run with -s "
                    "on a terminal")


ROW_KEYS = ("who", "role", "when", "observed")


def load_answers(path: Path) -> dict[str, dict[str, str]]:
    """Read and check an answers file: each key maps to who, observed (and optionally role, when), each
    a string; ``when`` an ISO date-time. Anything else is refused, naming the file and the key."""
    try:
        raw = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise PolicyError(f"{path}: cannot read attestation answers ({' '.join(str(err).split())})") from None
    if not isinstance(raw, dict):
        raise PolicyError(f"{path}: expected a mapping of attestation keys")
    for key, row in raw.items():
        _check_row(path, key, row)
    return raw


def _check_row(path: Path, key: object, row: object) -> None:
    if not isinstance(row, dict) or not row.get("who") or not row.get("observed"):
        raise PolicyError(f"{path}: {key}: expected 'who' and 'observed' (and optionally 'role', 'when')")
    if unknown := sorted(str(k) for k in row if k not in ROW_KEYS):
        raise PolicyError(f"{path}: {key}.{unknown[0]}: unknown key (expected one of {', '.join(ROW_KEYS)})")
    for field_name in ("who", "role", "observed"):
        if field_name in row and not isinstance(row[field_name], str):
            raise PolicyError(f"{path}: {key}.{field_name}: expected a string, got "
                              f"{type(row[field_name]).__name__}")
    if "when" in row and not _is_time(row["when"]):
        raise PolicyError(f"{path}: {key}.when: expected a date-time like '2026-11-27T10:00:00', "
                          f"got {row['when']!r}")


def _is_time(value: object) -> bool:
    if isinstance(value, datetime):
        return True
    try:
        datetime.fromisoformat(str(value))
    except ValueError:
        return False
    return True


def _ask(key: str, question: str) -> Attestation:
    print(f"\n[attestation {key}] {question}", file=sys.stderr)
    who = input("  your name: ").strip()
    role = input("  your role: ").strip()
    observed = input("  what you did / observed: ").strip()
    if not who or not observed:
        pytest.fail(f"attestation {key!r}: a name and an observation are required")
    when = utcnow().isoformat(timespec="seconds")
    return Attestation(key, question, who, role, when, observed, "interactive")


def record_attestation(request: pytest.FixtureRequest, evidence: ScenarioRecord, att: Attestation) -> None:
    """Put the attestation in the evidence and label the step with it."""
    evidence.details.setdefault("attestations", []).append(asdict(att))
    request.node.stash[STEP_LABEL] = att.label()


def attest_step(request: pytest.FixtureRequest, evidence: ScenarioRecord, answers: Answers, key: str,
                question: str) -> None:
    """A tabletop step: ask (or read) the attestation and record it."""
    record_attestation(request, evidence, answers.attest(key, question))


def record_not_applicable(request: pytest.FixtureRequest, evidence: ScenarioRecord, step: str,
                          reason: str) -> None:
    """Record a step this target cannot run; the step shows "not applicable: <reason>"."""
    evidence.details.setdefault("not applicable", {})[step] = reason
    request.node.stash[STEP_LABEL] = f"not applicable: {reason}"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("akko-dr").addoption(
        "--answers", type=Path, default=os.environ.get(ANSWERS_ENV) or None,
        help=f"attestations for the tabletop steps (YAML; default ${ANSWERS_ENV})")


@pytest.fixture(scope="session")
def answers(pytestconfig: pytest.Config) -> Answers:
    """Where the tabletop steps get their attestations."""
    interactive = pytestconfig.getoption("capture") == "no" and sys.stdin.isatty()
    return Answers(pytestconfig.getoption("answers"), interactive)


@pytest.hookimpl(trylast=True)
def pytest_bdd_after_step(request, feature, scenario, step, step_func, step_func_args) -> None:
    """Relabel a step that was attested or not applicable (the evidence plugin marked it passed)."""
    label = request.node.stash.get(STEP_LABEL, None)
    if label is None:
        return
    del request.node.stash[STEP_LABEL]
    done = [s for s in record_of(request.node).steps
            if s.keyword == step.keyword and s.text == step.name and s.status == "passed"]
    if done:
        done[-1].status = label
