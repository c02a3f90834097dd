"""Calls to the Kubernetes API for the live adapters: one request timeout, one-line reasons, and
polling with a named deadline. Response bodies and credentials never reach a reason."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import ConnectTimeoutError, HTTPError, NewConnectionError, ReadTimeoutError

from akko_dr.errors import DrillError, NotApplicable, TargetUnavailable

T = TypeVar("T")
REQUEST_TIMEOUT = 30.0  # seconds one API request may take before the API counts as unreachable
POLL_INTERVAL = 1.0  # seconds between two reads of an object being waited on


class KubeRefused(DrillError):
    """The API answered with an error status (403, 404, 409, ...); ``status`` keeps the code."""

    def __init__(self, reason: str, status: int) -> None:
        super().__init__(reason)
        self.status = status


class KubeApi:
    """The official client's ApiClient with a request timeout; every call gives a one-line reason.

    Reads go through :meth:`call`, every create, patch or delete through :meth:`write`, which refuses
    (a plan-only coverage gap, no request sent) unless writes were opted in.
    """

    def __init__(self, api: client.ApiClient, request_timeout: float = REQUEST_TIMEOUT,
                 writes_allowed: bool = False) -> None:
        self.api = api
        self.request_timeout = request_timeout
        self.writes_allowed = writes_allowed

    @property
    def host(self) -> str:
        return str(self.api.configuration.host)

    def call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(*args, **kwargs)``; an error answer or an unreachable API becomes a DrillError."""
        try:
            return fn(*args, _request_timeout=self.request_timeout, **kwargs)
        except ApiException as err:
            raise KubeRefused(f"Kubernetes API refused {what}: HTTP {err.status} {err.reason}",
                              err.status or 0) from None
        except HTTPError as err:
            raise TargetUnavailable(self._unreachable(what, err)) from None

    def write(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """A mutating call: made only when writes were opted in."""
        if not self.writes_allowed:
            raise NotApplicable(f"plan only: would be {what} on {self.host} "
                                "(opt in with --allow-destructive)")
        return self.call(what, fn, *args, **kwargs)

    def _unreachable(self, what: str, err: HTTPError) -> str:
        cause = getattr(err, "reason", None) or err
        timed_out = isinstance(cause, ConnectTimeoutError | ReadTimeoutError)
        if timed_out and not isinstance(cause, NewConnectionError):  # a refused connection is no timeout
            return f"Kubernetes API at {self.host} did not answer {what} within {self.request_timeout:g}s"
        return f"Kubernetes API unreachable at {self.host} ({what}): {type(cause).__name__}"


def poll(probe: Callable[[], tuple[bool, T]], deadline: float,
         interval: float = POLL_INTERVAL) -> tuple[bool, T]:
    """Call ``probe`` until it says done or ``deadline`` seconds pass; return its last answer."""
    end = time.monotonic() + deadline
    while True:
        done, state = probe()
        left = end - time.monotonic()
        if done or left <= 0:
            return done, state
        time.sleep(min(interval, left))
