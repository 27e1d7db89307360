"""Desk REST: hot spots."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel
from sqlalchemy import select

from hotline import views
from hotline.api.deps import SessionDep, UserDep, require
from hotline.hotspots import HOTSPOT_CHUNK, HOTSPOT_HOLD, HotSpotIndex
from hotline.models import (
    Role,
    Ticket,
)
from hotline.states import IN_PROGRESS_STATES

router = APIRouter(prefix="/api/desk", tags=["desk"])

HOTSPOT_ROLES = (Role.agent, Role.dispatcher, Role.supervisor, Role.admin)


class HotSpotTicket(BaseModel):
    id: int
    number: str
    title: str
    status: str
    received_at: datetime


class HotSpotOut(BaseModel):
    key: str  # the cluster's first ticket id: stable while a burst grows, for the page's open/closed state
    area_id: int | None
    area_name: str | None
    area_path: list[str]  # names from the city down to the cluster's area
    size: int
    open_count: int  # members still being handled (not answered, merged, transferred, replied or closed)
    first_at: datetime
    last_at: datetime
    top_terms: list[str]
    ticket_ids: list[int]  # oldest first
    sample_titles: list[str]  # up to three distinct titles, newest first
    tickets: list[HotSpotTicket]  # newest first, at most 100


class HotSpotsOut(BaseModel):
    server_time: datetime
    hours: float
    min_size: int
    min_score: float
    scanned: int  # tickets received in the window with a known area
    clusters: list[HotSpotOut]


@router.get("/hotspots", response_model=HotSpotsOut)
def hotspots(
    request: Request,
    session: SessionDep,
    actor: UserDep,
    hours: Annotated[float, Query(gt=0, le=HOTSPOT_HOLD.total_seconds() / 3600)] = 2,
    min_size: Annotated[int, Query(ge=2, le=100)] = 3,
    min_score: Annotated[float, Query(ge=0.05, le=1)] = 0.2,
) -> HotSpotsOut:
    """热点/突发聚集: at least ``min_size`` similar requests in one area received within the last ``hours``.

    Similar = the duplicate index's cosine ≥ ``min_score``; one area = one branch of the area hierarchy (a
    report naming only the district joins a street's cluster, two streets never share one). Front desk and
    supervisors (units get 403: clusters span every unit's tickets). Biggest clusters first.
    """
    require(actor, *HOTSPOT_ROLES)
    now = datetime.now(UTC)
    cache = HotSpotIndex.of(request.app)
    spots, scanned = cache.spots(session, now, timedelta(hours=hours), min_size, min_score)
    members = [t for spot in spots for t in spot.ticket_ids if isinstance(t, int)]
    info: dict[int, HotSpotTicket] = {}
    for i in range(0, len(members), HOTSPOT_CHUNK):
        for r in session.execute(
            select(Ticket.id, Ticket.number, Ticket.title, Ticket.text, Ticket.status, Ticket.received_at)
            .where(Ticket.id.in_(members[i:i + HOTSPOT_CHUNK]))
        ):
            info[r.id] = HotSpotTicket(id=r.id, number=r.number, status=r.status,
                                       title=views.shown_text(r.title, actor) or views.shown_text(r.text, actor)[:30],
                                       received_at=r.received_at)
    clusters = []
    for spot in spots:
        tickets = [info[t] for t in spot.ticket_ids if isinstance(t, int) and t in info]
        if len(tickets) < min_size:
            continue  # deleted meanwhile
        newest = sorted(tickets, key=lambda t: (t.received_at, t.id), reverse=True)
        titles: list[str] = []
        for t in newest:
            if t.title not in titles:
                titles.append(t.title)
            if len(titles) == 3:
                break
        area_id = cache.by_code.get(spot.place_code) if spot.place_code else None
        path = cache.area_path(area_id)
        clusters.append(HotSpotOut(
            key=str(tickets[0].id), area_id=area_id, area_name=path[-1] if path else None, area_path=path,
            size=len(tickets), open_count=sum(1 for t in tickets if t.status in IN_PROGRESS_STATES),
            first_at=spot.first_at, last_at=spot.last_at, top_terms=spot.top_terms,
            ticket_ids=[t.id for t in tickets], sample_titles=titles, tickets=newest[:100],
        ))
    return HotSpotsOut(server_time=now, hours=hours, min_size=min_size, min_score=min_score, scanned=scanned,
                       clusters=clusters)
