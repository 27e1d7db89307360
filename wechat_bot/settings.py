"""WeChat settings (``HOTLINE_WECHAT_*``), read from the environment by themselves so that hotline's ``Settings``
can hold them as one field (``wechat: WeChatSettings = Field(default_factory=WeChatSettings)``).

- ``HOTLINE_WECHAT_TOKEN`` (demo ``DemoWeChatToken2024``): the Token of the server configuration, 3-32 letters
  and digits as WeChat requires.
- ``HOTLINE_WECHAT_APPID`` (demo ``wx0000000000000000``): the account's AppID, also inside every encrypted message.
- ``HOTLINE_WECHAT_AES_KEY`` (demo ``DemoEncodingAESKeyOfMingHuCity0123456789abc``): the EncodingAESKey, 43
  characters; safe mode for requests that say ``encrypt_type=aes``. Empty: plain mode only.
- ``HOTLINE_WECHAT_PREVIOUS_AES_KEY`` (unset): the key before the last rotation, still accepted meanwhile.
- ``HOTLINE_WECHAT_SECRET`` (demo ``demo-wechat-secret``): the AppSecret, for the API client's access token.
- ``HOTLINE_WECHAT_API_BASE`` (``https://api.weixin.qq.com``): the API's base URL; tests and the simulator point
  it at a fake.
- ``HOTLINE_WECHAT_TIMESTAMP_WINDOW_SECONDS`` (300): how far a request's timestamp may be from our clock.
- ``HOTLINE_WECHAT_MAX_MEDIA_BYTES`` (10 MiB): the client's own ceiling for a media download called without a
  limit; the attachment store passes its per-kind ``HOTLINE_ATTACHMENT_MAX_BYTES`` instead.
- ``HOTLINE_WECHAT_ENABLED`` (true): false leaves ``/channels/wechat`` unmounted and its outbox unsent, for a city
  without an official account (its demo values are then not refused either).
- ``HOTLINE_WECHAT_NOTICE_TEMPLATE_ID`` (unset): the template (模板消息) for a notice to a citizen who last wrote
  more than 48 hours ago, when customer-service messages are closed; its fields are ``first`` (the notice),
  ``keyword1`` (the ticket number), ``keyword2`` (the status) and ``remark``. Unset: such a notice is parked as
  failed, visible on its ticket.

The demo values are public (they are in this file): ``demo_values_in_use()`` names the ones still set, so that the
service can refuse to start with them outside demo mode, as it does for its other secrets.
"""

from __future__ import annotations

import base64
import binascii

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEMO_TOKEN = "DemoWeChatToken2024"
DEMO_APPID = "wx0000000000000000"
DEMO_AES_KEY = "DemoEncodingAESKeyOfMingHuCity0123456789abc"
DEMO_SECRET = "demo-wechat-secret"
DEFAULT_API_BASE = "https://api.weixin.qq.com"


def decode_aes_key(encoding_aes_key: str) -> bytes:
    """An EncodingAESKey (43 base64 characters, WeChat leaves off the '=') -> the 32-byte AES key; ValueError if not."""
    if len(encoding_aes_key) != 43:
        raise ValueError(f"an EncodingAESKey has 43 characters, this one has {len(encoding_aes_key)}")
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except binascii.Error as exc:
        raise ValueError("an EncodingAESKey is made of base64 characters (A-Z, a-z, 0-9, + and /)") from exc
    if len(key) != 32:  # unreachable for 43 valid characters; kept as the invariant AES-256 needs
        raise ValueError("an EncodingAESKey must decode to 32 bytes")
    return key


class WeChatSettings(BaseSettings):
    """The official account's server configuration and API credentials (see the module docstring)."""

    model_config = SettingsConfigDict(env_prefix="HOTLINE_WECHAT_", env_file=".env", extra="ignore")

    token: str = Field(default=DEMO_TOKEN, pattern=r"^[A-Za-z0-9]{3,32}$")
    appid: str = Field(default=DEMO_APPID, min_length=1)
    aes_key: str | None = DEMO_AES_KEY
    previous_aes_key: str | None = None
    secret: str = DEMO_SECRET
    api_base: str = DEFAULT_API_BASE
    timestamp_window_seconds: int = Field(default=300, ge=10, le=3600)
    max_media_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    enabled: bool = True
    notice_template_id: str | None = None

    @field_validator("aes_key", "previous_aes_key")
    @classmethod
    def _valid_key(cls, value: str | None) -> str | None:
        if value:
            decode_aes_key(value)
            return value
        return None

    def refuse_demo_values(self) -> None:
        """Outside demo mode: ValueError naming the demo values still set, when the channel is enabled."""
        leaked = self.demo_values_in_use() if self.enabled else []
        if leaked:
            raise ValueError(f"{', '.join(leaked)} still hold the public demo values; set the official account's "
                             "own (or HOTLINE_WECHAT_ENABLED=false)")

    def demo_values_in_use(self) -> list[str]:
        """The environment variables that still hold the public demo values."""
        demo = {"TOKEN": (self.token, DEMO_TOKEN), "APPID": (self.appid, DEMO_APPID),
                "AES_KEY": (self.aes_key, DEMO_AES_KEY), "SECRET": (self.secret, DEMO_SECRET)}
        return [f"HOTLINE_WECHAT_{name}" for name, (value, default) in demo.items() if value == default]
