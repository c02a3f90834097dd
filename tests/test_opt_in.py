"""Destructive steps on a live target need an opt-in that repeats the namespace, and on production the
name of who approved it (issue 9, safety rails)."""

import pytest

from akko_dr.errors import DrillError
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
