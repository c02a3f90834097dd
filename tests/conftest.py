import pytest

from akko_dr.evidence import redact
from tests.control_plane import control_plane  # noqa: F401  (the cluster tier's session fixture)

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def _runtime_secrets_stay_in_their_test(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credential values a library test resolves (often plain words) stay out of the suite's redaction set."""
    monkeypatch.setattr(redact, "RUNTIME", dict(redact.RUNTIME))
