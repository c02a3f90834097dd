"""SIGINT and SIGTERM at every step of Drill 1 and of Drill 2: the drill undoes what it did and lets the
interrupt through (the run is then sealed INCOMPLETE, tests/test_interrupted.py); nothing is lost, no
scratch database or file is left, services run with their replicas, and a re-run succeeds."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from akko_dr.canary import wait_for_write
from akko_dr.drills.full_rebuild import FullRebuildDrill
from akko_dr.drills.restore_database import RestoreDatabaseDrill
from akko_dr.evidence.interrupt import Interrupts
from akko_dr.policy import Policy
from akko_dr.ports import Fingerprint, written_by_services
from akko_dr.sandbox import start_sandbox
from akko_dr.targets import Target, new_run_id
from akko_dr.wiring import sandbox_target

DATABASE, TABLE = "superset_metadata", "dashboards"
DRILL_1_STEPS = ("drop_table", "declare_incident", "stop_consumer", "pull_latest_backup",
                 "restore_to_scratch", "verify_scratch", "swap_in", "restart_consumer", "validate_service")
DRILL_2_STEPS = ("lose_platform", "declare_incident", "provision_platform", "replay_databases",
                 "restore_objects", "restart_services", "validate_services")
SIGNALS = pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])


@pytest.fixture
def handlers() -> Iterator[None]:
    """SIGTERM handled as the evidence plugin handles it in a run: as a KeyboardInterrupt."""
    interrupts = Interrupts()
    interrupts.install()
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    interrupts.restore()
    signal.signal(signal.SIGINT, previous_int)


def signal_at(obj: object, step: str, sig: signal.Signals) -> None:
    """Deliver a real ``sig`` to this process as ``obj`` first enters ``step`` (once: the undo may run the
    same step again, e.g. restarting the consumer)."""
    original: Callable = getattr(obj, step)
    sent: list[bool] = []

    def interrupted(*args: object, **kwargs: object) -> object:
        if not sent:
            sent.append(True)
            os.kill(os.getpid(), sig)
        return original(*args, **kwargs)

    setattr(obj, step, interrupted)


def content(target: Target, name: str) -> Fingerprint:
    return {t: v for t, v in target.db.fingerprint(name).items() if not written_by_services(t)}


@pytest.fixture
def healthy(target: Target) -> Target:
    if target.heal:
        target.heal()
    wait_for_write(target.port("canary"), DATABASE)
    return target


@SIGNALS
@pytest.mark.parametrize("step", DRILL_1_STEPS)
def test_drill_1_interrupted_at_any_step_loses_nothing_and_runs_again(healthy: Target, handlers: None,
                                                                     step: str, sig: signal.Signals) -> None:
    others = {n: content(healthy, n) for n in healthy.policy.databases if n != DATABASE}
    replicas = healthy.orchestrator.running(healthy.policy.database(DATABASE).consumer)
    drill = RestoreDatabaseDrill(healthy, DATABASE, new_run_id())
    signal_at(drill, step, sig)
    with pytest.raises(KeyboardInterrupt):
        drill.run(TABLE)
    if drill.dropped_table and not drill.swapped:
        assert drill.changes_since_incident() == [], f"{DATABASE} changed by an interrupted drill"
    assert drill.table_exists(TABLE) == (drill.swapped or not drill.dropped_table)
    assert {n: content(healthy, n) for n in others} == others, "another database changed"
    consumer = drill.info.consumer
    assert healthy.orchestrator.running(consumer) == replicas, f"{consumer}: expected {replicas} replica(s)"
    assert drill.leftover_databases() == [] and drill.leftover_files() == []
    again = RestoreDatabaseDrill(healthy, DATABASE, new_run_id())
    again.dropped_table = drill.dropped_table
    again.recover()
    again.discard_files()
    assert again.table_exists(TABLE) and again.validated_at is not None


@pytest.fixture
def own_platform(policy: Policy) -> Iterator[Target]:
    """A small platform of its own for Drill 2 to lose (two databases, their services and backups)."""
    small = replace(policy, databases={n: policy.databases[n] for n in (DATABASE, "aden")})
    root = Path(tempfile.mkdtemp(prefix="akko-dr-test-signals-"))
    try:
        with start_sandbox(small, root=root / "sandbox", consumers=tuple(small.databases)) as own:
            yield sandbox_target(own, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


@SIGNALS
@pytest.mark.parametrize("step", DRILL_2_STEPS)
def test_drill_2_interrupted_at_any_step_keeps_the_old_data_and_runs_again(own_platform: Target,
                                                                          handlers: None, step: str,
                                                                          sig: signal.Signals) -> None:
    old_data = Path(own_platform.platform.pg_server.pgdata)
    drill = FullRebuildDrill(own_platform, new_run_id())
    signal_at(drill, step, sig)
    with pytest.raises(KeyboardInterrupt):
        drill.lose_platform()
        drill.recover()
    assert (old_data / "PG_VERSION").is_file(), "the lost server's data must be kept until sign-off"
    assert not [p for p in own_platform.workdir.glob(f"{drill.run_id}-*")], "a dump file was left"
    if drill.provisioned:
        left = [n for n in drill.target.db.databases() if "__restore_" in n]
        assert not left, f"scratch databases left on the new server: {left}"
    if step == "lose_platform":  # interrupted before the disaster: the platform is as it was
        assert set(own_platform.policy.databases) <= set(own_platform.db.databases())
        return
    again = FullRebuildDrill(own_platform, new_run_id())
    again.recover()
    assert again.failures() == [] and again.mismatches() == []
