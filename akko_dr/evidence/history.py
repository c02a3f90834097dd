"""The history store (``<evidence-dir>/history.jsonl``): every run's figures, and an SVG chart of them."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from html import escape
from pathlib import Path
from typing import Any

from akko_dr.evidence.record import RunRecord, ScenarioRecord
from akko_dr.policy import format_duration

HISTORY = "history.jsonl"
CHART_RUNS = 20


def drill_of(rec: ScenarioRecord) -> str:
    """The drill a scenario belongs to, from its ``@drill-N`` tag ("" when none)."""
    return next((t for t in rec.tags if t.startswith("drill-")), "")


def judged(rec: ScenarioRecord) -> bool:
    """A scenario judged against RTO/RPO targets: it measured a figure or carries a ``@class-…`` tag."""
    measured = rec.rto_seconds is not None or rec.rpo_seconds is not None
    return measured or any(t.startswith("class-") for t in rec.tags)


def figures(run: RunRecord) -> list[dict[str, Any]]:
    """One history row per judged scenario of the run."""
    return [{"run_id": run.run_id, "finished_at": run.finished_at, "target": run.target,
             "rehearsal": run.rehearsal, "drill": drill_of(rec), "database": rec.details.get("database", ""),
             "scenario": rec.name, "class": rec.target_class, "status": rec.status,
             "rto_seconds": rec.rto_seconds, "rto_target_seconds": rec.rto_target_seconds,
             "rpo_seconds": rec.rpo_seconds, "rpo_target_seconds": rec.rpo_target_seconds,
             "rpo_worst_case_seconds": rec.rpo_worst_case_seconds}
            for rec in run.scenarios if judged(rec)]


def read(evidence_dir: Path) -> list[dict[str, Any]]:
    path = evidence_dir / HISTORY
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def append(evidence_dir: Path, rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Append rows to the store; returns the whole history including them."""
    evidence_dir.mkdir(parents=True, exist_ok=True)
    with open(evidence_dir / HISTORY, "a") as fh:
        for row in rows:
            fh.write(json.dumps(row, sort_keys=True) + "\n")
    return read(evidence_dir)


def series(rows: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Rows grouped by (drill, database), oldest first, the last ``CHART_RUNS`` of each."""
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in sorted(rows, key=lambda r: (r["finished_at"] or "", r["run_id"])):
        out.setdefault((row["drill"], row["database"]), []).append(row)
    return {k: v[-CHART_RUNS:] for k, v in out.items()}


_W, _H, _L, _R, _T, _B = 640, 260, 70, 20, 32, 40
_COLOURS = {"rto": "#1f5fa8", "rpo": "#2e8b57"}


def _bounds(rows: list[dict[str, Any]]) -> tuple[float, float]:
    values = [r[k] for r in rows for k in ("rto_seconds", "rpo_seconds", "rto_target_seconds",
                                           "rpo_target_seconds") if r.get(k)]
    if not values:
        return 0.0, 1.0
    return math.log10(min(values)) - 0.3, math.log10(max(values)) + 0.3


def _scale(rows: list[dict[str, Any]]):
    lo, hi = _bounds(rows)
    band = (_W - _L - _R) / len(rows)

    def x(i: float) -> float:
        """The centre of run ``i``'s band (``i - 0.5`` and ``i + 0.5`` are its edges)."""
        return _L + band * (i + 0.5)

    def y(v: float) -> float:
        return _T + (hi - math.log10(max(v, 1e-3))) / (hi - lo) * (_H - _T - _B)
    return x, y, lo, hi


_TICKS = (0.1, 1, 10, 60, 600, 3600, 4 * 3600, 86400, 7 * 86400, 30 * 86400)  # seconds, human steps


def _axis(y, lo: float, hi: float) -> list[str]:
    parts = [f'<line x1="{_L}" y1="{_T}" x2="{_L}" y2="{_H - _B}" stroke="#444"/>']
    for v in _TICKS:
        if lo <= math.log10(v) <= hi:
            parts.append(f'<line x1="{_L - 4}" y1="{y(v):.1f}" x2="{_W - _R}" y2="{y(v):.1f}" stroke="#ddd"/>'
                         f'<text x="{_L - 6}" y="{y(v) + 4:.1f}" text-anchor="end" font-size="10">'
                         f'{escape(format_duration(v))}</text>')
    return parts


def _line(rows, key: str, x, y, dash: str, colour: str, steps: bool = False) -> list[str]:
    """A polyline through each run's value; ``steps`` draws it across each run's band (target lines)."""
    offsets = (-0.5, 0.5) if steps else (0.0,)
    pts = [(x(i + d), y(r[key])) for i, r in enumerate(rows) if r.get(key) is not None for d in offsets]
    if not pts:
        return []
    path = " ".join(f"{a:.1f},{b:.1f}" for a, b in pts)
    return [f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2" '
            f'stroke-dasharray="{dash}"/>']


def _points(rows, kind: str, x, y) -> list[str]:
    out = []
    for i, r in enumerate(rows):
        value, target = r.get(f"{kind}_seconds"), r.get(f"{kind}_target_seconds")
        if value is None:
            continue
        colour = _COLOURS[kind] if target is None or value <= target else "#c00"
        out.append(f'<circle cx="{x(i):.1f}" cy="{y(value):.1f}" r="3.5" fill="{colour}">'
                   f'<title>{escape(r["run_id"])}: {kind.upper()} {escape(format_duration(value))}</title>'
                   f'</circle>')
    return out


def _legend() -> str:
    items = [("RTO measured", _COLOURS["rto"], ""), ("RTO target", _COLOURS["rto"], "6,3"),
             ("RPO measured", _COLOURS["rpo"], ""), ("RPO target", _COLOURS["rpo"], "6,3")]
    return "".join(f'<line x1="{_L + i * 130}" y1="10" x2="{_L + i * 130 + 22}" y2="10" stroke="{c}" '
                   f'stroke-width="2" stroke-dasharray="{d}"/><text x="{_L + i * 130 + 26}" y="14" '
                   f'font-size="10">{t}</text>' for i, (t, c, d) in enumerate(items))


def _when(row: dict[str, Any]) -> str:
    return (row.get("finished_at") or row["run_id"])[:16].replace("T", " ")


def _target_label(row: dict[str, Any], kind: str, y) -> list[str]:
    """Name a target line at its right end: RTO above it, RPO below, so equal targets stay readable."""
    target = row.get(f"{kind}_target_seconds")
    if target is None:
        return []
    dy = -4 if kind == "rto" else 12
    return [f'<text x="{_W - _R}" y="{y(target) + dy:.1f}" text-anchor="end" font-size="10" '
            f'fill="{_COLOURS[kind]}">{kind.upper()} target {escape(format_duration(target))}</text>']


def chart(rows: list[dict[str, Any]], title: str) -> str:
    """An inline SVG: RTO and RPO of each run (log scale) against the target lines; misses in red."""
    x, y, lo, hi = _scale(rows)
    parts = [_legend(), *_axis(y, lo, hi)]
    for kind in ("rto", "rpo"):
        parts += _line(rows, f"{kind}_target_seconds", x, y, "6,3", _COLOURS[kind], steps=True)
        parts += _line(rows, f"{kind}_seconds", x, y, "", _COLOURS[kind])
        parts += _points(rows, kind, x, y)
        parts += _target_label(rows[-1], kind, y)
    first, last = _when(rows[0]), _when(rows[-1])
    parts.append(f'<text x="{_L}" y="{_H - 12}" font-size="10">{escape(first)}</text>'
                 f'<text x="{_W - _R}" y="{_H - 12}" font-size="10" text-anchor="end">{escape(last)} '
                 f'({len(rows)} run{"s" if len(rows) != 1 else ""})</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="akko-history" width="{_W}" height="{_H}" '
            f'viewBox="0 0 {_W} {_H}" role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>'
            + "".join(parts) + "</svg>")
