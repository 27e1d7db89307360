"""The phone channel's settings: refused when incomplete outside demo, demo values filled in, calling hours."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from pydantic import SecretStr, ValidationError

from channels.phone.settings import (
    DEMO_ACCOUNT_SID,
    DEMO_API_BASE,
    DEMO_AUTH_TOKEN,
    DEMO_PUBLIC_BASE_URL,
    PhoneSettings,
)
from tests.channels.phone.conftest import phone_settings

CITY = ZoneInfo("Asia/Shanghai")


def at(hour: int, minute: int = 0, day: int = 10) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=CITY)


def test_a_disabled_phone_channel_needs_nothing() -> None:
    settings = PhoneSettings(_env_file=None, demo=False, phone_enabled=False)
    assert settings.twilio_account_sid == ""


def test_enabled_outside_demo_without_its_settings_it_refuses_to_start_naming_each() -> None:
    with pytest.raises(ValidationError) as refused:
        PhoneSettings(_env_file=None, demo=False, phone_enabled=True)
    message = str(refused.value)
    for name in ("HOTLINE_TWILIO_ACCOUNT_SID", "HOTLINE_TWILIO_AUTH_TOKEN", "HOTLINE_PUBLIC_BASE_URL",
                 "HOTLINE_PHONE_NUMBERS", "HOTLINE_EMERGENCY_NUMBERS"):
        assert name in message


def test_outside_demo_the_demo_token_and_a_plain_http_base_are_refused() -> None:
    with pytest.raises(ValidationError, match="HOTLINE_TWILIO_AUTH_TOKEN"):
        phone_settings(twilio_auth_token=SecretStr(DEMO_AUTH_TOKEN))
    with pytest.raises(ValidationError, match="https://"):
        phone_settings(public_base_url="http://12345.minghu.gov.cn")


def test_every_emergency_line_needs_a_number() -> None:
    with pytest.raises(ValidationError, match="no number for 122"):
        phone_settings(emergency_numbers={"110": "+861", "119": "+862", "120": "+863"})
    with pytest.raises(ValidationError, match="unknown emergency line"):
        phone_settings(emergency_numbers={"999": "+864"})


def test_an_api_key_comes_with_its_secret() -> None:
    with pytest.raises(ValidationError, match="HOTLINE_TWILIO_API_SECRET"):
        phone_settings(twilio_api_key="SK" + "1" * 32)
    assert phone_settings(twilio_api_key="SK" + "1" * 32, twilio_api_secret=SecretStr("s" * 32)).twilio_api_key


def test_hotline_numbers_are_e164() -> None:
    with pytest.raises(ValidationError, match=r"E\.164"):
        phone_settings(phone_numbers=("057112345",))


def test_demo_mode_fills_in_the_documented_demo_values() -> None:
    settings = PhoneSettings(_env_file=None, demo=True, phone_enabled=True)
    assert settings.twilio_account_sid == DEMO_ACCOUNT_SID
    assert settings.auth_token == DEMO_AUTH_TOKEN
    assert settings.public_base_url == DEMO_PUBLIC_BASE_URL
    assert settings.api_base == DEMO_API_BASE
    assert settings.caller_id.startswith("+86")
    assert settings.emergency_number("119") == "119"


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOTLINE_DEMO", "1")
    monkeypatch.setenv("HOTLINE_PHONE_ENABLED", "true")
    monkeypatch.setenv("HOTLINE_PUBLIC_BASE_URL", "https://12345.minghu.gov.cn/")
    monkeypatch.setenv("HOTLINE_EMERGENCY_NUMBERS", '{"119": "+8657100119"}')
    monkeypatch.setenv("HOTLINE_PHONE_PROMPTS", '{"greeting": "您好，明湖市12345。"}')
    settings = PhoneSettings(_env_file=None)
    assert settings.public_base_url == "https://12345.minghu.gov.cn"
    assert settings.emergency_number("119") == "+8657100119"
    assert settings.emergency_number("110") == "110"
    assert settings.phone_prompts.greeting == "您好，明湖市12345。"
    assert settings.phone_prompts.menu.startswith("反映问题")


def test_the_auth_token_does_not_show_in_the_settings_repr() -> None:
    assert "0123456789abcdef" not in repr(phone_settings())


@pytest.mark.parametrize("hours", ["07:30-12:00", "14:00-21:30", "20:00-08:00", "12:00-11:00"])
def test_survey_calling_hours_never_reach_into_the_night(hours: str) -> None:
    with pytest.raises(ValidationError):
        phone_settings(survey_hours=hours)


def test_survey_calls_are_placed_inside_the_calling_hours_only() -> None:
    settings = phone_settings(survey_hours="09:00-12:00,14:00-20:00")
    assert settings.may_call_at(at(9)) and settings.may_call_at(at(19, 59))
    assert not settings.may_call_at(at(12, 30)) and not settings.may_call_at(at(20)) and not settings.may_call_at(at(3))
    assert settings.may_call_at(datetime(2026, 3, 10, 2, 0, tzinfo=UTC))  # 10:00 in the city


def test_no_answer_is_retried_two_hours_later_three_times_then_left_to_the_agents() -> None:
    settings = phone_settings(survey_hours="09:00-12:00,14:00-20:00")
    second = settings.next_survey_attempt(1, at(9, 30))
    assert second == at(11, 30)
    third = settings.next_survey_attempt(2, at(11, 30))
    assert third == at(14, 0)  # 13:30 is lunch: the next calling period
    assert settings.next_survey_attempt(3, at(14, 0)) is None


def test_a_retry_that_would_fall_at_night_waits_for_the_morning() -> None:
    settings = phone_settings(survey_hours="09:00-12:00,14:00-20:00")
    assert settings.next_survey_attempt(1, at(19, 0)) == at(9, 0, day=11)


def test_night_mode_wraps_past_midnight() -> None:
    settings = phone_settings(phone_night_mode="22:00-07:00")
    assert settings.is_night(at(23)) and settings.is_night(at(6, 59))
    assert not settings.is_night(at(7)) and not settings.is_night(at(21, 59))
    assert not phone_settings().is_night(at(3))


def test_a_moment_without_a_time_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        phone_settings().may_call_at(datetime(2026, 3, 10, 9))


def test_the_app_refuses_to_start_with_the_phone_channel_enabled_but_no_twilio_secrets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from hotline.settings import Settings

    monkeypatch.setitem(PhoneSettings.model_config, "env_file", None)  # not this checkout's var/demo.env
    monkeypatch.setenv("HOTLINE_PHONE_ENABLED", "1")
    for name in ("HOTLINE_DEMO", "HOTLINE_TWILIO_ACCOUNT_SID", "HOTLINE_TWILIO_AUTH_TOKEN", "HOTLINE_PUBLIC_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError, match=r"TWILIO_ACCOUNT_SID.*TWILIO_AUTH_TOKEN.*HOTLINE_PUBLIC_BASE_URL"):
        Settings(_env_file=None, secret_key="s" * 40, channel_keys={"phone": "k" * 20})


def test_the_demo_city_runs_the_phone_channel_against_the_local_fake(monkeypatch: pytest.MonkeyPatch) -> None:
    from hotline.settings import Settings

    monkeypatch.setenv("HOTLINE_PHONE_ENABLED", "1")
    monkeypatch.setenv("HOTLINE_DEMO", "1")
    phone = Settings(_env_file=None, demo=True).phone
    assert phone.phone_enabled and phone.api_base == "http://127.0.0.1:8010"
    assert phone.public_base_url == "http://127.0.0.1:8000" and phone.auth_token == "demo-twilio-auth-token"
