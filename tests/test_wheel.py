"""The wheel carries the features, steps and pytest settings: an installed harness runs from any folder."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from akko_dr import bundle

CHECKOUT = Path(__file__).resolve().parent.parent
SOURCES = ("akko_dr", "features", "steps", "conftest.py", "pyproject.toml", "README.md", "MANIFEST.in")
BUILD_DEADLINE = 180.0  # seconds: wheel build, venv, install and collection each stay far below this


def _run(cmd: list[str], cwd: Path, codes: tuple[int, ...] = (0,)) -> str:
    """Run outside the checkout: no PYTHONPATH, so the interpreter imports what is installed."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=BUILD_DEADLINE)
    assert proc.returncode in codes, f"{' '.join(cmd[:4])}… exited {proc.returncode}: {proc.stderr[-2000:]}"
    return proc.stdout


def _copy_sources(dest: Path) -> Path:
    """The harness sources, copied so that the build leaves nothing in the checkout."""
    for name in SOURCES:
        src = CHECKOUT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / name)
    return dest


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding only the built wheel; the suite's venv lends the dependencies (no download)."""
    base = tmp_path_factory.mktemp("wheel")
    src = _copy_sources(base / "src")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
          "-w", str(base / "dist"), str(src)], base)
    [wheel] = (base / "dist").glob("akko_dr-*.whl")
    venv = base / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], base)
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
          "--no-index", str(wheel)], base)
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], base)
                .strip())
    (site / "suite-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return python


def _collected(python: Path | str, steps: Path, cwd: Path) -> tuple[str, list[str]]:
    """pytest's collection of ``steps`` (evidence outside both trees): its output and the test names."""
    out = _run([str(python), "-m", "pytest", str(steps), "--collect-only",
                "--evidence-dir", str(cwd / "evidence")], cwd)
    return out, re.findall(r"<Function (test_\S+)>", out)


def test_in_the_checkout_the_bundle_is_the_checkout() -> None:
    assert bundle.root_dir() == CHECKOUT
    assert bundle.steps_dir() == CHECKOUT / "steps" and bundle.features_dir() == CHECKOUT / "features"


def test_the_installed_wheel_finds_its_features_and_steps_from_another_folder(installed: Path,
                                                                              tmp_path: Path) -> None:
    out = _run([str(installed), "-c", "import akko_dr, akko_dr.bundle as b; "
                "print(akko_dr.__file__); print(b.features_dir()); print(b.steps_dir())"], tmp_path)
    module, features, steps = (Path(line) for line in out.splitlines())
    venv = installed.parent.parent
    assert module.is_relative_to(venv), f"akko_dr imported from {module}, not from the installed wheel"
    assert features == venv / "share" / "akko-dr" / "features", features
    assert sorted(p.name for p in features.glob("*.feature")) == \
        sorted(p.name for p in (CHECKOUT / "features").glob("*.feature"))
    assert (steps / "conftest.py").is_file() and (steps.parent / "conftest.py").is_file()


def test_pytest_collects_every_bundled_scenario_from_another_folder(installed: Path, tmp_path: Path) -> None:
    steps = installed.parent.parent / "share" / "akko-dr" / "steps"
    out, collected = _collected(installed, steps, tmp_path)
    assert f"rootdir: {steps.parent}" in out, out[:600]
    _, in_checkout = _collected(sys.executable, CHECKOUT / "steps", tmp_path)
    assert collected and collected == in_checkout, out[-2000:]


def test_the_installed_akko_dr_runs_a_feature_from_another_folder(installed: Path, tmp_path: Path) -> None:
    """The policy analysis needs no platform: its scenarios run and their evidence is written here."""
    steps = installed.parent.parent / "share" / "akko-dr" / "steps"
    evidence = tmp_path / "evidence"
    _run([str(installed.parent / "akko-dr"), "drill", "--steps", str(steps), "--evidence-dir", str(evidence),
          "-k", "policy_analysis"], tmp_path, codes=(0, 1))  # 1: the playbook's own findings
    results = json.loads((evidence / "latest" / "results.json").read_text())
    feature = (CHECKOUT / "features" / "policy_analysis.feature").read_text()
    scenarios = set(re.findall(r"^\s*Scenario: (.+)$", feature, re.M))
    assert {sc["name"] for sc in results["scenarios"]} == scenarios
    assert {sc["status"] for sc in results["scenarios"]} <= {"passed", "failed"}
