"""Errors the harness raises: each carries a one-line reason for the evidence.

One hierarchy, four kinds, each ending a run its own way:

- ``ConfigurationError`` (``PolicyError``): a policy, target or answers file is malformed; refused before
  anything runs, naming the file, the key and the expected form. Exit 2 (bad input).
- ``TargetUnavailable``: a part of the target cannot be reached; the drill cannot complete (a finding).
- ``DrillRefused`` (``DrillError``): the drill refused to go on (a bad backup, a failed check, a drill
  already running). A finding, exit 1. ``NotApplicable`` and ``Inconclusive`` are coverage gaps.
- ``HarnessBug``: anything else, i.e. a defect of the harness itself. Never reported as a refusal of the
  backup: the scenario errors and the run exits 2.
"""


class AkkoDrError(Exception):
    """Every error the harness raises on purpose; ``str(err)`` is the one-line reason."""

    def __init__(self, reason: str = "") -> None:
        super().__init__(" ".join(str(reason).split()))


class ConfigurationError(AkkoDrError, ValueError):
    """A policy, target or answers file is malformed: names the file, the key and what was expected."""


PolicyError = ConfigurationError  # the historical name


class DrillError(AkkoDrError):
    """A drill step could not be completed, or the drill refused to go on; ``str(err)`` is the reason."""


DrillRefused = DrillError


class UnreadableDump(DrillError):
    """The restoring tool could not read the dump itself (a truncated or damaged archive): the drill names
    the backup as damaged, never the restore as failed."""


class TargetUnavailable(DrillError):
    """A part of the drill target (S3, PostgreSQL, cluster) cannot be reached."""


class NotApplicable(DrillError):
    """This target cannot run the step (a port it lacks, a plan-only run): a coverage gap, not a finding."""


class Inconclusive(DrillError):
    """The step ran, but what it proved rests on an emulator or on an ambiguous answer: not a PASS."""


class HarnessBug(AkkoDrError):
    """A defect of the harness itself (an unexpected exception): exit 2, never a finding on the target."""


# What a scenario may legitimately end with; anything else raised inside a scenario is a harness bug.
EXPECTED = (AssertionError, DrillError, ConfigurationError)


def is_harness_bug(exc: BaseException | None) -> bool:
    """Whether an exception that ended a scenario is a defect of the harness (not a finding or a gap)."""
    if exc is None or isinstance(exc, HarnessBug):
        return exc is not None
    if not isinstance(exc, Exception):  # KeyboardInterrupt, SystemExit, pytest's outcomes
        return False
    return not isinstance(exc, EXPECTED)
