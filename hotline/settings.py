"""Settings from the environment (prefix ``HOTLINE_``), validated once at start-up.

Outside demo mode the service refuses to start with the demo secrets: a leaked demo signing key would let anyone
mint an agent token, and a city must never go live with it by accident.

The city's rule thresholds are settings too (``RuleSettings``, the part of ``Settings`` that needs no secrets):

- ``HOTLINE_ESCALATE_AFTER_DAYS`` (default 3): a ticket overdue by this many working days escalates (督办) and
  opens the automatic ``overdue`` accountability case. The moment is precomputed on the ticket whenever its reply
  deadline is set (``Timing.sweep_thresholds``), so a change applies to deadlines set from then on, not to tickets
  already armed.
- ``HOTLINE_ACCOUNTABILITY_REFUSALS`` (default 2): refused send-backs of one unit on one ticket that open a
  ``refused_returns`` case.
- ``HOTLINE_ACCOUNTABILITY_REOPENS`` (default 1): reopens (重办) after which a close with "not solved" opens a
  ``closed_unsolved`` case.
- ``HOTLINE_OFFICE_HOURS`` (default ``08:30-12:00,13:30-17:30``): the working periods of a working day, in the
  city's time zone, ascending and non-overlapping. Working-time deadlines count only inside them.
- ``HOTLINE_SCORE_WEIGHTS`` (JSON, default ``{"response": 0.1, "on_time": 0.3, "resolution": 0.3,
  "satisfaction": 0.3}``): the
  city's weights of the scorecards' composite score, used when a request gives none. Non-negative, finite, not all
  zero; a rate left out weighs 0.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import time
from functools import lru_cache
from pathlib import Path

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from channels.forum.settings import ForumSettings
from channels.open311.settings import Open311Settings
from channels.phone.settings import PhoneSettings
from routing.scorecards import DEFAULT_WEIGHTS, check_score_weights
from wechat_bot.settings import WeChatSettings

DEMO_SECRET_KEY = "demo-secret-key-do-not-use-in-production"
DEMO_CHANNEL_KEYS = {
    "phone": "demo-phone-key",
    "wechat": "demo-wechat-key",
    "forum": "demo-forum-key",
    "web": "demo-web-key",
    "open311": "demo-open311-key",
}
CHANNELS = ("phone", "wechat", "forum", "web", "open311", "walk_in", "email")
ROOT = Path(__file__).resolve().parent.parent
#: ``make run`` writes the demo switch to var/demo.env, so the README's commands work in a new shell afterwards;
#: a deployment's own .env (in the working directory) and the environment come after it and win.
DEMO_ENV_FILE = ROOT / "var" / "demo.env"
ENV_FILES = (DEMO_ENV_FILE, Path(".env"))
DEFAULT_SCORE_WEIGHTS: Mapping[str, float] = DEFAULT_WEIGHTS
DEFAULT_ESCALATE_AFTER_DAYS = 3
DEFAULT_OFFICE_HOURS = "08:30-12:00,13:30-17:30"
_PERIOD = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


MIB = 1024 * 1024
#: the size limit of an attachment per kind: WeChat's own limits for images (10 MB) and voice (2 MB); a voicemail
#: recording of a few minutes is well under 8 MiB
DEFAULT_MAX_BYTES: dict[str, int] = {"image": 10 * MIB, "audio": 2 * MIB, "recording": 8 * MIB, "document": 10 * MIB}


def parse_office_hours(text: str) -> tuple[tuple[time, time], ...]:
    """"08:30-12:00,13:30-17:30" -> ((08:30, 12:00), (13:30, 17:30)); ValueError naming the bad part."""
    periods: list[tuple[time, time]] = []
    for part in text.split(","):
        m = _PERIOD.match(part)
        if not m:
            raise ValueError(f"office hours period {part.strip()!r} is not HH:MM-HH:MM")
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
            raise ValueError(f"office hours period {part.strip()!r} is not a time of day")
        start, end = time(h1, m1), time(h2, m2)
        if end <= start or (periods and start < periods[-1][1]):
            raise ValueError(f"office hours period {part.strip()!r} must end after it starts, after the one before")
        periods.append((start, end))
    return tuple(periods)



class RuleSettings(BaseSettings):
    """The city's rule thresholds (see the module docstring); readable without the service's secrets."""

    model_config = SettingsConfigDict(env_prefix="HOTLINE_", env_file=ENV_FILES, extra="ignore")

    escalate_after_days: int = Field(default=DEFAULT_ESCALATE_AFTER_DAYS, ge=1, le=60)
    accountability_refusals: int = Field(default=2, ge=1, le=20)
    accountability_reopens: int = Field(default=1, ge=1, le=20)
    score_weights: dict[str, float] = Field(default_factory=lambda: dict(DEFAULT_SCORE_WEIGHTS))
    office_hours: str = DEFAULT_OFFICE_HOURS

    @field_validator("office_hours")
    @classmethod
    def _valid_office_hours(cls, value: str) -> str:
        parse_office_hours(value)
        return value

    @property
    def office_periods(self) -> tuple[tuple[time, time], ...]:
        return parse_office_hours(self.office_hours)

    @field_validator("score_weights")
    @classmethod
    def _valid_weights(cls, value: dict[str, float]) -> dict[str, float]:
        return check_score_weights(value)


class Settings(RuleSettings):
    model_config = SettingsConfigDict(env_prefix="HOTLINE_", env_file=ENV_FILES, extra="ignore")

    demo: bool = False
    host: str = "127.0.0.1"
    port: int = 8000
    database_url: str = f"sqlite:///{ROOT / 'var' / 'hotline.db'}"
    redis_url: str | None = None
    secret_key: str = DEMO_SECRET_KEY
    token_ttl_minutes: int = Field(default=12 * 60, ge=1, le=7 * 24 * 60)
    channel_keys: dict[str, str] = Field(default_factory=lambda: dict(DEMO_CHANNEL_KEYS))
    city_timezone: str = "Asia/Shanghai"
    model_dir: Path = ROOT / "var" / "model"
    seed_corpus: Path = ROOT / "nlp" / "data" / "seed_corpus.jsonl"
    auto_dispatch: bool = True
    max_body_bytes: int = 1024 * 1024
    max_text_chars: int = 10_000
    embedded_worker: bool | None = None  # None: on for SQLite, off otherwise
    sweep_interval_seconds: float = 30.0
    #: the largest file kept per attachment kind (JSON, e.g. {"image": 10485760}); kinds not named keep the
    #: defaults of ``DEFAULT_MAX_BYTES`` (image 10 MiB, audio 2 MiB, recording 8 MiB)
    attachment_max_bytes: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_MAX_BYTES))
    forum: ForumSettings = Field(default_factory=lambda data: ForumSettings(demo=data["demo"]))  # HOTLINE_FORUM_*
    open311: Open311Settings = Field(default_factory=lambda data: Open311Settings(demo=data["demo"]))  # OPEN311_*
    #: the phone channel (HOTLINE_PHONE_ENABLED, HOTLINE_TWILIO_*, HOTLINE_PUBLIC_BASE_URL …; channels.phone.settings)
    phone: PhoneSettings = Field(default_factory=PhoneSettings)
    wechat: WeChatSettings = Field(default_factory=WeChatSettings)  # HOTLINE_WECHAT_* (wechat_bot.settings)
    #: the Prometheus scraper's bearer token for GET /metrics (admins' tokens work too; hotline.metrics)
    metrics_token: str | None = Field(default=None, min_length=16, max_length=200)
    #: `hotline worker` serves its own /metrics on this port when set (unauthenticated: bind it to a private address)
    worker_metrics_port: int | None = Field(default=None, ge=1, le=65535)
    worker_metrics_host: str = "127.0.0.1"

    @field_validator("attachment_max_bytes")
    @classmethod
    def _valid_attachment_limits(cls, value: dict[str, int]) -> dict[str, int]:
        unknown = sorted(set(value) - set(DEFAULT_MAX_BYTES))
        if unknown:
            raise ValueError(f"HOTLINE_ATTACHMENT_MAX_BYTES names unknown kinds {unknown}; "
                             f"the kinds are {sorted(DEFAULT_MAX_BYTES)}")
        if any(limit < 1024 or limit > 100 * 1024 * 1024 for limit in value.values()):
            raise ValueError("HOTLINE_ATTACHMENT_MAX_BYTES: each limit lies between 1024 bytes and 100 MiB")
        return {**DEFAULT_MAX_BYTES, **value}

    @model_validator(mode="after")
    def _refuse_demo_secrets_outside_demo(self) -> Settings:
        if self.demo:
            return self
        if self.secret_key == DEMO_SECRET_KEY or len(self.secret_key) < 32:
            raise ValueError(
                "HOTLINE_SECRET_KEY must be set to a random value of at least 32 characters outside demo mode "
                "(set HOTLINE_DEMO=1 to run the demo city)"
            )
        leaked = [c for c, k in self.channel_keys.items() if DEMO_CHANNEL_KEYS.get(c) == k or len(k) < 16]
        if leaked:
            raise ValueError(
                f"HOTLINE_CHANNEL_KEYS still holds demo or short keys for {', '.join(sorted(leaked))}; "
                "give each channel a random key of at least 16 characters"
            )
        self.wechat.refuse_demo_values()
        return self

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def runs_embedded_worker(self) -> bool:
        return self.is_sqlite if self.embedded_worker is None else self.embedded_worker


@lru_cache
def get_settings() -> Settings:
    return Settings()


def load_settings() -> Settings:
    """The settings for a command-line entry point: a configuration error exits with one readable line."""
    try:
        return get_settings()
    except ValidationError as exc:
        messages = "; ".join(str(e["msg"]) for e in exc.errors())
        raise SystemExit(f"hotline: configuration error: {messages}") from None
    except SettingsError as exc:  # e.g. HOTLINE_SCORE_WEIGHTS that is not JSON
        cause = f" ({exc.__cause__})" if exc.__cause__ else ""
        raise SystemExit(f"hotline: configuration error: {exc}{cause}") from None
