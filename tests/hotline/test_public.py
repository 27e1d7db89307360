"""The citizen's own page: a request goes in through the one intake point with a challenge and a rate limit, and a
ticket is followed by number + the phone's last four digits, which reveal nothing when they do not match."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from hotline import inbound
from hotline.api import public as public_api
from hotline.models import InboundMessage, Ticket
from hotline.services import Services
from tests.conftest import City, act, submit

TEXT = "澄江街道建设路有人占道经营，摊位堵住了人行道"


def answer(question: str) -> str:
    a, b = (int(n) for n in re.findall(r"\d+", question))
    return str(a + b)


def challenge(client: TestClient) -> dict[str, str]:
    c = client.get("/api/public/challenge").json()
    return {"challenge_token": c["token"], "challenge_answer": answer(c["question"])}


def file_request(client: TestClient, **body: Any) -> Any:
    return client.post("/api/public/requests", json={"text": TEXT, **challenge(client), **body})


def process(services: Services) -> None:
    inbound.process_pending(services.sessions, services.suggester, services.timing)


def test_a_request_goes_through_the_one_intake_point_and_the_receipt_gives_its_number(
    client: TestClient, services: Services, city: City
) -> None:
    response = file_request(client, location="澄江街道建设路", name="李女士", phone="13800005678", confidential=True)
    assert response.status_code == 202, response.text
    receipt = response.json()["receipt"]
    assert client.get(f"/api/public/requests/{receipt}").json() == {
        "receipt": receipt, "state": "processing", "number": None}
    with services.sessions() as s:
        row = s.scalars(select(InboundMessage)).one()
        assert row.channel == "web" and row.payload["confidential"] is True
    process(services)
    done = client.get(f"/api/public/requests/{receipt}").json()
    with services.sessions() as s:
        ticket = s.scalars(select(Ticket)).one()
    assert done == {"receipt": receipt, "state": "done", "number": ticket.number}
    assert ticket.channel == "web" and ticket.confidential and ticket.location == "澄江街道建设路"


def test_a_receipt_cannot_be_forged_to_read_another_message(client: TestClient, city: City) -> None:
    receipt = file_request(client).json()["receipt"]
    inbound_id, signature = receipt.split(".")
    forged = f"{int(inbound_id) + 1}.{signature}"
    assert client.get(f"/api/public/requests/{forged}").status_code == 404
    assert client.get(f"/api/public/requests/{inbound_id}").status_code == 404


def test_a_wrong_or_reused_challenge_answer_is_refused(client: TestClient, city: City) -> None:
    c = client.get("/api/public/challenge").json()
    wrong = str(int(answer(c["question"])) + 1)
    refused = client.post("/api/public/requests", json={"text": TEXT, "challenge_token": c["token"],
                                                         "challenge_answer": wrong})
    assert refused.status_code == 422 and refused.json()["field"] == "challenge_answer"
    good = {"text": TEXT, "challenge_token": c["token"], "challenge_answer": answer(c["question"])}
    assert client.post("/api/public/requests", json=good).status_code == 202
    again = client.post("/api/public/requests", json=good)
    assert again.status_code == 422 and "用过" in again.json()["detail"]


def test_submissions_are_rate_limited_per_client_with_retry_after(client: TestClient, city: City) -> None:
    allowed, _window = public_api.LIMITS["submit"]
    for _ in range(allowed):
        assert file_request(client).status_code == 202
    refused = file_request(client)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 600


def _dispatched(client: TestClient, city: City, **extra: Any) -> dict[str, Any]:
    ticket = submit(client, city, citizen={"phone": "13800005678", "name": "李女士"}, **extra)
    act(client, city, "dispatcher", ticket["id"], "dispatch", unit_id=city.ids["unit:cjjd"])
    return ticket


def test_the_right_pair_shows_status_unit_deadline_and_reply_and_nothing_else(client: TestClient, city: City) -> None:
    ticket = _dispatched(client, city)
    seen = client.get(f"/api/public/tickets/{ticket['number']}?phone_last4=5678")
    assert seen.status_code == 200
    body = seen.json()
    assert set(body) == {"number", "status", "unit", "reply_due", "reply"}
    assert body["status"] == "已转交承办单位" and body["unit"] == "澄江街道办事处" and body["reply_due"]
    assert body["reply"] is None
    act(client, city, "cjjd", ticket["id"], "sign")
    act(client, city, "cjjd", ticket["id"], "reply", note="已联系城管到场，摊位已清理。")
    body = client.get(f"/api/public/tickets/{ticket['number']}?phone_last4=5678").json()
    assert body["status"] == "承办单位已答复，等待回访" and body["reply"] == "已联系城管到场，摊位已清理。"
    assert "李女士" not in seen.text and "13800005678" not in seen.text and "占道" not in seen.text


def test_a_confidential_ticket_does_not_name_its_unit(client: TestClient, city: City) -> None:
    ticket = _dispatched(client, city, confidential=True)
    body = client.get(f"/api/public/tickets/{ticket['number']}?phone_last4=5678").json()
    assert body["unit"] is None and body["status"] == "已转交承办单位"


@pytest.mark.parametrize("last4", ["1234", "5679", "", "abcd", "05678", "%"])
def test_a_wrong_last_four_answers_exactly_like_an_unknown_number(
    client: TestClient, city: City, last4: str
) -> None:
    ticket = _dispatched(client, city)
    wrong = client.get(f"/api/public/tickets/{ticket['number']}", params={"phone_last4": last4})
    unknown = client.get("/api/public/tickets/20990101-9999", params={"phone_last4": "5678"})
    assert wrong.status_code == unknown.status_code == 404
    assert wrong.content == unknown.content
    def same_for_all(headers: Mapping[str, str]) -> dict[str, str]:  # each answer has its own request id
        return {k: v for k, v in headers.items() if k.lower() != "x-request-id"}

    assert same_for_all(wrong.headers) == same_for_all(unknown.headers)


def test_a_ticket_filed_without_a_phone_cannot_be_followed(client: TestClient, city: City) -> None:
    ticket = submit(client, city)
    for last4 in ("0000", "none", ""):
        assert client.get(f"/api/public/tickets/{ticket['number']}", params={"phone_last4": last4}).status_code == 404


def test_a_wrong_pair_takes_as_long_as_an_unknown_number(client: TestClient, city: City) -> None:
    """Same query, same work: the two answers are within the same order of magnitude (medians of 8 calls)."""
    ticket = _dispatched(client, city)
    public_api.LIMITS["follow"] = (1000, 60)
    try:
        def median(url: str) -> float:
            times = []
            for _ in range(8):
                start = time.perf_counter()
                client.get(url)
                times.append(time.perf_counter() - start)
            return sorted(times)[4]

        wrong = median(f"/api/public/tickets/{ticket['number']}?phone_last4=0000")
        unknown = median("/api/public/tickets/20990101-9999?phone_last4=5678")
    finally:
        public_api.LIMITS["follow"] = (10, 60)
    assert max(wrong, unknown) / min(wrong, unknown) < 10


def test_following_is_rate_limited_per_client(client: TestClient, city: City) -> None:
    allowed, _window = public_api.LIMITS["follow"]
    for _ in range(allowed):
        assert client.get("/api/public/tickets/20990101-9999?phone_last4=5678").status_code == 404
    limited = client.get("/api/public/tickets/20990101-9999?phone_last4=5678")
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
