"""What "the restore matches" means: comparisons a drill makes before it swaps a restored copy in.

With a harness manifest, the restored copy's fingerprint must equal the one taken in the dump's
snapshot, category by category. Without one (AKKO's own CronJob dumps), only plausibility can be
judged: every table of the damaged source but those the incident destroyed comes back with a
plausible row count, and the newest restored write is recent enough for the backup's time.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from akko_dr.policy import format_duration
from akko_dr.ports import CANARY_TABLE, HASHED_AS_TEXT, POPULATED, Catalog, Fingerprint

ROWS = "table rows"
SEQUENCES = "sequences"  # positions: not transactional, so a dump may hold them further than recorded
SHOWN = 4  # names listed per difference before "and N more"


def _names(items: list[str]) -> str:
    more = f" and {len(items) - SHOWN} more" if len(items) > SHOWN else ""
    return ", ".join(items[:SHOWN]) + more


def _position(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        return -1


def _differences(category: str, expected: dict, actual: dict) -> str | None:
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    if category == SEQUENCES:
        differ = sorted(k for k in set(expected) & set(actual)
                        if _position(actual[k]) < _position(expected[k]))
        label = "behind"
    else:
        differ = sorted(k for k in set(expected) & set(actual) if expected[k] != actual[k]
                        and not (category == ROWS and _same_rows(expected[k], actual[k])))
        label = "differing"
    parts = [f"{word} {_names(names)}" for word, names in
             (("missing", missing), ("unexpected", extra), (label, differ)) if names]
    return f"{category}: {'; '.join(parts)}" if parts else None


def _same_rows(expected: dict, actual: dict) -> bool:
    """Equal as far as an older manifest allows: one written before POPULATED recorded a materialized
    view's rows (which a refresh changes); one written before HASHED_AS_TEXT may hold a checksum bound to
    OIDs a restore changes (enum labels), so only the row count of such a table is compared."""
    if actual == POPULATED:
        return True
    return _rows_only(expected, actual) and expected.get("rows") == actual.get("rows")


def _rows_only(expected: dict, actual: dict) -> bool:
    return actual.get("hashed") == HASHED_AS_TEXT["hashed"] and "hashed" not in expected


def rows_only(expected: Fingerprint, actual: Fingerprint) -> list[str]:
    """Tables whose recorded checksum cannot be compared (an older manifest, see ``_same_rows``)."""
    return sorted(k for k in set(expected) & set(actual) if _rows_only(expected[k], actual[k]))


def categories(tables: Fingerprint, catalog: Catalog) -> list[str]:
    """The categories a comparison against this fingerprint covers, as the report names them."""
    return ([ROWS] if tables else []) + sorted(catalog)


def compare(expected_tables: Fingerprint, expected_catalog: Catalog, tables: Fingerprint,
            catalog: Catalog) -> list[str]:
    """One line per category in which the restored copy differs from the recorded fingerprint.

    Only the categories the record holds are compared (an older manifest has rows only)."""
    out = [_differences(ROWS, expected_tables, tables)]
    out += [_differences(name, expected_catalog[name], catalog.get(name, {}))
            for name in sorted(expected_catalog)]
    return [line for line in out if line]


def implausible_rows(source: Fingerprint, restored: Fingerprint, destroyed: set[str],
                     min_ratio: float) -> list[str]:
    """Tables of the damaged source (but those destroyed, and the canary) that did not come back with
    a plausible row count: missing, empty while the source has rows, or below ``min_ratio`` of them. A
    materialized view (no row count: its rows are derived) must only come back populated."""
    out = []
    for table in sorted(set(source) - destroyed - {CANARY_TABLE}):
        if table not in restored:
            out.append(f"{table} missing")
            continue
        if "rows" not in source[table]:
            continue
        had, got = int(source[table]["rows"]), int(restored[table].get("rows", 0))
        if had and (got == 0 or got < min_ratio * had):
            out.append(f"{table} has {got} rows, the source {had} (at least {min_ratio:g}x expected)")
    return out


def stale_write(newest: datetime | None, source_newest: datetime | None, taken_at: datetime,
                interval: timedelta) -> str | None:
    """Why the newest restored write is too old for a backup taken at ``taken_at`` by a job running
    every ``interval`` (None when it is recent enough, or when the source has no writes to judge by)."""
    if source_newest is None:
        return None
    floor = taken_at - interval
    if newest is None:
        return f"no write restored, although the source has writes up to {source_newest.isoformat()}"
    if newest < floor:
        return (f"newest restored write {newest.isoformat()} is older than the backup time "
                f"{taken_at.isoformat()} minus the job's interval {format_duration(interval)}")
    return None
