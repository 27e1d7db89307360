"""Unit scorecards (考核): the three rates and what counts against a unit, explainable down to each ticket.

Everything is computed from the ticket histories (events are the truth), never from counters. The unit of
account is an *assignment* (a round): every dispatch (派单) of a ticket to a unit inside the period, up to the next
dispatch of the ticket (to anyone). A ticket reopened (重办) and dispatched to the same unit again is two rounds and
counts twice: the first round keeps its unsatisfied callback (the reason for the reopen), the second is judged on
its own reply and callback — counting only the first would hide the re-work, counting only the last would hide the
failure. For every assignment each figure has an outcome (met, missed, pending, or not applicable) and the event
that decided it, so every number on the page drills down to its tickets (a ticket of two rounds shows twice, each
with its own dispatch time):

- 响应率 response rate: signed (签收) in time — the ``sign`` event's ``data.on_time``. A send-back (退单) before the
  sign-for deadline also counts as a response in time (the unit looked at it and said why it is not theirs). Not
  signed and past the deadline: missed; not yet due: pending (left out of the rate).
- 按时办结率 on-time rate: the first ``reply`` event's ``data.on_time``; no reply and past the (possibly extended)
  reply deadline: missed, and counted in 超期件数 (overdue); sent back and re-dispatched elsewhere: not applicable.
- 解决率 resolution rate and 满意率 satisfaction rate: the last callback (回访) of the assignment that reached the
  citizen: ``solved`` and ``satisfaction`` in (satisfied, basically_satisfied). No callback yet: pending. Closed
  after failed callback attempts (``close`` with ``unreachable``, 回访未接通): not applicable — an unreachable
  citizen is neither solved nor unsolved.
- 退单 send-backs: ``return`` events of the assignment; 无理退单 those refused (``refuse_return``).
- 办理时长 handling time: working hours (city calendar) from the dispatch to the first reply; mean and 90th
  percentile (nearest rank).
- 综合得分 composite: 100 × weighted mean of four rates — response, on time, resolution, satisfaction (the city's
  weights, setting ``HOTLINE_SCORE_WEIGHTS``, default 10 % response, 30 % on time, 30 % resolution, 30 %
  satisfaction; a request may override them, ``request_weights``). Timeliness is what a unit is judged on first:
  without a decided on-time outcome (no ticket replied to nor overdue yet) the unit has no score ("no data"), so
  a unit that only signed for or sent back its tickets cannot rank first with 100. Another rate without data
  (callbacks still pending) is left out and the weights renormalised (``weights_used`` says so).
- the composite per ticket (``Scorecard.contributions``): each decided outcome is worth ``100 × weight ÷ decided
  tickets of that rate``; what a unit's tickets earned adds up to its score exactly, and what a missed one cost is
  the points it did not earn (the 综合得分 drill-down and the Excel detail sheet show both).
- ranking: best score first; a score of 0.0 is a result and ranks above a unit without a score (None).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from routing.calendar import WorkCalendar

__all__ = [
    "DEFAULT_WEIGHTS",
    "FIGURES",
    "Assignment",
    "Scorecard",
    "assess",
    "assess_rounds",
    "composite_score",
    "percentile",
    "rank_key",
]

Outcome = Literal["met", "missed", "pending", "na"]
SCORE_RATES = ("response", "on_time", "resolution", "satisfaction")
#: without data for this rate there is no composite at all (see the module docstring)
REQUIRED_RATE = "on_time"
DEFAULT_WEIGHTS: Mapping[str, float] = {"response": 0.10, "on_time": 0.30, "resolution": 0.30, "satisfaction": 0.30}


def check_score_weights(weights: Mapping[str, float]) -> dict[str, float]:
    """Weights of the composite score: known rates only, finite, non-negative, not all zero (else ValueError)."""
    unknown = sorted(set(weights) - set(SCORE_RATES))
    if unknown:
        raise ValueError(f"unknown rate(s) {unknown}; the weighted rates are {', '.join(SCORE_RATES)}")
    if any(not math.isfinite(w) or w < 0 for w in weights.values()):
        raise ValueError("score weights must be finite and non-negative")
    if sum(weights.values()) <= 0:
        raise ValueError("at least one score weight must be positive")
    return {rate: float(weights.get(rate, 0.0)) for rate in SCORE_RATES}
SATISFIED = frozenset({"satisfied", "basically_satisfied"})
EVENT_TYPES = ("dispatch", "sign", "return", "refuse_return", "reply", "callback", "decide_extension", "provide_info",
               "close")
#: drill-down figure -> Chinese label
FIGURES: dict[str, str] = {
    "dispatched": "派单量",
    "response_rate": "响应率",
    "on_time_rate": "按时办结率",
    "overdue": "超期件数",
    "resolution_rate": "解决率",
    "satisfaction_rate": "满意率",
    "send_backs": "退单次数",
    "send_backs_refused": "无理退单（被驳回）",
    "handling_time": "办理时长",
    "score": "综合得分",
}
CHUNK = 5000  # ticket ids per IN (...) query


# --- pure computations ---------------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in [0, 100]); None for no values. The 90th of 10 values is the 9th smallest."""
    if not 0 <= q <= 100:
        raise ValueError("q must be within [0, 100]")
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def composite_score(
    rates: Mapping[str, float | None], weights: Mapping[str, float] = DEFAULT_WEIGHTS
) -> tuple[float | None, dict[str, float]]:
    """100 × weighted mean of the available rates, and the weights actually used (renormalised to sum 1).

    No on-time rate, no score: (None, {}).
    """
    if any(w < 0 or not math.isfinite(w) for w in weights.values()):
        raise ValueError("weights must be finite and non-negative")
    if rates.get(REQUIRED_RATE) is None:
        return None, {}
    used = {k: w for k, w in weights.items() if w > 0 and rates.get(k) is not None}
    total = sum(used.values())
    if total <= 0:
        return None, {}
    share = {k: w / total for k, w in used.items()}
    score = 100 * sum(share[k] * float(rates[k] or 0.0) for k in share)
    return round(score, 2), {k: round(v, 4) for k, v in share.items()}




def rate(met: int, missed: int) -> float | None:
    return None if met + missed == 0 else met / (met + missed)


@dataclass(frozen=True)
class EventRow:
    id: int
    type: str
    unit_id: int | None
    data: Mapping[str, Any]
    created_at: datetime


@dataclass
class Assignment:
    """One ticket × unit in the period, with each figure's outcome and the deciding event (for the drill-down)."""

    ticket_id: int
    unit_id: int
    dispatch_event_id: int
    dispatched_at: datetime
    response: Outcome = "pending"
    response_event_id: int | None = None
    on_time: Outcome = "pending"
    reply_event_id: int | None = None
    handling_hours: float | None = None
    resolution: Outcome = "pending"
    satisfaction: Outcome = "pending"
    satisfaction_value: str | None = None
    callback_event_id: int | None = None
    send_backs: list[int] = field(default_factory=list)  # event ids
    send_backs_refused: list[int] = field(default_factory=list)

    def outcome(self, figure: str) -> tuple[Outcome, int | None, Any]:
        """(outcome, deciding event id, value) of one drill-down figure."""
        if figure == "dispatched":
            return "met", self.dispatch_event_id, self.dispatched_at.isoformat()
        if figure == "response_rate":
            return self.response, self.response_event_id, None
        if figure == "on_time_rate":
            return self.on_time, self.reply_event_id, None
        if figure == "overdue":
            return ("met" if self.on_time == "missed" else "na"), self.reply_event_id, None
        if figure == "resolution_rate":
            return self.resolution, self.callback_event_id, None
        if figure == "satisfaction_rate":
            return self.satisfaction, self.callback_event_id, self.satisfaction_value
        if figure == "send_backs":
            return ("met" if self.send_backs else "na"), next(iter(self.send_backs), None), len(self.send_backs)
        if figure == "send_backs_refused":
            refused = self.send_backs_refused
            return ("met" if refused else "na"), next(iter(refused), None), len(refused)
        if figure == "handling_time":
            return ("met" if self.handling_hours is not None else "na"), self.reply_event_id, self.handling_hours
        if figure == "score":
            raise ValueError("a ticket's part of the score needs its scorecard: Scorecard.contributions()")
        raise ValueError(f"unknown figure {figure!r}; one of {', '.join(FIGURES)}")


def _at(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


def assess_rounds(
    events: Sequence[EventRow], unit_id: int, start: datetime, end: datetime, now: datetime, calendar: WorkCalendar
) -> list[Assignment]:
    """Every round of one ticket (its events, in id order) dispatched to ``unit_id`` in ``[start, end)``."""
    return [
        _assess_round(events, i, unit_id, now, calendar)
        for i, e in enumerate(events)
        if e.type == "dispatch" and e.data.get("unit_id") == unit_id and start <= e.created_at < end
    ]


def assess(
    events: Sequence[EventRow], unit_id: int, start: datetime, end: datetime, now: datetime, calendar: WorkCalendar
) -> Assignment | None:
    """The first assignment of one ticket to ``unit_id`` dispatched in ``[start, end)``, or None."""
    rounds = assess_rounds(events, unit_id, start, end, now, calendar)
    return rounds[0] if rounds else None


def _assess_round(
    events: Sequence[EventRow], first: int, unit_id: int, now: datetime, calendar: WorkCalendar
) -> Assignment:
    dispatch = events[first]
    a = Assignment(ticket_id=0, unit_id=unit_id, dispatch_event_id=dispatch.id, dispatched_at=dispatch.created_at)
    sign_due = _at(dispatch.data.get("sign_due"))
    reply_due = _at(dispatch.data.get("reply_due"))
    ended = False
    unreachable = False
    for e in events[first + 1:]:
        if e.type == "dispatch":
            ended = True
            break
        if e.type == "sign" and a.response_event_id is None:
            a.response = "met" if e.data.get("on_time", True) else "missed"
            a.response_event_id = e.id
        elif e.type == "return":
            a.send_backs.append(e.id)
            if a.response_event_id is None:
                in_time = sign_due is None or e.created_at <= sign_due
                a.response, a.response_event_id = ("met" if in_time else "missed"), e.id
        elif e.type == "refuse_return":
            a.send_backs_refused.append(e.id)
        elif e.type in ("decide_extension", "provide_info") and a.reply_event_id is None:
            reply_due = _at(e.data.get("reply_due")) or reply_due
        elif e.type == "reply" and a.reply_event_id is None:
            a.on_time = "met" if e.data.get("on_time", True) else "missed"
            a.reply_event_id = e.id
            hours = calendar.working_time_between(a.dispatched_at, e.created_at).total_seconds() / 3600
            a.handling_hours = round(max(hours, 0.0), 2)
        elif e.type == "callback" and a.reply_event_id is not None and e.data.get("reached", True):
            a.callback_event_id = e.id
            a.resolution = "met" if e.data.get("solved") else "missed"
            a.satisfaction_value = e.data.get("satisfaction")
            a.satisfaction = "met" if a.satisfaction_value in SATISFIED else "missed"
        elif e.type == "close" and e.data.get("unreachable"):
            unreachable = True
    if a.response_event_id is None:
        a.response = "missed" if ended or (sign_due is not None and now > sign_due) else "pending"
    if a.reply_event_id is None:
        if reply_due is not None and now > reply_due and not (ended and a.send_backs):
            a.on_time = "missed"
        elif ended:
            a.on_time = "na"
    if a.callback_event_id is None:
        a.resolution = a.satisfaction = "na" if ended or unreachable else "pending"
    return a


@dataclass
class Scorecard:
    unit_id: int
    unit_name: str
    assignments: list[Assignment]
    weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))

    def _count(self, attr: str, outcome: str) -> int:
        return sum(1 for a in self.assignments if getattr(a, attr) == outcome)

    def rates(self) -> dict[str, float | None]:
        c = self._count
        return {r: rate(c(r, "met"), c(r, "missed")) for r in SCORE_RATES}

    def contributions(self) -> list[dict[str, Any]]:
        """Per assignment (in order): the points it earned and could have earned towards the composite, per rate.

        A decided outcome of rate r is worth ``100 × share_r ÷ decided_r`` (share: the weight actually used); the
        earned points of all assignments add up to the score. Pending and not-applicable outcomes are worth 0.
        """
        score, used = composite_score(self.rates(), self.weights)
        decided = {r: self._count(r, "met") + self._count(r, "missed") for r in SCORE_RATES}
        out = []
        for a in self.assignments:
            parts: dict[str, dict[str, Any]] = {}
            for r, share in used.items():
                outcome = getattr(a, r)
                worth = 100 * share / decided[r] if decided[r] and outcome in ("met", "missed") else 0.0
                parts[r] = {"outcome": outcome, "earned": round(worth if outcome == "met" else 0.0, 2),
                            "possible": round(worth, 2)}
            out.append({
                "earned": round(sum(p["earned"] for p in parts.values()), 2) if score is not None else None,
                "possible": round(sum(p["possible"] for p in parts.values()), 2) if score is not None else None,
                "rates": parts,
            })
        return out

    def figures(self) -> dict[str, Any]:
        c = self._count
        hours = [a.handling_hours for a in self.assignments if a.handling_hours is not None]
        rates = self.rates()
        score, used = composite_score(rates, self.weights)
        return {
            "dispatched": len(self.assignments),
            "response_rate": _round(rates["response"]),
            "response": {"met": c("response", "met"), "missed": c("response", "missed"),
                         "pending": c("response", "pending")},
            "on_time_rate": _round(rates["on_time"]),
            "on_time": {"met": c("on_time", "met"), "missed": c("on_time", "missed"),
                        "pending": c("on_time", "pending")},
            "overdue": c("on_time", "missed"),
            "resolution_rate": _round(rates["resolution"]),
            "satisfaction_rate": _round(rates["satisfaction"]),
            "callbacks": c("resolution", "met") + c("resolution", "missed"),
            "send_backs": sum(len(a.send_backs) for a in self.assignments),
            "send_backs_refused": sum(len(a.send_backs_refused) for a in self.assignments),
            "handling_hours_avg": round(sum(hours) / len(hours), 2) if hours else None,
            "handling_hours_p90": percentile(hours, 90),
            "score": score,
            "weights_used": used,
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def rank_key(score: float | None, unit_id: int) -> tuple[bool, float, int]:
    """Best score first, a score of 0.0 before no score at all, then by unit id."""
    return (score is None, -(score or 0.0), unit_id)
