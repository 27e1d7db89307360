"""What the admin desk's channels tab asks of each outside channel (电话/Twilio, 微信公众号, 网络问政论坛, Open311):
its state — on or off, the public addresses to paste into Twilio, WeChat, the forum or give to Open311 clients, and
which of its settings are set (never a secret's value) — and a test: one signed request through the channel's real
path, made by this server to itself over HTTP with the channel's own simulator (the code behind ``hotline … simulate``).

The core only defines the shape. Each channel package provides its probe and the entry point ``hotline.app`` fills
``Services.channel_probes`` with them, as ``hotline.worker`` fills the worker's channel handlers: the core and the
desk import no channel.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

SettingState = Literal["set", "unset", "demo"]


@dataclass(frozen=True)
class Address:
    label: str  # where it goes, in Chinese: "语音来电 URL（Voice URL）"
    url: str


@dataclass(frozen=True)
class SettingInfo:
    name: str  # the environment variable, e.g. HOTLINE_WECHAT_TOKEN
    state: SettingState  # set (a real value), unset, demo (the documented demo value)
    shown: str | None = None  # the value itself for settings that are no secret (an AppID, a URL)


@dataclass(frozen=True)
class ChannelStatus:
    enabled: bool
    addresses: tuple[Address, ...] = ()
    settings: tuple[SettingInfo, ...] = ()
    note: str = ""  # why it is off, or what the test sends, in Chinese


@dataclass(frozen=True)
class ProbeRequest:
    text: str  # what the simulated citizen writes or says
    sender: str | None = None  # openid / caller number / forum user; None: the simulator's demo sender
    place: str | None = None  # where (the forum post's place, Open311's address_string)


@dataclass(frozen=True)
class ProbeResult:
    accepted: bool  # the channel took the request (the message is stored for the worker)
    status_code: int | None  # the last HTTP answer of the channel's route
    reply: str = ""  # what the channel answered, as the citizen or the peer would read it
    external_id: str | None = None  # the stored message that becomes the ticket (channel, external_id)
    error: str | None = None  # Chinese, for the admin
    steps: list[str] = field(default_factory=list)  # the request/answer lines, as the CLI simulator prints them


class ChannelProbe(Protocol):
    channel: str
    label: str

    def status(self, public_base_url: str) -> ChannelStatus: ...

    def test(self, server_url: str, request: ProbeRequest) -> ProbeResult: ...


def setting(name: str, value: str | None, demo_value: str | None = None, *, secret: bool = True) -> SettingInfo:
    """The state of one setting; a secret's value is never shown."""
    if not value:
        return SettingInfo(name, "unset")
    state: SettingState = "demo" if demo_value is not None and value == demo_value else "set"
    return SettingInfo(name, state, None if secret else value)


def public_url(base: str, path: str) -> str:
    return base.rstrip("/") + path
