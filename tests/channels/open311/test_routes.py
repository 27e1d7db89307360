"""Every GeoReport v2 endpoint answers in JSON and in the spec's XML; refusals are its {code, description} list."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient

from channels.open311.georeport import MAX_DESCRIPTION_CHARS
from tests.channels.open311.conftest import KEY, NOW, Backend, texts, xml

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
GOOD = {"api_key": KEY, "service_code": "1101", "lat": "31.2304", "long": "121.4737",
        "description": "幸福路工地每天夜里打桩到凌晨两点", "attribute[TIME]": "night",
        "first_name": "三", "last_name": "张", "phone": "13800001234", "email": "zhang@example.cn",
        "media_url": "https://img.example.cn/1.jpg"}


def post(client: TestClient, fields: dict[str, str] | list[tuple[str, str]], fmt: str = "json") -> Any:
    return client.post(f"/open311/v2/requests.{fmt}", content=urlencode(fields).encode(), headers=FORM)


def errors(response: Any, fmt: str) -> list[tuple[int, str]]:
    if fmt == "json":
        assert response.headers["content-type"] == "application/json; charset=utf-8"
        return [(e["code"], e["description"]) for e in response.json()]
    assert response.headers["content-type"] == "text/xml; charset=utf-8"
    root = xml(response.content)
    assert root.tag == "errors" and all(e.tag == "error" for e in root)
    return [(int(e.findtext("code") or 0), e.findtext("description") or "") for e in root]


def test_discovery_names_this_endpoint_and_its_formats(open311: TestClient) -> None:
    document = open311.get("/open311/v2/discovery.json").json()
    assert document["contact"] and document["key_service"]
    (endpoint,) = document["endpoints"]
    assert endpoint == {"specification": "http://wiki.open311.org/GeoReport_v2",
                        "url": "http://testserver/open311/v2", "changeset": "2025-03-01T00:00:00+00:00",
                        "type": "production", "formats": ["text/xml", "application/json"]}
    root = xml(open311.get("/open311/v2/discovery.xml").content)
    assert root.tag == "discovery"
    assert [c.tag for c in root] == ["changeset", "contact", "key_service", "endpoints"]
    endpoint_xml = root.find("endpoints/endpoint")
    assert endpoint_xml is not None
    assert texts(endpoint_xml)["url"] == "http://testserver/open311/v2"
    assert [f.text for f in endpoint_xml.findall("formats/format")] == ["text/xml", "application/json"]


def test_services_list_the_category_leaves_in_both_formats(open311: TestClient) -> None:
    services = open311.get("/open311/v2/services.json").json()
    assert services[0] == {"service_code": "1101", "service_name": "施工噪音", "description": "夜间施工噪音扰民",
                           "metadata": True, "type": "batch", "keywords": "噪音, 工地", "group": "环境保护"}
    assert [s["service_code"] for s in services] == ["1101", "1201"]
    root = xml(open311.get("/open311/v2/services.xml").content)
    assert root.tag == "services" and [s.tag for s in root] == ["service", "service"]
    assert texts(root[0]) == {"service_code": "1101", "service_name": "施工噪音", "description": "夜间施工噪音扰民",
                              "metadata": "true", "type": "batch", "keywords": "噪音, 工地", "group": "环境保护"}
    assert texts(root[1])["metadata"] == "false"


def test_a_service_definition_lists_its_attributes_and_values(open311: TestClient) -> None:
    definition = open311.get("/open311/v2/services/1101.json").json()
    assert definition["service_code"] == "1101"
    first = definition["attributes"][0]
    assert first == {"variable": True, "code": "TIME", "datatype": "singlevaluelist", "required": True,
                     "datatype_description": None, "order": 1, "description": "噪音出现在什么时间？",
                     "values": [{"key": "night", "name": "夜间（22:00-6:00）"}, {"key": "day", "name": "白天"}]}
    assert "values" not in definition["attributes"][2]
    root = xml(open311.get("/open311/v2/services/1101.xml").content)
    assert root.tag == "service_definition" and root.findtext("service_code") == "1101"
    attributes = root.findall("attributes/attribute")
    assert [a.findtext("code") for a in attributes] == ["TIME", "KIND", "FLOORS", "NOTE"]
    assert [c.tag for c in attributes[0]] == ["variable", "code", "datatype", "required", "datatype_description",
                                              "order", "description", "values"]
    assert [(v.findtext("key"), v.findtext("name")) for v in attributes[0].findall("values/value")] == [
        ("night", "夜间（22:00-6:00）"), ("day", "白天")]
    assert attributes[3].findtext("variable") == "false"


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_an_unknown_service_is_404(open311: TestClient, fmt: str) -> None:
    r = open311.get(f"/open311/v2/services/9999.{fmt}")
    assert r.status_code == 404
    assert errors(r, fmt) == [(404, "service_code '9999' not found")]


def test_posting_a_request_returns_a_token_and_hands_the_citizen_fields_to_the_intake(
    open311: TestClient, backend: Backend
) -> None:
    r = post(open311, {**GOOD, "attribute[KIND][]": "drill"} | {"address_string": "幸福路18号"})
    assert r.status_code == 201, r.text
    assert r.json() == [{"token": "t-11", "service_notice": "将在1个工作日内受理", "account_id": None}]
    ((client, new),) = backend.submitted
    assert client == "civic-app"
    assert (new.service_code, new.lat, new.long, new.address_string) == ("1101", 31.2304, 121.4737, "幸福路18号")
    assert (new.first_name, new.last_name, new.phone, new.email) == ("三", "张", "13800001234", "zhang@example.cn")
    assert new.description == GOOD["description"]
    assert new.media_url == "https://img.example.cn/1.jpg"
    assert dict(new.attributes) == {"TIME": ("night",), "KIND": ("drill",)}


def test_the_xml_receipt_has_the_token_in_service_requests(open311: TestClient) -> None:
    r = post(open311, GOOD, "xml")
    assert r.status_code == 201
    root = xml(r.content)
    assert root.tag == "service_requests"
    assert [c.tag for c in root[0]] == ["token", "service_notice", "account_id"]
    assert root.findtext("request/token") == "t-11"


def test_a_multivaluelist_takes_several_values(open311: TestClient, backend: Backend) -> None:
    fields = [*GOOD.items(), ("attribute[KIND][]", "drill"), ("attribute[KIND][]", "truck")]
    assert post(open311, fields).status_code == 201
    assert backend.submitted[0][1].attributes["KIND"] == ("drill", "truck")


def test_an_address_id_alone_is_a_location(open311: TestClient) -> None:
    fields = {"api_key": KEY, "service_code": "1201", "address_id": "A-100", "description": "路灯不亮"}
    assert post(open311, fields).status_code == 201


def test_a_description_of_exactly_4000_characters_is_accepted(open311: TestClient) -> None:
    assert post(open311, {**GOOD, "description": "长" * MAX_DESCRIPTION_CHARS}).status_code == 201


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize("key", [None, "", "wrong-key-0123456789", KEY.upper(), "demo-open311-key"])
def test_a_missing_or_unknown_api_key_is_403(open311: TestClient, backend: Backend, fmt: str,
                                              key: str | None) -> None:
    fields = {k: v for k, v in GOOD.items() if k != "api_key"} | ({"api_key": key} if key is not None else {})
    r = post(open311, fields, fmt)
    assert r.status_code == 403
    assert errors(r, fmt) == [(403, "api_key was not provided or is not valid")]
    assert backend.submitted == []


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"service_code": None}, "service_code was not provided"),
        ({"lat": None, "long": None}, "a location is required: lat and long, address_string or address_id"),
        ({"long": None}, "lat and long must be given together"),
        ({"lat": "north"}, "lat and long must be decimal degrees (WGS84)"),
        ({"lat": "91"}, "lat must be within -90..90 and long within -180..180"),
        ({"lat": "nan"}, "lat must be within -90..90 and long within -180..180"),
        ({"description": "长" * (MAX_DESCRIPTION_CHARS + 1)}, "description is longer than 4000 characters"),
        ({"media_url": "javascript:alert(1)"}, "media_url must be an http or https URL"),
        ({"email": "not-an-email"}, "email is not an email address"),
        ({"phone": "call me"}, "phone is not a phone number"),
        ({"attribute[TIME]": None}, "attribute TIME is required"),
        ({"attribute[TIME]": "noon"}, "attribute TIME must be one of its keys"),
        ({"attribute[FLOORS]": "三楼"}, "attribute FLOORS must be a number"),
        ({"attribute[WHO]": "me"}, "attribute WHO is not part of service 1101"),
        ({"description": "a\x00b"}, "description contains control characters"),
    ],
)
def test_a_malformed_request_is_400_with_the_reason(open311: TestClient, backend: Backend, fmt: str,
                                                    change: dict[str, str | None], expected: str) -> None:
    fields = {k: v for k, v in ({**GOOD, **change}).items() if v is not None}
    r = post(open311, fields, fmt)
    assert r.status_code == 400, r.text
    assert (400, expected) in errors(r, fmt)
    assert backend.submitted == []


def test_every_problem_is_listed_at_once(open311: TestClient) -> None:
    fields = {**GOOD, "lat": "91", "email": "x", "attribute[TIME]": "noon"}
    assert [code for code, _ in errors(post(open311, fields), "json")] == [400, 400, 400]


def test_a_field_given_twice_is_400(open311: TestClient) -> None:
    r = post(open311, [*GOOD.items(), ("description", "第二个描述")])
    assert (r.status_code, errors(r, "json")) == (400, [(400, "description was given more than once")])


def test_the_backend_may_refuse_a_request_in_the_spec_format(open311: TestClient) -> None:
    fields = {"api_key": KEY, "service_code": "1201", "address_id": "A-100"}
    r = post(open311, fields, "xml")
    assert (r.status_code, errors(r, "xml")) == (400, [(400, "description is required for this city")])


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_posting_to_an_unknown_service_is_404(open311: TestClient, fmt: str) -> None:
    r = post(open311, {**GOOD, "service_code": "9999"}, fmt)
    assert (r.status_code, errors(r, fmt)) == (404, [(404, "service_code '9999' not found")])


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (json.dumps(GOOD).encode(), "application/json"),
        (b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>', "text/xml"),
        (urlencode(GOOD).encode(), "text/plain"),
        (urlencode(GOOD).encode(), None),
        (urlencode(GOOD).encode(), "application/x-www-form-urlencoded; charset=gbk"),
        (urlencode(GOOD).encode() + b"&description2=%FF%FE", "application/x-www-form-urlencoded"),
        (urlencode(GOOD).encode() + b"&x=\xff\xfe", "application/x-www-form-urlencoded"),
        ("&".join(f"f{i}=1" for i in range(200)).encode(), "application/x-www-form-urlencoded"),
    ],
)
def test_a_body_that_is_not_a_utf8_form_is_400_and_nothing_is_submitted(
    open311: TestClient, backend: Backend, body: bytes, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    r = open311.post("/open311/v2/requests.xml", content=body, headers=headers)
    assert r.status_code == 400, r.text
    assert errors(r, "xml")[0][0] == 400
    assert backend.submitted == []


def test_an_oversized_body_is_413_announced_or_not(open311: TestClient, backend: Backend) -> None:
    big = urlencode({**GOOD, "description": "长" * 3000, "address_string": "路" * 6000}).encode()
    r = open311.post("/open311/v2/requests.json", content=big, headers=FORM)
    assert r.status_code == 413 and errors(r, "json")[0][0] == 413

    def chunks() -> Any:
        for i in range(0, len(big), 1000):
            yield big[i:i + 1000]

    r = open311.post("/open311/v2/requests.json", content=chunks(), headers=FORM)
    assert r.status_code == 413
    assert backend.submitted == []


def test_service_requests_come_with_their_public_fields_only(open311: TestClient) -> None:
    (one,) = open311.get("/open311/v2/requests/20250303-000123.json").json()
    assert one == {
        "service_request_id": "20250303-000123", "status": "open", "status_notes": "已转区城市管理局办理",
        "service_name": "施工噪音", "service_code": "1101", "description": "幸福路工地夜间施工噪音扰民",
        "agency_responsible": "区城市管理局", "service_notice": None,
        "requested_datetime": "2025-03-03T02:00:00+00:00", "updated_datetime": "2025-03-04T01:00:00+00:00",
        "expected_datetime": "2025-03-10T09:30:00+00:00", "address": "幸福路18号", "address_id": None,
        "zipcode": None, "lat": 31.23, "long": 121.47, "media_url": None,
    }
    root = xml(open311.get("/open311/v2/requests/20250303-000123.xml").content)
    assert root.tag == "service_requests" and [r.tag for r in root] == ["request"]
    assert [c.tag for c in root[0]] == [
        "service_request_id", "status", "status_notes", "service_name", "service_code", "description",
        "agency_responsible", "service_notice", "requested_datetime", "updated_datetime", "expected_datetime",
        "address", "address_id", "zipcode", "lat", "long", "media_url"]
    values = texts(root[0])
    assert (values["status"], values["agency_responsible"], values["lat"], values["zipcode"]) == (
        "open", "区城市管理局", "31.23", "")


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_an_unknown_or_hidden_request_is_404(open311: TestClient, fmt: str) -> None:
    r = open311.get(f"/open311/v2/requests/20250303-999999.{fmt}")
    assert (r.status_code, errors(r, fmt)) == (404, [(404, "service_request_id '20250303-999999' not found")])


def test_requests_are_searched_by_ids_overriding_the_other_filters(open311: TestClient, backend: Backend) -> None:
    r = open311.get("/open311/v2/requests.json",
                    params={"service_request_id": "20250303-000123, 20250301-000007,", "status": "bogus"})
    assert [x["service_request_id"] for x in r.json()] == ["20250303-000123", "20250301-000007"]
    assert backend.queries[-1].service_request_ids == ("20250303-000123", "20250301-000007")
    assert backend.queries[-1].start is None


def test_requests_are_filtered_by_code_status_and_dates(open311: TestClient, backend: Backend) -> None:
    r = open311.get("/open311/v2/requests.xml", params={
        "service_code": "1101,1201", "status": "closed", "start_date": "2025-02-01T00:00:00+08:00",
        "end_date": "2025-03-10T00:00:00Z"})
    root = xml(r.content)
    assert [q.findtext("service_request_id") for q in root.findall("request")] == ["20250301-000007"]
    query = backend.queries[-1]
    assert query.service_codes == ("1101", "1201") and query.statuses == ("closed",)
    assert query.start == datetime(2025, 1, 31, 16, 0, tzinfo=UTC)
    assert query.end == datetime(2025, 3, 10, tzinfo=UTC)


def test_without_dates_the_last_90_days_are_searched(open311: TestClient, backend: Backend) -> None:
    open311.get("/open311/v2/requests.json")
    assert (backend.queries[-1].start, backend.queries[-1].end) == (NOW - timedelta(days=90), NOW)
    open311.get("/open311/v2/requests.json", params={"start_date": "2025-01-01T00:00:00Z"})
    assert backend.queries[-1].end == datetime(2025, 4, 1, tzinfo=UTC)


@pytest.mark.parametrize("fmt", ["json", "xml"])
@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"start_date": "2024-01-01T00:00:00Z", "end_date": "2024-06-01T00:00:00Z"},
         "start_date and end_date may be at most 90 days apart"),
        ({"start_date": "2024-06-01T00:00:00Z", "end_date": "2024-01-01T00:00:00Z"}, "end_date is before start_date"),
        ({"start_date": "2024-06-01T00:00:00"}, "start_date must be an ISO 8601 date and time with a time zone"),
        ({"end_date": "yesterday"}, "end_date must be an ISO 8601 date and time with a time zone"),
        ({"status": "open,pending"}, "status must be open or closed"),
        ({"service_request_id": ",".join(str(i) for i in range(101))},
         "service_request_id takes at most 100 ids of up to 64 characters"),
    ],
)
def test_a_malformed_search_is_400(open311: TestClient, fmt: str, params: dict[str, str], expected: str) -> None:
    r = open311.get(f"/open311/v2/requests.{fmt}", params=params)
    assert (r.status_code, errors(r, fmt)) == (400, [(400, expected)])


def test_a_query_string_that_is_not_utf8_is_400(open311: TestClient) -> None:
    r = open311.get("/open311/v2/requests.json?service_code=%FF%FE")
    assert (r.status_code, errors(r, "json")) == (400, [(400, "the query string is not valid UTF-8")])


def test_a_token_says_which_request_it_became_once_there_is_one(open311: TestClient) -> None:
    assert open311.get("/open311/v2/tokens/t-1.json").json() == [{"service_request_id": None, "token": "t-1"}]
    assert open311.get("/open311/v2/tokens/t-2.json").json() == [
        {"service_request_id": "20250303-000123", "token": "t-2"}]
    root = xml(open311.get("/open311/v2/tokens/t-2.xml").content)
    assert root.tag == "service_requests"
    assert texts(root[0]) == {"service_request_id": "20250303-000123", "token": "t-2"}
    assert texts(xml(open311.get("/open311/v2/tokens/t-1.xml").content)[0])["service_request_id"] == ""


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_an_unknown_token_is_404(open311: TestClient, fmt: str) -> None:
    r = open311.get(f"/open311/v2/tokens/nope.{fmt}")
    assert (r.status_code, errors(r, fmt)) == (404, [(404, "token 'nope' not found")])


@pytest.mark.parametrize("path", ["/open311/v2/services.html", "/open311/v2/services/1101",
                                  "/open311/v2/requests/20250303-000123.yaml", "/open311/v2/discovery.csv"])
def test_an_unknown_format_is_404_in_xml(open311: TestClient, path: str) -> None:
    r = open311.get(path)
    assert r.status_code == 404
    assert errors(r, "xml")[0][0] == 404


@pytest.mark.parametrize("path", ["/open311/v2/services.json", "/open311/v2/services/1101.json",
                                  "/open311/v2/requests.json", "/open311/v2/requests/20250303-000123.json",
                                  "/open311/v2/tokens/t-1.json"])
def test_another_jurisdiction_is_404(open311: TestClient, path: str) -> None:
    r = open311.get(path, params={"jurisdiction_id": "elsewhere.example"})
    assert r.status_code == 404
    assert errors(r, "json") == [(404, "jurisdiction_id 'elsewhere.example' is not served here")]
    assert open311.get(path, params={"jurisdiction_id": "city.example.cn"}).status_code == 200


def test_posting_for_another_jurisdiction_is_404(open311: TestClient, backend: Backend) -> None:
    r = post(open311, {**GOOD, "jurisdiction_id": "elsewhere.example"})
    assert r.status_code == 404 and backend.submitted == []


def test_no_answer_ever_carries_the_citizens_data(open311: TestClient) -> None:
    post(open311, GOOD)
    answers = b"".join(open311.get(p).content for p in (
        "/open311/v2/requests.json", "/open311/v2/requests.xml", "/open311/v2/requests/20250303-000123.xml",
        "/open311/v2/tokens/t-2.json"))
    for private in ("13800001234", "zhang@example.cn", "first_name", "last_name", "phone", "email"):
        assert private.encode() not in answers


def test_answers_are_utf8_with_the_xml_declaration(open311: TestClient) -> None:
    r = open311.get("/open311/v2/services.xml")
    assert r.headers["content-type"] == "text/xml; charset=utf-8"
    assert r.content.startswith(b'<?xml version="1.0" encoding="utf-8"?><services>')
    assert "施工噪音".encode() in r.content
