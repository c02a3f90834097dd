"""Issue 12, fidelity: "the restore matches" covers what a service depends on, not only table rows.

Each loss is a real dump of the sandbox rewritten entry by entry (akko_dr.sandbox.tampered): it
replays without an error, yet a service would break on it. With the backup's manifest the drill
names the category that differs; without one (AKKO's CronJob dumps) implausible row counts and an
old newest write are refused before the swap, and the platform is left as it was.
"""

import gzip
from collections.abc import Iterator

import psycopg
import pytest

from akko_dr.backup import latest_backup
from akko_dr.canary import wait_for_write
from akko_dr.drills.restore_database import RestoreDatabaseDrill
from akko_dr.errors import DrillError
from akko_dr.sandbox import Sandbox
from akko_dr.sandbox.tampered import LOSSES, Rewrite, named, upload_losing
from akko_dr.targets import Target, new_run_id

DB = "superset_metadata"
SERVICE = "akko-superset"
EVERY_CATEGORY = {"table rows", "table definitions", "views", "materialized views", "functions",
                  "triggers", "indexes", "constraints", "comments", "privileges", "ownership", "sequences",
                  "large objects"}


@pytest.fixture
def healthy(target: Target) -> Iterator[Target]:
    """A fresh backup with its manifest; every dump a test adds after it is removed afterwards."""
    if target.heal:
        target.heal()
    wait_for_write(target.port("canary"), DB)
    assert target.jobs.run_job("akko-pg-backup").succeeded
    bucket, prefix = target.policy.storage.backups_bucket, target.policy.storage.dump_prefix
    before = {o.key for o in target.store.list(bucket, prefix)}
    yield target
    for obj in target.store.list(bucket, prefix):
        if obj.key not in before:
            target.store.delete(bucket, obj.key)


def _restored_then_verified(target: Target) -> RestoreDatabaseDrill:
    drill = RestoreDatabaseDrill(target, DB, new_run_id())
    drill.pull_latest_backup()
    drill.restore_to_scratch()
    return drill


LOST: dict[str, tuple[Rewrite, str]] = {
    "every GRANT": (LOSSES["every GRANT"], "privileges: missing ACL public."),
    "every owner": (LOSSES["every owner"], "ownership: differing "),
    "sequence positions": (LOSSES["sequence positions"], "sequences: behind public."),
    "large objects": (LOSSES["large objects"], "large objects: missing large object"),
    "a view": (named("VIEW", "published_dashboards"), "views: missing VIEW public.published_dashboards"),
    "a function": (named("FUNCTION", "dashboard_url"), "functions: missing FUNCTION public.dashboard_url"),
    "a trigger": (named("TRIGGER", "dashboards dashboards_touch"), "triggers: missing TRIGGER public."),
    "an index": (named("INDEX", "logs_dttm"), "indexes: missing INDEX public.logs_dttm"),
    "a constraint": (named("CONSTRAINT", "dashboards dashboards_slug_key"), "constraints: missing "),
    "a comment": (named("COMMENT", "TABLE dashboards"), "comments: missing COMMENT public.TABLE dashboards"),
    "a materialized view's contents": (named("MATERIALIZED VIEW DATA", "chart_counts"),
                                       "table rows: missing chart_counts"),
}


@pytest.mark.parametrize("loss", LOST)
def test_a_restore_that_loses_what_a_service_depends_on_is_refused_by_name(healthy: Target,
                                                                           loss: str) -> None:
    drop, says = LOST[loss]
    upload_losing(healthy, DB, drop, manifest=True)
    drill = _restored_then_verified(healthy)
    try:
        with pytest.raises(DrillError, match=f"does not match {DB}: ") as err:
            drill.verify_scratch()
        assert says in str(err.value), str(err.value)
    finally:
        drill.abort()
    assert not drill.leftover_databases()


def test_the_report_names_every_category_compared(healthy: Target) -> None:
    drill = _restored_then_verified(healthy)
    try:
        verified = drill.verify_scratch()
    finally:
        drill.abort()
    assert set(verified["compared"]) >= EVERY_CATEGORY, verified["compared"]
    assert drill.verified_how.startswith("manifest fingerprint taken in the dump's snapshot: table rows")


def test_a_faithful_restore_of_a_stale_materialized_view_and_of_oid_columns_is_not_refused(
        healthy: Target) -> None:
    """The dump refreshes a materialized view that was stale at backup time, and a restore gives every
    object a new OID: neither is a loss, so neither may refuse a good backup."""
    healthy.db.execute(DB, "INSERT INTO slices (slice_name, viz_type) VALUES ('stale', 'not yet counted');"
                           "CREATE TABLE object_refs (rel regclass, typ regtype, fn regproc);"
                           "INSERT INTO object_refs VALUES ('slices', 'int4', 'dashboard_url')")
    try:
        assert healthy.jobs.run_job("akko-pg-backup").succeeded
        drill = _restored_then_verified(healthy)
        try:
            verified = drill.verify_scratch()
        finally:
            drill.abort()
        assert "materialized views" in verified["compared"], verified
    finally:
        healthy.db.execute(DB, "DELETE FROM slices WHERE slice_name = 'stale'; DROP TABLE object_refs;"
                               "REFRESH MATERIALIZED VIEW chart_counts")


@pytest.mark.parametrize("loss", ["every row (schema-only)", "the rows of one table"])
def test_without_a_manifest_an_implausible_restore_is_refused_before_the_swap(healthy: Target,
                                                                            loss: str) -> None:
    drop = LOSSES.get(loss) or named("TABLE DATA", "logs")
    upload_losing(healthy, DB, drop, manifest=False)
    drill = RestoreDatabaseDrill(healthy, DB, new_run_id())
    with pytest.raises(DrillError, match=f"does not match {DB}: .*logs has 0 rows, the source 2000") as err:
        drill.run("dashboards")
    assert "\n" not in str(err.value)
    assert drill.changes_since_incident() == [], "the damaged original must stay as it was"
    assert not drill.swapped and drill.kept not in healthy.db.databases()
    assert not drill.leftover_databases()
    assert healthy.orchestrator.running(SERVICE) == drill.replicas_before


def test_without_a_manifest_a_schema_only_dump_is_refused_for_its_missing_writes_too(healthy: Target) -> None:
    upload_losing(healthy, DB, LOSSES["every row (schema-only)"], manifest=False)
    drill = _restored_then_verified(healthy)
    try:
        with pytest.raises(DrillError, match="no write restored, although the source has writes"):
            drill.verify_scratch()
    finally:
        drill.abort()


def test_without_a_manifest_the_evidence_says_plausibility_was_the_check(healthy: Target) -> None:
    upload_losing(healthy, DB, lambda sql: sql, manifest=False)
    drill = RestoreDatabaseDrill(healthy, DB, new_run_id())
    drill.run("dashboards")
    how = drill.evidence()["integrity check"]
    assert how.startswith("plausibility (no manifest; schema, privileges, owners, sequences and large "
                          "objects not comparable): row counts of the source's "), how
    assert "but the destroyed dashboards" in how and "newest restored write within 4h" in how


def test_a_service_role_keeps_its_access_after_drill_1(healthy: Target, sandbox: Sandbox) -> None:
    role, secret = "superset_reader", "reader-secret-1"
    healthy.db.execute("postgres", f"DROP ROLE IF EXISTS {role}")
    healthy.db.execute("postgres", f"CREATE ROLE {role} LOGIN PASSWORD '{secret}'")
    healthy.db.execute(DB, f"GRANT SELECT ON dashboards TO {role}")
    assert healthy.jobs.run_job("akko-pg-backup").succeeded
    drill = RestoreDatabaseDrill(healthy, DB, new_run_id())
    drill.run("dashboards")
    with psycopg.connect(sandbox.login_roles.dsn(role, secret, DB), connect_timeout=5) as conn:
        assert conn.execute("SELECT count(*) FROM dashboards").fetchone()[0] == 40


def test_a_key_that_parses_as_no_dump_is_reported(healthy: Target) -> None:
    bucket = healthy.policy.storage.backups_bucket
    healthy.store.put_bytes(bucket, f"pg/{DB}_latest.sql.gz", b"a name the policy's template does not parse")
    healthy.store.put_bytes(bucket, f"pg/{DB}_extra_20310101000000.sql.gz", b"another database's dump")
    backup = latest_backup(healthy.policy, healthy.store, DB)
    assert backup.unparsed == (f"pg/{DB}_latest.sql.gz",)
    assert backup.provenance()["keys not parsed as dumps"] == [f"pg/{DB}_latest.sql.gz"]


def test_the_backup_job_dumps_the_roles_beside_the_databases(healthy: Target) -> None:
    run = healthy.jobs.run_job("akko-pg-backup")
    assert run.globals_key.startswith("pg/_globals_"), run.globals_key
    roles = gzip.decompress(healthy.store.read(healthy.policy.storage.backups_bucket, run.globals_key))
    assert b"CREATE ROLE superset_metadata_app;" in roles, roles[:400]


def test_the_database_level_owner_privileges_and_settings_survive_the_swap(healthy: Target,
                                                                          sandbox: Sandbox) -> None:
    """A per-database dump holds none of them: the swap gives the restored copy the damaged one's."""
    role, secret = "superset_connect_only", "connect-secret-3"
    healthy.db.execute("postgres", f"CREATE ROLE {role} LOGIN PASSWORD '{secret}'")
    for statement in (f"REVOKE CONNECT ON DATABASE {DB} FROM PUBLIC",
                      f"GRANT CONNECT ON DATABASE {DB} TO {role}",
                      f"ALTER DATABASE {DB} SET work_mem = '7MB'"):
        healthy.db.execute("postgres", statement)
    try:
        RestoreDatabaseDrill(healthy, DB, new_run_id()).run("dashboards")
        with psycopg.connect(sandbox.login_roles.dsn(role, secret, DB), connect_timeout=5) as conn:
            assert conn.execute("SHOW work_mem").fetchone()[0] == "7MB"
        with psycopg.connect(healthy.db.dsn("postgres"), autocommit=True) as conn:
            public = conn.execute("SELECT has_database_privilege('public', %s, 'CONNECT')",
                                  (DB,)).fetchone()[0]
        assert public is False, "CONNECT revoked from PUBLIC on the source came back granted"
    finally:
        for statement in (f"GRANT CONNECT ON DATABASE {DB} TO PUBLIC", f"ALTER DATABASE {DB} RESET work_mem"):
            healthy.db.execute("postgres", statement)
