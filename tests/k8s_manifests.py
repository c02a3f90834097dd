"""Test glue: shipped Kubernetes manifests, loaded into the official client's model classes."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
_REFERENCE = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def load_manifest(path: Path) -> list[dict[str, Any]]:
    """The documents of ``path``, each loaded into the model of its kind and back: a misspelt or unknown
    field, or a missing required one, fails here."""
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    api = client.ApiClient()
    for doc in docs:
        version = doc["apiVersion"].rpartition("/")[2].capitalize()
        model = api.deserialize(json.dumps(doc), f"{version}{doc['kind']}", "application/json")
        where = f"{path.name}: {doc['kind']} {doc['metadata']['name']}"
        assert api.sanitize_for_serialization(model) == doc, f"{where}: a field its model does not know"
    return docs


def expand(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' expansion of ``$(VAR)`` in a container's command and args (unknown ones stay)."""
    return _REFERENCE.sub(lambda m: env.get(m.group(1), m.group(0)), text)
