"""The WORM proof: whether a write against a locked version was refused *because of the lock*.

Only a lock refusal counts as refused: ``AccessDenied`` on a locked version (AWS, moto), or the store's
lock-specific answer (MinIO: HTTP 400 ``InvalidRequest`` "Object is WORM protected and cannot be
overwritten"). Authentication failures, unknown buckets or keys, a malformed request, network errors and
anything else leave the proof inconclusive, with the reason: they say nothing about the lock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from akko_dr.errors import DrillError, TargetUnavailable
from akko_dr.ports import StoreRefused

Outcome = Literal["refused", "accepted", "inconclusive"]

# error code -> a fragment its message must hold to be a lock refusal ("" = the code alone is enough)
LOCK_REFUSALS = {"AccessDenied": "", "InvalidRequest": "WORM protected"}
# MinIO refuses a write against the lock with InvalidRequest "WORM protected" only; its AccessDenied is the
# identity's policy (or a disabled account) speaking, never the lock
LOCK_REFUSALS_BY_SERVER = {"MinIO": {"InvalidRequest": "WORM protected"}}
NOT_THE_LOCK_BY_SERVER = {"MinIO": {"AccessDenied": "MinIO answers AccessDenied for the identity's policy, "
                                                    "not for the lock (its lock refusal is InvalidRequest)"}}
NOT_ABOUT_THE_LOCK = {
    "SignatureDoesNotMatch": "the credentials did not authenticate",
    "InvalidAccessKeyId": "the access key is unknown to the store",
    "NoSuchBucket": "the bucket does not exist",
    "NoSuchKey": "the record does not exist",
    "NoSuchVersion": "the version does not exist",
    "MalformedXML": "the request was malformed (a bad probe, not a lock)",
}


@dataclass(frozen=True)
class Attempt:
    """One write tried against a locked version, and what the store's answer proves."""

    action: str  # "deleting the locked version of dr-probe/worm-…"
    outcome: Outcome
    answer: str  # the store's answer: "AccessDenied (HTTP 403)", "accepted", "SignatureDoesNotMatch …"
    why: str = ""  # for inconclusive: why the answer proves nothing about the lock

    def line(self) -> str:
        if self.outcome == "inconclusive":
            return f"{self.action}: inconclusive, {self.answer}: {self.why}"
        if self.outcome == "accepted":
            return f"{self.action}: accepted"
        return f"{self.action}: refused ({self.answer})"


def classify(err: StoreRefused) -> tuple[Outcome, str]:
    """Whether the store's error is a refusal because of the lock, else why it is inconclusive."""
    fragment = LOCK_REFUSALS_BY_SERVER.get(err.server, LOCK_REFUSALS).get(err.code)
    if fragment is not None and fragment in err.message:
        return "refused", ""
    reasons = NOT_ABOUT_THE_LOCK | NOT_THE_LOCK_BY_SERVER.get(err.server, {})
    if err.code in reasons:
        return "inconclusive", reasons[err.code]
    return "inconclusive", f"{err.code} is not a lock refusal"


def attempt(action: str, write: Callable[[], object]) -> Attempt:
    """Try ``write`` (which the lock must refuse) and classify the store's answer."""
    try:
        write()
    except StoreRefused as err:
        outcome, why = classify(err)
        answer = f"{err.code} (HTTP {err.status})" if err.status else err.code
        return Attempt(action, outcome, answer, why)
    except TargetUnavailable as err:
        return Attempt(action, "inconclusive", "no answer", f"the store could not be reached ({err})")
    except DrillError as err:
        return Attempt(action, "inconclusive", "error", str(err))
    return Attempt(action, "accepted", "accepted")
