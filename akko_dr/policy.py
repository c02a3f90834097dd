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

from akko_dr.dump_keys import (
    DEFAULT_GLOBALS_TEMPLATE,
    DEFAULT_TEMPLATE,
    KeyTemplate,
    TemplateError,
    compile_template,
)
from akko_dr.errors import PolicyError
from akko_dr.ports import FORMAT_SUFFIXES

DEFAULT_POLICY = "akko-2026.04.yaml"
JOB_KINDS = ("pg-dump", "mirror", "realm-export", "velero", "wal-archive")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
DEFAULT_PROBE_DEADLINE = timedelta(minutes=5)
DEFAULT_MIN_ROW_RATIO = 0.5
DEFAULT_DEADLINES = {"rollout": "5m", "job": "1h", "restore": "1h",  # harness settings, cadence.deadlines
                     "object_store": "30s"}


def parse_duration(text: object, key: str, allow_zero: bool = False) -> timedelta:
    """Parse ``2h``/``14d``/``20m`` (a number and a unit) into a timedelta; ``key`` names it in the error.
    Zero is refused unless allowed: no target, retention or deadline of the playbook can be zero."""
    match = _DURATION.match(text.strip()) if isinstance(text, str) else None
    if not match:
        raise PolicyError(f"{key}: expected a duration like '2h' or '14d', got {text!r}")
    value = timedelta(seconds=float(match[1]) * _UNITS[match[2]])
    if value <= timedelta(0) and not (allow_zero and value == timedelta(0)):
        raise PolicyError(f"{key}: expected a positive duration like '2h' or '14d', got {text!r}")
    return value


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
class WalArchiveSpec:
    """A wal-archive job's archive: Barman's cloud layout ``s3://<backups bucket>/<prefix>/<server>/``."""

    timeout: timedelta  # archive_timeout: the longest a committed write waits before its WAL is archived
    prefix: str
    server: str


@dataclass(frozen=True)
class BackupJob:
    """A row of the Backup schedule table."""

    name: str
    description: str
    schedule: str  # a cron expression, or "continuous"
    retention: Retention
    kind: str  # pg-dump | mirror | realm-export | velero | wal-archive
    archive: WalArchiveSpec | None = None  # wal-archive jobs: where the WAL goes and how often at worst

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

    def rpo_window(self) -> timedelta:
        """The most data this job lets a loss take: the archive timeout of a WAL archive (its schedule
        only takes base backups), else the longest gap between two runs."""
        return self.archive.timeout if self.archive else self.interval()


@dataclass(frozen=True)
class Database:
    name: str
    klass: TargetClass
    job: BackupJob
    consumer: str
    wal_job: BackupJob | None = None  # the WAL archive that allows point-in-time recovery, if any


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
    dump_key: KeyTemplate = field(  # a dump's name after the prefix
        default_factory=lambda: compile_template(DEFAULT_TEMPLATE))
    globals_key: KeyTemplate = field(  # the roles (pg_dumpall --globals-only), beside the dumps
        default_factory=lambda: compile_template(DEFAULT_GLOBALS_TEMPLATE, need_database=False))
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
    snapshot_retention: timedelta | None = None  # warehouse.snapshot_retention: Iceberg expire-snapshots age
    min_row_ratio: float = DEFAULT_MIN_ROW_RATIO  # without a manifest: restored rows >= ratio x the source's

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


KEYS = {  # every key each section may hold; anything else is refused, named (a typo never goes unseen)
    "": ("name", "version", "namespace", "classes", "jobs", "databases", "scope", "storage", "cadence",
         "drills", "warehouse", "verification"),
    "classes.*": ("title", "rto", "rpo", "scenario"),
    "jobs.*": ("description", "kind", "schedule", "retention", "archive"),
    "jobs.*.retention": ("local", "cold", "worm"),
    "databases.*": ("class", "job", "consumer", "wal"),
    "scope[]": ("component", "mechanism", "tool", "class", "jobs"),
    "storage": ("backups_bucket", "dump_prefix", "hot_buckets", "replica_bucket", "audit_bucket",
                "audit_lock", "dump_key", "globals_key", "dump_format"),
    "storage.audit_lock": ("mode", "retention"),
    "cadence": ("drill_interval", "schedule_tolerance", "schedule_time_zone", "probe_deadline", "deadlines"),
}


def _known(data: Any, section: str, where: str) -> None:
    """Refuse a key the section does not define, naming it and the keys it may hold."""
    if not isinstance(data, dict):
        what = where.rstrip(".") or "top level"
        raise PolicyError(f"{what}: expected a mapping, got {type(data).__name__}")
    if unknown := sorted(str(k) for k in data if k not in KEYS[section]):
        raise PolicyError(f"{where}{unknown[0]}: unknown key (expected one of {', '.join(KEYS[section])})")


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
    if value not in FORMAT_SUFFIXES:
        raise PolicyError(f"storage.dump_format: expected one of {', '.join(FORMAT_SUFFIXES)}, got {value!r}")
    return value


def _classes(raw: dict[str, Any]) -> dict[str, TargetClass]:
    out = {}
    for key, row in _need(raw, "classes", dict, "").items():
        w = f"classes.{key}."
        _known(row, "classes.*", w)
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
        _known(row, "jobs.*", w)
        schedule = _need(row, "schedule", str, w)
        if schedule != "continuous" and not _cron_ok(schedule):
            raise PolicyError(f"{w}schedule: expected a cron expression or 'continuous' (five fields, like "
                              f"'0 */4 * * *'), got {schedule!r}")
        ret = _need(row, "retention", dict, w)
        _known(ret, "jobs.*.retention", w + "retention.")
        if not isinstance(ret.get("worm", False), bool):
            raise PolicyError(f"{w}retention.worm: expected true or false, got {ret['worm']!r}")
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
            archive=_archive(row, kind, w),
        )
    return out


def _archive(row: dict[str, Any], kind: str, where: str) -> WalArchiveSpec | None:
    """The ``archive`` block a wal-archive job must have (and no other kind may)."""
    if kind != "wal-archive":
        if "archive" in row:
            raise PolicyError(f"{where}archive: only jobs of kind wal-archive archive WAL")
        return None
    raw, w = _need(row, "archive", dict, where), f"{where}archive."
    return WalArchiveSpec(timeout=parse_duration(_need(raw, "timeout", str, w), w + "timeout"),
                          prefix=_need(raw, "prefix", str, w), server=_need(raw, "server", str, w))
def _cron_ok(expr: str) -> bool:
    """A standard five-field cron expression croniter can run."""
    return len(expr.split()) == 5 and croniter.is_valid(expr)


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


def _wal_job(jobs: dict[str, BackupJob], name: object, where: str) -> BackupJob | None:
    if name is None:
        return None
    job = _ref(jobs, name, where)
    if job.kind != "wal-archive":
        raise PolicyError(f"{where}: {name!r} is a {job.kind} job, expected a wal-archive job")
    return job


def _policy(raw: Any, source: str) -> Policy:
    if not isinstance(raw, dict):
        raise PolicyError("expected a mapping at the top level")
    _known(raw, "", "")
    classes, jobs = _classes(raw), _jobs(raw)
    databases = {}
    for name, row in _need(raw, "databases", dict, "").items():
        w = f"databases.{name}."
        _known(row, "databases.*", w)
        databases[name] = Database(
            name=name,
            klass=_ref(classes, _need(row, "class", str, w), w + "class"),
            job=_ref(jobs, _need(row, "job", str, w), w + "job"),
            consumer=_need(row, "consumer", str, w),
            wal_job=_wal_job(jobs, row.get("wal"), w + "wal"),
        )
    scope = []
    for i, row in enumerate(_need(raw, "scope", list, "")):
        w = f"scope[{i}]."
        _known(row, "scope[]", w)
        scope.append(ScopeItem(
            component=_need(row, "component", str, w),
            mechanism=_need(row, "mechanism", str, w),
            tool=str(row.get("tool", "")),
            klass=_ref(classes, _need(row, "class", str, w), w + "class"),
            jobs=tuple(_ref(jobs, j, w + "jobs") for j in _need(row, "jobs", list, w)),
        ))
    st = _need(raw, "storage", dict, "")
    _known(st, "storage", "storage.")
    lock = _need(st, "audit_lock", dict, "storage.")
    _known(lock, "storage.audit_lock", "storage.audit_lock.")
    if not all(isinstance(b, str) for b in _need(st, "hot_buckets", list, "storage.")):
        raise PolicyError(f"storage.hot_buckets: expected a list of bucket names, got {st['hot_buckets']!r}")
    storage = Storage(
        backups_bucket=_need(st, "backups_bucket", str, "storage."),
        dump_prefix=_need(st, "dump_prefix", str, "storage."),
        audit_bucket=_need(st, "audit_bucket", str, "storage."),
        audit_lock_mode=_need(lock, "mode", str, "storage.audit_lock."),
        audit_lock_retention=parse_duration(
            _need(lock, "retention", str, "storage.audit_lock."), "storage.audit_lock.retention"),
        hot_buckets=tuple(_need(st, "hot_buckets", list, "storage.")),
        replica_bucket=_need(st, "replica_bucket", str, "storage."),
        dump_key=_template(st.get("dump_key", DEFAULT_TEMPLATE), "storage.dump_key", True),
        globals_key=_template(st.get("globals_key", DEFAULT_GLOBALS_TEMPLATE), "storage.globals_key", False),
        dump_format=_dump_format(st),
    )
    cadence = _need(raw, "cadence", dict, "")
    _known(cadence, "cadence", "cadence.")
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
                                          "cadence.schedule_tolerance", allow_zero=True),
        drills=_drills(raw.get("drills") or {}),
        source=source,
        schedule_time_zone=_time_zone(cadence.get("schedule_time_zone", "UTC"), "cadence.schedule_time_zone"),
        probe_deadline=parse_duration(cadence.get("probe_deadline", "5m"), "cadence.probe_deadline"),
        deadlines=parse_deadlines(cadence.get("deadlines") or {}),
        snapshot_retention=_snapshot_retention(raw.get("warehouse")),
        min_row_ratio=_ratio((raw.get("verification") or {}).get("min_row_ratio", DEFAULT_MIN_ROW_RATIO),
                             "verification.min_row_ratio"),
    )


def _snapshot_retention(raw: object) -> timedelta | None:
    """The Iceberg snapshot retention the policy declares (``warehouse.snapshot_retention``), if any."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise PolicyError("warehouse: expected a mapping (snapshot_retention: <duration>)")
    value = raw.get("snapshot_retention")
    return None if value is None else parse_duration(value, "warehouse.snapshot_retention")


def _drills(raw: object) -> dict[str, dict[str, Any]]:
    """The drills section: a mapping of drill keys to their settings."""
    if not isinstance(raw, dict) or not all(isinstance(v, dict) for v in raw.values()):
        raise PolicyError("drills: expected a mapping of drill keys (drill-1, …) to mappings of settings")
    return dict(raw)


def _template(text: object, key: str, need_database: bool) -> KeyTemplate:
    """A dump key template (``akko_dr.dump_keys``); a bad one names the key and the expected form."""
    if not isinstance(text, str):
        raise PolicyError(f"{key}: expected a key template like {DEFAULT_TEMPLATE!r}, got {text!r}")
    try:
        return compile_template(text, need_database)
    except TemplateError as err:
        raise PolicyError(f"{key}: {err}") from None


def _ratio(value: object, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        raise PolicyError(f"{key}: expected a number in (0, 1], got {value!r}")
    return float(value)


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
    try:
        return _policy(raw, source)
    except PolicyError as err:
        raise PolicyError(f"{source}: {err}") from None  # every error names the file, then the key
