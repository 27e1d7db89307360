"""The demo city 明湖市: directory, accounts and a month of tickets in every state.

Tickets are not inserted as rows: each demo request goes through the real intake point and is then driven through
the real workflow with back-dated clocks (an agent dispatches, the unit signs and replies, a callback follows…), so
the histories, deadlines and overdue cases are exactly what the system itself would have produced.
Accounts: agent/agent123, dispatcher/dispatcher123, supervisor/supervisor123, admin/admin123, and one handler per
unit named after the unit's code (``hotline users list``); every demo password is the username followed by 123.
"""

from __future__ import annotations

import json
import logging
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from hotline import intake, workflow
from hotline.auth import Actor, actor_for, channel_actor
from hotline.db import transaction
from hotline.errors import DomainError
from hotline.models import (
    Area,
    CatalogueRule,
    Category,
    KnowledgeArticle,
    Role,
    Ticket,
    Unit,
    User,
)
from hotline.services import Services
from hotline.suggester import CitySuggester, load_city_suggester

log = logging.getLogger(__name__)
DATA = Path(__file__).resolve().parent / "demo_data"
# The demo passwords are printed in the README, so slow hashing protects nothing here; cheap parameters keep
# `make run` fast. Verification reads the parameters from the hash, so logins work the same.
_DEMO_HASHER = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)
DEMO_MERGE_SCORE = 0.3  # the demo agent merges a report into an open one this similar (same place, 7 days)
STAFF = [
    ("agent", "话务员 王晓燕", Role.agent),
    ("agent2", "话务员 刘建国", Role.agent),
    ("dispatcher", "派单员 陈静", Role.dispatcher),
    ("supervisor", "督办员 赵志强", Role.supervisor),
    ("admin", "系统管理员", Role.admin),
]


def _load(name: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads((DATA / name).read_text(encoding="utf-8"))
    return data


def seed_demo(services: Services, *, force: bool = False, now: datetime | None = None,
              ticket_limit: int | None = None) -> bool:
    """Seed if the database holds no units (or ``force``). Returns whether anything was seeded."""
    with transaction(services.sessions) as session:
        if not force and session.scalar(select(func.count(Unit.id))):
            return False
        load_directory(session)
        create_accounts(session)
    services.knowledge_changed()
    refresh = getattr(services.suggester, "refresh", None)
    if refresh is not None:
        refresh()
    else:
        services.suggester = load_city_suggester(services.settings.model_dir, services.sessions,
                                                 services.knowledge_search)
    play_tickets(services, now or datetime.now(UTC), limit=ticket_limit)
    return True


def load_directory(session: Session) -> None:
    areas: dict[str, Area] = {}
    for row in _load("areas.json"):  # parents come before children in the file
        area = Area(code=row["code"], name=row["name"], level=row["level"], aliases=row.get("aliases", []),
                    parent_id=areas[row["parent"]].id if row.get("parent") else None)
        session.add(area)
        session.flush()
        areas[area.code] = area
    units: dict[str, Unit] = {}
    pending = _load("units.json")
    while pending:  # parents first, whatever the file order
        progressed = False
        for row in list(pending):
            if row.get("parent") and row["parent"] not in units:
                continue
            unit = Unit(code=row["code"], name=row["name"], short_name=row.get("short_name"), kind=row["kind"],
                        area_id=areas[row["area"]].id if row.get("area") else None, phone=row.get("phone"),
                        parent_id=units[row["parent"]].id if row.get("parent") else None)
            session.add(unit)
            session.flush()
            units[unit.code] = unit
            pending.remove(row)
            progressed = True
        if not progressed:
            raise ValueError(f"units.json: unknown parents for {[r['code'] for r in pending]}")
    categories: dict[str, Category] = {}
    for row in sorted(_load("categories.json"), key=lambda r: len(r["code"])):
        cat = Category(code=row["code"], name=row["name"], level=len(row["code"]) // 2,
                       urgent=bool(row.get("urgent", False)),
                       parent_id=categories[row["parent"]].id if row.get("parent") else None)
        session.add(cat)
        session.flush()
        categories[cat.code] = cat
    for row in _load("catalogue.json"):
        session.add(CatalogueRule(
            category_id=categories[row["category"]].id, area_id=areas[row["area"]].id,
            lead_unit_id=units[row["lead"]].id, co_unit_ids=[units[c].id for c in row.get("co", [])],
            note=row.get("note", ""),
        ))
    for row in _load("knowledge.json"):
        session.add(KnowledgeArticle(
            title=row["title"], body=row["body"], keywords=row.get("keywords", []),
            category_id=categories[row["category"]].id if row.get("category") in categories else None,
        ))
    session.flush()


#: the demo agents' desk phones (``users.phone_device``), so 接听下一个 puts a simulated call through on ``make run``
DEMO_PHONE_DEVICES = {"agent": "sip:8001@pbx.minghu.example", "agent2": "sip:8002@pbx.minghu.example"}


def create_accounts(session: Session) -> None:
    for username, name, role in STAFF:
        session.add(User(username=username, display_name=name, role=role, phone_device=DEMO_PHONE_DEVICES.get(username),
                         password_hash=_DEMO_HASHER.hash(username + "123")))
    for unit in session.scalars(select(Unit).order_by(Unit.code)):
        session.add(User(username=unit.code, display_name=f"{unit.short_name or unit.name}经办人",
                         role=Role.unit_handler, unit_id=unit.id, password_hash=_DEMO_HASHER.hash(unit.code + "123")))
    session.flush()


class _Player:
    """Drives one demo ticket through its life with a back-dated clock, never past ``now``."""

    def __init__(self, services: Services, session: Session, staff: dict[str, Actor], now: datetime,
                 rng: random.Random) -> None:
        self.services, self.session, self.staff, self.now, self.rng = services, session, staff, now, rng

    def act(self, ticket: Ticket, action: str, actor: Actor, at: datetime, **body: Any) -> bool:
        if at > self.now:
            return False
        data = workflow.parse_input(action, body)
        workflow.perform(self.session, ticket.id, action, actor, data, self.services.timing, now=at)
        return True

    def unit_actor(self, unit_id: int) -> Actor:
        user = self.session.scalar(select(User).where(User.unit_id == unit_id, User.role == Role.unit_handler))
        assert user is not None
        return actor_for(user)

    def working(self, start: datetime, hours: float) -> datetime:
        return self.services.timing.calendar.add_working_time(start, timedelta(hours=hours))


def play_tickets(services: Services, now: datetime, *, limit: int | None = None, days: int = 30) -> int:
    """Play the demo requests over the last ``days``; the newest dozen stay in the triage queue."""
    rows = _load("tickets.json")[:limit]
    rng = random.Random(12345)
    times = _timeline(rows, now, days, rng)
    order = sorted(range(len(rows)), key=lambda i: times[i])
    fresh = set(order[-12:])
    with services.sessions() as session:
        staff = {u.username: actor_for(u) for u in session.scalars(select(User).where(User.role != Role.unit_handler))}
        categories = {c.code: c.id for c in session.scalars(select(Category))}
        areas = {a.code: a.id for a in session.scalars(select(Area))}
    leaders = _incident_leaders(rows)
    last_report = {leaders[i]: i for i in order}  # the incident's last report in time (dict keeps the last)
    deferred: dict[int, tuple[int, str, datetime, bool]] = {}  # leader -> its ticket, agent and moment to go on
    tickets: dict[int, int] = {}
    played = 0
    for index in order:
        leader = leaders[index]
        try:
            with transaction(services.sessions) as session:
                player = _Player(services, session, staff, now, rng)
                ticket, agent, t = _receive(player, rows[index], times[index], categories, areas,
                                            external_id=f"demo-{index}")
                tickets[index] = ticket.id
                if leader != index and leader in deferred:
                    # Another report of an incident whose first report is still open: the agent merges it (并案).
                    parent = session.get(Ticket, deferred[leader][0])
                    assert parent is not None
                    player.act(ticket, "merge", agent, t, parent_id=parent.id,
                               note=f"与{parent.number}为同一事件，并案处理")
                elif leader == index and last_report[index] != index:
                    deferred[index] = (ticket.id, agent.username, t, index in fresh)
                else:
                    _live(player, ticket, rows[index], times[index], agent, t, fresh=index in fresh)
                if last_report[leader] == index and leader in deferred and leader != index:
                    ticket_id, agent_name, lt, was_fresh = deferred.pop(leader)
                    first = session.get(Ticket, ticket_id)
                    assert first is not None
                    _live(player, first, rows[leader], times[leader], staff[agent_name], lt, fresh=was_fresh)
            played += 1
        except DomainError as exc:
            log.warning("demo ticket %d skipped: %s", index, exc.message)
    return played


def _incident_leaders(rows: list[dict[str, Any]]) -> list[int]:
    """For each demo request, the first request of its incident: consecutive rows of one place and category in
    the file report the same incident (a water main, a building site), the way bursts reach a real hotline."""
    leaders: list[int] = []
    for i, row in enumerate(rows):
        prev = rows[i - 1] if i else None
        same = (prev is not None and row.get("area") and row.get("area") == prev.get("area")
                and row.get("category") == prev.get("category"))
        leaders.append(leaders[-1] if same else i)
    return leaders


def _timeline(rows: list[dict[str, Any]], now: datetime, days: int, rng: random.Random) -> list[datetime]:
    """Random times over the period, except that consecutive reports of one incident (same place and category,
    adjacent in the file) arrive minutes apart — and the big bursts happened in the last two days, so the
    supervisor sees a live hot spot and agents get merge suggestions."""
    leaders = _incident_leaders(rows)
    times: list[datetime] = []
    for i in range(len(rows)):
        if leaders[i] != i:  # a later report of the same incident
            times.append(min(now - timedelta(minutes=1), times[-1] + timedelta(minutes=rng.randint(8, 90))))
            continue
        burst = i + 1 < len(rows) and leaders[i + 1] == i
        span = 2 * 24 * 60 if burst else days * 24 * 60
        times.append(now - timedelta(minutes=rng.randint(6 * 60 if burst else 5, span)))
    return times


def _receive(p: _Player, row: dict[str, Any], received_at: datetime, categories: dict[str, int],
             areas: dict[str, int], external_id: str) -> tuple[Ticket, Actor, datetime]:
    """Intake through the one intake point, the agent's category correction, and the duplicate index."""
    rng = p.rng
    channel = row.get("channel", "phone")
    agent = p.staff["agent" if rng.random() < 0.6 else "agent2"]
    submitter = agent if channel == "phone" else channel_actor(channel)
    request = intake.IntakeRequest(
        channel=channel, external_id=external_id, title=row.get("title"), text=row["text"],
        citizen=row.get("citizen"), confidential=bool(row.get("confidential")), kind=row.get("kind"),
        received_at=received_at,
    )
    ticket, _ = intake.submit(p.session, request, submitter, suggester=p.services.suggester,
                              timing=p.services.timing, auto_dispatch=False, now=received_at)
    remember = getattr(p.services.suggester, "remember", None)
    t = received_at + timedelta(minutes=rng.randint(2, 12))
    wanted_category = categories.get(row.get("category", ""))
    if wanted_category and ticket.category_id != wanted_category:
        p.act(ticket, "recategorize", agent, t, category_id=wanted_category, note="话务员更正分类")
    if row.get("area") in areas and ticket.area_id is None:
        ticket.area_id = areas[row["area"]]
    if remember is not None:
        area_code = row.get("area")
        remember(ticket.id, ticket.title, ticket.text, area_code, received_at)
    return ticket, agent, t


def _live(p: _Player, ticket: Ticket, row: dict[str, Any], received_at: datetime, agent: Actor, t: datetime,
          *, fresh: bool) -> None:
    """The rest of the ticket's life, as far as the clock has come."""
    rng = p.rng
    age = p.now - received_at
    if row.get("urgent") and ticket.emergency_line and rng.random() < 0.5:
        p.act(ticket, "transfer", agent, t, line=ticket.emergency_line, note="一键转接并三方通话确认")
        return
    duplicates = (ticket.analysis or {}).get("duplicates") or []
    if duplicates and duplicates[0]["score"] >= DEMO_MERGE_SCORE:
        parent = p.session.get(Ticket, duplicates[0]["ticket_id"])
        if parent is not None and parent.status not in ("merged", "closed", "answered", "transferred"):
            p.act(ticket, "merge", agent, t, parent_id=parent.id, note=f"与{parent.number}为同一事件，并案处理")
            return
    if row.get("kind") == "consultation" and rng.random() < 0.6:
        p.act(ticket, "answer", agent, t, note="依据知识库答复：" + (row.get("reply") or "已告知办理流程。"))
        if age > timedelta(days=2):
            p.act(ticket, "close", agent, t + timedelta(hours=rng.randint(1, 20)))
        return
    if fresh:
        return  # still in the agents' triage queue
    suggester = p.services.suggester
    if not isinstance(suggester, CitySuggester):
        return
    choice = suggester.directory.route(ticket.category_id, ticket.area_id)
    if choice.unit_id is None:
        return
    dispatcher = p.staff["dispatcher"] if rng.random() < 0.3 else agent
    if not p.act(ticket, "dispatch", dispatcher, t, unit_id=choice.unit_id, co_unit_ids=choice.co_unit_ids,
                 note=choice.explanation):
        return
    unit = p.unit_actor(choice.unit_id)
    fate = rng.random()
    t = p.working(t, rng.uniform(0.1, 2.5) if fate > 0.05 else 3.0)
    if fate < 0.06:  # sent back as "not our responsibility"; the dispatcher refuses most send-backs
        if p.act(ticket, "return", unit, t, note="经核实该事项不属于本单位职责范围，请改派") and fate < 0.04:
            p.act(ticket, "refuse_return", p.staff["dispatcher"], t + timedelta(hours=2),
                  note="依据派单目录，该事项属地管理，由原单位办理")
        return  # the others wait in the dispatcher's queue for a decision (退单待处理)
    if not p.act(ticket, "sign", unit, t, note="已签收"):
        return
    if fate < 0.10:
        p.act(ticket, "request_info", unit, p.working(t, 1),
              note="请市民一次性补充：具体地址门牌号、发生时间段、现场照片")
        return
    overdue = fate > 0.90
    reply_at = p.working(t, rng.uniform(4, 40) if not overdue else 60)
    if fate < 0.16 and ticket.reply_due is not None and p.working(t, 2) < ticket.reply_due:
        p.act(ticket, "request_extension", unit, p.working(t, 2), working_hours=15,
              note="需协调多个部门现场核查，申请延期两个工作日")
        p.act(ticket, "decide_extension", p.staff["supervisor"], p.working(t, 3), approve=True, note="同意延期")
    if not p.act(ticket, "reply", unit, reply_at, note=row.get("reply") or "您好，您反映的问题已处理完毕。"):
        return
    callback_at = p.working(reply_at, rng.uniform(1, 7))
    roll = rng.random()
    satisfaction = "satisfied" if roll < 0.68 else "basically_satisfied" if roll < 0.86 else "unsatisfied"
    if not p.act(ticket, "callback", agent, callback_at, satisfaction=satisfaction,
                 solved=satisfaction != "unsatisfied", note="电话回访市民"):
        return
    if satisfaction == "unsatisfied":
        if rng.random() < 0.5:
            p.act(ticket, "reopen", p.staff["supervisor"], callback_at + timedelta(hours=3),
                  note="回访不满意，问题未解决，退回重办")
        return
    p.act(ticket, "close", agent, callback_at + timedelta(minutes=rng.randint(5, 90)))
