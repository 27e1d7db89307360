"""Open311 settings from the environment (prefix ``HOTLINE_OPEN311_``), validated once at start-up.

- ``HOTLINE_OPEN311_KEYS`` (JSON, client name → API key): who may POST requests. Demo value
  ``{"demo-client": "demo-open311-key"}``; outside demo mode (``HOTLINE_DEMO`` unset) an unset variable means no
  clients (every POST is refused, the public GETs still answer) and the service refuses to start with the demo key
  or any key shorter than 16 characters, as it does for the other channel keys.
- ``HOTLINE_OPEN311_JURISDICTION_ID`` (optional): when set, a request naming another jurisdiction_id gets 404.
- ``HOTLINE_OPEN311_CONTACT``, ``HOTLINE_OPEN311_KEY_SERVICE``: the discovery document's contact and how to get a
  key (shown to developers, in Chinese by default).
- ``HOTLINE_OPEN311_MAX_BODY_BYTES`` (default 64 KiB): larger POST bodies get 413.
"""

from __future__ import annotations

import hmac
from datetime import UTC, datetime

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEMO_OPEN311_KEYS = {"demo-client": "demo-open311-key"}
MIN_KEY_CHARS = 16


class Open311Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HOTLINE_OPEN311_", env_file=".env", extra="ignore")

    demo: bool = Field(default=False, validation_alias=AliasChoices("HOTLINE_DEMO", "demo"))
    keys: dict[str, str] = Field(default_factory=lambda data: dict(DEMO_OPEN311_KEYS) if data.get("demo") else {})
    jurisdiction_id: str | None = None
    contact: str = "12345政务服务便民热线管理办公室，电话 12345"
    key_service: str = "申请 API key 请联系 12345 热线管理办公室，说明应用名称和用途"
    changeset: datetime = datetime(2025, 3, 1, tzinfo=UTC)
    max_body_bytes: int = Field(default=64 * 1024, ge=1024, le=1024 * 1024)

    @model_validator(mode="after")
    def _refuse_demo_keys_outside_demo(self) -> Open311Settings:
        if self.demo:
            return self
        weak = sorted(c for c, k in self.keys.items() if DEMO_OPEN311_KEYS.get(c) == k
                      or k in DEMO_OPEN311_KEYS.values() or len(k) < MIN_KEY_CHARS)
        if weak:
            raise ValueError(
                f"HOTLINE_OPEN311_KEYS still holds demo or short keys for {', '.join(weak)}; "
                f"give each Open311 client a random key of at least {MIN_KEY_CHARS} characters"
            )
        return self

    def client_for(self, api_key: str | None) -> str | None:
        """The client an API key belongs to (compared in constant time), None for a missing or unknown key."""
        if not api_key:
            return None
        given = api_key.encode("utf-8")
        found = None
        for client, key in self.keys.items():
            if hmac.compare_digest(given, key.encode("utf-8")):
                found = client
        return found
