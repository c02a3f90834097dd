"""The layers hold: drills, checks and steps talk to ports, never to an adapter or the sandbox, and no step
branches on the kind of target (issue 9). Read from the source, so a new import is caught at once."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GUARDED = [path for folder in ("akko_dr/drills", "akko_dr/checks", "steps")
           for path in sorted((ROOT / folder).glob("*.py"))]
FORBIDDEN = ("akko_dr.adapters", "akko_dr.sandbox", "boto3", "botocore", "psycopg", "kubernetes")


def imported(path: Path) -> list[str]:
    """Every module a file imports (``from a import b`` gives ``a.b`` as well as ``a``)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names += [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
    return names


@pytest.mark.parametrize("path", GUARDED, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_adapter_or_sandbox_import(path: Path) -> None:
    wrong = sorted({n for n in imported(path) if n.startswith(FORBIDDEN)})
    assert not wrong, f"{path.relative_to(ROOT)} imports {', '.join(wrong)}: use akko_dr.ports via the Target"


@pytest.mark.parametrize("path", sorted((ROOT / "steps").glob("*.py")), ids=lambda p: p.name)
def test_no_step_tests_the_target_kind(path: Path) -> None:
    tests = [node.lineno for node in ast.walk(ast.parse(path.read_text()))
             if isinstance(node, ast.Attribute) and node.attr == "kind"
             and isinstance(node.value, ast.Attribute | ast.Name)
             and getattr(node.value, "attr", getattr(node.value, "id", "")) in ("target", "orchestrator")]
    assert not tests, f"{path.name} reads the target's kind at lines {tests}: use target.port(...) instead"


def test_the_walk_sees_a_forbidden_import(tmp_path: Path) -> None:
    """The guard itself can fail: a file importing an adapter is caught."""
    bad = tmp_path / "bad.py"
    bad.write_text("from akko_dr.adapters.s3 import S3ObjectStore\nimport boto3\n")
    assert {"akko_dr.adapters.s3", "boto3"} <= set(imported(bad))
