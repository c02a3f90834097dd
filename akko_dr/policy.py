"""The DR policy: targets, schedules, retention and scope, loaded from a YAML data file."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import timedelta
from importlib import resources
from itertools import pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from croniter import croniter

from akko_dr.errors import PolicyError
from akko_dr.ports import DUMP_SUFFIXES

DEFAULT_POLICY = "akko-2026.04.yaml"
JOB_KINDS = ("pg-dump", "mirror", "realm-export", "velero")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
DEFAULT_PROBE_DEADLINE = timedelta(minutes=5)
DEFAULT_DEADLINES = {"rollout": "5m", "job": "1h", "restore": "1h"}  # harness settings, cadence.deadlines


def parse_duration(text: object, key: str) -> timedelta:
    """Parse ``2h``/``14d``/``20m`` into a timedelta; ``key`` names it in the error."""
    match = _DURATION.match(str(text).strip())
    if not match:
        raise PolicyError(f"{key}: expected a duration like '2h' or '14d', got {text!r}")
    return timedelta(seconds=float(match[1]) * _UNITS[match[2]])


def format_duration(value: timedelta | float) -> str:
    """Human form of a duration: ``2h``, ``1h30m``, ``12.4s``."""
    seconds = value.total_seconds() if isinstance(value, timedelta) else float(value)
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    return "".join(f"{n}{u}" for n, u in parts if n) or "0s"


@dataclass(frozen=True)
class TargetClass:
    """A recovery class of the playbook's Targets table."""

    key: str
    title: str
    rto: timedelta
    rpo: timedelta
    scenario: str


@dataclass(frozen=True)
class Retention:
    local: timedelta | None
    cold: timedelta | None
    worm: bool = False


@dataclass(frozen=True)
class BackupJob:
    """A row of the Backup schedule table."""

    name: str
    description: str
    schedule: str  # a cron expression, or "continuous"
    retention: Retention
    kind: str  # pg-dump | mirror | realm-export | velero

    @property
    def continuous(self) -> bool:
        return self.schedule == "continuous"

    def interval(self) -> timedelta:
        """Longest gap between two runs of the schedule (zero when continuous)."""
        if self.continuous:
            return timedelta(0)
        it = croniter(self.schedule, _CRON_BASE)
        runs = [it.get_next(float) for _ in range(400)]
        return timedelta(seconds=max(b - a for a, b in pairwise(runs)))


@dataclass(frozen=True)
class Database:
    name: str
    klass: TargetClass
    job: BackupJob
    consumer: str


@dataclass(frozen=True)
class ScopeItem:
    component: str
    mechanism: str
    tool: str
    klass: TargetClass
    jobs: tuple[BackupJob, ...]


@dataclass(frozen=True)
class Storage:
    backups_bucket: str
    dump_prefix: str
    audit_bucket: str
    audit_lock_mode: str
    audit_lock_retention: timedelta
    hot_buckets: tuple[str, ...] = ()
    replica_bucket: str = ""
    dump_format: str = "plain"  # what the sandbox's pg-dump job writes: plain (.sql.gz) or custom (.dump)


@dataclass(frozen=True)
class Policy:
    """The whole playbook policy, validated and cross-referenced."""

    name: str
    version: str
    namespace: str
    classes: dict[str, TargetClass]
    jobs: dict[str, BackupJob]
    databases: dict[str, Database]
    scope: tuple[ScopeItem, ...]
    storage: Storage
    drill_interval: timedelta  # the longest time between two drills (quarterly)
    schedule_tolerance: timedelta  # slack allowed on a job's schedule
    drills: dict[str, dict[str, Any]] = field(default_factory=dict)
    source: str = ""
    schedule_time_zone: str = "UTC"  # the time zone the schedule table's cron expressions are read in
    probe_deadline: timedelta = DEFAULT_PROBE_DEADLINE  # how long a probe (replication canary) may wait
    deadlines: dict[str, timedelta] = field(default_factory=lambda: parse_deadlines({}))  # live waits

    def klass(self, title_or_key: str) -> TargetClass:
        """Find a class by its key (``critical-data``) or title (``Critical data``)."""
        wanted = title_or_key.strip().lower()
        for k in self.classes.values():
            if wanted in (k.key, k.title.lower()):
                return k
        raise PolicyError(f"classes: no class named {title_or_key!r} (have {', '.join(self.classes)})")

    def database(self, name: str) -> Database:
        try:
            return self.databases[name]
        except KeyError:
            raise PolicyError(f"databases: {name!r} is not in the policy") from None

    def drill(self, key: str) -> dict[str, Any]:
        try:
            return self.drills[key]
        except KeyError:
            raise PolicyError(f"drills: {key!r} is not in the policy") from None


_CRON_BASE = 1_767_225_600.0  # 2026-01-01T00:00:00Z: a fixed base keeps interval() deterministic


def _need(data: Any, key: str, kind: type, where: str) -> Any:
    if not isinstance(data, dict) or key not in data:
        raise PolicyError(f"{where}{key}: missing (expected {kind.__name__})")
    value = data[key]
    if not isinstance(value, kind):
        raise PolicyError(f"{where}{key}: expected {kind.__name__}, got {type(value).__name__} {value!r}")
    return value


def _dump_format(storage: dict[str, Any]) -> str:
    """storage.dump_format: plain (gzipped SQL, the default) or custom (pg_dump's archive)."""
    value = storage.get("dump_format", "plain")
    if value not in DUMP_SUFFIXES:
        raise PolicyError(f"storage.dump_format: expected one of {', '.join(DUMP_SUFFIXES)}, got {value!r}")
    return value


def _classes(raw: dict[str, Any]) -> dict[str, TargetClass]:
    out = {}
    for key, row in _need(raw, "classes", dict, "").items():
        w = f"classes.{key}."
        out[key] = TargetClass(
            key=key,
            title=_need(row, "title", str, w),
            rto=parse_duration(_need(row, "rto", str, w), w + "rto"),
            rpo=parse_duration(_need(row, "rpo", str, w), w + "rpo"),
            scenario=str(row.get("scenario", "")),
        )
    return out


def _jobs(raw: dict[str, Any]) -> dict[str, BackupJob]:
    out = {}
    for name, row in _need(raw, "jobs", dict, "").items():
        w = f"jobs.{name}."
        schedule = _need(row, "schedule", str, w)
        if schedule != "continuous" and not croniter.is_valid(schedule):
            raise PolicyError(f"{w}schedule: expected a cron expression or 'continuous', got {schedule!r}")
        ret = _need(row, "retention", dict, w)
        local, cold = ret.get("local"), ret.get("cold")
        kind = _need(row, "kind", str, w)
        if kind not in JOB_KINDS:
            raise PolicyError(f"{w}kind: expected one of {', '.join(JOB_KINDS)}, got {kind!r}")
        out[name] = BackupJob(
            name=name,
            description=str(row.get("description", "")),
            schedule=schedule,
            kind=kind,
            retention=Retention(
                local=parse_duration(local, w + "retention.local") if local is not None else None,
                cold=parse_duration(cold, w + "retention.cold") if cold is not None else None,
                worm=bool(ret.get("worm", False)),
            ),
        )
    return out


def _time_zone(name: object, key: str) -> str:
    """An IANA time zone name the schedule's cron expressions are read in."""
    try:
        ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        raise PolicyError(f"{key}: expected a time zone name like 'Europe/Paris', got {name!r}") from None
    return str(name)


def _ref(table: dict[str, Any], key: Any, where: str) -> Any:
    if key not in table:
        raise PolicyError(f"{where}: {key!r} is not defined (expected one of {', '.join(table)})")
    return table[key]


def _policy(raw: Any, source: str) -> Policy:
    if not isinstance(raw, dict):
        raise PolicyError(f"{source}: expected a mapping at the top level")
    classes, jobs = _classes(raw), _jobs(raw)
    databases = {}
    for name, row in _need(raw, "databases", dict, "").items():
        w = f"databases.{name}."
        databases[name] = Database(
            name=name,
            klass=_ref(classes, _need(row, "class", str, w), w + "class"),
            job=_ref(jobs, _need(row, "job", str, w), w + "job"),
            consumer=_need(row, "consumer", str, w),
        )
    scope = []
    for i, row in enumerate(_need(raw, "scope", list, "")):
        w = f"scope[{i}]."
        scope.append(ScopeItem(
            component=_need(row, "component", str, w),
            mechanism=_need(row, "mechanism", str, w),
            tool=str(row.get("tool", "")),
            klass=_ref(classes, _need(row, "class", str, w), w + "class"),
            jobs=tuple(_ref(jobs, j, w + "jobs") for j in _need(row, "jobs", list, w)),
        ))
    st = _need(raw, "storage", dict, "")
    lock = _need(st, "audit_lock", dict, "storage.")
    storage = Storage(
        backups_bucket=_need(st, "backups_bucket", str, "storage."),
        dump_prefix=_need(st, "dump_prefix", str, "storage."),
        audit_bucket=_need(st, "audit_bucket", str, "storage."),
        audit_lock_mode=_need(lock, "mode", str, "storage.audit_lock."),
        audit_lock_retention=parse_duration(
            _need(lock, "retention", str, "storage.audit_lock."), "storage.audit_lock.retention"),
        hot_buckets=tuple(_need(st, "hot_buckets", list, "storage.")),
        replica_bucket=_need(st, "replica_bucket", str, "storage."),
        dump_format=_dump_format(st),
    )
    cadence = _need(raw, "cadence", dict, "")
    return Policy(
        name=_need(raw, "name", str, ""),
        version=_need(raw, "version", str, ""),
        namespace=_need(raw, "namespace", str, ""),
        classes=classes,
        jobs=jobs,
        databases=databases,
        scope=tuple(scope),
        storage=storage,
        drill_interval=parse_duration(_need(cadence, "drill_interval", str, "cadence."),
                                      "cadence.drill_interval"),
        schedule_tolerance=parse_duration(_need(cadence, "schedule_tolerance", str, "cadence."),
                                          "cadence.schedule_tolerance"),
        drills=dict(raw.get("drills") or {}),
        source=source,
        schedule_time_zone=_time_zone(cadence.get("schedule_time_zone", "UTC"), "cadence.schedule_time_zone"),
        probe_deadline=parse_duration(cadence.get("probe_deadline", "5m"), "cadence.probe_deadline"),
        deadlines=parse_deadlines(cadence.get("deadlines") or {}),
    )


def parse_deadlines(raw: object) -> dict[str, timedelta]:
    """How long a live drill waits for a rollout, a backup Job and a Velero restore (cadence.deadlines)."""
    if not isinstance(raw, dict) or set(raw) - set(DEFAULT_DEADLINES):
        names = ", ".join(DEFAULT_DEADLINES)
        raise PolicyError(f"cadence.deadlines: expected a mapping of {names} to durations")
    return {k: parse_duration(str(raw.get(k, v)), f"cadence.deadlines.{k}")
            for k, v in DEFAULT_DEADLINES.items()}


def load_policy(path: str | Path | None = None) -> Policy:
    """Load and validate a policy file; the packaged AKKO 2026.04 policy by default."""
    if path is None:
        text = resources.files("akko_dr.policies").joinpath(DEFAULT_POLICY).read_text()
        source = DEFAULT_POLICY
    else:
        try:
            text = Path(path).read_text()
        except OSError as err:
            raise PolicyError(f"{path}: cannot read policy file ({err.strerror})") from None
        source = str(path)
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise PolicyError(f"{source}: not valid YAML ({' '.join(str(err).split())})") from None
    return _policy(raw, source)
