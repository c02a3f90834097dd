"""The sandbox: a mini-AKKO on one machine (real PostgreSQL, an S3 endpoint, real backup jobs)."""

from akko_dr.sandbox.platform import Sandbox, start_sandbox

__all__ = ["Sandbox", "start_sandbox"]
