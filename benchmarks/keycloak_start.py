"""Benchmark: what the real Keycloak adds to the sandbox's start (issue 10).

Starts the session sandbox twice in one run, with the real identity provider and with its stand-in
(PostgreSQL login roles), and prints both start times, their ratio, Keycloak's own start, the realm's
seeding and one realm-export job run. Needs ``scripts/real-services.sh keycloak`` first.
Run: ``python benchmarks/keycloak_start.py``.
"""

from __future__ import annotations

import time

from akko_dr.policy import load_policy
from akko_dr.sandbox import start_sandbox
from akko_dr.sandbox.keycloak import keycloak_home


def main() -> None:
    home, why = keycloak_home()
    if home is None:
        raise SystemExit(why)
    policy = load_policy()
    with start_sandbox(policy, segregated_server=True, real_identity=True) as sandbox:
        real, keycloak = sandbox.started_in, sandbox.keycloak
        assert keycloak is not None
        started = time.monotonic()
        run = sandbox.run_job("akko-keycloak-realm-export")
        export = time.monotonic() - started
        print(f"Keycloak start {keycloak.server.started_in:.1f}s, realm seeded in {keycloak.seeded_in:.1f}s, "
              f"realm-export job {export:.1f}s ({run.last_log_line or run.error})")
    with start_sandbox(policy, segregated_server=True, real_identity=False) as sandbox:
        stand_in = sandbox.started_in
    print(f"sandbox start: with Keycloak {real:.1f}s, with the stand-in {stand_in:.1f}s, "
          f"ratio {real / stand_in:.1f}x")


if __name__ == "__main__":
    main()
