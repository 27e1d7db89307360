"""The live channel: one hub per API process, one bus subscription per hub, fan-out to local WebSockets.

Why it is built this way (the 12345 rules behind it):

- **Who gets what.** Front-desk staff (agents, dispatchers) and supervisors/admins get every ticket event: the
  triage queue, the callback queue and the board are city-wide. A unit handler gets an event only when their unit
  is the lead unit (主办) or a co-unit (协办) *in that event's message*: a unit must never learn about another
  unit's tickets (the REST API answers 404 for them, the channel must not be a side door).
- **A ticket taken away.** A send-back (``return``) is published while the lead is still the sending unit, so it
  gets it. A re-dispatch (改派: ``dispatch`` from ``returned``/``reopened``) is published with the *new* lead; the
  previous lead and co-units (read from the ticket's previous ``dispatch`` event in ``ticket_events``) then get a
  reduced ``ticket_gone`` notice (event id, ticket id and number only) so their open page drops the row. They
  never see the new unit.
- **Several workers.** The event bus (Redis pub/sub when ``HOTLINE_REDIS_URL`` is set) delivers every committed
  event to every process; each hub subscribes once and filters per local connection. Publishing is best effort
  (``hotline.events``), so a client that reconnects sends ``last_event_id`` and is replayed what it missed from
  ``ticket_events`` (the source of truth), with the same visibility rules (the REST API's ``visible_tickets``).
- **The seam.** A reconnecting connection is registered *before* the replay query runs and buffers live events
  meanwhile; afterwards the buffer is flushed minus the event ids already replayed. Event ids are not a
  high-water mark: two transactions can commit out of id order (id 10 is drawn, id 11 is drawn and commits, the
  client sees 11 and drops off, then 10 commits while nobody listens), so ``id > last`` alone would lose 10 for
  good. The client therefore sends the highest id it saw *and* keeps the ids it saw; the server replays every
  event after ``last_event_id`` plus the ones just below it that may have committed late: id within
  ``replay_id_margin`` of it *and* ``created_at`` no more than ``replay_window`` seconds before that event's own
  ``created_at``. (A transaction whose event commits after event ``last`` was seen took its ``now`` before it
  flushed, hence before ``last`` committed; so its ``created_at`` ≥ ``last.created_at`` − the longest
  transaction.) The client drops the ids it has already seen; the server dedupes replay against the live buffer.
- **The bus lost and back.** Events published while Redis was down reached no hub. When the subscription is back
  (``hotline.events.BUS_RECONNECTED``) the hub closes every connection with 4503; the desk reconnects at once
  with its ``last_event_id`` and is replayed the gap from ``ticket_events``.
- **Slow or dead clients.** Each connection has a bounded queue; a client that falls too far behind is closed
  (4409) and catches up by replay. The server pings every ``ping_interval`` seconds (application message
  ``{"type": "ping"}``); a client silent for two intervals is dropped (4408).
- **Desk notices.** A bus message of type ``desk_notice`` (``hotline.events.desk_notice``, e.g. kind
  ``phone_queue``) is no ticket event: it goes to the connections of the roles it names, carries no personal data
  (the desk reloads through REST, masked per role) and is not replayed (the desk reloads after a reconnect).
- **Presence.** Who is online per role and unit. Locally a dict; with Redis each hub also keeps its own hash
  ``<ns>:presence:<hub id>`` with an expiry refreshed on every heartbeat (a crashed worker's entries vanish after
  ``presence_ttl``), and announces changes on ``<ns>:presence`` so every hub pushes the new snapshot to its
  supervisors.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from fastapi import WebSocket, WebSocketDisconnect
from sqlalchemy import and_, func, or_, select

from hotline import auth, metrics
from hotline.errors import DomainError
from hotline.events import BUS_RECONNECTED, DESK_NOTICE
from hotline.fields import MAX_ID
from hotline.models import Role, Ticket, TicketCoUnit, TicketEvent, User
from hotline.services import Services
from hotline.visibility import may_receive, visible_tickets
from hotline.workflow import event_notice

log = logging.getLogger(__name__)

EVERYTHING_ROLES = frozenset({Role.agent, Role.dispatcher, Role.supervisor, Role.admin})
PRESENCE_ROLES = frozenset({Role.supervisor, Role.admin})
REDISPATCH_FROM = frozenset({"returned", "reopened"})

CLOSE_AUTH = 4401  # no/invalid/expired token, or the account changed
CLOSE_FORBIDDEN = 4403  # a channel key is not a desk user
CLOSE_HEARTBEAT = 4408  # silent for too long
CLOSE_TOO_SLOW = 4409  # queue overflow: reconnect with last_event_id
CLOSE_CATCH_UP = 4503  # the event bus was lost and is back: reconnect with last_event_id for what it missed
CLOSE_GOING_AWAY = 1001  # server shutting down
CLOSE_TOO_BIG = 1009  # a frame over the limit (RFC 6455 "message too big")

# Frames are small in this protocol: a hello is a token and a number, a client message a ping. Until the hello is
# authenticated a frame may have 4 KiB, afterwards 64 KiB; the server's transport refuses anything bigger
# (``hotline serve`` runs uvicorn with ``ws_max_size=FRAME_MAX_BYTES``).
HELLO_MAX_BYTES = 4 * 1024
FRAME_MAX_BYTES = 64 * 1024



def gone_notice(message: dict[str, Any]) -> dict[str, Any]:
    """What a unit learns when a ticket is re-dispatched away from it: that it is gone, nothing about where."""
    return {
        "event_id": message.get("event_id"),
        "type": "ticket_gone",
        "ticket_id": message.get("ticket_id"),
        "ticket_number": message.get("ticket_number"),
        "cause": message.get("type"),
        "created_at": message.get("created_at"),
    }


@dataclass(eq=False)
class Connection:
    ws: WebSocket
    actor: auth.Actor
    queue: asyncio.Queue[str]
    conn_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    connected_at: float = field(default_factory=time.time)
    last_seen: float = field(default_factory=time.monotonic)
    expires_at: float | None = None
    buffering: bool = True
    buffer: list[dict[str, Any]] = field(default_factory=list)
    replayed_ids: set[int] | None = None
    replayed_until: float = 0.0
    close_code: int | None = None
    close_reason: str = ""
    sender: asyncio.Task[None] | None = None

    def presence_entry(self) -> dict[str, Any]:
        return {
            "user_id": self.actor.user_id,
            "name": self.actor.name,
            "role": self.actor.role,
            "unit_id": self.actor.unit_id,
            "since": self.connected_at,
        }


class Hub:
    """Per-process registry of desk connections; ``run`` is the app's startup hook."""

    def __init__(
        self,
        services: Services,
        *,
        ping_interval: float = 20.0,
        auth_timeout: float = 5.0,
        queue_size: int = 1000,
        replay_limit: int = 1000,
        replay_id_margin: int = 500,
        replay_window: float = 30.0,
        presence_ttl: float = 60.0,
        namespace: str = "hotline",
    ) -> None:
        self.services = services
        self.ping_interval = ping_interval
        self.auth_timeout = auth_timeout
        self.queue_size = queue_size
        self.replay_limit = replay_limit
        self.replay_id_margin = replay_id_margin
        self.replay_window = replay_window
        self.presence_ttl = presence_ttl
        self.namespace = namespace
        self.hub_id = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.connections: set[Connection] = set()
        self.delivered = 0
        self._redis: Any = None
        self._presence_dirty: asyncio.Event | None = None  # created in run(), on the serving loop
        self._presence_snapshot: dict[str, Any] | None = None
        self._running = False

    # ------------------------------------------------------------------ lifecycle
    @property
    def redis_url(self) -> str | None:
        return self.services.settings.redis_url

    @property
    def presence_key(self) -> str:
        return f"{self.namespace}:presence:{self.hub_id}"

    @property
    def presence_channel(self) -> str:
        return f"{self.namespace}:presence"

    async def run(self, services: Services) -> None:
        """Startup hook: consume the bus, beat the heart, keep presence; cancelled at shutdown."""
        self._presence_dirty = asyncio.Event()
        self._running = True
        if self.redis_url:
            import redis.asyncio as aioredis

            self._redis = aioredis.Redis.from_url(self.redis_url, socket_timeout=2, socket_connect_timeout=2)
        tasks = [
            asyncio.create_task(self._consume(services), name="desk-hub-bus"),
            asyncio.create_task(self._heartbeat(), name="desk-hub-heartbeat"),
            asyncio.create_task(self._presence_pusher(), name="desk-hub-presence"),
        ]
        if self._redis is not None:
            tasks.append(asyncio.create_task(self._presence_listener(), name="desk-hub-presence-sub"))
        try:
            await asyncio.gather(*tasks)
        finally:
            self._running = False
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            for conn in list(self.connections):
                self.kill(conn, CLOSE_GOING_AWAY, "server shutting down")
            if self._redis is not None:
                with contextlib.suppress(Exception):
                    await self._redis.delete(self.presence_key)
                    await self._redis.publish(self.presence_channel, self.hub_id)
                with contextlib.suppress(Exception):
                    await self._redis.aclose()

    async def _consume(self, services: Services) -> None:
        while True:
            try:
                async for message in services.bus.subscribe():
                    if message.get("type") == BUS_RECONNECTED:
                        self.catch_up_everyone()
                        continue
                    try:
                        await self.dispatch(message)
                    except Exception:
                        log.exception("desk hub could not fan out event %s", message.get("event_id"))
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("desk hub lost the event bus; resubscribing in 1 s")
                await asyncio.sleep(1)

    def catch_up_everyone(self) -> None:
        """The bus lost events while it was down (Redis restarted): close every connection with ``CLOSE_CATCH_UP``;
        the desk reconnects at once with its ``last_event_id`` and is replayed what it missed from the log."""
        if self.connections:
            log.info("event bus back; %d desk connection(s) asked to catch up", len(self.connections))
        for conn in list(self.connections):
            self.kill(conn, CLOSE_CATCH_UP, "event bus reconnected; reconnect with last_event_id")

    # ------------------------------------------------------------------ fan-out
    async def dispatch(self, message: dict[str, Any]) -> None:
        """Send one bus message to every local connection allowed to see it."""
        if message.get("type") == DESK_NOTICE:
            self.notify_desks(message)
            return
        if "event_id" not in message or "ticket_id" not in message:
            return
        previous_units: set[int] = set()
        redispatch = message.get("type") == "dispatch" and message.get("from_status") in REDISPATCH_FROM
        if redispatch and any(c.actor.is_unit for c in self.connections):
            previous_units = await asyncio.to_thread(
                self._previous_units, int(message["ticket_id"]), int(message["event_id"])
            )
        current = {message.get("lead_unit_id"), *(message.get("co_unit_ids") or ())}
        gone_units = previous_units - current
        full_text: str | None = None
        gone_text: str | None = None
        for conn in list(self.connections):
            if may_receive(conn.actor, message):
                if full_text is None:
                    full_text = json.dumps(message, ensure_ascii=False, default=str)
                self._deliver(conn, message, full_text)
            elif conn.actor.is_unit and conn.actor.unit_id in gone_units:
                notice = gone_notice(message)
                if gone_text is None:
                    gone_text = json.dumps(notice, ensure_ascii=False, default=str)
                self._deliver(conn, notice, gone_text)

    def notify_desks(self, message: dict[str, Any]) -> None:
        """A desk notice (``hotline.events.desk_notice``) to the connections of the roles it names."""
        roles = set(message.get("roles") or ())
        text = json.dumps(message, ensure_ascii=False, default=str)
        for conn in list(self.connections):
            if conn.actor.role in roles and not conn.buffering:
                self._enqueue(conn, text)

    def _deliver(self, conn: Connection, message: dict[str, Any], text: str) -> None:
        if conn.buffering:
            conn.buffer.append(message)
            return
        if conn.replayed_ids is not None:
            if time.monotonic() > conn.replayed_until:
                conn.replayed_ids = None
            elif message.get("event_id") in conn.replayed_ids:
                return
        self._enqueue(conn, text)
        self.delivered += 1

    def _enqueue(self, conn: Connection, text: str) -> None:
        try:
            conn.queue.put_nowait(text)
        except asyncio.QueueFull:
            self.kill(conn, CLOSE_TOO_SLOW, "too far behind; reconnect with last_event_id")

    def send_json(self, conn: Connection, payload: dict[str, Any]) -> None:
        self._enqueue(conn, json.dumps(payload, ensure_ascii=False, default=str))

    def _previous_units(self, ticket_id: int, event_id: int) -> set[int]:
        """Lead and co-units of the ticket's dispatch before this one (for the ``ticket_gone`` notice)."""
        with self.services.sessions() as session:
            data = session.scalar(
                select(TicketEvent.data)
                .where(TicketEvent.ticket_id == ticket_id, TicketEvent.type == "dispatch", TicketEvent.id < event_id)
                .order_by(TicketEvent.id.desc())
                .limit(1)
            )
        if not data:
            return set()
        units = {int(data["unit_id"])} if data.get("unit_id") else set()
        units.update(int(u) for u in data.get("co_unit_ids") or ())
        return units

    def kill(self, conn: Connection, code: int, reason: str) -> None:
        """Close a connection from the hub's side (heartbeat, overflow, account change, shutdown)."""
        if conn.close_code is None:
            conn.close_code, conn.close_reason = code, reason
        self.connections.discard(conn)
        if conn.sender is not None:
            conn.sender.cancel()

    # ------------------------------------------------------------------ one connection
    async def handle(self, ws: WebSocket) -> None:
        """The ``/ws`` endpoint: token first, then hello, replay, live events until either side closes."""
        await ws.accept()
        try:
            first = await asyncio.wait_for(_receive_text(ws, HELLO_MAX_BYTES), self.auth_timeout)
        except TimeoutError:
            await _close(ws, CLOSE_AUTH, 'send {"token": "..."} as the first message within 5 s')
            return
        except FrameTooBig:
            await _close(ws, CLOSE_TOO_BIG, f"the first message may have at most {HELLO_MAX_BYTES} bytes")
            return
        except (WebSocketDisconnect, RuntimeError):
            return
        try:
            if first is None:  # a binary frame: as bad as any other malformed hello
                raise ValueError("the first message must be a text frame")
            hello = json.loads(first)
            token = hello["token"]
            last_event_id = hello.get("last_event_id")
            if not isinstance(token, str) or not token:
                raise ValueError("empty token")
            if last_event_id is not None and (
                isinstance(last_event_id, bool) or not isinstance(last_event_id, int)
                or not 0 <= last_event_id <= MAX_ID
            ):
                raise ValueError("last_event_id must be an integer")
        except (ValueError, KeyError, TypeError, RecursionError):
            await _close(ws, CLOSE_AUTH, 'the first message must be {"token": "...", "last_event_id": 0..2^31-1}')
            return
        try:
            actor = await asyncio.to_thread(self._authenticate, token)
        except DomainError as exc:
            await _close(ws, CLOSE_AUTH, exc.message[:120])
            return
        if actor.user_id is None:
            await _close(ws, CLOSE_FORBIDDEN, "channel keys cannot open the desk")
            return

        conn = Connection(ws=ws, actor=actor, queue=asyncio.Queue(self.queue_size + self.replay_limit + 8))
        conn.expires_at = _token_expiry(token)
        self.connections.add(conn)  # buffering from here: nothing published from now on can be missed
        metrics.WEBSOCKETS.inc()
        try:
            await self._start(conn, last_event_id)
            await self._announce_presence(conn, joined=True)
            conn.sender = asyncio.create_task(self._sender(conn))
            receiver = asyncio.create_task(self._receiver(conn))
            await asyncio.wait({conn.sender, receiver}, return_when=asyncio.FIRST_COMPLETED)
            for task in (conn.sender, receiver):
                task.cancel()
            for task in (conn.sender, receiver):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        finally:
            self.connections.discard(conn)
            metrics.WEBSOCKETS.dec()
            await self._announce_presence(conn, joined=False)
            if conn.close_code is not None:
                await _close(ws, conn.close_code, conn.close_reason)

    def _authenticate(self, token: str) -> auth.Actor:
        with self.services.sessions() as session:
            return auth.actor_from_token(session, self.services.settings, token)

    async def _start(self, conn: Connection, last_event_id: int | None) -> None:
        max_id, rows, truncated = await asyncio.to_thread(self._replay_rows, conn.actor, last_event_id)
        self.send_json(conn, {
            "type": "hello",
            "user": {"id": conn.actor.user_id, "name": conn.actor.name, "role": conn.actor.role,
                     "unit_id": conn.actor.unit_id},
            "server_time": datetime.now(UTC).isoformat(),
            "last_event_id": max_id,
            "replay": len(rows) if last_event_id is not None else None,
            "ping_interval": self.ping_interval,
            "worker": os.getpid(),
        })
        if truncated:
            self.send_json(conn, {"type": "resync", "reason": "too many missed events; reload the lists"})
        elif last_event_id is not None and last_event_id > max_id:
            # The client remembers ids this database never wrote (restored or reset): its lists are stale.
            self.send_json(conn, {"type": "resync", "reason": "unknown last_event_id; reload the lists"})
        replayed: set[int] = set()
        for message in rows:
            replayed.add(message["event_id"])
            self.send_json(conn, message)
        buffered, conn.buffer = conn.buffer, []
        conn.buffering = False
        if replayed:
            conn.replayed_ids = replayed
            conn.replayed_until = time.monotonic() + 60.0
        for message in buffered:
            if message.get("event_id") in replayed:
                continue
            self._deliver(conn, message, json.dumps(message, ensure_ascii=False, default=str))
        if conn.actor.role in PRESENCE_ROLES:
            self.send_json(conn, await self.presence())

    def _replay_rows(
        self, actor: auth.Actor, last_event_id: int | None
    ) -> tuple[int, list[dict[str, Any]], bool]:
        """Current max event id, and the visible events after ``last_event_id`` (oldest first, capped)."""
        with self.services.sessions() as session:
            max_id = int(session.scalar(select(func.max(TicketEvent.id))) or 0)
            if last_event_id is None:
                return max_id, [], False
            if actor.role in EVERYTHING_ROLES:
                stmt = select(TicketEvent, Ticket).join(Ticket, Ticket.id == TicketEvent.ticket_id)
            elif actor.is_unit:
                visible_ids = visible_tickets(actor).with_only_columns(Ticket.id)
                stmt = (
                    select(TicketEvent, Ticket)
                    .join(Ticket, Ticket.id == TicketEvent.ticket_id)
                    .where(TicketEvent.ticket_id.in_(visible_ids))
                )
            else:
                return max_id, [], False
            rows = session.execute(
                stmt.where(self._replay_condition(session, last_event_id), TicketEvent.id <= max_id)
                .order_by(TicketEvent.id)
                .limit(self.replay_limit + 1)
            ).all()
            truncated = len(rows) > self.replay_limit
            rows = rows[: self.replay_limit]
            ticket_ids = {t.id for _, t in rows}
            co: dict[int, list[int]] = {}
            if ticket_ids:
                for tid, uid in session.execute(
                    select(TicketCoUnit.ticket_id, TicketCoUnit.unit_id).where(TicketCoUnit.ticket_id.in_(ticket_ids))
                ):
                    co.setdefault(tid, []).append(uid)
            messages = [
                {**event_notice(e, t, co.get(t.id, []), status=e.to_status or t.status), "replayed": True}
                for e, t in rows
            ]
        return max_id, messages, truncated

    def _replay_condition(self, session: Any, last_event_id: int) -> Any:
        """Events after ``last_event_id``, and those below it that may have committed after it (see "The seam")."""
        after = TicketEvent.id > last_event_id
        floor = TicketEvent.id > last_event_id - self.replay_id_margin
        if last_event_id <= 0 or self.replay_id_margin <= 0:
            return after
        seen_at = session.scalar(select(TicketEvent.created_at).where(TicketEvent.id == last_event_id))
        if seen_at is None:  # an id we never wrote (another database?): the whole margin, the client dedupes
            return floor
        late = and_(
            floor,
            TicketEvent.id != last_event_id,  # that one the client has, for sure
            TicketEvent.created_at >= seen_at - timedelta(seconds=self.replay_window),
        )
        return or_(after, late)

    async def _sender(self, conn: Connection) -> None:
        while True:
            text = await conn.queue.get()
            await conn.ws.send_text(text)

    async def _receiver(self, conn: Connection) -> None:
        while True:
            try:
                raw = await _receive_text(conn.ws, FRAME_MAX_BYTES)
            except FrameTooBig:
                self.kill(conn, CLOSE_TOO_BIG, f"a message may have at most {FRAME_MAX_BYTES} bytes")
                return
            except (WebSocketDisconnect, RuntimeError):
                return
            conn.last_seen = time.monotonic()
            if raw is None:  # binary frames mean nothing to the desk protocol
                continue
            try:
                message = json.loads(raw)
            except (ValueError, RecursionError):
                continue
            if isinstance(message, dict) and message.get("type") == "ping":
                self.send_json(conn, {"type": "pong", "t": message.get("t")})

    # ------------------------------------------------------------------ heartbeat
    async def _heartbeat(self) -> None:
        beats = 0
        while True:
            await asyncio.sleep(self.ping_interval)
            beats += 1
            try:
                await self.beat(revalidate=beats % 3 == 0)
            except Exception:
                log.exception("desk hub heartbeat failed")

    async def beat(self, *, revalidate: bool = False) -> None:
        """Ping everyone, drop the silent and the expired, refresh presence; every third beat recheck accounts."""
        now_mono, now_wall = time.monotonic(), time.time()
        ping = json.dumps({"type": "ping", "t": now_wall})
        for conn in list(self.connections):
            if conn.buffering:
                continue
            if now_mono - conn.last_seen > 2 * self.ping_interval + 1:
                self.kill(conn, CLOSE_HEARTBEAT, "no answer to ping")
            elif conn.expires_at is not None and now_wall >= conn.expires_at:
                self.kill(conn, CLOSE_AUTH, "登录已过期，请重新登录 (token expired)")
            else:
                self._enqueue(conn, ping)
        if revalidate:
            await self._revalidate()
        if self._redis is not None:
            await self._write_presence()

    async def _revalidate(self) -> None:
        """Roles and units are read from the database (as for REST): a disabled or moved user is cut off."""
        conns = [c for c in self.connections if c.actor.user_id is not None]
        if not conns:
            return
        ids = {c.actor.user_id for c in conns}

        def load() -> dict[int, tuple[str, int | None, bool]]:
            with self.services.sessions() as session:
                rows = session.execute(select(User.id, User.role, User.unit_id, User.active).where(User.id.in_(ids)))
                return {r.id: (r.role, r.unit_id, r.active) for r in rows}

        users = await asyncio.to_thread(load)
        for conn in conns:
            now = users.get(conn.actor.user_id or -1)
            if now is None or not now[2] or now[0] != conn.actor.role or now[1] != conn.actor.unit_id:
                self.kill(conn, CLOSE_AUTH, "账号已变更，请重新登录 (account changed)")

    # ------------------------------------------------------------------ presence
    async def presence(self) -> dict[str, Any]:
        """``{"type": "presence", "groups": [{role, unit_id, count, users}], "total", "workers"}``."""
        entries = [c.presence_entry() for c in self.connections]
        workers = 1
        if self._redis is not None:
            try:
                keys = [k async for k in self._redis.scan_iter(match=f"{self.namespace}:presence:*", count=200)]
                pipe = self._redis.pipeline(transaction=False)
                for key in keys:
                    pipe.hvals(key)
                results = await pipe.execute()
                entries = [json.loads(v) for values in results for v in values]
                workers = len(keys) or 1
            except Exception:
                log.warning("presence: Redis unavailable, showing this worker only")
        groups: dict[tuple[str, int | None], dict[str, Any]] = {}
        for e in entries:
            g = groups.setdefault(
                (e.get("role") or "", e.get("unit_id")),
                {"role": e.get("role"), "unit_id": e.get("unit_id"), "count": 0, "users": {}},
            )
            g["count"] += 1
            g["users"].setdefault(e.get("user_id"), {"user_id": e.get("user_id"), "name": e.get("name"),
                                                      "connections": 0})
            g["users"][e.get("user_id")]["connections"] += 1
        out = []
        for g in sorted(groups.values(), key=lambda g: (str(g["role"]), g["unit_id"] or 0)):
            g["users"] = sorted(g["users"].values(), key=lambda u: str(u["name"]))
            out.append(g)
        return {
            "type": "presence",
            "groups": out,
            "total": len(entries),
            "users": len({e.get("user_id") for e in entries}),
            "workers": workers,
            "at": datetime.now(UTC).isoformat(),
        }

    async def _announce_presence(self, conn: Connection, *, joined: bool) -> None:
        if self._redis is not None:
            try:
                if joined:
                    pipe = self._redis.pipeline(transaction=True)
                    pipe.hset(self.presence_key, conn.conn_id, json.dumps(conn.presence_entry(), ensure_ascii=False))
                    pipe.expire(self.presence_key, int(self.presence_ttl))
                    await pipe.execute()
                else:
                    await self._redis.hdel(self.presence_key, conn.conn_id)
                await self._redis.publish(self.presence_channel, self.hub_id)
            except Exception:
                log.warning("presence: could not update Redis")
        self._mark_presence_dirty()

    async def _write_presence(self) -> None:
        """Rewrite this hub's hash (self-healing) and push its expiry forward."""
        try:
            pipe = self._redis.pipeline(transaction=True)
            pipe.delete(self.presence_key)
            mapping = {c.conn_id: json.dumps(c.presence_entry(), ensure_ascii=False) for c in self.connections}
            if mapping:
                pipe.hset(self.presence_key, mapping=mapping)
                pipe.expire(self.presence_key, int(self.presence_ttl))
            await pipe.execute()
        except Exception:
            log.warning("presence: could not refresh Redis")

    def _mark_presence_dirty(self) -> None:
        if self._presence_dirty is not None:
            self._presence_dirty.set()

    async def _presence_pusher(self) -> None:
        """Debounced: a burst of logins (a shift change) becomes one push per half second."""
        assert self._presence_dirty is not None
        while True:
            await self._presence_dirty.wait()
            await asyncio.sleep(0.5)
            self._presence_dirty.clear()
            watchers = [c for c in self.connections if c.actor.role in PRESENCE_ROLES and not c.buffering]
            if not watchers:
                continue
            try:
                snapshot = await self.presence()
            except Exception:
                log.exception("presence snapshot failed")
                continue
            text = json.dumps(snapshot, ensure_ascii=False, default=str)
            for conn in watchers:
                self._enqueue(conn, text)

    async def _presence_listener(self) -> None:
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.presence_channel)
                async for raw in pubsub.listen():
                    if raw.get("type") == "message":
                        self._mark_presence_dirty()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("presence subscription lost; retrying in 1 s")
                await asyncio.sleep(1)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()


class FrameTooBig(Exception):
    pass


async def _receive_text(ws: WebSocket, limit: int) -> str | None:
    """The next text frame; ``None`` for a binary one (``receive_text`` would raise ``KeyError`` on it).
    ``FrameTooBig`` when either kind has more than ``limit`` bytes."""
    message = await ws.receive()
    if message.get("type") == "websocket.disconnect":
        raise WebSocketDisconnect(int(message.get("code") or 1000), message.get("reason"))
    text = message.get("text")
    data = message.get("bytes")
    size = len(text.encode("utf-8", "surrogatepass")) if isinstance(text, str) else len(data or b"")
    if size > limit:
        raise FrameTooBig
    return text if isinstance(text, str) else None


def _token_expiry(token: str) -> float | None:
    """The JWT's ``exp`` (already verified by ``actor_from_token``), so the channel ends with the shift."""
    try:
        payload = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    exp = payload.get("exp")
    return float(exp) if isinstance(exp, int | float) else None


async def _close(ws: WebSocket, code: int, reason: str) -> None:
    """Close with a reason; the protocol allows 123 bytes of it (Chinese is 3 bytes a character)."""
    data = reason.encode()[:123]
    with contextlib.suppress(Exception):
        await ws.close(code=code, reason=data.decode(errors="ignore"))
