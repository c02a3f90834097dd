"""AKKO DR drill harness: the DR playbook as executable, auditable drills."""

__version__ = "0.1.0"
