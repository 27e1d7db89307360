"""Engine and session handling.

One transaction per request or job: business functions only ``flush``; the request/job boundary commits. Ticket
events are buffered on the session (``session.info``) and published by the ``after_commit`` hook, so nobody is told
about a change that was rolled back. A savepoint (``session.begin_nested()``, the worker's one per message of a batch)
is no boundary: its events are published with the outermost commit, and a savepoint rolled back drops only the
events queued inside it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import DeclarativeBase, Session, SessionTransaction, sessionmaker

PENDING_EVENTS = "pending_events"
#: per open savepoint, how many events were pending when it began (a rollback to it drops the ones after)
_SAVEPOINT_MARKS = "pending_event_marks"
#: seconds to wait for a PostgreSQL connection: a server that is down or unreachable is an error in this time, not a
#: request hanging for the operating system's TCP timeout (minutes)
CONNECT_TIMEOUT_SECONDS = 3
# SQLSTATE classes that mean "no usable connection": 08 connection exception, 57P01-57P03 the server is shutting
# down, restarting or not accepting connections yet
_UNREACHABLE_SQLSTATES = ("08", "57P01", "57P02", "57P03")
Publisher = Callable[[list[dict[str, Any]]], None]


class Base(DeclarativeBase):
    pass


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create the engine; SQLite gets WAL and ``BEGIN IMMEDIATE``.

    SQLite's default deferred transactions fail with "database is locked" when two readers both try to upgrade to
    a writer; taking the write lock at BEGIN serialises writers cleanly (the embedded demo has a handful of users,
    PostgreSQL is the production path).
    """
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # let SQLAlchemy's begin hook emit BEGIN itself
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            # WAL with synchronous=NORMAL survives a crash of the process (every commit is in the log); only a power
            # loss may drop the last commits. The embedded default trades that for commits without an fsync each.
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    kwargs.setdefault("pool_size", 20)
    kwargs.setdefault("max_overflow", 40)
    # pre-ping replaces a pooled connection the server dropped (a restart) before it is used, so the service recovers
    # by itself once PostgreSQL is back; a failed ping or statement invalidates the pool's other idle connections too
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_timeout", 10)
    kwargs.setdefault("connect_args", {"connect_timeout": CONNECT_TIMEOUT_SECONDS})
    return create_engine(url, **kwargs)


def database_unreachable(exc: BaseException) -> bool:
    """Whether a database error means the server cannot be reached (down, restarting, connection lost), as opposed
    to a statement that failed on a working server (deadlock, lock timeout, SQLite busy)."""
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    sqlstate = getattr(exc.orig, "sqlstate", False)
    if sqlstate is False:  # not psycopg (SQLite): a locked file is busy, not unreachable
        return False
    # psycopg reports a failed connect (refused, timed out, reset) without a SQLSTATE
    return sqlstate is None or str(sqlstate).startswith(_UNREACHABLE_SQLSTATES)


def make_sessionmaker(engine: Engine, publish: Publisher | None = None) -> sessionmaker[Session]:
    factory = sessionmaker(bind=engine, expire_on_commit=False, autoflush=False)
    if publish is not None:
        attach_publisher(factory, publish)
    return factory


def attach_publisher(factory: sessionmaker[Session], publish: Publisher) -> None:
    """Call ``publish`` with a session's queued events once it has committed (and never after a rollback)."""
    publishers: list[Publisher] | None = getattr(factory, "_hotline_publishers", None)
    if publishers is not None:
        publishers.append(publish)
        return
    publishers = [publish]
    factory._hotline_publishers = publishers  # type: ignore[attr-defined]

    @event.listens_for(factory, "after_transaction_create")
    def _mark_savepoint(session: Session, transaction: SessionTransaction) -> None:
        if transaction.nested:
            marks = session.info.setdefault(_SAVEPOINT_MARKS, {})
            marks[transaction] = len(session.info.get(PENDING_EVENTS, ()))

    @event.listens_for(factory, "after_transaction_end")
    def _forget_savepoint(session: Session, transaction: SessionTransaction) -> None:
        if transaction.nested:
            session.info.get(_SAVEPOINT_MARKS, {}).pop(transaction, None)

    @event.listens_for(factory, "after_commit")
    def _publish_after_commit(session: Session) -> None:
        if session.in_nested_transaction():  # a savepoint released: its events wait for the outermost commit
            return
        pending = session.info.pop(PENDING_EVENTS, None)
        if pending:
            for each in publishers:
                each(pending)

    @event.listens_for(factory, "after_rollback")
    def _drop_after_rollback(session: Session) -> None:
        savepoint = session.get_nested_transaction()
        if savepoint is None:
            session.info.pop(PENDING_EVENTS, None)
            return
        mark = session.info.get(_SAVEPOINT_MARKS, {}).get(savepoint, 0)
        del session.info.get(PENDING_EVENTS, [])[mark:]


def queue_event(session: Session, message: dict[str, Any]) -> None:
    session.info.setdefault(PENDING_EVENTS, []).append(message)


@contextmanager
def transaction(factory: Callable[[], Session]) -> Iterator[Session]:
    """A job boundary: commit on success, roll back on any error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
