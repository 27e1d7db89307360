"""Fixtures: the core suite runs on SQLite and on the real PostgreSQL, each test on a clean schema."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.orm import Session

from hotline import auth
from hotline.app import create_app
from hotline.db import Base, make_engine, make_sessionmaker
from hotline.events import LocalBus
from hotline.migrate import upgrade
from hotline.models import Area, CatalogueRule, Category, Role, Unit, User
from hotline.services import Services
from hotline.settings import Settings
from hotline.suggestion import NullSuggester
from hotline.timing import Timing
from routing.calendar import WorkCalendar
from tests import infra

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("db") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_url() -> str:
    url = infra.fresh_postgres_database()
    upgrade(url)
    return url


def _truncate_postgres(url: str) -> None:
    engine = make_engine(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database of each kind."""
    if request.param == "sqlite":
        path = tmp_path / "hotline.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("postgres_url")
    _truncate_postgres(url)
    return url


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> Settings:
    return Settings(demo=True, database_url=db_url, redis_url=None, model_dir=tmp_path / "no-model",
                    embedded_worker=False)


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    engine = make_engine(settings.database_url)
    bus = LocalBus()
    sessions = make_sessionmaker(engine, bus.publish)
    svc = Services(settings=settings, engine=engine, sessions=sessions, bus=bus,
                   timing=Timing(WorkCalendar(tz=settings.city_timezone)), suggester=NullSuggester())
    yield svc
    engine.dispose()


@pytest.fixture
def session(services: Services) -> Iterator[Session]:
    with services.sessions() as s:
        yield s


@lru_cache
def _password_hash(password: str) -> str:
    """Argon2 is slow on purpose; hash each test password once per run."""
    return auth.hash_password(password)


@dataclass
class City:
    """A small city for the tests: two districts, three units, a few categories, one user per role."""

    ids: dict[str, int]
    tokens: dict[str, str]

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


@pytest.fixture
def city(services: Services) -> City:
    ids: dict[str, int] = {}
    with services.sessions() as s:
        mh = Area(code="mh", name="明湖市", level="city", aliases=["明湖"])
        s.add(mh)
        s.flush()
        dh = Area(code="mh-dh", name="东湖区", level="district", parent_id=mh.id, aliases=["东湖"])
        xs = Area(code="mh-xs", name="西山区", level="district", parent_id=mh.id, aliases=[])
        s.add_all([dh, xs])
        s.flush()
        cj = Area(code="mh-dh-cj", name="澄江街道", level="street", parent_id=dh.id, aliases=["澄江"])
        s.add(cj)
        s.flush()
        units = {
            "cgj": Unit(code="mh-cgj", name="明湖市城市管理局", short_name="市城管局", kind="bureau", area_id=mh.id),
            "zjj": Unit(code="mh-zjj", name="明湖市住房和城乡建设局", short_name="市住建局", kind="bureau",
                        area_id=mh.id),
            "cjjd": Unit(code="mh-dh-cj", name="澄江街道办事处", kind="street_office", area_id=cj.id),
        }
        s.add_all(units.values())
        cats = {
            "chengjian": Category(code="01", name="城乡建设", level=1),
            "chengguan": Category(code="15", name="城市管理", level=1),
        }
        s.add_all(cats.values())
        s.flush()
        cats["zhandao"] = Category(code="1501", name="占道经营", level=2, parent_id=cats["chengguan"].id)
        s.add(cats["zhandao"])
        s.flush()
        s.add_all([
            CatalogueRule(category_id=cats["chengguan"].id, area_id=mh.id, lead_unit_id=units["cgj"].id, note=""),
            CatalogueRule(category_id=cats["zhandao"].id, area_id=cj.id, lead_unit_id=units["cjjd"].id,
                          co_unit_ids=[units["cgj"].id], note=""),
            CatalogueRule(category_id=cats["chengjian"].id, area_id=mh.id, lead_unit_id=units["zjj"].id, note=""),
        ])
        users = {
            "agent": User(username="agent", display_name="话务员小王", role=Role.agent),
            "agent2": User(username="agent2", display_name="话务员小李", role=Role.agent),
            "dispatcher": User(username="dispatcher", display_name="派单员", role=Role.dispatcher),
            "supervisor": User(username="supervisor", display_name="督办员", role=Role.supervisor),
            "admin": User(username="admin", display_name="管理员", role=Role.admin),
            "cgj": User(username="cgj", display_name="城管局经办人", role=Role.unit_handler, unit_id=units["cgj"].id),
            "zjj": User(username="zjj", display_name="住建局经办人", role=Role.unit_handler, unit_id=units["zjj"].id),
            "cjjd": User(username="cjjd", display_name="澄江街道经办人", role=Role.unit_handler,
                         unit_id=units["cjjd"].id),
        }
        for u in users.values():
            u.password_hash = _password_hash(u.username + "123")
        s.add_all(users.values())
        s.commit()
        for k, v in {"mh": mh, "dh": dh, "xs": xs, "cj": cj}.items():
            ids[f"area:{k}"] = v.id
        for k, unit in units.items():
            ids[f"unit:{k}"] = unit.id
        for k, cat in cats.items():
            ids[f"cat:{k}"] = cat.id
        for k, user in users.items():
            ids[f"user:{k}"] = user.id
        tokens = {k: auth.issue_token(services.settings, u)[0] for k, u in users.items()}
    return City(ids=ids, tokens=tokens)


def actor(services: Services, city: City, who: str) -> auth.Actor:
    """The workflow's actor for one of the city's users (for tests that call the domain directly)."""
    with services.sessions() as s:
        user = s.get(User, city.ids[f"user:{who}"])
        assert user is not None
        return auth.actor_for(user)


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    app = create_app(services.settings, services)
    with TestClient(app) as c:
        yield c


DEFAULT_TEXT = "澄江街道建设路有人占道经营，摊位堵住了人行道"


def submit(client: TestClient, city: City, text: str = DEFAULT_TEXT, **extra: Any) -> dict[str, Any]:
    body = {"channel": "phone", "text": text, **extra}
    response = client.post("/api/intake", json=body, headers=city.headers("agent"))
    assert response.status_code in (200, 201), response.text
    result: dict[str, Any] = response.json()
    return result


def act(client: TestClient, city: City, who: str, ticket_id: int, action: str, **body: Any) -> Any:
    return client.post(f"/api/tickets/{ticket_id}/actions/{action}", json=body, headers=city.headers(who))
