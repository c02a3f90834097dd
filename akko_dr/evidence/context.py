"""The run's context fixed before the first scenario: trigger, people, clock, versions, objectives."""

from __future__ import annotations

import ctypes
import getpass
import os
import platform
import socket
import time
from importlib import metadata

from akko_dr.errors import PolicyError
from akko_dr.evidence import objectives
from akko_dr.evidence.record import RunRecord
from akko_dr.measure import utcnow
from akko_dr.policy import load_policy

PARTICIPANTS_ENV = "AKKO_DR_PARTICIPANTS"  # "Name (role); Name (role)"
TRIGGERS = ("quarterly", "after-change", "ad-hoc")
_PACKAGES = ("akko-dr", "pytest", "pytest-bdd", "pytest-html", "cryptography", "prometheus-client")


def versions() -> dict[str, str]:
    out = {"Python": platform.python_version(), "OS": platform.platform()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


_TIME_ERROR = 5  # adjtimex(2): the kernel considers the clock not synchronised


def ntp_state() -> str:
    """What the kernel says about clock synchronisation (Linux adjtimex, read-only)."""
    try:
        state = ctypes.CDLL(None, use_errno=True).adjtimex(ctypes.create_string_buffer(512))
    except (AttributeError, OSError):
        return "NTP synchronisation not checked (no adjtimex on this system)"
    if state < 0:
        return "NTP synchronisation unknown (adjtimex failed)"
    return ("the kernel reports the clock as NOT synchronised (adjtimex TIME_ERROR)" if state == _TIME_ERROR
            else "the kernel reports the clock as synchronised (adjtimex)")


def clock_source() -> str:
    info = time.get_clock_info("time")
    return f"system clock of {socket.gethostname()} ({info.implementation}), recorded in UTC; {ntp_state()}"


def participants(given: list[str] | None) -> list[str]:
    from_env = [p.strip() for p in os.environ.get(PARTICIPANTS_ENV, "").split(";") if p.strip()]
    named = list(given or []) + from_env
    return named or [f"{getpass.getuser()} (operator, ran akko-dr on {socket.gethostname()})"]


def dora_refs(markers: list[str]) -> dict[str, str]:
    """``dora-12.3`` -> ``DORA Art. 12(3) — restoration into segregated systems`` from the marker lines."""
    pairs = (line.partition(":") for line in markers)
    return {name.strip(): text.strip() for name, _, text in pairs if name.strip().startswith("dora-")}


def fill(run: RunRecord, trigger: str, people: list[str] | None, policy_path: object,
         markers: list[str]) -> None:
    """Record the context and declare the objectives from the policy, before any scenario runs."""
    run.trigger, run.participants = trigger, participants(people)
    run.host, run.clock_source = socket.gethostname(), clock_source()
    run.versions, run.dora_refs = versions(), dora_refs(markers)
    declare(run, policy_path)


def declare(run: RunRecord, policy_path: object, judged_in: dict[str, str] | None = None) -> None:
    """Declare each drill's objectives and targets from the policy (classes from the drills' tags)."""
    try:
        policy = load_policy(policy_path)  # type: ignore[arg-type]
        run.policy_name, run.policy_version, run.policy_source = policy.name, policy.version, policy.source
        run.namespace = policy.namespace
        run.declared = objectives.declare(policy, judged_in)
    except PolicyError as err:
        run.declared = [{"drill": "policy", "title": "policy could not be loaded", "objective": str(err),
                         "scope": [], "criteria": [], "reference_rto": None}]
    run.declared_at = utcnow().isoformat()
