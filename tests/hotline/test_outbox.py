"""The outbox: queued in the change's transaction, sent after it with retries, never doubled at the receiver."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from sqlalchemy import func, select

from hotline import outbox
from hotline.db import transaction
from hotline.models import OutboxMessage
from hotline.services import Services
from tests.conftest import City


class Receiver:
    """A stand-in for an outside messaging API over real HTTP: it drops a repeated idempotency key, as Twilio does,
    and can be told to fail the next requests."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, object]]] = []
        self.delivered: dict[str, dict[str, object]] = {}
        self.fail_next = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                key = self.headers.get("Idempotency-Key", "")
                receiver.requests.append((key, body))
                if receiver.fail_next > 0:
                    receiver.fail_next -= 1
                    self.send_response(503)
                    self.end_headers()
                    return
                receiver.delivered.setdefault(key, body)
                answer = json.dumps({"id": f"SM{list(receiver.delivered).index(key)}"}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/messages"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def sender(self, row: OutboxMessage) -> str | None:
        response = httpx.post(self.url, json={"to": row.recipient, **row.payload},
                              headers={"Idempotency-Key": row.idempotency_key}, timeout=5)
        if response.status_code == 400:
            raise outbox.PermanentFailure(response.text)
        response.raise_for_status()
        return str(response.json()["id"])


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


ACCEPTED_TEXT = "您的诉求已受理，工单号20261202000001。"


def queue(services: Services, key: str = "sms:accepted:1", text: str = ACCEPTED_TEXT) -> None:
    with transaction(services.sessions) as session:
        outbox.enqueue(session, channel="sms", kind="accepted", key=key, payload={"body": text},
                       recipient="13800001234")


def rows(services: Services) -> list[OutboxMessage]:
    with services.sessions() as session:
        return list(session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def test_a_queued_message_is_sent_once_and_marked_with_the_providers_id(services: Services, city: City,
                                                                        receiver: Receiver) -> None:
    queue(services)
    queue(services)  # the same notice queued again is the same row
    assert outbox.send_pending(services.sessions, {"sms": receiver.sender}).sent == 1
    [row] = rows(services)
    assert row.state == "sent" and row.provider_id == "SM0" and row.sent_at is not None
    assert [key for key, _ in receiver.requests] == ["sms:accepted:1"]
    assert not outbox.send_pending(services.sessions, {"sms": receiver.sender})


def test_a_rolled_back_change_queues_nothing(services: Services, city: City) -> None:
    with services.sessions() as session:
        outbox.enqueue(session, channel="sms", kind="accepted", key="k", payload={"body": "x"})
        session.rollback()
        assert session.scalar(select(func.count()).select_from(OutboxMessage)) == 0


def test_a_failing_receiver_is_retried_after_its_back_off(services: Services, city: City,
                                                          receiver: Receiver) -> None:
    queue(services)
    receiver.fail_next = 2
    now = datetime.now(UTC)
    assert outbox.send_pending(services.sessions, {"sms": receiver.sender}, now=now).retried == 1
    assert not outbox.send_pending(services.sessions, {"sms": receiver.sender}, now=now)  # waits for its back-off
    later = now + outbox.retry_delay(1) + timedelta(seconds=1)
    assert outbox.send_pending(services.sessions, {"sms": receiver.sender}, now=later).retried == 1
    latest = later + outbox.retry_delay(2) + timedelta(seconds=1)
    assert outbox.send_pending(services.sessions, {"sms": receiver.sender}, now=latest).sent == 1
    assert len(receiver.requests) == 3 and len(receiver.delivered) == 1
    [row] = rows(services)
    assert row.state == "sent" and row.attempts == 3


def test_a_crash_between_sending_and_marking_does_not_deliver_twice(services: Services, city: City,
                                                                    receiver: Receiver) -> None:
    queue(services)
    now = datetime.now(UTC)
    with transaction(services.sessions) as session:  # a worker claims and sends …
        [row_id] = outbox.claim(session, ["sms"], now, 10)
    [row] = rows(services)
    receiver.sender(row)  # … and dies before marking it sent
    after_lease = now + outbox.LEASE + timedelta(seconds=1)
    assert outbox.send_pending(services.sessions, {"sms": receiver.sender}, now=after_lease).sent == 1
    assert [key for key, _ in receiver.requests] == ["sms:accepted:1", "sms:accepted:1"]  # the key came again
    assert len(receiver.delivered) == 1  # and the receiver kept one
    assert rows(services)[0].id == row_id and rows(services)[0].state == "sent"


def test_a_permanent_refusal_is_parked_as_failed(services: Services, city: City) -> None:
    queue(services)

    def refuse(_row: OutboxMessage) -> str | None:
        raise outbox.PermanentFailure("号码不存在")

    assert outbox.send_pending(services.sessions, {"sms": refuse}).failed == 1
    [row] = rows(services)
    assert row.state == "failed" and row.last_error == "PermanentFailure: 号码不存在"


def test_a_channel_without_a_sender_keeps_its_rows(services: Services, city: City, receiver: Receiver) -> None:
    queue(services)
    assert not outbox.send_pending(services.sessions, {"wechat": receiver.sender})
    assert rows(services)[0].state == "pending"
