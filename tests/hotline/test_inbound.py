"""The durable intake: accept stores and acknowledges, the worker makes exactly one ticket of every accepted message."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hotline import inbound
from hotline.db import transaction
from hotline.errors import Invalid
from hotline.models import InboundMessage, Ticket, TicketEvent
from hotline.services import Services
from hotline.suggestion import NullSuggester, Suggestion
from tests.conftest import City

REPO = Path(__file__).resolve().parents[2]


def message(n: int, text: str = "幸福里小区门口的路灯坏了三天，晚上很黑", channel: str = "wechat") -> inbound.Inbound:
    return inbound.Inbound(channel=channel, external_id=f"msg-{n}", text=f"{text}（{n}）", wechat_openid=f"o-{n % 7}")


def accept_all(services: Services, messages: list[inbound.Inbound]) -> list[inbound.Accepted]:
    with transaction(services.sessions) as session:
        return [inbound.accept(session, m) for m in messages]


def process_all(services: Services) -> inbound.ProcessReport:
    total = inbound.ProcessReport()
    while True:
        report = inbound.process_pending(services.sessions, services.suggester, services.timing)
        total.created += report.created
        total.retried += report.retried
        total.failed += report.failed
        if not report:
            return total


def test_accept_stores_the_message_and_makes_no_ticket_yet(services: Services, city: City, session: Session) -> None:
    [accepted] = accept_all(services, [message(1)])
    row = session.get(InboundMessage, accepted.inbound_id)
    assert row is not None and row.state == "accepted" and row.ticket_id is None
    assert row.payload["text"].startswith("幸福里小区") and row.payload["citizen"]["wechat_openid"] == "o-1"
    assert session.scalar(select(func.count()).select_from(Ticket)) == 0


def test_the_same_message_accepted_again_is_a_duplicate(services: Services, city: City) -> None:
    first, again = accept_all(services, [message(1), message(1)])
    assert not first.duplicate and again.duplicate and again.inbound_id == first.inbound_id


def test_bad_input_is_refused_at_the_door_and_nothing_is_stored(services: Services, city: City,
                                                               session: Session) -> None:
    with pytest.raises(Invalid) as refused:
        accept_all(services, [inbound.Inbound(channel="wechat", external_id="x", text="  ")])
    assert refused.value.detail["field"] == "text"
    with pytest.raises(Invalid):
        accept_all(services, [inbound.Inbound(channel="pager", external_id="y", text="有事")])
    assert session.scalar(select(func.count()).select_from(InboundMessage)) == 0


def test_the_worker_turns_each_accepted_message_into_one_ticket(services: Services, city: City) -> None:
    accepted = accept_all(services, [message(n) for n in range(12)])
    report = process_all(services)
    assert report.created == 12 and report.failed == 0
    with services.sessions() as session:
        check_one_ticket_each(session, accepted)
    assert process_all(services).created == 0  # nothing left, nothing made twice


def check_one_ticket_each(session: Session, accepted: list[inbound.Accepted]) -> None:
    rows = session.scalars(select(InboundMessage).order_by(InboundMessage.id)).all()
    assert [r.id for r in rows] == [a.inbound_id for a in accepted]
    assert all(r.state == "done" and r.ticket_id is not None for r in rows)
    assert len({r.ticket_id for r in rows}) == 12
    ticket = session.get(Ticket, rows[0].ticket_id)
    assert ticket is not None and ticket.channel == "wechat" and ticket.citizen_id is not None
    receive = session.scalar(select(TicketEvent).where(TicketEvent.ticket_id == ticket.id))
    assert receive is not None and receive.type == "receive" and receive.data["external_id"] == "msg-0"


class BrokenAnalysis(NullSuggester):
    def __init__(self, failures: int) -> None:
        self.failures = failures

    def suggest(self, session: Session, title: str, text: str, location: str | None, now: datetime) -> Suggestion:
        if self.failures > 0:
            self.failures -= 1
            raise RuntimeError("分析服务不可用")
        return Suggestion()


def test_a_message_whose_analysis_raises_is_retried_then_parked_with_its_raw_text(
    services: Services, city: City, client: TestClient
) -> None:
    services.suggester = BrokenAnalysis(failures=inbound.MAX_ATTEMPTS)
    [accepted] = accept_all(services, [message(1)])
    now = datetime.now(UTC)
    for attempt in range(inbound.MAX_ATTEMPTS):
        inbound.process_pending(services.sessions, services.suggester, services.timing,
                                now=now + timedelta(hours=attempt))
    with services.sessions() as session:
        row = session.get(InboundMessage, accepted.inbound_id)
        assert row is not None and row.state == "failed" and row.attempts == inbound.MAX_ATTEMPTS
        assert row.last_error == "RuntimeError: 分析服务不可用" and row.payload["text"].startswith("幸福里")
        assert session.scalar(select(func.count()).select_from(Ticket)) == 0

    listed = client.get("/api/inbound?state=failed", headers=city.headers("admin"))
    assert listed.status_code == 200 and [m["id"] for m in listed.json()["items"]] == [accepted.inbound_id]
    assert client.get("/api/inbound", headers=city.headers("agent")).status_code == 403
    replayed = client.post(f"/api/inbound/{accepted.inbound_id}/replay", headers=city.headers("admin"))
    assert replayed.status_code == 200 and replayed.json()["state"] == "accepted"
    assert client.post(f"/api/inbound/{accepted.inbound_id}/replay", headers=city.headers("admin")).status_code == 409
    assert process_all(services).created == 1


def test_a_retry_waits_for_its_back_off(services: Services, city: City) -> None:
    services.suggester = BrokenAnalysis(failures=1)
    accept_all(services, [message(1)])
    now = datetime.now(UTC)
    assert inbound.process_pending(services.sessions, services.suggester, services.timing, now=now).retried == 1
    assert not inbound.process_pending(services.sessions, services.suggester, services.timing, now=now)
    later = now + inbound.retry_delay(1) + timedelta(seconds=1)
    assert inbound.process_pending(services.sessions, services.suggester, services.timing, now=later).created == 1


@pytest.mark.postgres
def test_the_same_message_sent_three_times_at_once_is_one_row_and_one_ticket(
    services: Services, city: City, db_url: str
) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("concurrent deliveries need PostgreSQL (SQLite serialises every writer)")
    barrier = threading.Barrier(3)
    results: list[inbound.Accepted] = []

    def deliver() -> None:
        barrier.wait()
        results.extend(accept_all(services, [message(7)]))

    threads = [threading.Thread(target=deliver) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.duplicate for r in results) == [False, True, True]
    assert process_all(services).created == 1
    with services.sessions() as session:
        assert session.scalar(select(func.count()).select_from(InboundMessage)) == 1
        assert session.scalar(select(func.count()).select_from(Ticket)) == 1


@pytest.mark.postgres
@pytest.mark.slow
def test_a_worker_killed_in_the_middle_of_a_batch_loses_and_doubles_nothing(
    services: Services, city: City, db_url: str, tmp_path: Path
) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("several worker processes on one database need PostgreSQL")
    count = 400
    # a channel with the default handler (a ticket per message); WeChat's joins a citizen's messages in a window
    accept_all(services, [message(n, channel="web") for n in range(count)])
    env = {**os.environ, "HOTLINE_DEMO": "1", "HOTLINE_DATABASE_URL": db_url,
           "HOTLINE_MODEL_DIR": str(tmp_path / "no-model"), "HOTLINE_SWEEP_INTERVAL_SECONDS": "3600"}
    env.pop("HOTLINE_REDIS_URL", None)

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, "-m", "hotline.cli", "worker"], cwd=REPO, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)

    def done() -> int:
        with services.sessions() as session:
            return int(session.scalar(select(func.count()).select_from(InboundMessage)
                                      .where(InboundMessage.state == "done")) or 0)

    worker = start()
    deadline = time.monotonic() + 120
    while done() < 20:
        assert time.monotonic() < deadline and worker.poll() is None, "the worker made no tickets"
        time.sleep(0.05)
    os.killpg(worker.pid, signal.SIGKILL)  # in the middle of a batch: its claimed rows stay 'processing'
    worker.wait()
    halfway = done()
    assert halfway < count, "the worker finished before it could be killed; give it more messages"
    with services.sessions() as session:  # let the dead worker's lease expire now instead of in a minute
        session.execute(InboundMessage.__table__.update().where(InboundMessage.state == "processing")
                        .values(lease_until=datetime.now(UTC) - timedelta(seconds=1)))
        session.commit()
    worker = start()
    try:
        deadline = time.monotonic() + 300
        while done() < count:
            assert time.monotonic() < deadline and worker.poll() is None, f"stuck at {done()} of {count}"
            time.sleep(0.2)
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
    with services.sessions() as session:
        tickets = session.scalar(select(func.count()).select_from(Ticket))
        linked = session.scalar(select(func.count(func.distinct(InboundMessage.ticket_id))))
    assert tickets == count and linked == count


def test_a_channel_key_posts_to_the_durable_intake_and_a_retry_is_recognised(services: Services, city: City,
                                                                            client: TestClient) -> None:
    key = {"Authorization": f"Bearer {services.settings.channel_keys['web']}"}
    body = {"channel": "web", "external_id": "portal-1", "text": "小区门口的井盖丢了，晚上很危险"}
    first = client.post("/api/inbound", json=body, headers=key)
    assert first.status_code == 202 and first.json()["duplicate"] is False
    again = client.post("/api/inbound", json=body, headers=key)
    assert again.status_code == 200 and again.json() == {"inbound_id": first.json()["inbound_id"], "duplicate": True}
    assert client.post("/api/inbound", json=body, headers=city.headers("agent")).status_code == 403
    assert client.post("/api/inbound", json={**body, "channel": "wechat"}, headers=key).status_code == 422
    assert client.post("/api/inbound", json={k: v for k, v in body.items() if k != "external_id"},
                       headers=key).status_code == 422
    assert process_all(services).created == 1


def test_the_ticket_shows_its_conversation_with_delivery_state_and_masked_recipients(
    services: Services, city: City, client: TestClient
) -> None:
    from hotline import outbox

    accept_all(services, [inbound.Inbound(channel="web", external_id="p1", text="井盖丢了，晚上很危险",
                                          citizen_phone="13800001234")])
    process_all(services)
    with transaction(services.sessions) as session:
        ticket = session.scalars(select(Ticket)).one()
        outbox.enqueue(session, channel="sms", kind="accepted", key=f"sms:accepted:{ticket.id}",
                       payload={"body": f"您的诉求已受理，工单号{ticket.number}。"}, recipient="13800001234",
                       ticket_id=ticket.id)
        ticket_id = ticket.id
    seen = client.get(f"/api/tickets/{ticket_id}", headers=city.headers("agent")).json()["conversation"]
    assert [(m["direction"], m["state"]) for m in seen] == [("in", "done"), ("out", "pending")]
    assert seen[0]["text"] == "井盖丢了，晚上很危险" and seen[1]["recipient"] == "13800001234"
    masked = client.get(f"/api/tickets/{ticket_id}", headers=city.headers("dispatcher")).json()["conversation"]
    assert masked[1]["recipient"] == "138****1234"
