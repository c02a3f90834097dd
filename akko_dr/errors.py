"""Errors the harness raises: each carries a one-line reason for the evidence."""


class DrillError(Exception):
    """A drill step could not be completed; ``str(err)`` is the one-line reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(" ".join(reason.split()))


class PolicyError(ValueError):
    """The policy file is malformed: names the key and what was expected."""


class TargetUnavailable(DrillError):
    """A part of the drill target (S3, PostgreSQL, cluster) cannot be reached."""


class NotApplicable(DrillError):
    """This target cannot run the step (a port it lacks, a plan-only run): a coverage gap, not a finding."""


class Inconclusive(DrillError):
    """The step ran, but what it proved rests on an emulator or on an ambiguous answer: not a PASS."""
