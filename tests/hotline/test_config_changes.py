"""A configuration change made by any path (API, CLI, another process) reaches every process."""

from __future__ import annotations

import asyncio
from datetime import date

from sqlalchemy import select

from hotline import config_changes
from hotline.db import make_engine, make_sessionmaker
from hotline.models import CalendarOverride, KnowledgeArticle, Unit
from hotline.services import Services, follow_config_changes
from tests.conftest import City


def test_a_committed_change_raises_its_counter_in_the_same_transaction(services: Services, city: City) -> None:
    with services.sessions() as session:
        before = config_changes.versions(session)
        unit = session.scalars(select(Unit)).first()
        assert unit is not None
        unit.phone = "0571-12345678"
        session.commit()
        after = config_changes.versions(session)
    assert after["directory"] == before.get("directory", 0) + 1
    assert after.get("timing", 0) == before.get("timing", 0)


def test_a_rolled_back_change_raises_nothing(services: Services, city: City) -> None:
    with services.sessions() as session:
        before = config_changes.versions(session)
        session.add(KnowledgeArticle(title="临时", body="回滚的条目", keywords=[], active=True))
        session.flush()
        session.rollback()
        assert config_changes.versions(session) == before


def test_a_change_from_another_process_without_a_bus_is_applied_by_polling(services: Services, city: City) -> None:
    """The CLI beside an embedded SQLite server shares no bus with it: the server still reloads within seconds."""
    reloaded: list[str] = []
    services.on_knowledge_changed.append(lambda: reloaded.append("knowledge"))
    other_process = make_sessionmaker(make_engine(services.settings.database_url))  # its own engine, no publisher
    config_changes.track(other_process, "cli")

    async def scenario() -> None:
        follower = asyncio.create_task(follow_config_changes(services, poll_seconds=0.05))
        await asyncio.sleep(0.2)
        with other_process() as session:
            session.add(CalendarOverride(day=date(2026, 12, 24), working=False, note="测试"))
            session.add(KnowledgeArticle(title="社保卡补办", body="携带身份证到社保窗口办理。", keywords=[]))
            session.commit()
        for _ in range(100):
            if reloaded:
                break
            await asyncio.sleep(0.05)
        follower.cancel()

    asyncio.run(scenario())
    assert reloaded == ["knowledge"]
