"""The live eradicator (Drill 3): the ServiceAccounts and Secrets an attacker left in the namespace.

Responders mark what they attribute to a compromised identity with a label, before the drill:

    kubectl -n akko label serviceaccount/NAME secret/NAME akko.io/compromised-identity=IDENTITY

Only objects carrying that label with exactly that identity are listed and deleted; nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from kubernetes import client

from akko_dr.adapters.kube_api import KubeApi, KubeRefused
from akko_dr.errors import DrillError

LABEL = "akko.io/compromised-identity"
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")


class LabelledEradicator:
    """Lists and deletes the ServiceAccounts and Secrets labelled ``akko.io/compromised-identity``."""

    def __init__(self, api: KubeApi, namespace: str) -> None:
        self.kube, self.namespace = api, namespace
        core = client.CoreV1Api(api.api)
        self._kinds: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
            "ServiceAccount": (core.list_namespaced_service_account, core.delete_namespaced_service_account),
            "Secret": (core.list_namespaced_secret, core.delete_namespaced_secret)}

    def attacker_objects(self, identity: str) -> list[str]:
        """``Kind namespace/name`` of every object labelled as ``identity``'s."""
        return [f"{kind} {self.namespace}/{name}" for kind, name in self._labelled(identity)]

    def remove(self, identity: str) -> list[str]:
        """Delete every object labelled as ``identity``'s; return what was removed (one already gone is
        not counted)."""
        removed = []
        for kind, name in self._labelled(identity):
            try:
                self.kube.write(f"deleting {kind} {name}", self._kinds[kind][1], name, self.namespace)
            except KubeRefused as err:
                if err.status != 404:
                    raise
                continue
            removed.append(f"{kind} {self.namespace}/{name}")
        return removed

    def _labelled(self, identity: str) -> list[tuple[str, str]]:
        if not _LABEL_VALUE.match(identity):
            raise DrillError(f"identity {identity!r} cannot be a label value of {LABEL}")
        found = []
        for kind, (lister, _) in self._kinds.items():
            listing = self.kube.call(f"listing {kind}s labelled {LABEL}={identity}", lister, self.namespace,
                                     label_selector=f"{LABEL}={identity}")
            found += [(kind, item.metadata.name) for item in listing.items
                      if (item.metadata.labels or {}).get(LABEL) == identity]
        return found
