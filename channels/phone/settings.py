"""The phone channel's settings (environment, prefix ``HOTLINE_``), validated once at start-up.

- ``HOTLINE_PHONE_ENABLED``: turn the phone channel on (default off).
- ``HOTLINE_TWILIO_ACCOUNT_SID``: the Twilio account (``AC`` + 32 hex digits). Demo: ``AC`` + 32 zeros.
- ``HOTLINE_TWILIO_AUTH_TOKEN``: signs every webhook; the REST API's password unless an API key is set.
  Demo: ``demo-twilio-auth-token``.
- ``HOTLINE_TWILIO_API_KEY`` / ``HOTLINE_TWILIO_API_SECRET``: an API key (``SK…``) and its secret for the REST
  API instead of the auth token (optional).
- ``HOTLINE_TWILIO_BROWSER_PHONE``: agents take queued calls in the browser (Twilio's Voice JavaScript SDK); the
  server issues AccessTokens with a VoiceGrant signed with the API key and secret, for
  ``HOTLINE_TWILIO_TWIML_APP_SID`` (``AP…``). Off: calls go to each agent's own device (``users.phone_device``).
- ``HOTLINE_PUBLIC_BASE_URL``: the URL Twilio reaches this service at; every webhook signature is over this base
  plus the path. Demo: ``http://127.0.0.1:8000``.
- ``HOTLINE_TWILIO_API_BASE``: where the REST API is (unset: ``https://api.twilio.com``). Demo:
  ``http://127.0.0.1:8010``, the local fake.
- ``HOTLINE_PHONE_NUMBERS`` (JSON list): the hotline's numbers, E.164; the first is the caller ID of survey calls
  and SMS. Demo: ``["+8657112345"]``.
- ``HOTLINE_EMERGENCY_NUMBERS`` (JSON): what to dial for each of 110/119/120/122 (a city's trunk numbers of its
  emergency centres). Demo: the short numbers themselves.
- ``HOTLINE_SURVEY_HOURS`` (default ``09:00-12:00,14:00-20:00``): when survey calls (回访) may be placed, city
  time; never before 08:00 or after 21:00, whatever a city sets.
- ``HOTLINE_SURVEY_ATTEMPTS`` / ``HOTLINE_SURVEY_RETRY_HOURS`` (default 3 / 2): tries per survey call and the time
  between them; after the last, the ticket goes to the agents' callback queue.
- ``HOTLINE_QUEUE_TIMEOUT_SECONDS`` (default 180): after this long in the queue the caller is offered voicemail.
- ``HOTLINE_PHONE_NIGHT_MODE`` (e.g. ``22:00-07:00``, default unset): callers are offered voicemail instead of
  the queue during this period.
- ``HOTLINE_PHONE_PROMPTS`` / ``HOTLINE_PHONE_SMS`` (JSON): override any prompt of ``PhonePrompts`` or template
  of ``SmsTemplates``.

Outside demo mode an enabled phone channel refuses to start without the account, the auth token (and not the
demo one), an https public base URL, at least one hotline number and all four emergency numbers.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from channels.phone.prompts import EMERGENCY_LINES, PhonePrompts
from hotline.notice_texts import SmsTemplates

#: like hotline.settings: the demo switch ``make run`` writes, then a deployment's own .env (the environment wins)
ENV_FILES = (Path(__file__).resolve().parents[2] / "var" / "demo.env", Path(".env"))
DEMO_ACCOUNT_SID = "AC" + "0" * 32
DEMO_AUTH_TOKEN = "demo-twilio-auth-token"
DEMO_API_KEY = "SK" + "0" * 32
DEMO_API_SECRET = "demo-twilio-api-secret"
DEMO_TWIML_APP_SID = "AP" + "0" * 32
DEMO_PUBLIC_BASE_URL = "http://127.0.0.1:8000"
DEMO_API_BASE = "http://127.0.0.1:8010"
DEMO_PHONE_NUMBERS = ("+8657112345",)
DEMO_EMERGENCY_NUMBERS = {line: line for line in EMERGENCY_LINES}
TWILIO_API_BASE = "https://api.twilio.com"

# Survey calls are never placed at night, whatever a city configures.
EARLIEST_CALL = time(8, 0)
LATEST_CALL = time(21, 0)

_PERIOD = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
_E164 = re.compile(r"^\+[1-9]\d{5,14}$")


def parse_period(text: str) -> tuple[time, time]:
    """"22:00-07:00" -> (22:00, 07:00); a period may wrap past midnight. ValueError naming the bad text."""
    m = _PERIOD.match(text)
    if not m:
        raise ValueError(f"period {text.strip()!r} is not HH:MM-HH:MM")
    h1, m1, h2, m2 = (int(g) for g in m.groups())
    if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
        raise ValueError(f"period {text.strip()!r} is not a time of day")
    start, end = time(h1, m1), time(h2, m2)
    if start == end:
        raise ValueError(f"period {text.strip()!r} is empty")
    return start, end


def parse_calling_hours(text: str) -> tuple[tuple[time, time], ...]:
    """Ascending, non-overlapping day-time periods, none outside 08:00-21:00."""
    periods: list[tuple[time, time]] = []
    for part in text.split(","):
        start, end = parse_period(part)
        if end < start:
            raise ValueError(f"calling hours {part.strip()!r} may not run past midnight")
        if start < EARLIEST_CALL or end > LATEST_CALL:
            raise ValueError(f"calling hours {part.strip()!r} reach into the night; calls are placed 08:00-21:00 only")
        if periods and start < periods[-1][1]:
            raise ValueError(f"calling hours {part.strip()!r} must start after the period before ends")
        periods.append((start, end))
    return tuple(periods)


def in_period(moment: time, period: tuple[time, time]) -> bool:
    start, end = period
    if start < end:
        return start <= moment < end
    return moment >= start or moment < end


class PhoneSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HOTLINE_", env_file=ENV_FILES, extra="ignore")

    demo: bool = False
    phone_enabled: bool = False
    twilio_account_sid: str = ""
    twilio_auth_token: SecretStr = SecretStr("")
    twilio_api_key: str = ""
    twilio_api_secret: SecretStr = SecretStr("")
    twilio_api_base: str = ""
    twilio_browser_phone: bool = False
    twilio_twiml_app_sid: str = ""
    public_base_url: str = ""
    phone_numbers: tuple[str, ...] = ()
    emergency_numbers: dict[str, str] = Field(default_factory=dict)
    city_timezone: str = "Asia/Shanghai"
    survey_hours: str = "09:00-12:00,14:00-20:00"
    survey_attempts: int = Field(default=3, ge=1, le=10)
    survey_retry_hours: float = Field(default=2.0, gt=0, le=48)
    queue_timeout_seconds: int = Field(default=180, ge=10, le=3600)
    phone_night_mode: str = ""
    phone_voice: str = "Polly.Zhiyu"
    phone_say_language: str = "cmn-CN"
    phone_speech_language: str = "cmn-Hans-CN"
    phone_prompts: PhonePrompts = Field(default_factory=PhonePrompts)
    phone_sms: SmsTemplates = Field(default_factory=SmsTemplates)

    @field_validator("survey_hours")
    @classmethod
    def _valid_survey_hours(cls, value: str) -> str:
        parse_calling_hours(value)
        return value

    @field_validator("phone_night_mode")
    @classmethod
    def _valid_night_mode(cls, value: str) -> str:
        if value.strip():
            parse_period(value)
        return value.strip()

    @field_validator("phone_numbers")
    @classmethod
    def _e164_numbers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [n for n in value if not _E164.match(n)]
        if bad:
            raise ValueError(f"hotline numbers must be E.164 (+8657112345): {', '.join(bad)}")
        return value

    @field_validator("emergency_numbers")
    @classmethod
    def _known_lines(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(EMERGENCY_LINES))
        if unknown:
            raise ValueError(f"unknown emergency line(s) {unknown}; the lines are {', '.join(EMERGENCY_LINES)}")
        return value

    @field_validator("public_base_url", "twilio_api_base")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        if value and not re.match(r"^https?://[^/?#]+(/[^?#]*)?$", value):
            raise ValueError(f"{value!r} is not an http(s) base URL without query or fragment")
        return value

    @model_validator(mode="after")
    def _complete_when_enabled(self) -> PhoneSettings:
        if not self.phone_enabled:
            return self
        if self.demo:
            self._fill_demo_values()
            return self
        problems: list[str] = []
        if not re.fullmatch(r"AC[0-9a-f]{32}", self.twilio_account_sid) or self.twilio_account_sid == DEMO_ACCOUNT_SID:
            problems.append("HOTLINE_TWILIO_ACCOUNT_SID (AC followed by 32 hex digits)")
        token = self.twilio_auth_token.get_secret_value()
        if not token or token == DEMO_AUTH_TOKEN:
            problems.append("HOTLINE_TWILIO_AUTH_TOKEN (it signs every webhook)")
        if bool(self.twilio_api_key) != bool(self.twilio_api_secret.get_secret_value()):
            problems.append("both HOTLINE_TWILIO_API_KEY and HOTLINE_TWILIO_API_SECRET, or neither")
        elif self.twilio_api_key and not self.twilio_api_key.startswith("SK"):
            problems.append("HOTLINE_TWILIO_API_KEY (SK…)")
        if self.twilio_browser_phone and not (self.twilio_api_key and re.fullmatch(r"AP[0-9a-f]{32}",
                                                                                  self.twilio_twiml_app_sid)):
            problems.append("HOTLINE_TWILIO_API_KEY, HOTLINE_TWILIO_API_SECRET and HOTLINE_TWILIO_TWIML_APP_SID "
                            "(AP…) for the browser phone (HOTLINE_TWILIO_BROWSER_PHONE)")
        if not self.public_base_url.startswith("https://"):
            problems.append("HOTLINE_PUBLIC_BASE_URL (the https:// address Twilio reaches this service at)")
        if not self.phone_numbers:
            problems.append("HOTLINE_PHONE_NUMBERS (at least one hotline number)")
        missing = [line for line in EMERGENCY_LINES if not self.emergency_numbers.get(line)]
        if missing:
            problems.append(f"HOTLINE_EMERGENCY_NUMBERS (no number for {', '.join(missing)})")
        if problems:
            raise ValueError(
                "the phone channel is enabled (HOTLINE_PHONE_ENABLED) but these settings are missing or unusable: "
                + "; ".join(problems)
                + " (set HOTLINE_DEMO=1 to run against the local fake Twilio)"
            )
        return self

    def _fill_demo_values(self) -> None:
        self.twilio_account_sid = self.twilio_account_sid or DEMO_ACCOUNT_SID
        if not self.twilio_auth_token.get_secret_value():
            self.twilio_auth_token = SecretStr(DEMO_AUTH_TOKEN)
        self.public_base_url = self.public_base_url or DEMO_PUBLIC_BASE_URL
        self.twilio_api_base = self.twilio_api_base or DEMO_API_BASE
        self.phone_numbers = self.phone_numbers or DEMO_PHONE_NUMBERS
        self.emergency_numbers = {**DEMO_EMERGENCY_NUMBERS, **self.emergency_numbers}
        if self.twilio_browser_phone:
            self.twilio_twiml_app_sid = self.twilio_twiml_app_sid or DEMO_TWIML_APP_SID
            if not self.twilio_api_key:
                self.twilio_api_key, self.twilio_api_secret = DEMO_API_KEY, SecretStr(DEMO_API_SECRET)

    # -- derived values -------------------------------------------------------------------------------------

    @property
    def auth_token(self) -> str:
        return self.twilio_auth_token.get_secret_value()

    @property
    def api_base(self) -> str:
        return self.twilio_api_base or TWILIO_API_BASE

    @property
    def caller_id(self) -> str:
        if not self.phone_numbers:
            raise ValueError("no hotline number is configured (HOTLINE_PHONE_NUMBERS)")
        return self.phone_numbers[0]

    @property
    def survey_periods(self) -> tuple[tuple[time, time], ...]:
        return parse_calling_hours(self.survey_hours)

    @property
    def survey_retry_interval(self) -> timedelta:
        return timedelta(hours=self.survey_retry_hours)

    def emergency_number(self, line: str) -> str:
        number = self.emergency_numbers.get(line)
        if not number:
            raise KeyError(f"no number is configured for emergency line {line}")
        return number

    def _local(self, moment: datetime) -> datetime:
        if moment.tzinfo is None:
            raise ValueError("a moment without a time zone is ambiguous")
        return moment.astimezone(ZoneInfo(self.city_timezone))

    def is_night(self, moment: datetime) -> bool:
        """Night mode (``HOTLINE_PHONE_NIGHT_MODE``) is on at this moment: callers are offered voicemail."""
        if not self.phone_night_mode:
            return False
        return in_period(self._local(moment).time().replace(tzinfo=None), parse_period(self.phone_night_mode))

    def may_call_at(self, moment: datetime) -> bool:
        """A survey call may be placed at this moment (inside the calling hours, city time)."""
        local = self._local(moment).time().replace(tzinfo=None)
        return any(in_period(local, period) for period in self.survey_periods)

    def next_calling_time(self, moment: datetime) -> datetime:
        """The moment itself if a call may be placed then, else the start of the next calling period (UTC)."""
        local = self._local(moment)
        if self.may_call_at(local):
            return local.astimezone(UTC)
        for day in range(2):
            for start, _ in self.survey_periods:
                candidate = datetime.combine(local.date() + timedelta(days=day), start, tzinfo=local.tzinfo)
                if candidate > local:
                    return candidate.astimezone(UTC)
        raise AssertionError("calling hours are never empty")

    def next_survey_attempt(self, attempts_made: int, last_attempt_at: datetime) -> datetime | None:
        """When to try the survey call again after ``attempts_made`` unanswered tries; None: give it to the agents."""
        if attempts_made >= self.survey_attempts:
            return None
        return self.next_calling_time(last_attempt_at + self.survey_retry_interval)
