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
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, func, insert, select
from sqlalchemy.orm import Session

from hotline import inbound, intake
from hotline.db import attach_publisher, transaction
from hotline.errors import Invalid
from hotline.models import InboundMessage, Ticket, TicketEvent, TicketSequence
from hotline.services import Services
from hotline.suggester import CitySuggester
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


class FailsOn(NullSuggester):
    """Analysis that raises for one message of the batch."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def suggest(self, session: Session, title: str, text: str, location: str | None, now: datetime) -> Suggestion:
        if self.marker in text:
            raise RuntimeError("分析服务不可用")
        return Suggestion()


def test_a_failing_message_of_a_batch_rolls_back_only_itself_and_its_events(services: Services, city: City) -> None:
    published: list[dict[str, Any]] = []
    attach_publisher(services.sessions, published.extend)
    services.suggester = FailsOn("（1）")
    accepted = accept_all(services, [message(n, channel="web") for n in range(3)])
    report = inbound.process_pending(services.sessions, services.suggester, services.timing)
    assert (report.created, report.retried, report.failed) == (2, 1, 0)
    with services.sessions() as session:
        rows = {r.id: r for r in session.scalars(select(InboundMessage))}
        failed = rows[accepted[1].inbound_id]
        assert failed.state == "accepted" and failed.ticket_id is None
        assert failed.last_error == "RuntimeError: 分析服务不可用"
        numbers = [n[-6:] for n in session.scalars(select(Ticket.number).order_by(Ticket.id))]
        # the numbers the batch reserved went to the tickets it made, in order; the unused one went back
        assert numbers == ["000001", "000002"]
        assert session.scalar(select(TicketSequence.last)) == 2
        made = {rows[a.inbound_id].ticket_id for a in (accepted[0], accepted[2])}
    assert {m["ticket_id"] for m in published} == made and {m["type"] for m in published} == {"receive"}

    services.suggester = NullSuggester()
    later = datetime.now(UTC) + inbound.retry_delay(1) + timedelta(seconds=1)
    assert inbound.process_pending(services.sessions, services.suggester, services.timing, now=later).created == 1
    with services.sessions() as session:
        assert session.scalar(select(func.max(Ticket.number)))[-6:] == "000003"


def test_ticket_numbers_reserved_for_a_batch_are_handed_out_in_order_and_the_unused_given_back(
    services: Services, city: City
) -> None:
    now, zone = datetime.now(UTC), services.timing.zone
    with transaction(services.sessions) as session:
        block = intake.reserve_numbers(session, 5, now, zone)
    with transaction(services.sessions) as session:
        taken = [block.take(session, now, zone)[-6:] for _ in range(3)]
        assert intake.release_numbers(session, block)
    assert taken == ["000001", "000002", "000003"]
    with transaction(services.sessions) as session:
        assert intake.next_number(session, now, zone)[-6:] == "000004"
        block = intake.reserve_numbers(session, 3, now, zone)
        assert intake.next_number(session, now, zone)[-6:] == "000008"  # someone drew a number after the block
        assert block.take(session, now, zone)[-6:] == "000005"
        assert not intake.release_numbers(session, block)  # its tail stays a gap, never a number given twice
        assert intake.next_number(session, now, zone)[-6:] == "000009"
        assert [block.take(session, now, zone)[-6:] for _ in range(3)] == ["000006", "000007", "000010"]


def test_two_reports_of_one_incident_in_one_batch_the_second_names_the_first(services: Services, city: City) -> None:
    services.suggester = CitySuggester(services.sessions, services.knowledge_search, None)
    reports = ["澄江街道建设路水管爆裂，整条路都停水了，什么时候恢复供水",
               "建设路停水好几个小时了，澄江街道这边水管爆了吗，什么时候来水"]
    accepted = accept_all(services, [inbound.Inbound(channel="web", external_id=f"w{n}", text=text)
                                     for n, text in enumerate(reports)])
    assert inbound.process_pending(services.sessions, services.suggester, services.timing).created == 2
    with services.sessions() as session:
        first, second = (session.scalars(select(Ticket).join(InboundMessage, InboundMessage.ticket_id == Ticket.id)
                                         .where(InboundMessage.id == a.inbound_id)).one() for a in accepted)
        assert [d["ticket_id"] for d in second.analysis["duplicates"]][:1] == [first.id]
        # the first ticket was not committed yet when the second was analysed: its number came from the batch
        assert second.analysis["duplicates"][0]["number"] == first.number


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
    assert client.post("/api/inbound", json=body).status_code == 401  # refused as on every other endpoint
    assert client.post("/api/inbound", json=body, headers={"Authorization": "Bearer not-a-key"}).status_code == 401
    assert client.post("/api/inbound", json={**body, "channel": "wechat"}, headers=key).status_code == 422
    assert client.post("/api/inbound", json={k: v for k, v in body.items() if k != "external_id"},
                       headers=key).status_code == 422
    assert process_all(services).created == 1


@pytest.mark.postgres
def test_an_accept_whose_pooled_connection_the_server_dropped_is_made_again_on_a_new_one(
        services: Services, client: TestClient, db_url: str, session: Session) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("the accept's own pool of asyncio connections is PostgreSQL's")
    key = {"Authorization": f"Bearer {services.settings.channel_keys['web']}"}
    body = {"channel": "web", "text": "小区门口的井盖丢了，晚上很危险"}
    assert client.post("/api/inbound", json={**body, "external_id": "before"}, headers=key).status_code == 202
    with services.engine.connect() as conn:  # as a restart does: every other connection to the database cut
        cut = conn.exec_driver_sql(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()").scalar_one()
    assert cut >= 1
    after = client.post("/api/inbound", json={**body, "external_id": "after"}, headers=key)
    assert after.status_code == 202, after.text
    again = client.post("/api/inbound", json={**body, "external_id": "after"}, headers=key)
    assert again.status_code == 200 and again.json()["inbound_id"] == after.json()["inbound_id"]
    stored = session.scalars(select(InboundMessage.external_id).order_by(InboundMessage.id)).all()
    assert stored == ["before", "after"]


def test_a_bad_body_at_the_durable_intake_gets_the_apps_422_naming_the_field_and_nothing_is_stored(
        services: Services, client: TestClient, session: Session) -> None:
    key = {"Authorization": f"Bearer {services.settings.channel_keys['web']}"}
    missing_text = client.post("/api/inbound", json={"channel": "web", "external_id": "portal-2"}, headers=key)
    assert missing_text.status_code == 422
    assert [(e["field"], e["type"]) for e in missing_text.json()["errors"]] == [("text", "missing")]
    not_json = client.post("/api/inbound", content=b'{"channel": "web", "text": ', headers=key)
    assert not_json.status_code == 422 and not_json.json()["errors"][0]["type"] == "json_invalid"
    a_list = client.post("/api/inbound", json=[1, 2], headers=key)
    assert a_list.status_code == 422
    assert session.scalar(select(func.count()).select_from(InboundMessage)) == 0


def test_the_durable_intake_is_documented_with_its_body_and_both_answers(client: TestClient) -> None:
    operation = client.get("/openapi.json").json()["paths"]["/api/inbound"]["post"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/IntakeRequest"}
    for status in ("200", "202"):
        answer = operation["responses"][status]["content"]["application/json"]["schema"]
        assert answer == {"$ref": "#/components/schemas/AcceptedOut"}
    assert "422" in operation["responses"]


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


def test_the_claim_reads_only_the_pending_messages_however_many_are_done(services: Services, db_url: str) -> None:
    # a city keeps its messages: the worker's claim must not walk every message ever done (migration 0011)
    now = datetime.now(UTC)
    done = [{"channel": "web", "external_id": f"old-{i}", "payload": {"text": "路灯坏了"}, "received_at": now,
             "state": "done", "attempts": 1, "next_attempt_at": now, "processed_at": now} for i in range(20_000)]
    with transaction(services.sessions) as session:
        session.execute(insert(InboundMessage), done)
    accept_all(services, [message(1)])
    statements: list[tuple[str, Any]] = []

    def keep(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and not statements:
            statements.append((statement, parameters))

    postgres = db_url.startswith("postgresql")
    with services.engine.begin() as conn:
        conn.exec_driver_sql("ANALYZE inbound_messages" if postgres else "ANALYZE")
    event.listen(services.engine, "before_cursor_execute", keep)
    try:
        with transaction(services.sessions) as session:
            # an hour on: due whatever the 20,000 rows' insert took on a loaded machine
            assert len(inbound.claim(session, now + timedelta(hours=1), 50)) == 1
    finally:
        event.remove(services.engine, "before_cursor_execute", keep)
    [(statement, parameters)] = statements
    with services.engine.connect() as conn:
        plan = "\n".join(str(row) for row in conn.exec_driver_sql(
            ("EXPLAIN " if postgres else "EXPLAIN QUERY PLAN ") + statement, parameters))
    assert "ix_inbound_pending_id" in plan, plan
