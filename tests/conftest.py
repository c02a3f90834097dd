from collections.abc import Callable, Iterator

import pytest

from akko_dr.evidence import redact
from akko_dr.sandbox import Sandbox
from akko_dr.targets import new_run_id
from tests.control_plane import control_plane  # noqa: F401  (the cluster tier's session fixture)

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def _runtime_secrets_stay_in_their_test(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credential values a library test resolves (often plain words) stay out of the suite's redaction set."""
    monkeypatch.setattr(redact, "RUNTIME", dict(redact.RUNTIME))


@pytest.fixture(autouse=True)
def _keycloak_starts_once_per_session(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keycloak's start is slow: it runs once, in this session's sandbox (set up before this fixture).
    The runs a test starts itself (akko-dr in a subprocess) use the stand-in, and their reports say so."""
    monkeypatch.setenv("AKKO_DR_KEYCLOAK", "off")


@pytest.fixture
def scratch(sandbox: Sandbox) -> Iterator[Callable[[str], str]]:
    """Names of databases of this test, dropped afterwards."""
    made: list[str] = []

    def name(stem: str) -> str:
        made.append(f"{stem}_{new_run_id()}")
        return made[-1]
    yield name
    for database in made:
        sandbox.db.drop(database)
