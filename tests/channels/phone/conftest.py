"""Phone channel fixtures: settings for a city behind a proxy, the fake Twilio API, a real REST client on it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from channels.phone.rest import PhoneRest, make_client
from channels.phone.settings import PhoneSettings
from tests.fakes.twilio_api import FakeTwilioApi

ACCOUNT_SID = "AC" + "1f" * 16
AUTH_TOKEN = "0123456789abcdef0123456789abcdef"
PUBLIC_BASE = "https://12345.minghu.gov.cn"
HOTLINE = "+8657112345"


def phone_settings(**overrides: object) -> PhoneSettings:
    values: dict[str, object] = {
        "demo": False,
        "phone_enabled": True,
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_auth_token": SecretStr(AUTH_TOKEN),
        "public_base_url": PUBLIC_BASE,
        "phone_numbers": (HOTLINE,),
        "emergency_numbers": {"110": "+8657100110", "119": "+8657100119", "120": "+8657100120", "122": "+8657100122"},
        **overrides,
    }
    return PhoneSettings(_env_file=None, **values)  # type: ignore[arg-type]


@pytest.fixture
def settings() -> PhoneSettings:
    return phone_settings()


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilioApi]:
    with FakeTwilioApi(ACCOUNT_SID, AUTH_TOKEN).running() as fake:
        yield fake


@pytest.fixture
def rest(fake_twilio: FakeTwilioApi) -> PhoneRest:
    settings = phone_settings(twilio_api_base=fake_twilio.base_url)
    return PhoneRest(make_client(settings), settings)
