"""JSON logs: one object per line, the request id on every line of a request, no secrets and no full mobiles."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hotline import logs
from hotline.app import create_app
from hotline.services import Services
from tests.conftest import City


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """The root logger configured as the service configures it, writing to a buffer; restored afterwards."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    stream = io.StringIO()
    config = logs.logging_config("json", "INFO")
    config["handlers"]["stderr"]["stream"] = stream
    logging.config.dictConfig(config)
    yield stream
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_masking_and_redaction_rules() -> None:
    assert logs.redact("来电 13912345678，备用+8613812345678") == "来电 139****5678，备用+86138****5678"
    assert logs.redact("order 2026120200012345 stays") == "order 2026120200012345 stays"  # not a mobile
    assert logs.redact("Authorization: Bearer abc.def") == "Authorization: Bearer [redacted]"
    assert logs.redact('{"password": "hunter2", "user": "agent"}') == '{"password": "[redacted]", "user": "agent"}'
    assert logs.redact("/v2/requests.json?api_key=k3y&x=1") == "/v2/requests.json?api_key=[redacted]&x=1"
    assert "eyJ" not in logs.redact("token eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig-nature")


def test_a_line_outside_requests_is_json_with_secrets_dropped(captured: io.StringIO) -> None:
    log = logging.getLogger("hotline.test")
    log.warning("caller %s password=%s", "13912345678", "hunter2", extra={"auth_token": "t0k", "unit": "mh-cgj"})
    try:
        raise ValueError("bad phone 13700001111")
    except ValueError:
        log.exception("failed")
    first, second = lines(captured)
    assert first["message"] == "caller 139****5678 password=[redacted]"
    assert first["level"] == "WARNING" and first["logger"] == "hotline.test" and first["request_id"] is None
    assert first["unit"] == "mh-cgj" and "auth_token" not in first
    assert "137****1111" in second["exc_info"] and "13700001111" not in second["exc_info"]


@pytest.fixture
def noisy_client(services: Services) -> Iterator[TestClient]:
    """The real app plus one route that logs what a careless handler might (a test-only endpoint)."""
    app = create_app(services.settings, services)

    @app.get("/test-only/log")
    def careless() -> dict[str, str]:  # sync: runs in the thread pool, which must carry the request id
        logging.getLogger("hotline.careless").warning("citizen 13912345678 sent secret=abc123")
        return {"ok": "yes"}

    with TestClient(app) as client:
        yield client


def test_every_line_of_a_request_carries_its_id_and_no_secret(
    noisy_client: TestClient, city: City, captured: io.StringIO
) -> None:
    token = city.tokens["agent"]
    response = noisy_client.get("/test-only/log?phone=13912345678&api_key=S3cretKey123",
                                headers={"Authorization": f"Bearer {token}", "X-Request-ID": "desk-42.a:b"})
    assert response.headers["X-Request-ID"] == "desk-42.a:b"
    text = captured.getvalue()
    assert "13912345678" not in text and "S3cretKey123" not in text and token not in text and "abc123" not in text
    records = lines(captured)
    careless = next(r for r in records if r["logger"] == "hotline.careless")
    access = next(r for r in records if r["logger"] == "hotline.access")
    assert careless["request_id"] == access["request_id"] == "desk-42.a:b"
    assert careless["message"] == "citizen 139****5678 sent secret=[redacted]"
    assert access["route"] == "/test-only/log" and access["status"] == 200 and access["method"] == "GET"
    assert "phone=139****5678" in access["message"] and "api_key=[redacted]" in access["message"]


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_an_insane_incoming_id_is_replaced_and_a_missing_one_made(client: TestClient, captured: io.StringIO) -> None:
    for sent in ("x" * 129, "two words", "<script>", ""):
        response = client.get("/healthz", headers={"X-Request-ID": sent} if sent else {})
        made = response.headers["X-Request-ID"]
        assert made != sent and len(made) == 32 and made.isalnum()
    ids = {r["request_id"] for r in lines(captured) if r["logger"] == "hotline.access"}
    assert len(ids) == 4


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_refusals_before_the_app_carry_the_id_too(client: TestClient) -> None:
    response = client.post("/api/intake", content=b"x" * (2 * 1024 * 1024), headers={"X-Request-ID": "big-1"})
    assert response.status_code == 413 and response.headers["X-Request-ID"] == "big-1"


def test_text_format_for_a_terminal() -> None:
    stream = io.StringIO()
    config = logs.logging_config("text", "INFO")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(config["formatters"]["default"]["format"]))
    handler.addFilter(logs.WithRequestId())
    handler.addFilter(logs.Redact())
    record = logging.LogRecord("hotline.x", logging.INFO, __file__, 1, "phone %s", ("13912345678",), None)
    handler.handle(record)
    assert "INFO hotline.x [None] phone 139****5678" in stream.getvalue()
