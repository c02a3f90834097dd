"""Destructive steps on a live target need an opt-in that repeats the namespace, and on production the
name of who approved it (issue 9, safety rails)."""

import pytest

from akko_dr.errors import DrillError, PolicyError
from akko_dr.targetfile import load_target_file
from akko_dr.wiring import destructive_opt_in


def test_without_the_opt_in_nothing_destructive_runs() -> None:
    assert destructive_opt_in("akko", production=False, allow=None, approved_by=None) is False


def test_the_opt_in_must_repeat_the_namespace() -> None:
    assert destructive_opt_in("akko", production=False, allow="akko", approved_by=None) is True
    with pytest.raises(DrillError, match=r"^--allow-destructive=akko-prod does not name .*'akko'"):
        destructive_opt_in("akko", production=False, allow="akko-prod", approved_by=None)


def test_a_production_target_also_needs_who_approved_it() -> None:
    with pytest.raises(DrillError, match='production target: destructive steps also need --approved-by'):
        destructive_opt_in("akko", production=True, allow="akko", approved_by=None)
    assert destructive_opt_in("akko", production=True, allow="akko", approved_by="Dana (CISO)") is True


def test_a_live_target_file_names_its_segregated_restore_server(tmp_path) -> None:
    """Issue 8: a live target names a second server for segregated restores; the source is refused."""
    path = tmp_path / "target.yaml"
    path.write_text("postgres: {host: pg.akko.svc}\n"
                    "segregated_postgres: {host: restore.akko.svc, port: 5433,\n"
                    "                      password: {env: RESTORE_PW}}\n")
    tf = load_target_file(path)
    assert (tf.segregated.pg_host, tf.segregated.pg_port, tf.segregated.pg_password.env) == (
        "restore.akko.svc", 5433, "RESTORE_PW")
    path.write_text("postgres: {host: pg.akko.svc}\nsegregated_postgres: {host: pg.akko.svc}\n")
    with pytest.raises(PolicyError, match="is the source server; a segregated restore needs another one"):
        load_target_file(path)
