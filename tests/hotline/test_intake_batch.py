"""Group commit of the synchronous intake: concurrent requests are one transaction, and each is still its own.

Every rule of one synchronous intake holds per request inside a batch: its own answer for its actor, its own 4xx
with nothing of it written, a repeated (channel, external_id) answered with the first ticket (within one batch
too), a message stored for the worker a 409; a batch whose transaction fails is made again request by request.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from hotline import inbound, intake
from hotline.auth import channel_actor
from hotline.db import attach_publisher, transaction
from hotline.errors import Conflict, Invalid
from hotline.intake import IntakeRequest, NewTicket
from hotline.intake_batch import Answer
from hotline.models import Citizen, InboundMessage, Ticket, TicketEvent
from hotline.services import Services
from hotline.suggestion import NullSuggester, Suggestion
from tests.conftest import City, actor


class Scripted(NullSuggester):
    """Analysis that raises for 爆炸, names a unit that does not exist for 无此单位, and logs the duplicate index."""

    def __init__(self) -> None:
        self.index: list[tuple[str, int]] = []

    def suggest(self, session: Session, title: str, text: str, location: str | None, now: datetime) -> Suggestion:
        if "爆炸" in text:
            raise RuntimeError("the model broke on this text")
        if "无此单位" in text:
            return Suggestion(auto_dispatch=True, unit_id=999_999, route_explanation="测试")
        return Suggestion()

    def remember(self, ticket_id: int, title: str, text: str, area_code: str | None, at: datetime, *,
                 number: str | None = None) -> None:
        self.index.append(("remember", ticket_id))

    def forget(self, ticket_id: int) -> None:
        self.index.append(("forget", ticket_id))

    def indexed(self) -> set[int]:
        held: set[int] = set()
        for what, ticket_id in self.index:
            (held.add if what == "remember" else held.discard)(ticket_id)
        return held


@pytest.fixture
def scripted(services: Services) -> Scripted:
    suggester = Scripted()
    services.suggester = suggester
    return suggester


@pytest.fixture
def published(services: Services) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    attach_publisher(services.sessions, events.extend)
    return events


def count(services: Services, model: type, *where: Any) -> int:
    with services.sessions() as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def item(services: Services, city: City, text: str, who: str = "agent", **fields: Any) -> NewTicket:
    request = IntakeRequest(channel=fields.pop("channel", "phone"), text=text, **fields)
    return NewTicket(request, actor(services, city, who))


def test_concurrent_intakes_share_a_transaction_and_each_is_answered_for_its_actor(
    client: TestClient, city: City, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    sizes: list[int] = []
    run = services.intake_batcher.run

    def spy(items: list[NewTicket]) -> list[Answer | Exception]:
        sizes.append(len(items))
        return run(items)

    monkeypatch.setattr(services.intake_batcher, "run", spy)
    who = ["agent", "dispatcher", "supervisor", "agent2"] * 4
    barrier = threading.Barrier(len(who))

    def send(n: int) -> dict[str, Any]:
        barrier.wait()
        r = client.post("/api/intake", headers=city.headers(who[n]), json={
            "channel": "phone", "external_id": f"call-{n}", "text": f"第{n}号：建设路路灯不亮",
            "citizen": {"name": "张先生", "phone": f"1380000{n:04d}"}})
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body

    with ThreadPoolExecutor(max_workers=len(who)) as pool:
        answers = list(pool.map(send, range(len(who))))
    assert sum(sizes) == len(who) and max(sizes) > 1  # at least one batch held several requests
    assert len({a["number"] for a in answers}) == len(who) == count(services, Ticket)
    assert count(services, InboundMessage, InboundMessage.state == "done",
                 InboundMessage.ticket_id.is_not(None)) == len(who)
    with services.sessions() as s:
        owners = dict(s.execute(select(Ticket.id, Ticket.owner_id)).all())
    for n, answer in enumerate(answers):
        assert answer["text"] == f"第{n}号：建设路路灯不亮"
        full = f"1380000{n:04d}"
        # agents and supervisors hear the caller's number; a dispatcher reads it masked
        assert (answer["citizen"]["phone"] == full) == (who[n] != "dispatcher")
        owner = None if who[n] == "supervisor" else city.ids[f"user:{who[n]}"]
        assert owners[answer["id"]] == owner


def test_a_bad_request_in_a_batch_is_refused_alone_and_writes_nothing(
    services: Services, city: City, scripted: Scripted, published: list[dict[str, Any]]
) -> None:
    batch = [
        item(services, city, "建设路路灯不亮", external_id="ok-1", citizen={"phone": "13800000001"}),
        item(services, city, "字" * 10_001, external_id="long", citizen={"phone": "13800000002"}),
        NewTicket(IntakeRequest(channel="phone", text="路灯不亮", external_id="key"), channel_actor("web")),
        item(services, city, "小区门口爆炸声", external_id="raises", citizen={"phone": "13800000003"}),
        item(services, city, "无此单位的事", external_id="refused", citizen={"phone": "13800000004"}),
        item(services, city, "小区电梯停运", citizen={"phone": "13800000005"}),
    ]
    results = services.intake_batcher.run(batch)
    made = [r for r in results if isinstance(r, Answer)]
    assert [type(r) for r in results] == [Answer, Invalid, Invalid, RuntimeError, Invalid, Answer]
    assert all(a.created for a in made)
    assert count(services, Ticket) == 2 and count(services, TicketEvent) == 2
    with services.sessions() as s:  # the refused ones left no message, no citizen behind
        assert list(s.scalars(select(InboundMessage.external_id))) == ["ok-1"]
        assert sorted(s.scalars(select(Citizen.phone))) == ["13800000001", "13800000005"]
    assert sorted(e["ticket_id"] for e in published if e["type"] == "receive") == sorted(a.ticket.id for a in made)
    assert scripted.indexed() == {a.ticket.id for a in made}  # the unit-refused ticket left the index again
    # the bus notices of this process's own tickets do not index them a second time (services.follow_tickets)
    assert all(services.intake_batcher.indexed_here(a.ticket.id) for a in made)
    assert not any(services.intake_batcher.indexed_here(a.ticket.id) for a in made)


def test_repeats_inside_one_batch_get_the_first_ticket(services: Services, city: City, scripted: Scripted) -> None:
    [earlier] = services.intake_batcher.run([item(services, city, "建设路路灯不亮", external_id="call-5")])
    assert isinstance(earlier, Answer)
    with transaction(services.sessions) as session:  # accepted from a channel, not a ticket yet
        inbound.accept(session, inbound.Inbound(channel="phone", external_id="call-9", text="小区电梯经常停运"))
    results = services.intake_batcher.run([
        item(services, city, "小区停水一整天了", external_id="call-7"),
        item(services, city, "小区停水一整天了", external_id="call-7"),
        item(services, city, "建设路路灯不亮", external_id="call-5"),
        item(services, city, "小区电梯经常停运", external_id="call-9"),
        item(services, city, "小区停水一整天了", external_id="call-7", who="agent2"),
        # the first delivery of call-8 is refused (its analysis raises); the repeat is made, after the batch
        item(services, city, "小区门口爆炸声", external_id="call-8"),
        item(services, city, "小区门口有人摆摊", external_id="call-8"),
    ])
    first, again, old, waiting, third, refused, repeat = results
    assert isinstance(first, Answer) and first.created
    assert isinstance(again, Answer) and isinstance(third, Answer) and not again.created and not third.created
    assert again.ticket.id == third.ticket.id == first.ticket.id
    assert isinstance(old, Answer) and not old.created and old.ticket.id == earlier.ticket.id
    assert isinstance(waiting, Conflict) and waiting.status_code == 409 and "正在生成工单" in waiting.people
    assert isinstance(refused, RuntimeError)
    assert isinstance(repeat, Answer) and repeat.created and repeat.ticket.text == "小区门口有人摆摊"
    assert count(services, InboundMessage, InboundMessage.external_id == "call-7") == 1
    assert count(services, Ticket) == 3  # call-5, call-7, call-8


def test_a_batch_whose_transaction_fails_is_made_again_request_by_request(
    services: Services, city: City, scripted: Scripted, published: list[dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch
) -> None:
    mark_done = intake.mark_done

    def fails_for_a_batch(session: Session, done: Any, now: datetime) -> None:
        if len(done) > 1:
            raise OperationalError("UPDATE inbound_messages", {}, Exception("the server went away"))
        mark_done(session, done, now)

    monkeypatch.setattr(intake, "mark_done", fails_for_a_batch)
    batch = [item(services, city, f"第{n}号：建设路路灯不亮", external_id=f"call-{n}",
                  citizen={"phone": f"1380000{n:04d}"}) for n in range(4)]
    results = services.intake_batcher.run([*batch, item(services, city, "字" * 10_001)])
    assert isinstance(results[-1], Invalid)  # its own answer, not the batch's error
    answers = [r for r in results[:-1] if isinstance(r, Answer)]
    assert len(answers) == 4 and all(a.created for a in answers)
    ids = {a.ticket.id for a in answers}
    assert count(services, Ticket) == 4 and count(services, Citizen) == 4
    assert count(services, InboundMessage, InboundMessage.state == "done") == 4
    # the desks heard of each ticket once (the failed batch's events were dropped with it) …
    assert sorted(e["ticket_id"] for e in published if e["type"] == "receive") == sorted(ids)
    # … and the duplicate index holds exactly the committed tickets
    assert scripted.indexed() == ids and ("forget", min(i for _, i in scripted.index)) in scripted.index


def test_a_request_whose_own_transaction_fails_gets_that_error(
    services: Services, city: City, scripted: Scripted, monkeypatch: pytest.MonkeyPatch
) -> None:
    def always_fails(session: Session, done: Any, now: datetime) -> None:
        raise OperationalError("UPDATE inbound_messages", {}, Exception("the server went away"))

    monkeypatch.setattr(intake, "mark_done", always_fails)
    results = services.intake_batcher.run([item(services, city, "建设路路灯不亮", external_id=f"c{n}")
                                           for n in range(3)])
    assert all(isinstance(r, OperationalError) for r in results)  # → 503 through the app's handler
    assert count(services, Ticket) == 0 and count(services, InboundMessage) == 0
    assert scripted.indexed() == set()
    with services.sessions() as s:  # the ids the rolled-back batches had reserved are not waiting for a notice
        reserved = max(int(s.scalar(select(func.max(Ticket.id))) or 0), 50)
    assert not any(services.intake_batcher.indexed_here(i) for i in range(1, reserved + 1))


def test_a_request_alone_starts_a_batch_at_once_and_those_arriving_meanwhile_form_the_next(
    services: Services, city: City, monkeypatch: pytest.MonkeyPatch
) -> None:
    batcher = services.intake_batcher
    started: list[list[str]] = []
    release = threading.Event()
    agent = actor(services, city, "agent")

    def run(items: list[NewTicket]) -> list[Answer | Exception]:
        started.append([i.request.text for i in items])
        release.wait(10)
        return [Invalid(i.request.text) for i in items]  # an answer per request, in its order

    monkeypatch.setattr(batcher, "run", run)

    async def scenario() -> list[str]:
        first = asyncio.create_task(batcher.submit(IntakeRequest(channel="phone", text="一"), agent))
        while not started:  # no fixed delay: the request alone is in a batch at once
            await asyncio.sleep(0.001)
        later = [asyncio.create_task(batcher.submit(IntakeRequest(channel="phone", text=t), agent))
                 for t in ("二", "三", "四")]
        await asyncio.sleep(0.05)
        assert started == [["一"]]  # the others wait for the batch in flight …
        release.set()
        results = await asyncio.gather(first, *later, return_exceptions=True)
        return [str(r) for r in results]

    assert asyncio.run(scenario()) == ["一", "二", "三", "四"]  # … each got its own answer
    assert started == [["一"], ["二", "三", "四"]]  # … and they formed the next batch together
