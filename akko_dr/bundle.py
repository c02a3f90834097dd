"""Where the harness's features, steps and pytest settings are: the checkout, or an installed wheel.

The wheel installs them under ``<prefix>/share/akko-dr`` (``[tool.setuptools.data-files]`` in
pyproject.toml): ``conftest.py``, ``pyproject.toml`` (the pytest settings: markers, features folder),
``features/`` and ``steps/``, laid out as in the checkout, so pytest finds its root there.
"""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

DISTRIBUTION = "akko-dr"
SHARE = Path("share", "akko-dr")
_MARKERS = ("conftest.py", "pyproject.toml", "features", "steps")


def _is_root(folder: Path) -> bool:
    return all((folder / name).exists() for name in _MARKERS)


def _checkout() -> Path:
    return Path(__file__).resolve().parent.parent


def _installed() -> Path | None:
    """The share folder the installed distribution recorded (any prefix: venv, --user, system)."""
    try:
        files = metadata.distribution(DISTRIBUTION).files or []
    except metadata.PackageNotFoundError:
        return None
    for file in files:
        if file.name == "conftest.py" and file.parent.name == SHARE.name:
            return Path(str(file.locate())).resolve().parent
    return None


def root_dir() -> Path:
    """The folder pytest runs the features from: the checkout when run from one, else the installed
    share folder; where neither is complete, the place an install would put it (callers check)."""
    for candidate in (_checkout(), _installed()):
        if candidate is not None and _is_root(candidate):
            return candidate
    return Path(sys.prefix) / SHARE


def features_dir() -> Path:
    return root_dir() / "features"


def steps_dir() -> Path:
    return root_dir() / "steps"
