"""The ticket workflow: the only code that changes a ticket's state.

One table (``ACTIONS``) says, for every action, from which states it is allowed, which state it leads to, and who
may take it. ``perform`` checks the table, the caller's unit and the ticket's version, applies the action and
appends exactly one ``TicketEvent`` in the same transaction. It never commits: the request or job does.

Who may act (decisions written down here because nobody else will):
- agents, dispatchers and supervisors act on any ticket; a unit handler only on tickets whose lead unit (主办) is
  theirs, or, for notes and supervision answers, where they are a co-unit (协办). A ticket of another unit answers
  404, not 403, so a unit cannot probe which ticket numbers exist elsewhere.
- a send-back (退单) is decided by a dispatcher or supervisor: re-dispatch elsewhere (``dispatch``) or refuse it
  (``refuse_return``), which hands the ticket back to the same unit with its deadlines moved on by the time the
  centre took to decide. While the send-back waits, the unit's clock stands still (``paused_at``, as for 待补充):
  the wait is the centre's, so it never makes the unit overdue nor opens a 问责 case against it. The time the
  unit spent before sending it back still counts, and unjustified send-backs have their own rule
  (``refused_returns``).
- an unsatisfied callback can only be closed by a supervisor, with a reason; otherwise a supervisor reopens it.
- 转警 (``transfer``) ends the ticket: the emergency line owns the emergency, and the handover is what the centre
  is measured on. What a unit must still do (the gas company's repair after 119 came) is a follow-up ticket
  (``follow_up``, 关联工单): an event on the transferred ticket that makes a new ticket through the normal intake
  (``hotline.intake.follow_up_maker``), for the same citizen, with both tickets naming each other in their
  history. The transferred ticket is never dispatched onward; see docs/DESIGN.md.

Deadlines and the sweep:
- ``DEADLINE_STATES`` (dispatched, signed) are the states in which a unit's reply clock runs and the worker
  chases the ticket. ``returned`` is not in: the send-back waits for the centre, not the unit. ``reopened`` is
  not in either: a reopened ticket waits for a dispatcher like a new one, its previous round's deadlines are
  cleared (they belonged to a round the unit answered on time), and the re-dispatch gives it fresh ones.
- Every transition into a state outside ``DEADLINE_STATES`` sets ``notice_level`` to ``NOTICES_DONE`` (9), in
  ``perform``, whatever the action: the ticket then leaves the partial sweep indexes (``notice_level < n``), so the
  sweep's cost follows the open tickets, not all history. Re-entering goes through ``set_reply_due``, which arms
  every threshold still ahead and keeps, for those already passed, whether their notice went out in this round
  (``sent``): a dispatch starts from nothing sent, an extension from the ticket's level, and the citizen's answer to
  待补充 (``provide_info``) from the level the ticket had when the pause began, which ``request_info`` records in its
  event (a pause begun before migration 0003 still has its level on the row).
- a pending extension request lapses when the unit replies, sends the ticket back or the ticket is re-dispatched;
  the event of that transition says so (``extension_request_lapsed``).

Callbacks (回访):
- ``callback`` always means the citizen was reached; ``reached=false`` is refused (422) and points to
  ``callback_attempt`` (回访未接通), an event-only action that records the failed attempt and its number in this
  round (attempts after the latest reply). The field is kept, not dropped, so clients sending ``reached: true``
  keep working.
- after ``CALLBACK_ATTEMPTS_BEFORE_CLOSE`` (3) failed attempts a supervisor may close the replied ticket with a
  reason; the close event says ``unreachable: true`` and ``solved: null``, so neither the ``closed_unsolved``
  accountability rule nor the scorecards count it as unsolved.
- ``Action.source_roles`` narrows the roles for one source state, so ``allowed_actions`` (the desk's buttons) and
  ``perform`` agree: re-dispatching a send-back (``dispatch`` from ``returned``) is a dispatcher's or supervisor's
  decision and needs a reason; closing a ``replied`` ticket is a supervisor's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.exc import StaleDataError

from hotline import metrics, notices
from hotline.auth import SYSTEM, Actor
from hotline.db import queue_event
from hotline.errors import Conflict, Forbidden, Invalid, NotFound
from hotline.fields import Id, Moment, NoNul
from hotline.labels import STATUS_LABELS
from hotline.models import (
    AccountabilityCase,
    Category,
    Role,
    Status,
    SupervisionOrder,
    Ticket,
    TicketCoUnit,
    TicketEvent,
    Unit,
)
from hotline.states import DEADLINE_STATES, IN_PROGRESS_STATES
from hotline.timing import Timing
from hotline.visibility import can_see

S = Status
#: notice_level outside DEADLINE_STATES: above every threshold (1, 2, 3), so in none of the partial sweep indexes
NOTICES_DONE = 9
CALLBACK_ATTEMPTS_BEFORE_CLOSE = 3
FRONT_DESK = frozenset({Role.agent, Role.dispatcher, Role.supervisor})
DISPATCHERS = frozenset({Role.dispatcher, Role.supervisor})
SUPERVISORS = frozenset({Role.supervisor})
UNIT = frozenset({Role.unit_handler})
RESUME = "resume"  # to-state of provide_info: back to where the ticket was before 待补充

Note = Annotated[str, StringConstraints(strip_whitespace=True, max_length=5000), NoNul]
Attachment = Annotated[str, StringConstraints(strip_whitespace=True, max_length=300), NoNul]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=5000), NoNul]


class ActionInput(BaseModel):
    """Fields every action accepts. ``version`` makes the check explicit: a stale page gets 409."""

    model_config = ConfigDict(extra="forbid")
    version: int | None = Field(default=None, ge=1)
    note: Note = ""


class DispatchInput(ActionInput):
    unit_id: Id
    co_unit_ids: list[Id] = Field(default_factory=list, max_length=20)


class ReasonInput(ActionInput):
    note: Reason


class TransferInput(ActionInput):
    line: Literal["110", "119", "120", "122"]


class FollowUpInput(ActionInput):
    """关联工单: what the unit is to handle (the desk pre-fills the transferred ticket's text) and where."""

    text: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1), NoNul]
    location: Annotated[str, StringConstraints(strip_whitespace=True, max_length=300), NoNul] | None = None


#: Makes the follow-up ticket of ``source`` through the normal intake (``hotline.intake.follow_up_maker``). Passed
#: into ``perform`` by its caller because the intake builds on this module, not the other way round.
FollowUpMaker = Callable[[Session, Ticket, FollowUpInput, Actor, datetime], Ticket]


class MergeInput(ActionInput):
    parent_id: Id


class ReplyInput(ActionInput):
    note: Reason
    attachments: list[Attachment] = Field(default_factory=list, max_length=20)


class ExtensionInput(ActionInput):
    note: Reason
    working_hours: float = Field(gt=0, le=24 * 7.5)


class ExtensionDecisionInput(ActionInput):
    approve: bool
    note: Reason


class CallbackInput(ActionInput):
    satisfaction: Literal["satisfied", "basically_satisfied", "unsatisfied"]
    solved: bool
    reached: bool = True  # a callback reached the citizen; false is refused: record callback_attempt instead


class RecategorizeInput(ActionInput):
    category_id: Id


class SuperviseInput(ActionInput):
    note: Reason
    due_at: Moment | None = None  # default: SUPERVISION_WORKING_DAYS working days from now
    unit_id: Id | None = None  # default: the lead unit; a co-unit may be supervised too


class RespondSupervisionInput(ActionInput):
    note: Reason
    order_id: Id | None = None  # default: every open order of the responding unit on this ticket


class AccountabilityInput(ActionInput):
    note: Reason
    decision: Literal["open", "explain", "uphold", "dismiss"] = "open"
    case_id: Id | None = None  # needed when a decision could apply to several cases


class CloseInput(ActionInput):
    pass


@dataclass(frozen=True)
class Action:
    name: str
    label: str  # Chinese, shown on the desk and in the history
    sources: frozenset[str]
    target: str | None  # None: an event on the ticket without a state change
    roles: frozenset[str]
    payload: type[ActionInput] = ActionInput
    unit_scope: Literal["lead", "any"] = "lead"  # for unit handlers: lead unit only, or co-units too
    apply: Callable[[Context], None] | None = field(default=None, compare=False)
    #: narrower roles from one source state (e.g. re-dispatching a send-back: dispatchers and supervisors only)
    source_roles: Mapping[str, frozenset[str]] = field(default_factory=dict, compare=False)
    #: beyond the state: does the action apply to this ticket now (延期审批 only with a request waiting)? The desk
    #: offers only actions that apply; ``perform`` still gives the precise refusal (409) for one that does not
    applies: Callable[[Ticket], bool] | None = field(default=None, compare=False)

    def roles_from(self, status: str) -> frozenset[str]:
        return self.source_roles.get(status, self.roles)


@dataclass
class Context:
    session: Session
    ticket: Ticket
    actor: Actor
    data: ActionInput
    timing: Timing
    now: datetime
    event_data: dict[str, Any] = field(default_factory=dict)
    make_follow_up: FollowUpMaker | None = None


def set_reply_due(ctx: Context, due: datetime, start: datetime, *, sent: int | None = None) -> None:
    """Every change of the reply deadline goes through here, so the sweep's thresholds follow it.

    ``sent`` is how many of this round's notices already went out (default: the ticket's ``notice_level``). Every
    threshold now ahead is armed again; one already passed keeps whether its notice was sent, so the sweep sends a
    missing one at once and never repeats one.
    """
    t = ctx.ticket
    t.reply_due = due
    t.reply_warn_at, t.escalate_at = ctx.timing.sweep_thresholds(start, due, clock=t.urgent)
    passed = sum(1 for moment in (t.reply_warn_at, t.reply_due, t.escalate_at) if moment <= ctx.now)
    already = t.notice_level if sent is None else sent
    t.notice_level = min(already or 0, passed)


def _lapse_extension(ctx: Context) -> None:
    """A pending extension request cannot be decided once the round it was asked for is over."""
    if ctx.ticket.extension_pending:
        ctx.ticket.extension_pending = False
        ctx.event_data["extension_request_lapsed"] = True


def _dispatch(ctx: Context) -> None:
    data = ctx.data
    assert isinstance(data, DispatchInput)
    unit_ids = [data.unit_id, *data.co_unit_ids]
    units = {u.id: u for u in ctx.session.scalars(select(Unit).where(Unit.id.in_(unit_ids)))}
    _apply_dispatch(ctx, units, lambda category_id: _category_code(ctx.session, category_id))


def _apply_dispatch(ctx: Context, units: Mapping[int, Unit], category_code: Callable[[int | None], str | None]) -> None:
    """The dispatch rules on the ticket, with the units named and the category's code looked up by the caller."""
    data = ctx.data
    assert isinstance(data, DispatchInput)
    unit_ids = [data.unit_id, *data.co_unit_ids]
    missing = [uid for uid in unit_ids if uid not in units or not units[uid].active]
    if missing:
        raise Invalid(f"unknown or inactive unit id(s): {missing}", field="unit_id")
    if data.unit_id in data.co_unit_ids:
        raise Invalid("the lead unit cannot also be a co-unit", field="co_unit_ids", zh="主办单位不能同时是协办单位")
    t = ctx.ticket
    if t.status == S.returned and len(data.note) < 2:
        raise Invalid("re-dispatching a send-back (退单) needs the reason for the decision in note", field="note",
                      zh="改派退单须在说明中写明决定的理由")
    if t.status == S.reopened:
        # 重办: the unit reads which round this is and why the supervisor reopened it in the dispatch event
        reopens = list(ctx.session.scalars(
            select(TicketEvent.note).where(TicketEvent.ticket_id == t.id, TicketEvent.type == "reopen")
            .order_by(TicketEvent.id)
        ))
        ctx.event_data.update(rework=len(reopens), reopen_reason=reopens[-1] if reopens else None)
    _lapse_extension(ctx)
    previous_unit_id = t.lead_unit_id  # a re-dispatch to another unit is a notice to the citizen (改派)
    t.lead_unit_id = data.unit_id
    t.co_units = [TicketCoUnit(unit_id=uid) for uid in dict.fromkeys(data.co_unit_ids)]
    t.dispatched_at = ctx.now
    t.signed_at = None
    t.paused_at = None  # a re-dispatched send-back starts a new round with fresh deadlines
    t.sign_due, reply_due = ctx.timing.deadlines(t.kind, t.urgent, category_code(t.category_id), ctx.now)
    set_reply_due(ctx, reply_due, ctx.now, sent=0)  # a new round: nothing sent yet
    t.owner_id = None  # 首接负责 ends with the dispatch
    ctx.event_data.update(
        unit_id=data.unit_id,
        previous_unit_id=previous_unit_id,
        unit_name=units[data.unit_id].name,
        co_unit_ids=data.co_unit_ids,
        sign_due=t.sign_due.isoformat(),
        reply_due=reply_due.isoformat(),
    )


def _refuse_return(ctx: Context) -> None:
    """驳回退单: back to the same unit, its deadlines moved on by the time the centre took to decide."""
    t = ctx.ticket
    if t.lead_unit_id is None:
        raise Conflict("this ticket was never dispatched; dispatch it instead")
    ctx.event_data["unit_id"] = t.lead_unit_id
    waited_from = t.paused_at or _latest_event_at(ctx.session, t.id, "return")
    if waited_from is not None and t.reply_due is not None:
        sent = _notices_before_pause(ctx, "return")
        # the 75 % reminder is measured on the unit's own time: its start moves on by the wait as well
        start = t.dispatched_at or t.received_at
        if t.urgent:
            start += ctx.now - waited_from
        else:
            cal = ctx.timing.calendar
            start = cal.add_working_time(start, cal.working_time_between(waited_from, ctx.now))
        set_reply_due(ctx, ctx.timing.shift_for_pause(t.reply_due, waited_from, ctx.now, clock=t.urgent), start,
                      sent=sent)
        if t.sign_due is not None and t.signed_at is None:
            t.sign_due = ctx.timing.shift_for_pause(t.sign_due, waited_from, ctx.now, clock=t.urgent)
        ctx.event_data.update(reply_due=t.reply_due.isoformat(), waited_from=waited_from.isoformat())
    t.paused_at = None


def _sign(ctx: Context) -> None:
    ctx.ticket.signed_at = ctx.now
    ctx.event_data["on_time"] = ctx.ticket.sign_due is None or ctx.now <= ctx.ticket.sign_due


def _return(ctx: Context) -> None:
    """退单: the unit's clock stops until the centre decides (``paused_at``); the sweep no longer chases it."""
    ctx.event_data["unit_id"] = ctx.ticket.lead_unit_id
    ctx.event_data["notice_level"] = ctx.ticket.notice_level  # what a refusal resumes from
    ctx.ticket.paused_at = ctx.now
    _lapse_extension(ctx)


def _transfer(ctx: Context) -> None:
    assert isinstance(ctx.data, TransferInput)
    ctx.ticket.emergency_line = ctx.data.line
    ctx.ticket.closed_at = ctx.now
    ctx.event_data["line"] = ctx.data.line


def _follow_up(ctx: Context) -> None:
    """关联工单: a new ticket for what a unit must still do after 转警; this ticket stays transferred."""
    assert isinstance(ctx.data, FollowUpInput)
    if ctx.make_follow_up is None:
        raise RuntimeError("perform('follow_up') needs make_follow_up (hotline.intake.follow_up_maker)")
    follow_up = ctx.make_follow_up(ctx.session, ctx.ticket, ctx.data, ctx.actor, ctx.now)
    ctx.event_data.update(follow_up_id=follow_up.id, follow_up_number=follow_up.number)


def _merge(ctx: Context) -> None:
    assert isinstance(ctx.data, MergeInput)
    if ctx.data.parent_id == ctx.ticket.id:
        raise Invalid("a ticket cannot be merged into itself", field="parent_id")
    parent = ctx.session.get(Ticket, ctx.data.parent_id)
    if parent is None:
        raise Invalid(f"ticket {ctx.data.parent_id} does not exist", field="parent_id")
    if parent.status in (S.merged, S.closed, S.transferred, S.answered):
        raise Conflict(f"ticket {parent.number} is {parent.status}; merge into an open ticket")
    ctx.ticket.parent_id = parent.id
    ctx.event_data.update(parent_id=parent.id, parent_number=parent.number)


def _answer(ctx: Context) -> None:
    if not ctx.data.note:
        raise Invalid("a direct answer needs the answer given to the citizen", field="note",
                      zh="直接答复须填写答复市民的内容")
    ctx.ticket.reply_text = ctx.data.note
    ctx.ticket.replied_at = ctx.now
    ctx.ticket.owner_id = None


def _request_info(ctx: Context) -> None:
    ctx.ticket.resume_status = ctx.ticket.status
    ctx.ticket.paused_at = ctx.now
    # perform() takes the paused ticket out of the sweep; the resume needs to know which notices went out
    ctx.event_data["notice_level"] = ctx.ticket.notice_level


def _latest_event_at(session: Session, ticket_id: int, type_: str) -> datetime | None:
    return session.scalar(
        select(TicketEvent.created_at)
        .where(TicketEvent.ticket_id == ticket_id, TicketEvent.type == type_)
        .order_by(TicketEvent.id.desc())
        .limit(1)
    )


def _notices_before_pause(ctx: Context, pause_event: str = "request_info") -> int:
    """How many of this round's notices had gone out when the clock stopped (recorded in the pausing event)."""
    t = ctx.ticket
    if t.notice_level < NOTICES_DONE:
        return t.notice_level  # paused before migration 0003 (or a send-back before the clock stopped for it)
    request = ctx.session.scalar(
        select(TicketEvent)
        .where(TicketEvent.ticket_id == t.id, TicketEvent.type == pause_event)
        .order_by(TicketEvent.id.desc())
        .limit(1)
    )
    level = request.data.get("notice_level", 0) if request is not None else 0
    return level if isinstance(level, int) and 0 <= level < NOTICES_DONE else 0


def _provide_info(ctx: Context) -> None:
    t = ctx.ticket
    if t.paused_at is not None and t.reply_due is not None:
        new_due = ctx.timing.shift_for_pause(t.reply_due, t.paused_at, ctx.now, clock=t.urgent)
        set_reply_due(ctx, new_due, t.dispatched_at or t.received_at, sent=_notices_before_pause(ctx))
        if t.sign_due is not None and t.signed_at is None:
            t.sign_due = ctx.timing.shift_for_pause(t.sign_due, t.paused_at, ctx.now, clock=t.urgent)
        ctx.event_data["reply_due"] = t.reply_due.isoformat()
    ctx.event_data["paused_from"] = t.paused_at.isoformat() if t.paused_at else None
    t.paused_at = None
    t.resume_status = None


def _reply(ctx: Context) -> None:
    assert isinstance(ctx.data, ReplyInput)
    t = ctx.ticket
    t.reply_text = ctx.data.note
    t.replied_at = ctx.now
    t.callback_due = ctx.timing.callback_due(ctx.now)
    on_time = t.reply_due is None or ctx.now <= t.reply_due
    ctx.event_data.update(on_time=on_time, attachments=ctx.data.attachments)
    _lapse_extension(ctx)


def _request_extension(ctx: Context) -> None:
    assert isinstance(ctx.data, ExtensionInput)
    t = ctx.ticket
    if t.extension_pending:
        raise Conflict("an extension request is already waiting for a decision", zh="已有延期申请在等待审批")
    if t.reply_due is not None and ctx.now >= t.reply_due:
        raise Conflict("extensions must be requested before the reply deadline; this ticket is already overdue",
                       zh="延期须在答复时限前申请，此工单已超期")
    t.extension_pending = True
    ctx.event_data["working_hours"] = ctx.data.working_hours


def _decide_extension(ctx: Context) -> None:
    assert isinstance(ctx.data, ExtensionDecisionInput)
    t = ctx.ticket
    if not t.extension_pending:
        raise Conflict("no extension request is waiting for a decision", zh="此工单没有待审批的延期申请")
    t.extension_pending = False
    ctx.event_data["approved"] = ctx.data.approve
    if ctx.data.approve and t.reply_due is not None:
        request = ctx.session.scalar(
            select(TicketEvent)
            .where(TicketEvent.ticket_id == t.id, TicketEvent.type == "request_extension")
            .order_by(TicketEvent.id.desc())
            .limit(1)
        )
        hours = float(request.data.get("working_hours", 0)) if request else 0.0
        old_due = t.reply_due
        set_reply_due(ctx, ctx.timing.extend(old_due, hours, clock=t.urgent), t.dispatched_at or t.received_at)
        ctx.event_data.update(old_reply_due=old_due.isoformat(), reply_due=t.reply_due.isoformat())


def _callback(ctx: Context) -> None:
    assert isinstance(ctx.data, CallbackInput)
    if not ctx.data.reached:
        raise Invalid(
            "a callback records what the citizen said; if the citizen was not reached, record a "
            "callback_attempt (回访未接通) instead",
            field="reached",
        )
    t = ctx.ticket
    t.satisfaction = ctx.data.satisfaction
    t.solved = ctx.data.solved
    ctx.event_data.update(satisfaction=ctx.data.satisfaction, solved=ctx.data.solved)


def failed_callback_attempts(session: Session, ticket_id: int) -> int:
    """回访未接通 attempts of the current round: those after the ticket's latest reply (or direct answer)."""
    latest_reply = (
        select(func.max(TicketEvent.id))
        .where(TicketEvent.ticket_id == ticket_id, TicketEvent.type.in_(("reply", "answer")))
        .scalar_subquery()
    )
    count = session.scalar(
        select(func.count())
        .select_from(TicketEvent)
        .where(
            TicketEvent.ticket_id == ticket_id,
            TicketEvent.type == "callback_attempt",
            TicketEvent.id > func.coalesce(latest_reply, 0),
        )
    )
    return int(count or 0)


def _callback_attempt(ctx: Context) -> None:
    attempt = failed_callback_attempts(ctx.session, ctx.ticket.id) + 1
    ctx.event_data.update(attempt=attempt, closable=attempt >= CALLBACK_ATTEMPTS_BEFORE_CLOSE)


def _close(ctx: Context) -> None:
    t = ctx.ticket
    unreachable = t.status == S.replied
    if unreachable:
        # role (supervisor) is enforced by the table's source_roles; here the reason and the attempts
        if len(ctx.data.note) < 2:
            raise Invalid("closing a ticket whose citizen could not be reached needs a reason", field="note")
        attempts = failed_callback_attempts(ctx.session, t.id)
        if attempts < CALLBACK_ATTEMPTS_BEFORE_CLOSE:
            raise Conflict(
                f"a replied ticket is closed without a callback only after {CALLBACK_ATTEMPTS_BEFORE_CLOSE} failed "
                f"callback attempts (回访未接通); {attempts} so far",
                attempts=attempts,
            )
        ctx.event_data.update(unreachable=True, callback_attempts=attempts)
    elif t.status == S.callback and t.satisfaction == "unsatisfied":
        if ctx.actor.role != Role.supervisor:
            raise Forbidden("an unsatisfied callback is closed only by a supervisor (or reopened)")
        if len(ctx.data.note) < 2:
            raise Invalid("closing an unsatisfied ticket needs a reason", field="note")
    t.closed_at = ctx.now
    # The accountability sweep reads "closed unsolved" from the event itself, not from a later ticket state.
    # An unreachable citizen said nothing: solved stays None, which is not "unsolved".
    ctx.event_data.update(
        solved=None if unreachable else t.solved,
        satisfaction=None if unreachable else t.satisfaction,
        unit_id=t.lead_unit_id,
    )


def _reopen(ctx: Context) -> None:
    """重办: back to the dispatcher, high in the front desk's queue, whose dispatch form proposes the current lead
    unit. The answered round's deadlines go; the re-dispatch sets fresh ones and carries the reason."""
    t = ctx.ticket
    t.closed_at = None
    t.satisfaction = None
    t.solved = None
    t.replied_at = None
    t.callback_due = None
    t.sign_due = t.reply_due = t.reply_warn_at = t.escalate_at = None


def _recategorize(ctx: Context) -> None:
    assert isinstance(ctx.data, RecategorizeInput)
    category = ctx.session.get(Category, ctx.data.category_id)
    if category is None or not category.active:
        raise Invalid(f"unknown category id {ctx.data.category_id}", field="category_id")
    ctx.event_data.update(
        from_category_id=ctx.ticket.category_id, to_category_id=category.id, to_category=category.name
    )
    ctx.ticket.category_id = category.id


SUPERVISION_WORKING_DAYS = 2
# An order may be recorded with a deadline already past (one given by phone an hour ago), not one dated years back:
# the due date must also lie in hotline.fields' window, so year 1 or 9999 never reaches the sweep.
SUPERVISION_BACKDATE = timedelta(days=1)


def _supervise(ctx: Context) -> None:
    """督办: a supervision order (own due date, written response required), kept in ``supervision_orders``."""
    data = ctx.data
    assert isinstance(data, SuperviseInput)
    t = ctx.ticket
    unit_id = data.unit_id or t.lead_unit_id
    if unit_id is None:
        raise Conflict("this ticket has no responsible unit yet; dispatch it before issuing a supervision order")
    if data.unit_id is not None and data.unit_id != t.lead_unit_id and data.unit_id not in {
        c.unit_id for c in t.co_units
    }:
        raise Invalid("a supervision order goes to the lead unit or a co-unit of this ticket", field="unit_id")
    if data.due_at is not None:
        if data.due_at < ctx.now - SUPERVISION_BACKDATE:
            raise Invalid("限办时间早于昨天此时，请检查日期 (due_at is more than a day in the past)", field="due_at")
        due = data.due_at
    else:
        due = ctx.timing.calendar.add_working_days(ctx.now, SUPERVISION_WORKING_DAYS)
    order = SupervisionOrder(
        ticket_id=t.id, unit_id=unit_id, state="open", note=data.note, issued_at=ctx.now,
        issued_by=ctx.actor.user_id, due_at=due, overdue_notified=False,
    )
    ctx.session.add(order)
    ctx.session.flush()
    ctx.event_data.update(order_id=order.id, unit_id=unit_id, due_at=due.isoformat())


def _respond_supervision(ctx: Context) -> None:
    """督办回复: the unit's written answer closes its open order(s); late answers are recorded as such."""
    data = ctx.data
    assert isinstance(data, RespondSupervisionInput)
    stmt = select(SupervisionOrder).where(
        SupervisionOrder.ticket_id == ctx.ticket.id,
        SupervisionOrder.unit_id == ctx.actor.unit_id,
        SupervisionOrder.state == "open",
    )
    if data.order_id is not None:
        stmt = stmt.where(SupervisionOrder.id == data.order_id)
    orders = list(ctx.session.scalars(stmt.order_by(SupervisionOrder.id)))
    if not orders:
        raise Conflict("no open supervision order for your unit on this ticket",
                       zh="此工单没有发给本单位、待回复的督办件")
    for order in orders:
        order.state = "responded"
        order.responded_at = ctx.now
        order.responded_by = ctx.actor.user_id
        order.response = data.note
    ctx.event_data.update(
        order_ids=[o.id for o in orders],
        on_time=all(ctx.now <= o.due_at for o in orders),
        unit_id=ctx.actor.unit_id,
    )


#: accountability decision -> (states it applies to, resulting state)
CASE_STEPS: dict[str, tuple[frozenset[str], str]] = {
    "explain": (frozenset({"opened"}), "explained"),
    "uphold": (frozenset({"opened", "explained"}), "upheld"),
    "dismiss": (frozenset({"opened", "explained"}), "dismissed"),
}
#: accountability decision -> the one role that takes it (the desk offers each role only its own decisions)
CASE_DECIDERS: dict[str, Role] = {
    "open": Role.supervisor,
    "explain": Role.unit_handler,
    "uphold": Role.supervisor,
    "dismiss": Role.supervisor,
}


def _accountability(ctx: Context) -> None:
    """问责: opened → explained by the unit → upheld or dismissed; each step also a row in ``accountability_cases``.

    A supervisor may decide a case the unit never explained (it cannot block its own case by silence). Without
    ``case_id``, "explain" answers every opened case of the unit on this ticket; a decision needs ``case_id`` when
    more than one case could be meant.
    """
    data = ctx.data
    assert isinstance(data, AccountabilityInput)
    decision = data.decision
    t = ctx.ticket
    if ctx.actor.role != CASE_DECIDERS[decision]:
        if decision == "explain":
            raise Forbidden("the unit explains an accountability case; supervisors uphold or dismiss it")
        raise Forbidden("only a supervisor opens, upholds or dismisses an accountability case")
    if decision == "open":
        if data.case_id is not None:
            raise Invalid("case_id is for explain/uphold/dismiss; opening creates a new case", field="case_id")
        if t.lead_unit_id is None:
            raise Conflict("this ticket was never dispatched; there is no unit to hold accountable")
        case = AccountabilityCase(
            ticket_id=t.id, unit_id=t.lead_unit_id, state="opened", rule="manual", reason=data.note,
            opened_at=ctx.now, opened_by=ctx.actor.user_id,
        )
        ctx.session.add(case)
        ctx.session.flush()
        ctx.event_data.update(decision=decision, unit_id=t.lead_unit_id, case_ids=[case.id], rule="manual")
        return
    sources, target = CASE_STEPS[decision]
    stmt = select(AccountabilityCase).where(
        AccountabilityCase.ticket_id == t.id, AccountabilityCase.state.in_(sorted(sources))
    )
    if decision == "explain":
        stmt = stmt.where(AccountabilityCase.unit_id == ctx.actor.unit_id)
    if data.case_id is not None:
        stmt = stmt.where(AccountabilityCase.id == data.case_id)
    cases = list(ctx.session.scalars(stmt.order_by(AccountabilityCase.id)))
    if not cases:
        raise Conflict(f"no accountability case on this ticket can be {target} now")
    if decision != "explain" and len(cases) > 1:
        raise Invalid(
            f"several cases could be {target}: give case_id (one of {[c.id for c in cases]})", field="case_id"
        )
    for case in cases:
        case.state = target
        if decision == "explain":
            case.explained_at, case.explanation = ctx.now, data.note
        else:
            case.decided_at, case.decided_by, case.decision_note = ctx.now, ctx.actor.user_id, data.note
    ctx.event_data.update(
        decision=decision, unit_id=cases[0].unit_id, case_ids=[c.id for c in cases], rule=cases[0].rule
    )


def _table(*actions: Action) -> dict[str, Action]:
    return {a.name: a for a in actions}


_ANY = frozenset(Status)
ACTIONS: dict[str, Action] = _table(
    Action("answer", "直接答复", frozenset({S.received}), S.answered, FRONT_DESK, ActionInput, apply=_answer),
    Action("transfer", "转警/转急救", frozenset({S.received}), S.transferred, FRONT_DESK, TransferInput,
           apply=_transfer),
    Action("follow_up", "关联工单", frozenset({S.transferred}), None, FRONT_DESK, FollowUpInput, apply=_follow_up),
    Action("merge", "并案", frozenset({S.received, S.returned}), S.merged, FRONT_DESK, MergeInput, apply=_merge),
    Action("dispatch", "派单", frozenset({S.received, S.returned, S.reopened}), S.dispatched, FRONT_DESK,
           DispatchInput, apply=_dispatch, source_roles={S.returned: DISPATCHERS}),
    Action("sign", "签收", frozenset({S.dispatched}), S.signed, UNIT, apply=_sign),
    Action("return", "退单", frozenset({S.dispatched, S.signed}), S.returned, UNIT, ReasonInput, apply=_return),
    Action("refuse_return", "驳回退单", frozenset({S.returned}), S.dispatched, DISPATCHERS, ReasonInput,
           apply=_refuse_return),
    Action("request_info", "一次性告知补充材料", frozenset({S.received, S.dispatched, S.signed}),
           S.awaiting_citizen, FRONT_DESK | UNIT, ReasonInput, apply=_request_info),
    Action("provide_info", "市民已补充", frozenset({S.awaiting_citizen}), RESUME, FRONT_DESK | UNIT,
           ReasonInput, apply=_provide_info),
    Action("reply", "办结答复", frozenset({S.signed}), S.replied, UNIT, ReplyInput, apply=_reply),
    Action("request_extension", "申请延期", frozenset({S.dispatched, S.signed}), None, UNIT, ExtensionInput,
           apply=_request_extension),
    Action("decide_extension", "延期审批", frozenset({S.dispatched, S.signed}), None, SUPERVISORS,
           ExtensionDecisionInput, apply=_decide_extension, applies=lambda t: bool(t.extension_pending)),
    Action("callback", "回访", frozenset({S.replied, S.answered}), S.callback, FRONT_DESK, CallbackInput,
           apply=_callback),
    Action("callback_attempt", "回访未接通", frozenset({S.replied, S.answered}), None, FRONT_DESK, ActionInput,
           apply=_callback_attempt),
    Action("close", "归档", frozenset({S.callback, S.answered, S.replied}), S.closed, FRONT_DESK, CloseInput,
           apply=_close, source_roles={S.replied: SUPERVISORS}),
    Action("reopen", "重办", frozenset({S.callback, S.closed}), S.reopened, SUPERVISORS, ReasonInput,
           apply=_reopen),
    Action("remind", "催办", IN_PROGRESS_STATES, None, DISPATCHERS, ReasonInput),
    Action("supervise", "督办", IN_PROGRESS_STATES, None, SUPERVISORS, SuperviseInput, apply=_supervise),
    Action("respond_supervision", "督办回复", IN_PROGRESS_STATES | {S.replied}, None, UNIT, RespondSupervisionInput,
           unit_scope="any", apply=_respond_supervision),
    Action("accountability", "问责", _ANY, None, SUPERVISORS | UNIT, AccountabilityInput, apply=_accountability),
    Action("recategorize", "更正分类", IN_PROGRESS_STATES | {S.answered}, None, FRONT_DESK, RecategorizeInput,
           apply=_recategorize),
    Action("comment", "备注", _ANY, None, FRONT_DESK | UNIT, ReasonInput, unit_scope="any"),
)


def allowed_actions(ticket: Ticket, actor: Actor, co_unit_ids: Iterable[int] | None = None) -> list[str]:
    """The actions this actor could take on the ticket now (for the desk's buttons and 409 messages).

    ``co_unit_ids`` default to the ticket's loaded ``co_units``: a co-unit's handler may note and answer supervision.
    """
    co_ids = [c.unit_id for c in ticket.co_units] if co_unit_ids is None else list(co_unit_ids)
    return [
        a.name
        for a in ACTIONS.values()
        if ticket.status in a.sources
        and (actor.role in a.roles_from(ticket.status) or actor.is_system)
        and _unit_ok(a, ticket, actor, co_ids)
        and (a.applies is None or a.applies(ticket))
    ]


def _unit_ok(action: Action, ticket: Ticket, actor: Actor, co_unit_ids: Iterable[int] = ()) -> bool:
    if not actor.is_unit:
        return True
    if ticket.lead_unit_id == actor.unit_id:
        return True
    return action.unit_scope == "any" and actor.unit_id in set(co_unit_ids)


def co_unit_ids_of(session: Session, ticket_id: int) -> list[int]:
    return list(session.scalars(select(TicketCoUnit.unit_id).where(TicketCoUnit.ticket_id == ticket_id)))


def load_visible(session: Session, ticket_id: int, actor: Actor, *, for_update: bool = False) -> Ticket:
    """Fetch a ticket the actor may see, or 404 (the same answer whether it is missing or someone else's)."""
    stmt = select(Ticket).where(Ticket.id == ticket_id).options(selectinload(Ticket.co_units))
    if for_update and session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(of=Ticket)
    ticket = session.scalar(stmt)
    if ticket is None or not can_see(ticket, actor, (c.unit_id for c in ticket.co_units)):
        raise NotFound(f"ticket {ticket_id} not found", zh="找不到此工单（不存在，或不在您的权限范围内）")
    return ticket


def parse_input(action_name: str, body: dict[str, Any]) -> ActionInput:
    action = ACTIONS.get(action_name)
    if action is None:
        raise NotFound(f"unknown action '{action_name}'; actions are: {', '.join(ACTIONS)}")
    return action.payload.model_validate(body)


def perform(
    session: Session,
    ticket_id: int,
    action_name: str,
    actor: Actor,
    data: ActionInput,
    timing: Timing,
    *,
    now: datetime | None = None,
    make_follow_up: FollowUpMaker | None = None,
) -> TicketEvent:
    """Apply one action to one ticket and append its event. Raises 404/403/409/422 as ``DomainError``.

    ``make_follow_up`` is needed for ``follow_up`` only (the API passes ``hotline.intake.follow_up_maker``).
    """
    action = ACTIONS.get(action_name)
    if action is None:
        raise NotFound(f"unknown action '{action_name}'; actions are: {', '.join(ACTIONS)}")
    if not isinstance(data, action.payload):
        raise Invalid(f"wrong payload for '{action_name}'")
    ticket = load_visible(session, ticket_id, actor)
    co_ids = [c.unit_id for c in ticket.co_units]
    if not (actor.role in action.roles or actor.is_system):
        raise Forbidden(f"role '{actor.role}' may not {action.label} ({action_name})",
                        zh=f"您的角色不能进行「{action.label}」")
    if not (actor.role in action.roles_from(ticket.status) or actor.is_system):
        raise Forbidden(
            f"role '{actor.role}' may not {action.label} ({action_name}) a ticket that is {ticket.status}; "
            f"that is for: {', '.join(sorted(action.roles_from(ticket.status)))}",
            zh=f"工单处于「{STATUS_LABELS.get(ticket.status, ticket.status)}」时，您的角色不能进行「{action.label}」",
        )
    if not _unit_ok(action, ticket, actor, co_ids):
        raise Forbidden(f"only the lead unit may {action.label} ({action_name})",
                        zh=f"只有主办单位可以进行「{action.label}」")
    if data.version is not None and data.version != ticket.version:
        raise Conflict(
            f"ticket {ticket.number} changed meanwhile (version {ticket.version}, you had {data.version}); reload it",
            zh=f"工单 {ticket.number} 在您操作前已被他人修改，请查看最新内容后再操作",
            current_version=ticket.version,
        )
    if ticket.status not in action.sources:
        raise Conflict(
            f"cannot {action.label} ({action_name}) a ticket that is {ticket.status}",
            zh=f"工单当前为「{STATUS_LABELS.get(ticket.status, ticket.status)}」，不能进行「{action.label}」",
            status=ticket.status,
            allowed=allowed_actions(ticket, actor, co_ids),
        )
    now = now or datetime.now(UTC)
    from_status, number = ticket.status, ticket.number
    ctx = Context(session, ticket, actor, data, timing, now, make_follow_up=make_follow_up)
    target = action.target
    if target == RESUME:
        target = ticket.resume_status or S.received
    if action.apply is not None:
        action.apply(ctx)
    _enter(ticket, target, now)
    try:
        session.flush()  # the version check: UPDATE … WHERE version = :seen
    except StaleDataError as exc:
        raise Conflict(f"ticket {number} was changed by someone else at the same moment; reload it",
                       zh=f"工单 {number} 刚被他人同时修改，请查看最新内容后再操作") from exc
    event = record_event(
        session,
        ticket,
        action_name,
        actor,
        from_status=from_status,
        to_status=target,
        note=data.note,
        data=ctx.event_data,
        now=now,
    )
    notices.after_event(session, ticket, event)  # the citizen hears of the steps hotline.notices names
    metrics.WORKFLOW_ACTIONS.labels(action_name).inc()
    return event


def _enter(ticket: Ticket, target: str | None, now: datetime) -> None:
    """The ticket takes the action's target state (if it has one)."""
    if target is not None:
        ticket.status = target
        if target not in DEADLINE_STATES:
            ticket.notice_level = NOTICES_DONE  # out of the sweep's partial indexes (see the module docstring)
    ticket.updated_at = now


def dispatch_arrivals(
    session: Session, arrivals: Sequence[tuple[Ticket, DispatchInput]], timing: Timing, now: datetime
) -> list[dict[str, Any] | Exception]:
    """The system's dispatch of new tickets not inserted yet (the worker's batch, ``hotline.intake.create_tickets``):
    ``perform``'s dispatch by ``SYSTEM`` from ``received``, applied to each transient ticket, with the units and the
    category codes read once for the whole batch. Returns each one's dispatch event data, or the error that refused
    it (an unknown or inactive unit: that ticket is not made, the others are)."""
    action = ACTIONS["dispatch"]
    unit_ids = {uid for _, data in arrivals for uid in (data.unit_id, *data.co_unit_ids)}
    units = {u.id: u for u in session.scalars(select(Unit).where(Unit.id.in_(unit_ids)))} if unit_ids else {}
    category_ids = {t.category_id for t, _ in arrivals if t.category_id is not None}
    codes: dict[int | None, str] = {
        category_id: code
        for category_id, code in session.execute(select(Category.id, Category.code)
                                                 .where(Category.id.in_(category_ids)))
    } if category_ids else {}
    out: list[dict[str, Any] | Exception] = []
    for ticket, data in arrivals:
        if ticket.status not in action.sources:
            raise ValueError(f"a new ticket is {ticket.status}, not one of {sorted(action.sources)}")
        ctx = Context(session, ticket, SYSTEM, data, timing, now)
        try:
            _apply_dispatch(ctx, units, codes.get)
        except Invalid as exc:
            out.append(exc)
            continue
        _enter(ticket, action.target, now)
        metrics.WORKFLOW_ACTIONS.labels(action.name).inc()
        out.append(ctx.event_data)
    return out


def event_values(
    ticket_id: int,
    type_: str,
    actor: Actor,
    *,
    from_status: str | None = None,
    to_status: str | None = None,
    note: str = "",
    data: dict[str, Any] | None = None,
    now: datetime,
) -> dict[str, Any]:
    """The columns of a new ``TicketEvent`` (``record_event`` and the worker's batch insert)."""
    return {
        "ticket_id": ticket_id,
        "type": type_,
        "actor_id": actor.user_id,
        "actor_name": actor.name,
        "actor_role": actor.role or ("channel" if actor.channel else "system"),
        "unit_id": actor.unit_id,
        "from_status": from_status,
        "to_status": to_status,
        "note": note,
        "data": data or {},
        "created_at": now,
    }


def record_event(
    session: Session,
    ticket: Ticket,
    type_: str,
    actor: Actor,
    *,
    from_status: str | None = None,
    to_status: str | None = None,
    note: str = "",
    data: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> TicketEvent:
    """Append an event to the ticket's history and queue its notice for after the commit."""
    event = TicketEvent(**event_values(ticket.id, type_, actor, from_status=from_status, to_status=to_status,
                                       note=note, data=data, now=now or datetime.now(UTC)))
    session.add(event)
    session.flush()
    co_unit_ids = [c.unit_id for c in ticket.co_units] if "co_units" in ticket.__dict__ else []
    queue_event(session, event_notice(event, ticket, co_unit_ids, status=ticket.status))
    return event


def event_notice(event: TicketEvent, ticket: Ticket, co_unit_ids: list[int], *, status: str) -> dict[str, Any]:
    """What desks hear of an event, live after the commit and again when a reconnecting desk replays the log.

    It carries the ticket's units at the time, which is what ``hotline.visibility.may_receive`` judges by.
    """
    return {
        "event_id": event.id,
        "type": event.type,
        "ticket_id": ticket.id,
        "ticket_number": ticket.number,
        "status": status,
        "from_status": event.from_status,
        "to_status": event.to_status,
        "lead_unit_id": ticket.lead_unit_id,
        "co_unit_ids": co_unit_ids,
        "urgent": ticket.urgent,
        "actor": event.actor_name,
        "created_at": event.created_at.isoformat(),
    }


def _category_code(session: Session, category_id: int | None) -> str | None:
    if category_id is None:
        return None
    return session.scalar(select(Category.code).where(Category.id == category_id))
