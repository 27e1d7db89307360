"""Prometheus metrics: every definition lives here (the plain rules in ``routing/`` and ``nlp/`` know nothing of it).

Counters and histograms are bumped where the thing happens (``hotline.intake``, ``hotline.inbound``,
``hotline.workflow``, ``hotline.suggester``, ``hotline.sweep`` via the worker, ``hotline.events``,
``agent_ui.hub``) and by the ``HttpMetrics`` middleware. Figures that are facts of the database — open and overdue
tickets per unit, the outbox and inbound backlogs — are read at scrape time by ``DatabaseCollector`` (a few
``GROUP BY`` counts on indexed columns), so every process reports the same truth and nothing drifts.

Multiprocess mode: ``hotline serve --workers N`` (N > 1) points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh directory
before the workers start; each worker writes its figures there and a scrape of any worker adds them all up. A
worker that died is marked dead at the next scrape (its live gauges leave the sum; its counters stay, as counters
must). ``GET /metrics`` wants ``Authorization: Bearer <HOTLINE_METRICS_TOKEN>`` (for the scraper) or an admin's
token (401 without a valid one, 403 for other roles).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hotline.logs import route_of
from hotline.models import InboundMessage, OutboxMessage, Ticket, Unit
from hotline.states import DEADLINE_STATES, IN_PROGRESS_STATES, sorted_states

log = logging.getLogger(__name__)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST
_FAST = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

HTTP_REQUESTS = Counter("hotline_http_requests_total", "HTTP requests by method, route template and status",
                        ["method", "route", "status"])
HTTP_LATENCY = Histogram("hotline_http_request_duration_seconds", "HTTP request latency by method and route template",
                         ["method", "route"], buckets=_FAST)
INTAKE = Counter("hotline_intake_total",
                 "Messages reaching the intake point by channel and outcome: accepted (stored for the worker), "
                 "created (a ticket), replayed (a repeat of a message already taken), retried, failed",
                 ["channel", "outcome"])
INTAKE_BATCH = Histogram("hotline_intake_batch_size",
                         "Synchronous intakes made together in one transaction (group commit, hotline.intake_batch)",
                         buckets=(1, 2, 4, 8, 16, 32, 64))
ANALYSIS_LATENCY = Histogram("hotline_analysis_duration_seconds",
                             "One message's whole suggestion: text analysis, routing, duplicates, knowledge",
                             buckets=_FAST)
CLASSIFIER_LATENCY = Histogram("hotline_classifier_duration_seconds",
                               "One call of the text analyzer (classifier and signals), single or batch",
                               ["call"], buckets=_FAST)
CLASSIFIED_MESSAGES = Counter("hotline_classifier_messages_total", "Messages the text analyzer classified")
WORKFLOW_ACTIONS = Counter("hotline_workflow_actions_total", "Workflow actions performed, by action", ["action"])
SWEEP_DURATION = Histogram("hotline_sweep_duration_seconds", "One deadline sweep",
                           buckets=(0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0))
WEBSOCKETS = Gauge("hotline_websocket_connections", "Open desk WebSocket connections", multiprocess_mode="livesum")
EVENT_PUBLISH_FAILURES = Counter("hotline_event_publish_failures_total",
                                 "Event batches the bus could not publish (desks catch up from the log)")
PROCESSES = Gauge("hotline_processes", "Live processes reporting (API workers; the worker when it serves metrics)",
                  ["kind"], multiprocess_mode="livesum")


def multiprocess_dir() -> Path | None:
    value = os.environ.get(MULTIPROC_ENV)
    return Path(value) if value else None


_PID_IN_FILE = re.compile(r"_(\d+)\.db$")


def mark_dead_processes(directory: Path) -> list[int]:
    """Mark processes whose files are there but which no longer run (a killed or restarted worker) as dead."""
    dead: set[int] = set()
    for path in directory.glob("gauge_live*.db"):
        match = _PID_IN_FILE.search(path.name)
        if match and not _alive(int(match.group(1))):
            dead.add(int(match.group(1)))
    for pid in dead:
        multiprocess.mark_process_dead(pid, str(directory))
    return sorted(dead)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class DatabaseCollector(Collector):
    """Open and overdue tickets per lead unit, outbox and inbound backlogs per channel, read at scrape time."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def collect(self) -> Iterator[GaugeMetricFamily]:
        open_tickets = GaugeMetricFamily("hotline_open_tickets", "Tickets in progress by lead unit code",
                                         labels=["unit"])
        overdue = GaugeMetricFamily("hotline_overdue_tickets", "Tickets past their reply deadline by lead unit code",
                                    labels=["unit"])
        outbox = GaugeMetricFamily("hotline_outbox_backlog", "Outbox messages not sent, by channel and state",
                                   labels=["channel", "state"])
        inbound = GaugeMetricFamily("hotline_inbound_backlog", "Stored channel messages not yet tickets, by state",
                                    labels=["channel", "state"])
        up = GaugeMetricFamily("hotline_database_scrape_ok", "1 when the database figures below could be read")
        try:
            with self._sessions() as session:
                self._read(session, open_tickets, overdue, outbox, inbound)
        except Exception:
            log.warning("metrics: the database figures could not be read", exc_info=True)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield from (up, open_tickets, overdue, outbox, inbound)

    @staticmethod
    def _read(session: Session, open_tickets: GaugeMetricFamily, overdue: GaugeMetricFamily,
              outbox: GaugeMetricFamily, inbound: GaugeMetricFamily) -> None:
        unit = func.coalesce(Unit.code, "none")
        rows = session.execute(
            select(unit, func.count()).select_from(Ticket).outerjoin(Unit, Unit.id == Ticket.lead_unit_id)
            .where(Ticket.status.in_(sorted_states(IN_PROGRESS_STATES))).group_by(unit)
        ).all()
        for code, count in rows:
            open_tickets.add_metric([str(code)], count)
        rows = session.execute(
            select(unit, func.count()).select_from(Ticket).outerjoin(Unit, Unit.id == Ticket.lead_unit_id)
            .where(Ticket.status.in_(sorted_states(DEADLINE_STATES)), Ticket.reply_due < datetime.now(UTC))
            .group_by(unit)
        ).all()
        for code, count in rows:
            overdue.add_metric([str(code)], count)
        for channel, state, count in session.execute(
            select(OutboxMessage.channel, OutboxMessage.state, func.count())
            .where(OutboxMessage.state.in_(("pending", "sending", "failed")))
            .group_by(OutboxMessage.channel, OutboxMessage.state)
        ):
            outbox.add_metric([channel, state], count)
        for channel, state, count in session.execute(
            select(InboundMessage.channel, InboundMessage.state, func.count())
            .where(InboundMessage.state.in_(("accepted", "processing", "failed")))
            .group_by(InboundMessage.channel, InboundMessage.state)
        ):
            inbound.add_metric([channel, state], count)


def exposition(sessions: sessionmaker[Session]) -> bytes:
    """The scrape: this process's figures (or every worker's, in multiprocess mode) and the database's."""
    directory = multiprocess_dir()
    if directory is not None:
        mark_dead_processes(directory)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, str(directory))
        process_figures = generate_latest(registry)
    else:
        process_figures = generate_latest(REGISTRY)
    database = CollectorRegistry()
    database.register(DatabaseCollector(sessions))
    return process_figures + generate_latest(database)


@contextlib.contextmanager
def timed(histogram: Histogram, **labels: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        (histogram.labels(**labels) if labels else histogram).observe(time.perf_counter() - started)


class HttpMetrics:
    """Count every HTTP request by route template and status, and time it (ASGI middleware)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_recording)
        finally:
            route, method = route_of(scope), str(scope["method"])
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_LATENCY.labels(method, route).observe(time.perf_counter() - started)


def process_started(kind: str) -> None:
    PROCESSES.labels(kind).set(1)


def process_stopping() -> None:
    """A worker leaving cleanly marks itself dead, so its live gauges leave the sum at once."""
    directory = multiprocess_dir()
    if directory is not None:
        multiprocess.mark_process_dead(os.getpid(), str(directory))


def serve_worker_metrics(host: str, port: int, sessions: sessionmaker[Session]) -> None:
    """``hotline worker`` answers its own figures (sweeps, inbound processing, outbox sends) on ``host:port``, with
    the database's backlogs and open/overdue tickets read at scrape time as on the API's ``/metrics``."""
    from prometheus_client import start_http_server

    process_started("worker")
    REGISTRY.register(DatabaseCollector(sessions))
    start_http_server(port, addr=host)
    log.info("worker metrics on http://%s:%d/metrics", host, port)
