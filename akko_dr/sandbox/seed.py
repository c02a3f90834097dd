"""Small but realistic schemas and data for the sandbox's AKKO databases."""

from __future__ import annotations

import hashlib
import json

CANARY = """
CREATE TABLE dr_canary (
    id bigserial PRIMARY KEY,
    writer text NOT NULL,
    written_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
"""

SCHEMAS: dict[str, str] = {
    "keycloak": """
CREATE TABLE realm (id text PRIMARY KEY, name text UNIQUE NOT NULL, enabled boolean NOT NULL);
CREATE TABLE user_entity (id text PRIMARY KEY, realm_id text REFERENCES realm(id), username text,
    email text, enabled boolean NOT NULL, created_timestamp bigint);
CREATE TABLE credential (id text PRIMARY KEY, user_id text REFERENCES user_entity(id), type text,
    created_date bigint, secret_data text);
INSERT INTO realm VALUES ('akko', 'akko', true), ('master', 'master', true);
INSERT INTO user_entity SELECT 'u' || g, 'akko', 'user' || g, 'user' || g || '@akko.example', true,
    1767225600000 + g FROM generate_series(1, 200) g;
INSERT INTO user_entity VALUES ('admin', 'akko', 'akko-admin', 'admin@akko.example', true, 1767225600000);
INSERT INTO credential SELECT 'c' || g, 'u' || g, 'password', 1767225600000 + g, md5('pw' || g)
    FROM generate_series(1, 200) g;
""",
    "airflow": """
CREATE TABLE dag (dag_id text PRIMARY KEY, is_paused boolean, fileloc text, owners text);
CREATE TABLE dag_run (id serial PRIMARY KEY, dag_id text REFERENCES dag(dag_id), run_id text,
    state text, execution_date timestamptz);
CREATE TABLE task_instance (dag_id text, task_id text, run_id text, state text, try_number int,
    PRIMARY KEY (dag_id, task_id, run_id));
INSERT INTO dag SELECT 'dag_' || g, false, '/dags/dag_' || g || '.py', 'akko' FROM generate_series(1, 20) g;
INSERT INTO dag_run (dag_id, run_id, state, execution_date)
    SELECT 'dag_' || (g % 20 + 1), 'scheduled__' || g, 'success',
           timestamptz '2026-01-01' + g * interval '1 hour' FROM generate_series(1, 500) g;
INSERT INTO task_instance SELECT 'dag_' || (g % 20 + 1), 'task_' || (g % 7), 'scheduled__' || g,
    'success', 1 FROM generate_series(1, 500) g;
""",
    "openmetadata": """
CREATE TABLE table_entity (id uuid PRIMARY KEY, fqn text UNIQUE, json jsonb);
CREATE TABLE entity_relationship (from_id uuid, to_id uuid, relation int);
INSERT INTO table_entity SELECT md5('t' || g)::uuid, 'akko.warehouse.table_' || g,
    jsonb_build_object('name', 'table_' || g, 'columns', g % 30) FROM generate_series(1, 300) g;
INSERT INTO entity_relationship SELECT md5('t' || g)::uuid, md5('t' || (g + 1))::uuid, 1
    FROM generate_series(1, 299) g;
""",
    "superset_metadata": """
CREATE TABLE dashboards (id serial PRIMARY KEY, dashboard_title text NOT NULL, slug text UNIQUE,
    position_json text, published boolean, changed_on timestamptz);
CREATE TABLE slices (id serial PRIMARY KEY, slice_name text NOT NULL, viz_type text,
    datasource_id int, params text, changed_on timestamptz);
CREATE TABLE dashboard_slices (id serial PRIMARY KEY, dashboard_id int REFERENCES dashboards(id),
    slice_id int REFERENCES slices(id));
CREATE TABLE logs (id bigserial PRIMARY KEY, action text, user_id int, dashboard_id int,
    slice_id int, json text, dttm timestamptz);
INSERT INTO dashboards (dashboard_title, slug, position_json, published, changed_on)
    SELECT 'Dashboard ' || g, 'dash-' || g, '{}', g % 3 <> 0, timestamptz '2026-01-01' + g * interval '1 day'
    FROM generate_series(1, 40) g;
INSERT INTO slices (slice_name, viz_type, datasource_id, params, changed_on)
    SELECT 'Chart ' || g, (ARRAY['table', 'line', 'bar', 'pie'])[g % 4 + 1], g % 12,
           '{"metric": "count"}', timestamptz '2026-01-01' + g * interval '1 hour'
    FROM generate_series(1, 160) g;
INSERT INTO dashboard_slices (dashboard_id, slice_id) SELECT g % 40 + 1, g FROM generate_series(1, 160) g;
INSERT INTO logs (action, user_id, dashboard_id, slice_id, json, dttm)
    SELECT 'log', g % 25, g % 40 + 1, g % 160 + 1, '{"path": "/superset/dashboard/"}',
           timestamptz '2026-01-01' + g * interval '1 minute' FROM generate_series(1, 2000) g;
""",
    "mlflow": """
CREATE TABLE experiments (experiment_id serial PRIMARY KEY, name text UNIQUE, artifact_location text);
CREATE TABLE runs (run_uuid text PRIMARY KEY, experiment_id int REFERENCES experiments, status text,
    start_time bigint);
CREATE TABLE metrics (run_uuid text REFERENCES runs, key text, value double precision, step int);
INSERT INTO experiments (name, artifact_location)
    SELECT 'exp-' || g, 's3://akko-mlflow/' || g FROM generate_series(1, 10) g;
INSERT INTO runs SELECT md5('r' || g), g % 10 + 1, 'FINISHED', 1767225600000 + g
    FROM generate_series(1, 100) g;
INSERT INTO metrics SELECT md5('r' || (g % 100 + 1)), 'loss', 1.0 / g, g FROM generate_series(1, 1000) g;
""",
    "polaris": """
CREATE TABLE catalogs (id serial PRIMARY KEY, name text UNIQUE, storage_location text);
CREATE TABLE namespaces (id serial PRIMARY KEY, catalog_id int REFERENCES catalogs, name text);
CREATE TABLE iceberg_tables (id serial PRIMARY KEY, namespace_id int REFERENCES namespaces, name text,
    metadata_location text, snapshot_id bigint);
INSERT INTO catalogs (name, storage_location) VALUES ('warehouse', 's3://akko-warehouse/');
INSERT INTO namespaces (catalog_id, name) SELECT 1, 'ns_' || g FROM generate_series(1, 8) g;
INSERT INTO iceberg_tables (namespace_id, name, metadata_location, snapshot_id)
    SELECT g % 8 + 1, 'tbl_' || g, 's3://akko-warehouse/tbl_' || g || '/metadata/v1.json', 1000 + g
    FROM generate_series(1, 120) g;
""",
    "akko_data": """
CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, country char(2), created_at timestamptz);
CREATE TABLE accounts (id serial PRIMARY KEY, customer_id int REFERENCES customers, iban text UNIQUE,
    balance numeric(14, 2));
CREATE TABLE transactions (id bigserial PRIMARY KEY, account_id int REFERENCES accounts,
    amount numeric(14, 2), booked_at timestamptz, reference text);
INSERT INTO customers (name, country, created_at)
    SELECT 'Customer ' || g, (ARRAY['FR', 'DE', 'LU', 'BE'])[g % 4 + 1],
           timestamptz '2025-01-01' + g * interval '1 hour' FROM generate_series(1, 500) g;
INSERT INTO accounts (customer_id, iban, balance)
    SELECT g % 500 + 1, 'FR76' || lpad(g::text, 23, '0'), (g * 37 % 100000) / 100.0
    FROM generate_series(1, 800) g;
INSERT INTO transactions (account_id, amount, booked_at, reference)
    SELECT g % 800 + 1, ((g * 7919) % 200000 - 100000) / 100.0,
           timestamptz '2026-01-01' + g * interval '1 minute', 'TX' || g FROM generate_series(1, 5000) g;
""",
    "aden": """
CREATE TABLE query_cache (query_hash text PRIMARY KEY, sql text, result_location text, cached_at timestamptz);
CREATE TABLE receipts (id bigserial PRIMARY KEY, query_hash text, principal text, issued_at timestamptz,
    signature text);
INSERT INTO query_cache SELECT md5('q' || g), 'SELECT * FROM t' || g, 's3://akko-aden/' || g,
    timestamptz '2026-01-01' + g * interval '1 minute' FROM generate_series(1, 300) g;
INSERT INTO receipts (query_hash, principal, issued_at, signature)
    SELECT md5('q' || (g % 300 + 1)), 'user' || g % 20, timestamptz '2026-01-01' + g * interval '1 minute',
           md5('sig' || g) FROM generate_series(1, 1500) g;
""",
}


SERVICE_OBJECTS: dict[str, str] = {  # what a service depends on beside its rows
    "superset_metadata": """
CREATE FUNCTION touch_changed_on() RETURNS trigger LANGUAGE plpgsql
    AS $$ BEGIN NEW.changed_on := now(); RETURN NEW; END $$;
CREATE TRIGGER dashboards_touch BEFORE UPDATE ON dashboards FOR EACH ROW EXECUTE FUNCTION touch_changed_on();
CREATE VIEW published_dashboards AS SELECT id, dashboard_title, slug FROM dashboards WHERE published;
CREATE FUNCTION dashboard_url(slug text) RETURNS text LANGUAGE sql IMMUTABLE
    AS $$ SELECT '/superset/dashboard/' || slug || '/' $$;
CREATE MATERIALIZED VIEW chart_counts AS SELECT viz_type, count(*) AS charts FROM slices GROUP BY viz_type;
COMMENT ON TABLE dashboards IS 'Superset dashboards';
CREATE INDEX logs_dttm ON logs (dttm);
SELECT lo_from_bytea(0, convert_to('dashboard thumbnail', 'UTF8'));
""",
}


READER = "akko_reader"  # a read-only role every database grants to (reporting, the DR checks)


def service_access(database: str) -> str:
    """The service's own role (``<db>_app``, no login) owning its tables and views, and the grants
    and default privileges of the shared read-only role."""
    role = f"{database}_app"
    return f"""
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN CREATE ROLE "{role}" NOLOGIN; END IF;
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{READER}') THEN CREATE ROLE "{READER}" NOLOGIN; END IF;
END $$;
DO $$ DECLARE r record; BEGIN
  FOR r IN SELECT relname,
                  CASE relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE 'TABLE' END AS kind
           FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind IN ('r', 'v', 'm') LOOP
    EXECUTE format('ALTER %s %I OWNER TO %I', r.kind, r.relname, '{role}');
  END LOOP;
END $$;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{READER}";
GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO "{READER}";
ALTER DEFAULT PRIVILEGES FOR ROLE "{role}" IN SCHEMA public GRANT SELECT ON TABLES TO "{READER}";
"""


def warehouse_objects(tables: int = 6, files: int = 4) -> list[tuple[str, bytes]]:
    """Iceberg-like objects for the warehouse bucket: metadata JSON and deterministic data files."""
    out = []
    for t in range(1, tables + 1):
        meta = {"format-version": 2, "table-uuid": f"00000000-0000-0000-0000-{t:012d}",
                "location": f"s3://akko-warehouse/ns_1/tbl_{t}", "current-snapshot-id": 1000 + t}
        out.append((f"ns_1/tbl_{t}/metadata/v1.metadata.json", json.dumps(meta).encode()))
        for f in range(files):
            body = hashlib.sha256(f"tbl_{t}/{f}".encode()).digest() * (256 + 64 * f)
            out.append((f"ns_1/tbl_{t}/data/part-{f:05d}.parquet", body))
    return out


def schema_sql(database: str) -> str:
    """The DDL and seed rows of one database, with the canary table every consumer writes to, its
    service's role and grants, and the other objects its service depends on."""
    return SCHEMAS[database] + CANARY + SERVICE_OBJECTS.get(database, "") + service_access(database)
