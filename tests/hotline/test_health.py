"""Liveness and readiness: /healthz never asks a dependency; /readyz names the check that fails, fast."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from alembic import command
from fastapi.testclient import TestClient

from hotline.app import create_app
from hotline.db import make_engine, make_sessionmaker
from hotline.events import LocalBus
from hotline.migrate import alembic_config
from hotline.services import Services
from hotline.suggester import CitySuggester
from nlp.classifier import Model, Record
from tests import infra
from tests.conftest import City
from tests.nlp.conftest import tiny_records


@pytest.fixture(scope="module")
def tiny_model() -> Model:
    return Model.train([Record(**r) for r in tiny_records()], n_jobs=1)


@pytest.fixture
def ready_services(services: Services, city: City, tiny_model: Model) -> Services:
    services.suggester = CitySuggester(services.sessions, services.knowledge_search, tiny_model)
    return services


def _client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services.settings, services)) as client:
        yield client


@pytest.fixture
def ready_client(ready_services: Services) -> Iterator[TestClient]:
    yield from _client(ready_services)


def test_a_ready_process_answers_200_with_every_check(ready_client: TestClient) -> None:
    response = ready_client.get("/readyz")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"database", "migrations", "model"}
    assert all(check["ok"] for check in body["checks"].values())
    assert ready_client.get("/healthz").json() == {"status": "ok"}


def test_without_a_model_the_process_is_alive_but_not_ready(client: TestClient) -> None:
    assert client.get("/healthz").status_code == 200
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["model"]["ok"] is False
    assert body["checks"]["database"]["ok"] is True
    assert "分类模型未加载" in body["detail"]
    assert "model" in body["message"]
    assert response.headers["Retry-After"] == "5"


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_schema_behind_the_code_is_not_ready(ready_services: Services, db_url: str) -> None:
    command.stamp(alembic_config(db_url), "0006")
    for client in _client(ready_services):
        response = client.get("/readyz")
        assert response.status_code == 503
        migrations = response.json()["checks"]["migrations"]
        assert migrations["ok"] is False
        assert "0006" in migrations["detail"] and "hotline migrate" in migrations["detail"]
        assert "数据库结构不是最新版本" in response.json()["detail"]


def _services_on(url: str, template: Services, redis_url: str | None = None) -> Services:
    engine = make_engine(url)
    settings = template.settings.model_copy(update={"database_url": url, "redis_url": redis_url})
    return Services(settings=settings, engine=engine, sessions=make_sessionmaker(engine), bus=LocalBus(),
                    timing=template.timing, suggester=template.suggester)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_stopped_database_server_gives_503_naming_the_database_within_the_timeout(
    ready_services: Services, db_url: str
) -> None:
    stopped = f"postgresql+psycopg://postgres@127.0.0.1:{infra._free_port()}/hotline"
    broken = _services_on(stopped, ready_services)
    for client in _client(broken):
        started = time.monotonic()
        response = client.get("/readyz")
        assert time.monotonic() - started < 3
        assert response.status_code == 503
        body = response.json()
        assert body["checks"]["database"]["ok"] is False
        assert body["message"].startswith("database: database unreachable")
        assert "数据库无法连接" in body["detail"]
        assert client.get("/healthz").status_code == 200  # alive: the orchestrator must not kill it for this


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_redis_is_checked_when_the_deployment_has_it(ready_services: Services, db_url: str) -> None:
    working = _services_on(db_url, ready_services, redis_url=infra.require_redis())
    for client in _client(working):
        response = client.get("/readyz")
        assert response.status_code == 200, response.text
        assert response.json()["checks"]["redis"]["ok"] is True
    stopped = _services_on(db_url, ready_services, redis_url=f"redis://127.0.0.1:{infra._free_port()}/0")
    for client in _client(stopped):
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json()["checks"]["redis"]["ok"] is False
        assert "Redis 无法连接" in response.json()["detail"]
