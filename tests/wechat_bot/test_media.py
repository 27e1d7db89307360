"""A citizen's WeChat photo or voice message lands in the attachment store: the push makes the ticket at once, the
worker fetches the file through the media API of the fake WeChat afterwards, and the desk serves it only to
those who may see the ticket."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from hotline import attachments
from hotline.models import InboundMessage, Ticket, TicketAttachment, TicketEvent
from hotline.services import Services
from tests.conftest import City, act
from tests.fakes.wechat_api import FakeWeChat
from tests.wechat_bot import peer
from tests.wechat_bot.peer import WeChat
from tests.wechat_bot.test_channel import CITIZEN, COMPLAINT, process, rows, tickets
from wechat_bot.client import WeChatClient
from wechat_bot.media import make_fetcher

PHOTO = b"\xff\xd8\xff\xe0" + b"JFIF-photo-of-the-blocked-pavement" * 200
VOICE = b"#!AMR\n" + b"\x3c" * 4000


@pytest.fixture
def wechat(client: TestClient, services: Services) -> WeChat:
    s = services.settings.wechat
    assert s.aes_key is not None
    return WeChat(client, s.token, s.appid, s.aes_key)


@pytest.fixture
def fetchers(wechat_api: FakeWeChat) -> Iterator[dict[str, attachments.Fetcher]]:
    with WeChatClient(wechat_api.appid, wechat_api.secret, base_url=wechat_api.base_url) as client:
        yield {"wechat": make_fetcher(client)}


def fetch(services: Services, fetchers: dict[str, attachments.Fetcher], **limits: int) -> attachments.FetchReport:
    return attachments.fetch_pending(services.sessions, fetchers,
                                     limits={**services.settings.attachment_max_bytes, **limits})


def stored(services: Services) -> list[TicketAttachment]:
    with services.sessions() as s:
        return list(s.scalars(select(TicketAttachment).order_by(TicketAttachment.id)))


def detail(client: TestClient, city: City, who: str, ticket_id: int) -> dict:
    response = client.get(f"/api/tickets/{ticket_id}", headers=city.headers(who))
    assert response.status_code == 200
    return response.json()


def test_a_photo_is_fetched_by_the_worker_stored_with_its_sha256_and_served_to_the_desk(
        wechat: WeChat, services: Services, wechat_api: FakeWeChat, fetchers: dict[str, attachments.Fetcher],
        client: TestClient, city: City) -> None:
    wechat_api.serve_media("media-photo-7", PHOTO, "image/jpeg")
    wechat.post(peer.image_xml(CITIZEN, "media-photo-7"))
    assert wechat_api.calls("/cgi-bin/media/get") == []  # nothing fetched while WeChat waits for its answer
    process(services)
    (ticket,) = tickets(services)
    assert [a.state for a in stored(services)] == ["pending"]

    assert fetch(services, fetchers).stored == 1
    (row,) = stored(services)
    assert (row.state, row.size, row.content_type) == ("stored", len(PHOTO), "image/jpeg")
    assert row.sha256 == hashlib.sha256(PHOTO).hexdigest() and row.source == "media-photo-7"
    assert wechat_api.calls("/cgi-bin/media/get")[0].query["media_id"] == "media-photo-7"

    (shown,) = detail(client, city, "agent", ticket.id)["attachments"]
    assert shown["kind"] == "image" and shown["url"] == f"/api/attachments/{row.id}"
    response = client.get(shown["url"], headers=city.headers("agent"))
    assert response.status_code == 200 and response.content == PHOTO
    assert response.headers["content-type"] == "image/jpeg"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-disposition"] == f'inline; filename="attachment-{row.id}.jpg"'


def test_an_oversized_voice_message_is_refused_with_its_reason_and_the_ticket_stays(
        wechat: WeChat, services: Services, wechat_api: FakeWeChat, fetchers: dict[str, attachments.Fetcher],
        client: TestClient, city: City) -> None:
    big = b"#!AMR\n" + b"\x00" * (3 * 1024 * 1024)
    wechat_api.serve_media("media-voice-big", big, "audio/amr", chunked=True)  # only reading tells its size
    wechat.post(peer.voice_xml(CITIZEN, "media-voice-big"))
    process(services)
    (ticket,) = tickets(services)

    assert fetch(services, fetchers).refused == 1
    (row,) = stored(services)
    assert row.state == "refused" and row.size is None and row.sha256 is None
    assert row.reason == "语音超过 2 MB 的大小上限，未保存"
    (refused,) = rows(services, select(TicketEvent).where(TicketEvent.type == "attachment_refused"))
    assert refused.ticket_id == ticket.id and refused.note == row.reason
    (shown,) = detail(client, city, "agent", ticket.id)["attachments"]
    assert shown["state"] == "refused" and shown["url"] is None and shown["reason"] == row.reason
    assert client.get(f"/api/attachments/{row.id}", headers=city.headers("agent")).status_code == 404


def test_a_file_over_the_configured_limit_is_refused_before_it_is_read(
        wechat: WeChat, services: Services, wechat_api: FakeWeChat,
        fetchers: dict[str, attachments.Fetcher]) -> None:
    wechat_api.serve_media("media-photo-8", PHOTO, "image/jpeg")
    wechat.post(peer.image_xml(CITIZEN, "media-photo-8"))
    process(services)
    assert fetch(services, fetchers, image=1024).refused == 1
    assert stored(services)[0].reason == "图片超过 1 KB 的大小上限，未保存"


def test_a_bad_media_id_records_wechats_refusal_on_the_ticket(
        wechat: WeChat, services: Services, wechat_api: FakeWeChat,
        fetchers: dict[str, attachments.Fetcher]) -> None:
    wechat.post(peer.image_xml(CITIZEN, "media-expired"))  # the fake answers errcode 40007
    process(services)
    assert fetch(services, fetchers).refused == 1
    (row,) = stored(services)
    assert row.state == "refused" and "40007" in (row.reason or "") and "微信" in (row.reason or "")
    assert "invalid media_id" in (row.last_error or "")
    (ticket,) = tickets(services)
    assert ticket.status == "received"


def test_a_busy_wechat_is_retried_and_a_second_pass_stores_nothing_twice(
        wechat: WeChat, services: Services, wechat_api: FakeWeChat,
        fetchers: dict[str, attachments.Fetcher]) -> None:
    wechat_api.serve_media("media-photo-9", PHOTO, "image/png")
    wechat.post(peer.image_xml(CITIZEN, "media-photo-9"))
    process(services)
    wechat_api.fail("/cgi-bin/media/get", -1)  # system busy
    assert fetch(services, fetchers).retried == 1
    with services.sessions.begin() as s:  # the retry is due now
        waiting = s.get_one(TicketAttachment, stored(services)[0].id)
        assert waiting.state == "pending" and "busy" in (waiting.last_error or "")
        waiting.next_attempt_at = waiting.created_at
    assert fetch(services, fetchers).stored == 1
    assert not fetch(services, fetchers)  # nothing left to fetch
    (row,) = stored(services)
    assert row.state == "stored" and row.attempts == 2
    assert len(wechat_api.calls("/cgi-bin/media/get")) == 2


def test_a_worker_whose_lease_ran_out_stores_nothing_over_the_other_workers_file(
        wechat: WeChat, services: Services, wechat_api: FakeWeChat,
        fetchers: dict[str, attachments.Fetcher]) -> None:
    wechat_api.serve_media("media-photo-10", PHOTO, "image/jpeg")
    wechat.post(peer.image_xml(CITIZEN, "media-photo-10"))
    process(services)
    slow_fetch = fetchers["wechat"]
    seen: list[int] = []

    def overtaken(row: TicketAttachment, max_bytes: int) -> attachments.Fetched:
        fetched = slow_fetch(row, max_bytes)
        if not seen:  # meanwhile another worker claimed the expired lease and stored the file
            seen.append(row.id)
            with services.sessions.begin() as s:
                s.get_one(TicketAttachment, row.id).lease_until = row.created_at
            assert fetch(services, {"wechat": slow_fetch}).stored == 1
        return fetched

    report = fetch(services, {"wechat": overtaken})
    assert report.stored == 0
    (row,) = stored(services)
    assert row.state == "stored" and row.sha256 == hashlib.sha256(PHOTO).hexdigest()


def test_a_message_handled_again_records_its_attachment_once(
        wechat: WeChat, services: Services) -> None:
    wechat.post(peer.image_xml(CITIZEN, "media-photo-11"))
    process(services)
    (ticket,) = tickets(services)
    with services.sessions.begin() as s:
        assert attachments.record(s, s.get_one(Ticket, ticket.id), s.scalars(select(InboundMessage)).one()) == 0
    assert len(stored(services)) == 1


def test_another_unit_and_a_channel_key_get_404_for_the_file(
        wechat: WeChat, services: Services, wechat_api: FakeWeChat, fetchers: dict[str, attachments.Fetcher],
        client: TestClient, city: City) -> None:
    wechat_api.serve_media("media-photo-12", PHOTO, "image/jpeg")
    wechat.post(peer.text_xml(CITIZEN, COMPLAINT))
    wechat.post(peer.image_xml(CITIZEN, "media-photo-12"))
    process(services)
    fetch(services, fetchers)
    (ticket,) = tickets(services)
    (row,) = stored(services)
    assert act(client, city, "dispatcher", ticket.id, "dispatch", unit_id=city.ids["unit:cgj"]).status_code == 200
    url = f"/api/attachments/{row.id}"

    assert client.get(url, headers=city.headers("cgj")).status_code == 200
    other = client.get(url, headers=city.headers("zjj"))
    missing = client.get(f"/api/attachments/{row.id + 1000}", headers=city.headers("zjj"))
    assert other.status_code == missing.status_code == 404
    assert other.json()["detail"] == missing.json()["detail"]
    channel_key = client.get(url, headers={"Authorization": f"Bearer {services.settings.channel_keys['wechat']}"})
    assert channel_key.status_code == 404 and channel_key.json()["detail"] == missing.json()["detail"]


def test_a_unit_hears_no_voice_of_a_confidential_caller(
        wechat: WeChat, services: Services, wechat_api: FakeWeChat, fetchers: dict[str, attachments.Fetcher],
        client: TestClient, city: City) -> None:
    wechat_api.serve_media("media-voice-13", VOICE, "audio/amr")
    wechat.post(peer.voice_xml(CITIZEN, "media-voice-13"))
    process(services)
    fetch(services, fetchers)
    (ticket,) = tickets(services)
    (row,) = stored(services)
    with services.sessions.begin() as s:
        s.get_one(Ticket, ticket.id).confidential = True
    assert act(client, city, "dispatcher", ticket.id, "dispatch", unit_id=city.ids["unit:cgj"]).status_code == 200

    assert detail(client, city, "cgj", ticket.id)["attachments"] == []
    assert client.get(f"/api/attachments/{row.id}", headers=city.headers("cgj")).status_code == 404
    heard = client.get(f"/api/attachments/{row.id}", headers=city.headers("agent"))
    assert heard.status_code == 200 and heard.content == VOICE


def test_desk_staff_fetch_a_refused_photo_again_once_the_limit_is_raised(
        wechat: WeChat, services: Services, wechat_api: FakeWeChat, fetchers: dict[str, attachments.Fetcher],
        client: TestClient, city: City) -> None:
    wechat_api.serve_media("media-photo-14", PHOTO, "image/jpeg")
    wechat.post(peer.image_xml(CITIZEN, "media-photo-14"))
    process(services)
    assert fetch(services, fetchers, image=1024).refused == 1
    (ticket,) = tickets(services)
    (row,) = stored(services)
    (shown,) = detail(client, city, "agent", ticket.id)["attachments"]
    assert shown["may_retry"] is True

    retried = client.post(f"/api/attachments/{row.id}/retry", headers=city.headers("agent"))
    assert retried.status_code == 200
    assert (retried.json()["state"], retried.json()["reason"], retried.json()["may_retry"]) == ("pending", None, False)
    (event,) = rows(services, select(TicketEvent).where(TicketEvent.type == "attachment_retry"))
    assert event.ticket_id == ticket.id and "图片超过 1 KB" in event.note

    again = client.post(f"/api/attachments/{row.id}/retry", headers=city.headers("agent"))
    assert again.status_code == 409 and "只有未能保存的附件" in again.json()["detail"]
    assert fetch(services, fetchers).stored == 1  # the default limit now: the photo is kept
    assert client.get(f"/api/attachments/{row.id}", headers=city.headers("agent")).content == PHOTO


def test_units_may_not_retry_a_refused_file_and_other_units_cannot_find_it(
        wechat: WeChat, services: Services, wechat_api: FakeWeChat, fetchers: dict[str, attachments.Fetcher],
        client: TestClient, city: City) -> None:
    wechat.post(peer.text_xml(CITIZEN, COMPLAINT))
    wechat.post(peer.image_xml(CITIZEN, "media-expired"))
    process(services)
    assert fetch(services, fetchers).refused == 1
    (ticket,) = tickets(services)
    (row,) = stored(services)
    assert act(client, city, "dispatcher", ticket.id, "dispatch", unit_id=city.ids["unit:cgj"]).status_code == 200
    url = f"/api/attachments/{row.id}/retry"

    (shown,) = detail(client, city, "cgj", ticket.id)["attachments"]
    assert shown["may_retry"] is False
    assert client.post(url, headers=city.headers("cgj")).status_code == 403
    other = client.post(url, headers=city.headers("zjj"))
    missing = client.post(f"/api/attachments/{row.id + 1000}/retry", headers=city.headers("zjj"))
    assert other.status_code == missing.status_code == 404
    assert other.json()["detail"] == missing.json()["detail"]
    assert stored(services)[0].state == "refused"
