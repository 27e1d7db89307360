"""REST: the channels tab of the admin desk — every channel's state, the addresses to give Twilio, WeChat, the
forum and Open311 clients, its settings (set, unset, demo value; never a secret), its stored messages, and a 测试
request per outside channel: the channel's own simulator (``hotline.channel_probes``, filled by ``hotline.app``)
sends one signed request from this server to itself over HTTP, through the real route, the stored message and the
worker, so the admin watches it become a ticket."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, ConfigDict, StringConstraints
from sqlalchemy import func, select

from hotline import audit
from hotline.api.deps import ServicesDep, SessionDep, UserDep, require
from hotline.channel_probes import ProbeRequest, SettingState
from hotline.errors import NotFound
from hotline.fields import NoNul
from hotline.labels import CHANNEL_LABELS
from hotline.models import InboundMessage, Role
from hotline.settings import CHANNELS

router = APIRouter(prefix="/api")
#: channels recorded by staff at the desk (POST /api/intake), not delivered from outside
DESK_CHANNELS = frozenset({"phone", "walk_in"})
#: hosts a server listens on that mean "every interface": it reaches itself on the loopback
ANY_HOST = frozenset({"0.0.0.0", "::", ""})


class AddressOut(BaseModel):
    label: str
    url: str


class SettingOut(BaseModel):
    name: str
    state: SettingState  # set, unset, demo (the documented demo value)
    shown: str | None  # only for settings that are no secret


class ChannelOut(BaseModel):
    channel: str
    label: str
    enabled: bool
    url: str | None  # where the channel delivers (the first address; relative to this server when no public base)
    addresses: list[AddressOut]  # what to paste into Twilio / WeChat / the forum / give to Open311 clients
    settings: list[SettingOut]
    note: str
    testable: bool  # a 测试 button: the channel has a simulator
    counts: dict[str, int]  # stored messages per state


@router.get("/channels", response_model=list[ChannelOut], tags=["intake"])
def list_channels(session: SessionDep, services: ServicesDep, actor: UserDep) -> list[ChannelOut]:
    """Admins: every channel, whether it is on, its addresses and settings, and its stored messages per state.
    Outside channels describe themselves (``hotline.channel_probes``); the citizen page and the desk's own channels
    are always on, other API channels when they have a service key."""
    require(actor, Role.admin)
    counts: dict[str, dict[str, int]] = {}
    for channel, state, n in session.execute(
            select(InboundMessage.channel, InboundMessage.state, func.count())
            .group_by(InboundMessage.channel, InboundMessage.state)):
        counts.setdefault(channel, {})[state] = int(n)
    keys = services.settings.channel_keys
    base = services.settings.phone.public_base_url  # HOTLINE_PUBLIC_BASE_URL
    out = []
    for channel in CHANNELS:
        probe = services.channel_probes.get(channel)
        if probe is not None:
            status = probe.status(base)
            addresses = [AddressOut(label=a.label, url=a.url) for a in status.addresses]
            out.append(ChannelOut(
                channel=channel, label=probe.label, enabled=status.enabled,
                url=addresses[0].url if addresses else None, addresses=addresses,
                settings=[SettingOut(name=x.name, state=x.state, shown=x.shown) for x in status.settings],
                note=status.note, testable=True, counts=counts.get(channel, {})))
            continue
        desk = channel in DESK_CHANNELS
        url = "/public" if channel == "web" else (None if desk else "/api/inbound")
        out.append(ChannelOut(channel=channel, label=CHANNEL_LABELS.get(channel, channel),
                              enabled=desk or channel == "web" or channel in keys, url=url,
                              addresses=[AddressOut(label="接入地址", url=url)] if url else [], settings=[],
                              note="", testable=False, counts=counts.get(channel, {})))
    return out


class ChannelTestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=500), NoNul]
    sender: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64), NoNul] | None = None
    place: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), NoNul] | None = None


class ChannelTestOut(BaseModel):
    channel: str
    accepted: bool
    status_code: int | None
    reply: str
    error: str | None
    steps: list[str]
    external_id: str | None
    inbound_id: int | None  # the stored message; GET /api/inbound/{id} names its ticket once the worker made it


def server_url(request: Request) -> str:
    """Where this server reaches itself: the address it listens on (loopback for "every interface"), else the
    URL the request came in on."""
    listening = request.scope.get("server")
    if not listening or listening[1] is None:
        return str(request.base_url).rstrip("/")
    host, port = listening
    host = "127.0.0.1" if host in ANY_HOST else host
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


@router.post("/channels/{channel}/test", response_model=ChannelTestOut, tags=["intake"])
def test_channel(channel: Annotated[str, Path(max_length=16)], body: ChannelTestIn, request: Request,
                 session: SessionDep, services: ServicesDep, actor: UserDep) -> ChannelTestOut:
    """Admins: one signed test request through the channel's real path (as ``hotline … simulate`` sends it),
    audited. The answer says whether the channel accepted it and which stored message follows; the ticket comes
    from the worker, like every message of that channel."""
    require(actor, Role.admin)
    probe = services.channel_probes.get(channel)
    if probe is None:
        raise NotFound(f"channel {channel!r} has no test", zh=f"渠道“{channel}”没有测试功能")
    # The channel's route writes in a request of its own; this one holds no transaction meanwhile (SQLite takes
    # its write lock at BEGIN).
    session.commit()
    result = probe.test(server_url(request), ProbeRequest(text=body.text, sender=body.sender, place=body.place))
    inbound_id = None
    if result.external_id is not None:
        inbound_id = session.scalar(select(InboundMessage.id).where(
            InboundMessage.channel == channel, InboundMessage.external_id == result.external_id))
    audit.record(session, actor, "test", "channel", channel,
                 after={"accepted": result.accepted, "status_code": result.status_code, "text": body.text,
                        "external_id": result.external_id, "inbound_id": inbound_id, "error": result.error},
                 summary=f"测试{probe.label}：{'已接收' if result.accepted else '未接收'}")
    session.commit()
    return ChannelTestOut(channel=channel, accepted=result.accepted, status_code=result.status_code,
                          reply=result.reply, error=result.error, steps=result.steps,
                          external_id=result.external_id, inbound_id=inbound_id)
