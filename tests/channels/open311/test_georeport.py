"""The GeoReport protocol itself, without HTTP: search windows, receipts and what rendering refuses to emit."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest

from channels.open311.georeport import (
    Open311Failure,
    Receipt,
    ServiceRequest,
    parse_request_query,
    render_receipt,
    render_requests,
)

NOW = datetime(2025, 3, 10, tzinfo=UTC)


def test_a_search_of_exactly_90_days_is_allowed_and_one_second_more_is_not() -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    pairs = [("start_date", start.isoformat()), ("end_date", (start + timedelta(days=90)).isoformat())]
    assert parse_request_query(pairs, NOW).end == start + timedelta(days=90)
    pairs[1] = ("end_date", (start + timedelta(days=90, seconds=1)).isoformat())
    with pytest.raises(Open311Failure) as refused:
        parse_request_query(pairs, NOW)
    assert refused.value.status == 400


def test_an_end_date_alone_searches_the_90_days_before_it() -> None:
    query = parse_request_query([("end_date", "2025-02-01T00:00:00+08:00")], NOW)
    assert query.end == datetime(2025, 1, 31, 16, tzinfo=UTC)
    assert query.start == query.end - timedelta(days=90)


def test_statuses_come_back_in_a_fixed_order_without_duplicates() -> None:
    assert parse_request_query([("status", "closed,open,closed")], NOW).statuses == ("open", "closed")


def test_a_receipt_has_either_an_id_or_a_token() -> None:
    with pytest.raises(ValueError):
        Receipt()
    with pytest.raises(ValueError):
        Receipt(service_request_id="1", token="t")
    realtime = json.loads(render_receipt(Receipt(service_request_id="20250303-000123"), "json"))
    assert realtime == [{"service_request_id": "20250303-000123", "service_notice": None, "account_id": None}]


def test_text_xml_cannot_carry_is_dropped_rather_than_breaking_the_document() -> None:
    request = ServiceRequest("1", "open", "1101", "噪音\x00\x1b", datetime(2025, 3, 1, tzinfo=UTC),
                             status_notes="已处理\ud800\ufffe")
    root = ET.fromstring(render_requests([request], "xml"))
    assert (root.findtext("request/service_name"), root.findtext("request/status_notes")) == ("噪音", "已处理")
    assert json.loads(render_requests([request], "json"))[0]["status_notes"] == "已处理"


def test_a_naive_date_time_is_a_programming_error_not_an_answer() -> None:
    request = ServiceRequest("1", "open", "1101", "噪音", datetime(2025, 3, 1))
    with pytest.raises(ValueError, match="time zone"):
        render_requests([request], "xml")


def test_at_most_1000_requests_are_rendered() -> None:
    many = [ServiceRequest(str(i), "open", "1101", "噪音", NOW) for i in range(1001)]
    assert len(json.loads(render_requests(many, "json"))) == 1000
