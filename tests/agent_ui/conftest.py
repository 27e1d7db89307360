"""Fixtures for the desk: a live uvicorn server on a free port (for the browser), a suggester that fills the
ticket's ``analysis`` like the real one does, and small helpers for WebSocket tests."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import select
from sqlalchemy.orm import Session

from hotline.app import create_app
from hotline.models import KnowledgeArticle, Status, Ticket
from hotline.nlp_commands import train_starter
from hotline.services import Services
from hotline.suggester import CitySuggester
from hotline.suggestion import CategorySuggestion, Suggestion
from nlp.classifier import Model
from tests.conftest import City

REPO = Path(__file__).resolve().parents[2]
SEED = REPO / "nlp" / "data" / "seed_corpus.jsonl"
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One chromium per browser test module. Not per session: Playwright's sync API keeps an event loop running in
    the main thread while it is open, and tests elsewhere that call ``asyncio.run`` would fail after it."""
    if not Path(CHROMIUM).exists():
        message = f"{CHROMIUM} is not installed (apt-get install chromium)"
        if IN_CI:
            pytest.fail(f"CI requires {message}", pytrace=False)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def starter_model() -> Model:
    """The starter model trained from the seed corpus once per run (a minute or more on a loaded machine), for the
    browser tests that run the product's own analysis."""
    return train_starter(SEED, ["澄江街道", "东湖区", "西山区", "市城管局", "市住建局"])


class DeskSuggester:
    """Stands in for the city's classifier: a fixed but complete analysis (top-3 categories, place, unit, route
    explanation, duplicates of open tickets, knowledge), so the desk's pre-filled form can be checked."""

    def __init__(self, city: City, article_id: int | None) -> None:
        self.city = city
        self.article_id = article_id

    def prepare(self, messages: object) -> None:
        return None

    def remember(self, ticket_id: int, title: str, text: str, area_code: str | None, at: datetime, *,
                 number: str | None = None) -> None:
        return None

    def forget(self, ticket_id: int) -> None:
        return None

    def suggest(self, session: Session, title: str, text: str, location: str | None, now: datetime) -> Suggestion:
        ids = self.city.ids
        open_ids = session.execute(
            select(Ticket.id, Ticket.number).where(Ticket.status.in_((Status.received, Status.dispatched)))
            .order_by(Ticket.id.desc()).limit(1)
        ).all()
        urgent = "燃气" in text or "煤气" in text
        top = [
            CategorySuggestion(ids["cat:chengguan"], "15", "城市管理", 0.8123),
            CategorySuggestion(ids["cat:chengjian"], "01", "城乡建设", 0.1204),
        ]
        if any(word in text for word in ("噪音", "施工", "开裂", "楼道")):
            top = [CategorySuggestion(ids["cat:chengjian"], "01", "城乡建设", 0.7712),
                   CategorySuggestion(ids["cat:chengguan"], "15", "城市管理", 0.1518)]
        return Suggestion(
            categories=[*top, CategorySuggestion(None, "02", "环境保护", 0.0411)],
            kind="complaint",
            urgent=urgent,
            urgency_reason="燃气泄漏" if urgent else None,
            emergency_line="119" if urgent else None,
            area_id=ids["area:cj"],
            area_code="mh-dh-cj",
            area_name="澄江街道",
            unit_id=ids["unit:cjjd"],
            unit_name="澄江街道办事处",
            co_unit_ids=[ids["unit:cgj"]],
            route_rule_id=None,
            route_explanation="派单目录：城市管理/占道经营 × 澄江街道 → 澄江街道办事处（协办：市城管局）",
            duplicates=[{"ticket_id": r.id, "number": r.number, "score": 0.734} for r in open_ids],
            knowledge=[{"article_id": self.article_id, "score": 3.21}] if self.article_id else [],
        )


def add_article(services: Services) -> int:
    with services.sessions() as s:
        article = KnowledgeArticle(
            title="占道经营的投诉处理流程",
            body="占道经营由所在街道办事处会同城管部门处理，一般在3个工作日内到场核查并答复市民。",
            keywords=["占道经营"],
        )
        s.add(article)
        s.commit()
        return article.id


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    url: str
    services: Services
    server: uvicorn.Server
    thread: threading.Thread

    @property
    def hub(self) -> Any:
        return self.server.config.app.state.desk_hub  # type: ignore[union-attr]


@contextmanager
def serve(services: Services) -> Iterator[LiveServer]:
    """The real app on a free port in a thread (lifespan on: the hub and the bus followers run)."""
    app = create_app(services.settings, services)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", services, server, thread)
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def real_server(services: Services, city: City, starter_model: Model) -> Iterator[LiveServer]:
    """The live server with the product's own analysis: the starter model, the city's gazetteer and catalogue, the
    knowledge index (one article). No stand-in: what a desk shows pre-filled is what the product computes."""
    add_article(services)
    services.suggester = CitySuggester(services.sessions, services.knowledge_search, starter_model)
    # A confident prediction would be dispatched by the system itself; these tests are about the desk's forms.
    services.settings.auto_dispatch = False
    with serve(services) as server:
        yield server


@pytest.fixture
def live_server(services: Services, city: City) -> Iterator[LiveServer]:
    services.suggester = DeskSuggester(city, add_article(services))
    with serve(services) as server:
        yield server
