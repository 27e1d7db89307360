"""One notice mechanism: the core decides which steps a citizen hears of and words them; every step is exactly one
notice on the ticket's own channel (WeChat or SMS), queued in the step's transaction; a confidential ticket's
notice names its number and the step, never what was reported, replied or who handles it."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import select

from hotline import notices, workflow
from hotline.db import transaction
from hotline.models import Citizen, OutboxMessage, Status, Ticket
from hotline.notice_texts import SmsTemplates, TicketNotice, WeChatTemplates
from hotline.services import Services
from tests.conftest import City, actor

SECRET_TEXT = "举报明湖市某单位领导违规收受礼金"
REPLY = "经核查，已移交纪检部门处理。"
ADDRESS = {"wechat": {"wechat_openid": "oMhCitizen000000000000000A1"}, "phone": {"phone": "13812345678"}}
_numbers = itertools.count(1)


def new_ticket(services: Services, channel: str, confidential: bool) -> int:
    with transaction(services.sessions) as s:
        citizen = Citizen(**ADDRESS[channel])
        s.add(citizen)
        s.flush()
        ticket = Ticket(number=f"2026031000{next(_numbers):04d}", channel=channel, text=SECRET_TEXT,
                        title="举报", confidential=confidential, status=Status.received, citizen_id=citizen.id)
        s.add(ticket)
        s.flush()
        notices.notify(s, ticket, notices.RECEIVED, cause="inbound1")  # what the channel's handler does
        return ticket.id


def perform(services: Services, city: City, who: str, ticket_id: int, action: str,
            data: workflow.ActionInput) -> None:
    with transaction(services.sessions) as s:
        workflow.perform(s, ticket_id, action, actor(services, city, who), data, services.timing)


def sent(services: Services, ticket_id: int) -> list[OutboxMessage]:
    with services.sessions() as s:
        return list(s.scalars(select(OutboxMessage).where(OutboxMessage.ticket_id == ticket_id)
                              .order_by(OutboxMessage.id)))


@pytest.mark.parametrize("confidential", [False, True], ids=["open", "confidential"])
@pytest.mark.parametrize("channel", ["wechat", "phone"])
def test_every_step_is_exactly_one_notice_on_the_tickets_channel(
        services: Services, city: City, channel: str, confidential: bool) -> None:
    answered = new_ticket(services, channel, confidential)
    perform(services, city, "agent", answered, "answer", workflow.ActionInput(note=REPLY))

    handled = new_ticket(services, channel, confidential)
    perform(services, city, "dispatcher", handled, "dispatch", workflow.DispatchInput(unit_id=city.ids["unit:cgj"]))
    perform(services, city, "cgj", handled, "sign", workflow.ActionInput())
    perform(services, city, "cgj", handled, "reply", workflow.ReplyInput(note=REPLY))
    perform(services, city, "agent", handled, "callback", workflow.CallbackInput(satisfaction="satisfied", solved=True))
    perform(services, city, "agent", handled, "close", workflow.CloseInput())

    transferred = new_ticket(services, channel, confidential)
    perform(services, city, "agent", transferred, "transfer", workflow.TransferInput(line="119"))

    moved = new_ticket(services, channel, confidential)
    perform(services, city, "dispatcher", moved, "dispatch", workflow.DispatchInput(unit_id=city.ids["unit:cgj"]))
    perform(services, city, "cgj", moved, "return", workflow.ReasonInput(note="不属于本单位职责"))
    perform(services, city, "dispatcher", moved, "dispatch",
            workflow.DispatchInput(unit_id=city.ids["unit:zjj"], note="属住建局职责，改派"))

    merged = new_ticket(services, channel, confidential)
    perform(services, city, "agent", merged, "merge", workflow.MergeInput(parent_id=moved))

    kinds = {ticket_id: [row.kind for row in sent(services, ticket_id)]
             for ticket_id in (answered, handled, merged, transferred, moved)}
    assert kinds == {
        answered: [notices.RECEIVED, notices.ANSWERED],
        handled: [notices.RECEIVED, notices.REPLIED, notices.CLOSED],
        merged: [notices.RECEIVED, notices.MERGED],
        transferred: [notices.RECEIVED, notices.TRANSFERRED],
        moved: [notices.RECEIVED, notices.REASSIGNED],
    }
    rows = [row for ticket_id in kinds for row in sent(services, ticket_id)]
    assert {(row.channel, row.recipient) for row in rows} == {(channel, next(iter(ADDRESS[channel].values())))}
    with services.sessions() as s:
        parent_number = s.get_one(Ticket, moved).number
    texts = {row.kind: str(row.payload["text"]) for row in rows}
    assert parent_number in texts[notices.MERGED] and "合并办理" in texts[notices.MERGED]
    assert "119" in texts[notices.TRANSFERRED]
    assert "承办单位" in texts[notices.REASSIGNED] and "住建局" not in texts[notices.REASSIGNED]
    assert "退单" not in texts[notices.REASSIGNED] and "不属于" not in texts[notices.REASSIGNED]
    if confidential:
        for row in rows:
            text = str(row.payload["text"])
            assert "礼金" not in text and "纪检" not in text and "城市管理局" not in text, (row.kind, text)
    else:
        assert "纪检" in texts[notices.REPLIED] and "纪检" in texts[notices.ANSWERED]


def test_a_retried_step_queues_its_notice_once(services: Services, city: City) -> None:
    ticket_id = new_ticket(services, "wechat", False)
    with transaction(services.sessions) as s:
        ticket = s.get_one(Ticket, ticket_id)
        assert notices.notify(s, ticket, notices.RECEIVED, cause="inbound1")  # the same message handled again
    assert [row.kind for row in sent(services, ticket_id)] == [notices.RECEIVED]


def test_the_first_dispatch_and_steps_inside_the_hotline_say_nothing(services: Services, city: City) -> None:
    ticket_id = new_ticket(services, "wechat", False)
    perform(services, city, "dispatcher", ticket_id, "dispatch", workflow.DispatchInput(unit_id=city.ids["unit:cgj"]))
    perform(services, city, "cgj", ticket_id, "sign", workflow.ActionInput())
    perform(services, city, "supervisor", ticket_id, "remind", workflow.ReasonInput(note="请尽快办理"))
    assert [row.kind for row in sent(services, ticket_id)] == [notices.RECEIVED]


def test_channels_without_an_address_and_landlines_get_no_notice(services: Services, city: City) -> None:
    with transaction(services.sessions) as s:
        landline = Citizen(phone="057187654321")
        s.add(landline)
        s.flush()
        for number, channel, citizen_id in (("20260310009001", "phone", landline.id),
                                            ("20260310009002", "forum", None)):
            ticket = Ticket(number=number, channel=channel, text="路灯不亮", status=Status.received,
                            citizen_id=citizen_id)
            s.add(ticket)
            s.flush()
            assert not notices.notify(s, ticket, notices.RECEIVED, cause="inbound1")


def test_a_city_words_its_sms_itself(services: Services) -> None:
    with services.sessions() as s:
        assert notices.texts_of(s).sms == services.settings.phone.phone_sms
    city = SmsTemplates(merged="【明湖12345】已与{parent_number}合并。")
    notice = TicketNotice("20260310000001", confidential=True, parent_number="20260309000007")
    assert city.text("merged", notice) == "【明湖12345】已与20260309000007合并。"


def test_the_wechat_acceptance_gives_the_number_and_how_to_ask_for_it() -> None:
    text = WeChatTemplates().text("accepted", TicketNotice("20260101000123", confidential=False))
    assert text is not None and text.count("20260101000123") == 2 and "查询" in text
