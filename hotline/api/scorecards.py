"""REST: scorecards."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from hotline import scorecards, views
from hotline.api.deps import OVERSIGHT, XLSX, IdPath, ServicesDep, SessionDep, UserDep, require
from hotline.api.supervision import _scope_unit
from hotline.auth import Actor
from hotline.errors import Invalid, NotFound
from hotline.fields import Day
from hotline.models import (
    Unit,
)
from hotline.services import Services
from routing.scorecards import DEFAULT_WEIGHTS, FIGURES, Scorecard

router = APIRouter(prefix="/api")


Weight = Annotated[float | None, Query(ge=0, le=100, description="default: the city's HOTLINE_SCORE_WEIGHTS")]


class ScorecardOut(BaseModel):
    rank: int
    unit_id: int
    unit_name: str
    figures: dict[str, Any]


class ScorecardsOut(BaseModel):
    period_from: date
    period_to: date
    weights: dict[str, float]
    units: list[ScorecardOut]


class TicketFigureOut(BaseModel):
    ticket_id: int
    number: str
    title: str
    outcome: str
    event_id: int | None
    value: Any
    dispatched_at: datetime


class FigureTicketsOut(BaseModel):
    unit_id: int
    figure: str
    label: str
    period_from: date
    period_to: date
    counts: dict[str, int]
    tickets: list[TicketFigureOut]


def _period(services: Services, start: date | None, end: date | None) -> tuple[date, date, datetime, datetime]:
    today = datetime.now(services.timing.zone).date()
    end = end or today
    start = start or end.replace(day=1)
    if start > end:
        raise Invalid("'from' must not be after 'to'", field="from")
    if (end - start) > timedelta(days=366):
        raise Invalid("a scorecard period is at most one year", field="to")
    lo, hi = scorecards.period_bounds(start, end, services.timing.zone)
    return start, end, lo, hi


def _weights(services: Services, w_response: float | None, w_resolution: float | None,
             w_satisfaction: float | None, w_on_time: float | None = None) -> dict[str, float]:
    """The city's weights (HOTLINE_SCORE_WEIGHTS), each replaced by the request's where it names one."""
    given = {"response": w_response, "on_time": w_on_time, "resolution": w_resolution,
             "satisfaction": w_satisfaction}
    return scorecards.request_weights(given, services.settings.score_weights)


FromQuery = Annotated[Day | None, Query(alias="from")]
ToQuery = Annotated[Day | None, Query(alias="to")]


@router.get("/scorecards", response_model=ScorecardsOut, tags=["scorecards"])
def list_scorecards(
    session: SessionDep, services: ServicesDep, actor: UserDep,
    period_from: FromQuery = None, period_to: ToQuery = None,
    w_response: Weight = None, w_resolution: Weight = None, w_satisfaction: Weight = None,
    w_on_time: Weight = None,
) -> ScorecardsOut:
    """Ranking of units dispatched to in the period (days inclusive; default: this month), best score first."""
    require(actor, *OVERSIGHT)
    start, end, lo, hi = _period(services, period_from, period_to)
    weights = _weights(services, w_response, w_resolution, w_satisfaction, w_on_time)
    cards, _ = scorecards.compute_scorecards(session, services.timing.calendar, lo, hi, datetime.now(UTC),
                                             weights=weights)
    return ScorecardsOut(
        period_from=start, period_to=end, weights=weights,
        units=[ScorecardOut(rank=i, unit_id=c.unit_id, unit_name=c.unit_name, figures=c.figures())
               for i, c in enumerate(cards, start=1)],
    )


@router.get("/scorecards.xlsx", tags=["scorecards"], response_class=Response)
def export_scorecards(
    session: SessionDep, services: ServicesDep, actor: UserDep,
    period_from: FromQuery = None, period_to: ToQuery = None,
    w_response: Weight = None, w_resolution: Weight = None, w_satisfaction: Weight = None,
    w_on_time: Weight = None,
) -> Response:
    """The ranking and one line per ticket and unit behind it, with Chinese headers."""
    require(actor, *OVERSIGHT)
    start, end, lo, hi = _period(services, period_from, period_to)
    cards, info = scorecards.compute_scorecards(
        session, services.timing.calendar, lo, hi, datetime.now(UTC),
        weights=_weights(services, w_response, w_resolution, w_satisfaction, w_on_time),
    )
    info = {tid: (number, views.shown_text(title, actor)) for tid, (number, title) in info.items()}
    data = scorecards.scorecards_xlsx(cards, info, start, end, services.timing.zone)
    name = f"scorecards_{start.isoformat()}_{end.isoformat()}.xlsx"
    return Response(data, media_type=XLSX, headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _unit_card(session: Session, services: Services, actor: Actor, unit_id: int, start: date | None,
               end: date | None, weights: dict[str, float] | None = None
               ) -> tuple[date, date, Scorecard, dict[int, tuple[str, str]]]:
    _scope_unit(actor, unit_id)
    if session.get(Unit, unit_id) is None:
        raise NotFound(f"unit {unit_id} not found")
    d0, d1, lo, hi = _period(services, start, end)
    cards, info = scorecards.compute_scorecards(
        session, services.timing.calendar, lo, hi, datetime.now(UTC), unit_ids=[unit_id],
        weights=weights or DEFAULT_WEIGHTS,
    )
    return d0, d1, cards[0], info


@router.get("/scorecards/{unit_id}", response_model=ScorecardsOut, tags=["scorecards"])
def unit_scorecard(
    unit_id: IdPath, session: SessionDep, services: ServicesDep, actor: UserDep,
    period_from: FromQuery = None, period_to: ToQuery = None,
    w_response: Weight = None, w_resolution: Weight = None, w_satisfaction: Weight = None,
    w_on_time: Weight = None,
) -> ScorecardsOut:
    """One unit's figures (a unit handler may read its own)."""
    weights = _weights(services, w_response, w_resolution, w_satisfaction, w_on_time)
    start, end, card, _ = _unit_card(session, services, actor, unit_id, period_from, period_to, weights)
    return ScorecardsOut(period_from=start, period_to=end, weights=weights, units=[
        ScorecardOut(rank=0, unit_id=card.unit_id, unit_name=card.unit_name, figures=card.figures())])


@router.get("/scorecards/{unit_id}/tickets", response_model=FigureTicketsOut, tags=["scorecards"])
def figure_tickets(
    unit_id: IdPath, session: SessionDep, services: ServicesDep, actor: UserDep,
    figure: Literal["dispatched", "response_rate", "on_time_rate", "overdue", "resolution_rate",
                    "satisfaction_rate", "send_backs", "send_backs_refused", "handling_time", "score"],
    period_from: FromQuery = None, period_to: ToQuery = None,
    outcome: Literal["met", "missed", "pending", "na"] | None = None,
    w_response: Weight = None, w_resolution: Weight = None, w_satisfaction: Weight = None,
    w_on_time: Weight = None,
) -> FigureTicketsOut:
    """The tickets behind one figure, each with its outcome and the event that decided it.

    For a rate, ``met`` tickets are the numerator, ``met`` + ``missed`` the denominator, ``pending`` not yet
    decided; for a count (overdue, send-backs) the ``met`` tickets are the ones counted. For ``score`` each
    ticket's value is its part of the composite (points earned and possible, per rate; they add up to the
    score): ``met`` earned every point it could, ``missed`` lost some, ``pending`` counts for nothing yet.
    """
    weights = _weights(services, w_response, w_resolution, w_satisfaction, w_on_time)
    start, end, card, info = _unit_card(session, services, actor, unit_id, period_from, period_to, weights)
    rows: list[TicketFigureOut] = []
    counts: dict[str, int] = {}
    parts = card.contributions() if figure == "score" else []
    for i, a in enumerate(card.assignments):
        event_id: int | None
        if figure == "score":
            part = parts[i]
            possible = part["possible"] or 0.0
            value: Any = part
            result = "pending" if possible == 0 else ("met" if part["earned"] == possible else "missed")
            event_id = a.reply_event_id or a.dispatch_event_id
        else:
            result, event_id, value = a.outcome(figure)
        counts[result] = counts.get(result, 0) + 1
        if outcome is not None and result != outcome:
            continue
        if outcome is None and result == "na" and figure in ("overdue", "send_backs", "send_backs_refused",
                                                              "handling_time"):
            continue  # counts list only what they count
        number, title = info.get(a.ticket_id, (str(a.ticket_id), ""))
        rows.append(TicketFigureOut(ticket_id=a.ticket_id, number=number, title=views.shown_text(title, actor),
                                    outcome=result,
                                    event_id=event_id, value=value, dispatched_at=a.dispatched_at))
    return FigureTicketsOut(unit_id=unit_id, figure=figure, label=FIGURES[figure], period_from=start,
                            period_to=end, counts=counts, tickets=rows)
