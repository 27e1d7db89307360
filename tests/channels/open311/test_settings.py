"""Open311 API keys come from HOTLINE_OPEN311_KEYS; the demo key is refused outside demo mode."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from channels.open311.settings import DEMO_OPEN311_KEYS, Open311Settings


def test_keys_are_read_from_the_environment_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOTLINE_OPEN311_KEYS", '{"civic-app": "k-0123456789abcdef", "map-app": "k-fedcba9876543210"}')
    monkeypatch.delenv("HOTLINE_DEMO", raising=False)
    settings = Open311Settings(_env_file=None)
    assert settings.client_for("k-fedcba9876543210") == "map-app"
    assert settings.client_for("k-0123456789abcdef") == "civic-app"
    assert settings.client_for("k-0123456789abcdeF") is None
    assert settings.client_for("") is None and settings.client_for(None) is None


def test_demo_mode_has_a_documented_demo_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOTLINE_DEMO", "1")
    monkeypatch.delenv("HOTLINE_OPEN311_KEYS", raising=False)
    settings = Open311Settings(_env_file=None)
    assert settings.demo and settings.keys == DEMO_OPEN311_KEYS
    assert settings.client_for("demo-open311-key") == "demo-client"


@pytest.mark.parametrize("keys", [DEMO_OPEN311_KEYS, {"civic-app": "demo-open311-key"}, {"civic-app": "short"}])
def test_demo_or_short_keys_are_refused_outside_demo_mode(keys: dict[str, str]) -> None:
    with pytest.raises(ValidationError, match="HOTLINE_OPEN311_KEYS"):
        Open311Settings(demo=False, keys=keys)
