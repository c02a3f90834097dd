"""Prometheus metrics of a run, per drill and database: written as text, pushed when a gateway is set."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway, write_to_textfile

METRICS = "metrics.prom"
PUSHGATEWAY_ENV = "AKKO_DR_PUSHGATEWAY"
JOB = "akko-dr"
_LABELS = ("drill", "database", "target")


def _latest(rows: list[dict[str, Any]], key: str) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (drill, database), the last row that measured ``key``: a later row without it hides nothing."""
    return {(r["drill"], r["database"]): r for r in rows if r.get(key) is not None}


def _passed(rows: list[dict[str, Any]]) -> dict[tuple[str, str], str]:
    """(drill, database) -> target, for each drill whose every scenario passed in this run."""
    keys: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        keys.setdefault((r["drill"], r["database"]), []).append(r)
    return {k: rs[-1]["target"] for k, rs in keys.items() if all(r["status"] == "passed" for r in rs)}


def _last_success(rows: list[dict[str, Any]]) -> dict[tuple[str, str], float]:
    out: dict[tuple[str, str], float] = {}
    for r in rows:
        if r["status"] == "passed" and r["finished_at"]:
            out[(r["drill"], r["database"])] = datetime.fromisoformat(r["finished_at"]).timestamp()
    return out


def registry_for(current: list[dict[str, Any]], history: list[dict[str, Any]]) -> CollectorRegistry:
    """Gauges of this run's figures; the last success (from the history) only for drills that passed now."""
    reg = CollectorRegistry()
    gauges = {
        "rto_seconds": Gauge("akko_dr_restore_duration_seconds",
                             "Measured recovery time (RTO) of the last drill run", _LABELS, registry=reg),
        "rpo_seconds": Gauge("akko_dr_rpo_seconds", "Measured data loss (RPO) of the last drill run",
                             _LABELS, registry=reg),
        "rto_target_seconds": Gauge("akko_dr_rto_target_seconds", "RTO target from the policy",
                                    _LABELS, registry=reg),
        "rpo_target_seconds": Gauge("akko_dr_rpo_target_seconds", "RPO target from the policy",
                                    _LABELS, registry=reg),
        "rpo_worst_case_seconds": Gauge("akko_dr_rpo_worst_case_seconds",
                                        "Data loss the backup schedule allows (judged against the RPO)",
                                        _LABELS, registry=reg),
    }
    success = Gauge("akko_dr_last_success_timestamp_seconds",
                    "Unix time the drill last passed (only for drills that passed in this run)", _LABELS,
                    registry=reg)
    for key, gauge in gauges.items():
        for (drill, db), row in _latest(current, key).items():
            gauge.labels(drill, db, row["target"]).set(row[key])
    passed = _passed(current)
    for key, when in _last_success(history).items():
        if key in passed:
            success.labels(*key, passed[key]).set(when)
    return reg


def write(run_dir: Path, current: list[dict[str, Any]], history: list[dict[str, Any]]) -> tuple[Path, str]:
    """Write ``metrics.prom``; push to ``$AKKO_DR_PUSHGATEWAY`` if set. Returns the path and what happened."""
    reg = registry_for(current, history)
    path = run_dir / METRICS
    write_to_textfile(str(path), reg)
    gateway = os.environ.get(PUSHGATEWAY_ENV)
    if not gateway:
        return path, f"not pushed (no {PUSHGATEWAY_ENV} configured)"
    try:
        push_to_gateway(gateway, job=JOB, registry=reg, timeout=10)
    except OSError as err:
        return path, f"push to the Pushgateway failed: {type(err).__name__}"  # the URL may hold credentials
    return path, "pushed to the configured Pushgateway"
