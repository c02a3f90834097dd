"""A last guard before sealing: no secret value from the environment or the target file in the evidence.

Secret values are taken when the run starts (before the sandbox sets anything): environment variables
whose name says password, secret, token or credential, and the same fields of the target file. A
credential *reference* in the target file (``{secret: ns/name#key}``, ``{env: VAR}``) is not a secret and
is never searched for; the value it resolves to at run time joins ``RUNTIME`` (see ``remember``). Before
the manifest is written every file of the run and the history store is searched for them; a text file
holding one is redacted in place, and each finding is named (variable and file, never the value).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

SECRET_NAME = re.compile(r"pass(word|wd)?|secret|token|credential|private", re.IGNORECASE)
MIN_LENGTH = 6  # shorter values (``on``, ``true``, ``1``) would match everywhere
REDACTED = "[redacted]"
_TEXT = (".html", ".json", ".jsonl", ".xml", ".prom", ".txt", ".log", ".csv", ".yaml")
RUNTIME: dict[str, str] = {}  # name -> value of every credential read while the run goes on


def remember(name: str, value: str | None) -> None:
    """Add a value read at run time (a Kubernetes Secret, an environment variable) to the redaction set."""
    if value and len(value) >= MIN_LENGTH:
        RUNTIME[name] = value


def mask(text: str) -> str:
    """``text`` with every value read at run time replaced (for console lines)."""
    for value in RUNTIME.values():
        text = text.replace(value, REDACTED)
    return text


def _reference(data: Any) -> bool:
    """``{secret: ns/name#key}`` or ``{env: VAR}``: where a credential comes from, not the credential."""
    return isinstance(data, dict) and len(data) == 1 and set(data) <= {"secret", "env"}


def _walk(data: Any, path: str = "") -> Iterable[tuple[str, str]]:
    if _reference(data):
        return
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _walk(value, f"{path}.{key}" if path else str(key))
    elif isinstance(data, list):
        for i, value in enumerate(data):
            yield from _walk(value, f"{path}[{i}]")
    elif isinstance(data, str | int) and SECRET_NAME.search(path.rsplit(".", 1)[-1]):
        yield path, str(data)


def secrets_of(environ: Mapping[str, str], target_file: Path | None) -> dict[str, str]:
    """Name -> value of every secret the run could leak: environment, then target-file fields."""
    found = {f"${k}": v for k, v in environ.items() if SECRET_NAME.search(k)}
    if target_file is not None and target_file.is_file():
        try:
            data = yaml.safe_load(target_file.read_text())
        except (OSError, yaml.YAMLError):
            data = None
        found |= {f"target file {p}": v for p, v in _walk(data)}
    return {name: value for name, value in found.items() if len(value) >= MIN_LENGTH}


def scrub(files: Iterable[Path], secrets: Mapping[str, str]) -> list[str]:
    """Redact secret values in text files; returns one line per finding (binary files are only named)."""
    findings = []
    for path in files:
        data = path.read_bytes()
        hits = [name for name, value in secrets.items() if value.encode() in data]
        if not hits:
            continue
        if path.suffix in _TEXT:
            for name in hits:
                data = data.replace(secrets[name].encode(), REDACTED.encode())
            path.write_bytes(data)
        action = "redacted" if path.suffix in _TEXT else "NOT redacted (binary)"
        findings += [f"secret {name} found in {path.name}: {action}" for name in hits]
    return findings


def snapshot(target_file: str | Path | None) -> dict[str, str]:
    """The secrets as the run starts."""
    return secrets_of(dict(os.environ), Path(target_file) if target_file else None)
