"""A realistic superset_metadata of a given size, reproducible from a seed.

Dashboards with their position JSON, charts (slices) with their params, the links between them, and a
large ``logs`` table of JSON-ish events with the indexes Superset keeps on it. Every value derives from
``hashtext(seed, row number)``, so the same seed and size give the same rows on any server and plan.
The tables are those of the sandbox's seed (``akko_dr/sandbox/seed.py``), appended to.

    python benchmarks/generate.py --dsn postgresql://… --size 1000 --seed 13
"""

from __future__ import annotations

import argparse

import psycopg

LOG_ROW_BYTES = 470  # heap + its 5 indexes per logs row, measured on PostgreSQL 18 (calibrates --size)
DASHBOARDS_PER_GB, SLICES_PER_GB = 4_000, 40_000

_DASHBOARDS = """
INSERT INTO dashboards (dashboard_title, slug, position_json, published, changed_on)
SELECT format('Dashboard %s — %s', g, (ARRAY['Sales', 'Operations', 'Risk', 'Finance', 'Marketing',
                                            'Support'])[1 + abs(h) % 6]),
       format('bench-%s-%s', @seed@, g),
       (SELECT '{' || string_agg(format('"CHART-%s": {"type": "CHART", "id": "CHART-%s", "children": [], '
                                        '"meta": {"chartId": %s, "width": %s, "height": %s, "uuid": "%s"}}',
                                        c, c, c, 1 + c % 12, 50 + c % 30, md5(h::text || c)), ', ') || '}'
        FROM generate_series(1, 4 + abs(h) % 16) c),
       abs(h) % 3 <> 0, timestamptz '2026-01-01' + g * interval '37 minutes'
FROM generate_series(1, @dashboards@) g, LATERAL (SELECT hashtext(@seed@ || ':d:' || g) AS h) x
"""
_SLICES = """
INSERT INTO slices (slice_name, viz_type, datasource_id, params, changed_on)
SELECT format('Chart %s', g), (ARRAY['table', 'line', 'bar', 'pie', 'big_number', 'heatmap'])[1 + abs(h) % 6],
       abs(h) % 300,
       format('{"viz_type": "%s", "metrics": [{"label": "count", "expressionType": "SQL", '
              '"sqlExpression": "COUNT(*)"}], "groupby": ["col_%s", "region"], "time_range": "Last %s days", '
              '"row_limit": %s, "adhoc_filters": [{"clause": "WHERE", "subject": "country", '
              '"operator": "==", "comparator": "%s"}], "color_scheme": "supersetColors", "slice_key": "%s"}',
              (ARRAY['table', 'line', 'bar'])[1 + abs(h) % 3], abs(h) % 40, 1 + abs(h) % 90,
              (1 + abs(h) % 10) * 1000, (ARRAY['FR', 'DE', 'LU', 'BE'])[1 + abs(h) % 4], md5(h::text)),
       timestamptz '2026-01-01' + g * interval '3 minutes'
FROM generate_series(1, @slices@) g, LATERAL (SELECT hashtext(@seed@ || ':s:' || g) AS h) x
"""
_LINKS = """
INSERT INTO dashboard_slices (dashboard_id, slice_id)
SELECT d.id, s.id FROM dashboards d JOIN slices s ON s.id % greatest(@dashboards@, 1) = d.id % greatest(
    @dashboards@, 1) WHERE d.slug LIKE 'bench-%'
"""
_LOGS = """
INSERT INTO logs (action, user_id, dashboard_id, slice_id, json, dttm)
SELECT (ARRAY['mount_dashboard', 'log', 'explore_json', 'chart_data', 'dashboard_filter', 'export_csv',
              'sql_json', 'welcome'])[1 + abs(h) % 8],
       abs(h) % 500, 1 + abs(h) % 40, 1 + abs(h / 7) % 160,
       format('{"path": "/superset/dashboard/%s/", "event_name": "%s", "source": "dashboard", '
              '"source_id": %s, "impression_id": "%s", "version": "v2", "ts": %s, "duration_ms": %s, '
              '"referrer": "https://akko.example/superset/dashboard/%s/?native_filters_key=%s"}',
              1 + abs(h) % 40, (ARRAY['mount', 'render', 'load_chart', 'change_tab'])[1 + abs(h) % 4],
              1 + abs(h) % 40, left(md5(h::text), 10), 1767225600000 + g * 997, abs(h) % 5000,
              1 + abs(h) % 40, left(md5(g::text || @seed@), 22)),
       timestamptz '2026-01-01' + g * interval '1 second'
FROM generate_series(@first@, @last@) g, LATERAL (SELECT hashtext(@seed@ || ':l:' || g) AS h) x
"""
_INDEXES = """
CREATE INDEX IF NOT EXISTS logs_dttm ON logs (dttm);
CREATE INDEX IF NOT EXISTS logs_user_dttm ON logs (user_id, dttm);
CREATE INDEX IF NOT EXISTS logs_dashboard ON logs (dashboard_id);
CREATE INDEX IF NOT EXISTS logs_action ON logs (action);
CREATE INDEX IF NOT EXISTS slices_viz ON slices (viz_type);
"""
BATCH = 500_000  # logs rows per statement: keeps each transaction's memory modest


def _fill(template: str, **numbers: int) -> bytes:
    """The statement with its ``@name@`` numbers in place (integers only: nothing else is spliced)."""
    for name, value in numbers.items():
        template = template.replace(f"@{name}@", str(int(value)))
    return template.encode()


def generate(dsn: str, size_mb: int, seed: int = 13) -> dict[str, int]:
    """Fill the superset_metadata-shaped database at ``dsn`` to about ``size_mb``; its figures."""
    scale = size_mb / 1000
    counts = {"dashboards": max(int(DASHBOARDS_PER_GB * scale), 10),
              "slices": max(int(SLICES_PER_GB * scale), 40)}
    counts["logs"] = max(int(size_mb * 1e6 / LOG_ROW_BYTES * 0.96), 1000)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(_fill(_DASHBOARDS, seed=seed, dashboards=counts["dashboards"]))
        conn.execute(_fill(_SLICES, seed=seed, slices=counts["slices"]))
        conn.execute(_fill(_LINKS, dashboards=counts["dashboards"]))
        for first in range(1, counts["logs"] + 1, BATCH):
            last = min(first + BATCH - 1, counts["logs"])
            conn.execute(_fill(_LOGS, seed=seed, first=first, last=last))
        for statement in filter(str.strip, _INDEXES.split(";")):
            conn.execute(statement.encode())
        views = conn.execute("SELECT matviewname FROM pg_matviews WHERE schemaname = 'public'").fetchall()
        for (view,) in views:
            conn.execute(f'REFRESH MATERIALIZED VIEW "{view}"')  # as a scheduled refresh leaves them
        conn.execute("VACUUM ANALYZE")
        counts["bytes"] = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dsn", required=True, help="a database with the sandbox's superset_metadata schema")
    parser.add_argument("--size", type=int, default=1000, help="size in MB (default 1000)")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    print(generate(args.dsn, args.size, args.seed))


if __name__ == "__main__":
    main()
