"""Issue 12: the roles are dumped beside the databases and Drill 2 restores them first, so a service
role still logs in and reads on the rebuilt platform."""

import shutil
import tempfile
from pathlib import Path

import psycopg

from akko_dr.drills.full_rebuild import FullRebuildDrill
from akko_dr.policy import Policy
from akko_dr.sandbox import start_sandbox
from akko_dr.sandbox.identity import PostgresLoginRoles
from akko_dr.targets import new_run_id
from akko_dr.wiring import sandbox_target

DB = "superset_metadata"


def test_a_service_role_keeps_its_access_after_drill_2(policy: Policy) -> None:
    root = Path(tempfile.mkdtemp(prefix="akko-dr-test-roles-"))
    role, secret = "superset_reader", "reader-secret-2"
    try:
        with start_sandbox(policy, root=root / "sandbox", consumers=(), initial_backups=False) as own:
            target = sandbox_target(own, root)
            target.db.execute("postgres", f"CREATE ROLE {role} LOGIN PASSWORD '{secret}'")
            target.db.execute(DB, f"GRANT SELECT ON dashboards TO {role}")
            for job in ("akko-pg-backup", "akko-pg-data-backup"):
                assert target.jobs.run_job(job).succeeded
            drill = FullRebuildDrill(target, new_run_id())
            drill.lose_platform()
            drill.declare_incident()
            drill.provision_platform()
            assert DB in drill.replay_databases(), drill.failures()
            assert drill.roles.startswith("roles restored from s3://akko-backups/pg/_globals_"), drill.roles
            dsn = PostgresLoginRoles(drill.target.db, policy).dsn(role, secret, DB)
            with psycopg.connect(dsn, connect_timeout=5) as conn:
                assert conn.execute("SELECT count(*) FROM dashboards").fetchone()[0] == 40
    finally:
        shutil.rmtree(root, ignore_errors=True)
