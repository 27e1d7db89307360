"""Group commit of the agents' synchronous intake (``POST /api/intake``): one transaction for what arrives together.

One synchronous intake alone pays for everything a batch shares: a model call for one message, an ORM unit of work
per ticket, its own commit (about 26 ms of Python against ~5 ms per ticket in the worker's batch, BENCHMARKS.md §8).
So the requests of one API process that arrive while a batch is being made wait for it to finish and then form the
next batch: ``intake.submit_many`` (the worker's ``create_tickets`` for the tickets), one transaction, one commit,
and each request is answered once its batch has committed. There is no fixed delay: when nothing is in flight a
request starts a batch at once, alone (an idle desk's single request pays no wait); ``max_batch`` caps a batch.

The batch runs in a thread (the analysis is CPU-bound Python) with a session of its own; one batch at a time per
process (on SQLite there is one writer anyway). Per request, inside a batch, everything ``intake.submit`` does
stays true: its own 4xx for its own bad input (nothing of it written, the rest of the batch committed), a repeated
(channel, external_id) answered 200 with the first ticket (repeats within one batch too), a message stored for the
worker a 409. Should the batch's transaction fail as a whole (a database error, the commit), each of its requests
is made again alone, in a transaction of its own, so that none gets another's error. Desk events go out after the
commit (``hotline.db``); the new tickets join the duplicate index as they are made and leave it again if their
transaction rolls back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload, sessionmaker

from hotline import intake, metrics, views
from hotline.auth import Actor
from hotline.intake import IntakeRequest, NewTicket, NumberPool, Submitted
from hotline.models import Ticket
from hotline.settings import Settings
from hotline.suggestion import Suggester
from hotline.timing import Timing

log = logging.getLogger(__name__)

#: at most this many requests in one transaction (a batch of 32 takes a few hundred ms on the 2-core machine)
MAX_BATCH = 32

#: at most this many tickets waiting for their own bus notice (``IntakeBatcher.indexed_here``)
MAX_INDEXED = 10_000

#: what the answer shows of a ticket, read for the whole batch in one statement (``views.ticket_load_options``
#: would take one per relation)
ANSWER_LOAD = (
    joinedload(Ticket.category),
    joinedload(Ticket.area),
    joinedload(Ticket.lead_unit),
    joinedload(Ticket.citizen),
    joinedload(Ticket.co_units),
)
#: only a ticket made before can have a parent (the join of the tickets table with itself would double every row of
#: a batch of new tickets for nothing)
PARENT_LOAD = (joinedload(Ticket.parent).selectinload(Ticket.co_units),)


@dataclass(frozen=True)
class Answer:
    """What one synchronous intake answers: the ticket as its actor may see it; ``created`` False for a repeat."""

    ticket: views.TicketOut
    created: bool


@dataclass
class _Waiting:
    item: NewTicket
    future: asyncio.Future[Answer]


class BatchServices(Protocol):
    """What a batch reads of the process's services (``hotline.services.Services``), each time it runs: the
    suggester is replaced when the model is reloaded."""

    settings: Settings
    sessions: sessionmaker[Session]
    suggester: Suggester
    timing: Timing
    numbers: NumberPool | None


class IntakeBatcher:
    """This process's group commit of synchronous intakes (``Services.intake_batcher``)."""

    def __init__(self, services: BatchServices, max_batch: int = MAX_BATCH) -> None:
        self._services = services
        self._max_batch = max_batch
        self._waiting: list[_Waiting] = []
        self._draining: asyncio.Task[None] | None = None
        #: tickets the batches indexed here already, until their bus notice comes back (``indexed_here``)
        self._indexed: set[int] = set()

    def indexed_here(self, ticket_id: int) -> bool:
        """Whether a batch of this process made the ticket and put it in the duplicate index already: then the bus
        notice of its ``receive`` (``services.follow_tickets``) need not read and segment it again. Asked once per
        ticket (set operations are atomic under the GIL: the batch thread adds, the event loop asks)."""
        if ticket_id in self._indexed:
            self._indexed.discard(ticket_id)
            return True
        return False

    async def submit(self, request: IntakeRequest, actor: Actor) -> Answer:
        """The request's answer once its batch has committed; raises its own error (``DomainError`` → 4xx)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Answer] = loop.create_future()
        self._waiting.append(_Waiting(NewTicket(request, actor), future))
        if self._draining is None or self._draining.done():
            self._draining = loop.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        """Batches one after the other while requests wait: those that arrived during a batch form the next."""
        while self._waiting:
            batch, self._waiting = self._waiting[:self._max_batch], self._waiting[self._max_batch:]
            metrics.INTAKE_BATCH.observe(len(batch))
            try:
                results: list[Answer | Exception] = await asyncio.to_thread(self.run, [w.item for w in batch])
            except Exception as exc:  # the thread could not run at all: every request of the batch learns it
                results = [exc] * len(batch)
            for waiting, result in zip(batch, results, strict=True):
                if waiting.future.done():  # the client went away (its request task was cancelled)
                    continue
                if isinstance(result, Exception):
                    waiting.future.set_exception(result)
                else:
                    waiting.future.set_result(result)

    def run(self, items: Sequence[NewTicket]) -> list[Answer | Exception]:
        """One batch, in the calling thread: its answers, or each request's own error. When the transaction fails
        as a whole, its requests are made again one by one (one alone gets the error itself)."""
        try:
            return self._commit(items)
        except Exception as exc:
            if len(items) == 1:
                return [exc]
            log.warning("a batch of %d synchronous intakes failed as a whole (%s); making them one by one",
                        len(items), exc, exc_info=True)
            return [self.run([item])[0] for item in items]

    def _commit(self, items: Sequence[NewTicket]) -> list[Answer | Exception]:
        services = self._services
        settings = services.settings
        remembered: list[int] = []
        with services.sessions() as session:
            try:
                results = intake.submit_many(
                    session, items, suggester=services.suggester, timing=services.timing,
                    max_text_chars=settings.max_text_chars, auto_dispatch=settings.auto_dispatch,
                    numbers=services.numbers, remembered=remembered)
                # read before the commit: the same rows, one transaction (and no second BEGIN IMMEDIATE on SQLite)
                answers = _answers(session, items, results)
                if len(self._indexed) > MAX_INDEXED:  # notices that never came back (a bus outage)
                    self._indexed.clear()
                # before the commit: its after-commit hook publishes the notices the event loop may read at once
                made = {r.ticket_id for r in results if isinstance(r, Submitted) and r.created}
                self._indexed.update(made)
                session.commit()
            except BaseException:
                self._indexed.difference_update(remembered)
                session.rollback()
                for ticket_id in remembered:  # the batch's tickets leave the duplicate index again
                    services.suggester.forget(ticket_id)
                raise
        for item, result in zip(items, results, strict=True):
            if isinstance(result, Submitted):
                metrics.INTAKE.labels(item.request.channel, "created" if result.created else "replayed").inc()
        again = [i for i, a in enumerate(answers) if a is None]
        if again:  # repeats of a message whose first delivery was refused: now they are first
            for i, redone in zip(again, self.run([items[i] for i in again]), strict=True):
                answers[i] = redone
        final: list[Answer | Exception] = []
        for a in answers:
            assert a is not None  # every repeat was made again above
            final.append(a)
        return final


def _answers(session: Session, items: Sequence[NewTicket],
             results: Sequence[Submitted | Exception | None]) -> list[Answer | Exception | None]:
    """Each request's answer, the batch's tickets read in one statement."""
    submitted = [r for r in results if isinstance(r, Submitted)]
    loaded: dict[int, Ticket] = {}
    if submitted:
        load = ANSWER_LOAD if all(r.created for r in submitted) else (*ANSWER_LOAD, *PARENT_LOAD)
        ids = {r.ticket_id for r in submitted}
        loaded = {t.id: t for t in session.scalars(select(Ticket).where(Ticket.id.in_(ids)).options(*load)).unique()}
    out: list[Answer | Exception | None] = []
    for item, result in zip(items, results, strict=True):
        if isinstance(result, Submitted):
            out.append(Answer(views.ticket_out(loaded[result.ticket_id], item.actor), result.created))
        else:
            out.append(result)
    return out
