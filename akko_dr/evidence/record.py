"""The records a run keeps: per scenario, its steps, figures and provenance; per run, the context."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from akko_dr.errors import DrillError, PolicyError
from akko_dr.measure import Measurement, utcnow
from akko_dr.policy import TargetClass


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message: what the report shows as the reason."""
    text = str(exc).strip()
    first = text.splitlines()[0].strip() if text else ""
    if isinstance(exc, DrillError | PolicyError | AssertionError):
        return first or type(exc).__name__
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def slug(text: str) -> str:
    """Lower-case words joined by dashes: ``The <job> ran`` -> ``the-job-ran``."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


STATUSES = ("passed", "failed", "inconclusive", "not-applicable", "skipped", "not run")
GAPS = ("inconclusive", "not-applicable", "skipped", "not run")  # coverage gaps: neither passed nor a finding


def status_word(status: str, error: str = "") -> str:
    """What a status reads as: PASS, FAIL, INCONCLUSIVE (emulator), NOT APPLICABLE, SKIPPED, NOT RUN."""
    if status == "inconclusive":
        return "INCONCLUSIVE (emulator)" if "emulator" in error else "INCONCLUSIVE"
    return {"passed": "PASS", "failed": "FAIL"}.get(status, status.replace("-", " ").upper())


@dataclass
class StepRecord:
    keyword: str
    text: str
    status: str = "not run"  # passed | failed | not run
    duration_s: float = 0.0
    error: str = ""


@dataclass(eq=False)
class ScenarioRecord:
    """One scenario's evidence; steps fill it through the ``evidence`` fixture."""

    nodeid: str
    feature: str = ""
    feature_file: str = ""
    name: str = ""
    tags: list[str] = field(default_factory=list)
    status: str = "not run"  # see STATUSES
    error: str = ""
    started_at: str = ""
    finished_at: str = ""
    steps: list[StepRecord] = field(default_factory=list)
    rto_seconds: float | None = None
    rpo_seconds: float | None = None
    rto_target_seconds: float | None = None
    rpo_target_seconds: float | None = None
    rpo_worst_case_seconds: float | None = None  # the loss the backup schedule allows: judged against the RPO
    rpo_basis: str = ""  # what the measured RPO shows ("backup taken by the drill 3 s before the incident")
    target_class: str | None = None
    verdicts: list[str] = field(default_factory=list)
    backup: dict[str, Any] | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """A stable id: the check id(s) the scenario recorded, else ``<feature stem>/<scenario slug>``."""
        checks = [str(c).partition(":")[0].strip() for c in self.details.get("checks", [])]
        if checks:
            return ", ".join(dict.fromkeys(checks))
        stem = Path(self.feature_file).stem if self.feature_file else slug(self.feature)
        return f"{stem}/{slug(self.name or self.nodeid)}"

    @property
    def ids(self) -> list[str]:
        return self.id.split(", ")

    def measure(self, m: Measurement) -> None:
        """Record a measured RTO or RPO with its target and verdict."""
        kind = m.name.lower()
        setattr(self, f"{kind}_seconds", round(m.measured.total_seconds(), 3))
        setattr(self, f"{kind}_target_seconds", m.target.total_seconds())
        self.target_class = m.klass.title
        self.verdicts.append(m.verdict())

    def judge(self, m: Measurement, named: TargetClass, subject: str) -> None:
        """Record ``m``, then assert it is judged in the class the feature names, and that it is met."""
        assert named == m.klass, f"{subject} is in class {m.klass.title} in the policy, not {named.title}"
        self.measure(m)
        assert m.met, m.verdict()

    def judge_rpo(self, measured: Measurement, worst: Measurement, basis: str, named: TargetClass,
                  subject: str) -> None:
        """Record the measured RPO (the restore path) with its basis, and judge the worst case the backup
        schedule allows against the class: that, not the restore path's figure, decides the verdict."""
        self.rpo_basis = basis
        self.rpo_worst_case_seconds = round(worst.measured.total_seconds(), 3)
        self.details["rpo measured (restore path)"] = measured.verdict()
        self.judge(replace(worst, measured=measured.measured), named, subject)  # records the measured figure
        self.verdicts[-1] = f"{worst.verdict()} (the schedule's worst case; measured {measured.verdict()})"
        assert worst.met, worst.verdict()

    def step(self, keyword: str, text: str) -> StepRecord:
        for rec in self.steps:
            if rec.keyword == keyword and rec.text == text and rec.status == "not run":
                return rec
        rec = StepRecord(keyword, text)
        self.steps.append(rec)
        return rec


@dataclass
class RunRecord:
    """A whole run: context an auditor needs, and every scenario."""

    run_id: str
    run_dir: Path
    target: str = "sandbox"
    production: bool = False
    policy_name: str = ""
    policy_version: str = ""
    policy_source: str = ""
    components: dict[str, str] = field(default_factory=dict)
    emulated: list[str] = field(default_factory=list)
    started_at: str = field(default_factory=lambda: utcnow().isoformat())
    finished_at: str = ""
    scenarios: list[ScenarioRecord] = field(default_factory=list)
    trigger: str = "quarterly"  # quarterly | after-change | ad-hoc
    namespace: str = ""
    participants: list[str] = field(default_factory=list)
    host: str = ""
    clock_source: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    dora_refs: dict[str, str] = field(default_factory=dict)  # tag -> article, from the registered markers
    declared_at: str = ""
    declared: list[dict[str, Any]] = field(default_factory=list)  # objectives fixed before the first scenario
    interrupted: dict[str, str] = field(default_factory=dict)  # signal, at (UTC), in (scenario): INCOMPLETE
    not_run: list[str] = field(default_factory=list)  # scenarios collected but never started (interrupted)
    harness_errors: list[str] = field(default_factory=list)  # scenarios ended by a harness bug: exit 2
    notes: list[str] = field(default_factory=list)  # what the run did of note (a stale lock taken over)

    @property
    def rehearsal(self) -> bool:
        return self.target != "live"

    @property
    def incomplete(self) -> bool:
        return bool(self.interrupted)

    def counts(self) -> dict[str, int]:
        """Scenarios per status; every status is counted apart (a gap is never a pass)."""
        out = {s: sum(1 for r in self.scenarios if r.status == s) for s in STATUSES}
        if self.incomplete:  # every scenario without a result, the interrupted one included
            out["not run"] = len(self.not_run)
        return out

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["run_dir"] = str(self.run_dir)
        data["rehearsal"] = self.rehearsal
        data["summary"] = self.counts()
        data["incomplete"] = self.incomplete
        for rec, row in zip(self.scenarios, data["scenarios"], strict=True):
            row["id"] = rec.id
        return data

    def write(self) -> Path:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        path = self.run_dir / "results.json"
        path.write_text(json.dumps(self.to_json(), indent=2, default=str) + "\n")
        return path
