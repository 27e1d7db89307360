"""A throwaway Open311 backend in memory, behind the real router, reached through a real HTTP client (TestClient)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from channels.open311.georeport import (
    Attribute,
    AttributeValue,
    NewServiceRequest,
    Open311Failure,
    Receipt,
    RequestQuery,
    Service,
    ServiceDefinition,
    ServiceRequest,
    TokenStatus,
)
from channels.open311.routes import Open311Backend, open311_router
from channels.open311.settings import Open311Settings

NOW = datetime(2025, 3, 10, 9, 0, tzinfo=UTC)
KEY = "key-of-the-civic-app-0123456789"
NOISE = Service("1101", "施工噪音", "夜间施工噪音扰民", metadata=True, keywords=("噪音", "工地"), group="环境保护")
LAMP = Service("1201", "路灯故障", "路灯不亮或损坏", group="城乡建设")
DEFINITIONS = {
    "1101": ServiceDefinition("1101", (
        Attribute("TIME", "singlevaluelist", "噪音出现在什么时间？", required=True, order=1,
                  values=(AttributeValue("night", "夜间（22:00-6:00）"), AttributeValue("day", "白天"))),
        Attribute("KIND", "multivaluelist", "噪音来源", order=2,
                  values=(AttributeValue("drill", "打桩"), AttributeValue("truck", "渣土车"))),
        Attribute("FLOORS", "number", "您住在几楼？", order=3, datatype_description="整数"),
        Attribute("NOTE", "string", "请勿填写个人信息", variable=False, order=4),
    )),
    "1201": ServiceDefinition("1201"),
}
PUBLIC = ServiceRequest(
    service_request_id="20250303-000123", status="open", service_code="1101", service_name="施工噪音",
    requested_datetime=datetime(2025, 3, 3, 2, 0, tzinfo=UTC), updated_datetime=datetime(2025, 3, 4, 1, 0, tzinfo=UTC),
    expected_datetime=datetime(2025, 3, 10, 9, 30, tzinfo=UTC), status_notes="已转区城市管理局办理",
    description="幸福路工地夜间施工噪音扰民", agency_responsible="区城市管理局", address="幸福路18号",
    lat=31.23, long=121.47,
)
CLOSED = ServiceRequest(
    service_request_id="20250301-000007", status="closed", service_code="1201", service_name="路灯故障",
    requested_datetime=datetime(2025, 3, 1, 2, 0, tzinfo=UTC), status_notes="路灯已修复",
    agency_responsible="区市政管理处",
)


@dataclass
class Backend:
    """The functions the router is given, recording what it was asked."""

    submitted: list[tuple[str, NewServiceRequest]] = field(default_factory=list)
    queries: list[RequestQuery] = field(default_factory=list)
    tokens: dict[str, TokenStatus] = field(default_factory=lambda: {
        "t-1": TokenStatus("t-1", None), "t-2": TokenStatus("t-2", "20250303-000123")})

    def submit(self, client: str, new: NewServiceRequest) -> Receipt:
        if not new.description and not new.attributes:
            raise Open311Failure(400, "description is required for this city")
        self.submitted.append((client, new))
        return Receipt(token=f"t-{len(self.submitted) + 10}", service_notice="将在1个工作日内受理")

    def find_requests(self, query: RequestQuery) -> list[ServiceRequest]:
        self.queries.append(query)
        everything = [PUBLIC, CLOSED]
        if query.service_request_ids:
            return [r for r in everything if r.service_request_id in query.service_request_ids]
        return [r for r in everything if (not query.statuses or r.status in query.statuses)
                and (not query.service_codes or r.service_code in query.service_codes)]

    def backend(self) -> Open311Backend:
        return Open311Backend(
            list_services=lambda: [NOISE, LAMP],
            service_definition=DEFINITIONS.get,
            submit=self.submit,
            find_requests=self.find_requests,
            find_request={r.service_request_id: r for r in (PUBLIC, CLOSED)}.get,
            find_token=self.tokens.get,
            now=lambda: NOW,
        )


@pytest.fixture
def backend() -> Backend:
    return Backend()


@pytest.fixture
def open311_settings() -> Open311Settings:
    return Open311Settings(demo=False, keys={"civic-app": KEY}, jurisdiction_id="city.example.cn")


@pytest.fixture
def open311(backend: Backend, open311_settings: Open311Settings) -> Iterator[TestClient]:
    app = FastAPI()
    app.include_router(open311_router(backend.backend(), open311_settings))
    with TestClient(app) as client:
        yield client


def xml(body: bytes) -> ET.Element:
    """Our own XML answer parsed (the tests check element names and texts)."""
    assert body.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    return ET.fromstring(body)


def texts(element: ET.Element) -> dict[str, str]:
    return {child.tag: child.text or "" for child in element}
