"""Phone channel fixtures: settings for a city behind a proxy, the fake Twilio API, a real REST client on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from channels.phone.rest import PhoneRest, make_client
from channels.phone.settings import PhoneSettings
from hotline.db import make_engine, make_sessionmaker
from hotline.events import LocalBus
from hotline.services import Services
from hotline.settings import Settings
from hotline.suggestion import NullSuggester
from hotline.timing import Timing
from routing.calendar import WorkCalendar
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


def phone_services(db_url: str, tmp_path: Path, fake: FakeTwilioApi, **phone: Any) -> Services:
    """The app's services for a city with the phone channel on, its REST API the fake Twilio (dispose the engine)."""
    settings = Settings(demo=True, database_url=db_url, redis_url=None, model_dir=tmp_path / "no-model",
                        embedded_worker=False, phone=phone_settings(twilio_api_base=fake.base_url, **phone))
    engine = make_engine(settings.database_url)
    bus = LocalBus()
    return Services(settings=settings, engine=engine, sessions=make_sessionmaker(engine, bus.publish), bus=bus,
                    timing=Timing(WorkCalendar(tz=settings.city_timezone)), suggester=NullSuggester())
