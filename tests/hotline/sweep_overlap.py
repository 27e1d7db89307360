"""Two sweeps that provably overlap: A stops right after its first ``UPDATE tickets … RETURNING``, holding the row
locks of the tickets it raised; B starts and must wait for those locks (PostgreSQL: its backend waits on a ``Lock``;
SQLite: on the database write lock); only then is A released."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.orm import Session

from hotline.services import Services

WAIT = 20.0


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def overlapping_sweeps(services: Services, run: Callable[[Session], Any]) -> tuple[Any, Any]:
    """Run ``run(session)`` (then commit) as worker A and as worker B, overlapping as described above."""
    postgres = services.engine.dialect.name == "postgresql"
    a_paused, release_a = threading.Event(), threading.Event()
    a_ident: list[int] = []
    results: dict[str, Any] = {}
    failures: list[BaseException] = []
    b_pid: list[int] = []

    def pause_a_after_update(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if (a_ident and threading.get_ident() == a_ident[0] and not a_paused.is_set()
                and statement.lstrip().upper().startswith("UPDATE TICKETS")):
            a_paused.set()
            release_a.wait(WAIT)

    def worker(name: str) -> None:
        try:
            with services.sessions() as session:
                if name == "A":
                    a_ident.append(threading.get_ident())
                elif postgres:
                    b_pid.append(int(session.execute(text("SELECT pg_backend_pid()")).scalar_one()))
                results[name] = run(session)
                session.commit()
        except BaseException as exc:  # pragma: no cover - re-raised below
            failures.append(exc)
            a_paused.set()

    event.listen(services.engine, "after_cursor_execute", pause_a_after_update)
    try:
        a = threading.Thread(target=worker, args=("A",))
        a.start()
        assert a_paused.wait(WAIT), "worker A never reached its UPDATE"
        b = threading.Thread(target=worker, args=("B",))
        b.start()
        if postgres:
            _wait_for(lambda: bool(b_pid), "worker B's connection")
            with services.engine.connect() as probe:
                def b_waits_for_a_lock() -> bool:
                    row = probe.execute(
                        text("SELECT wait_event_type, query FROM pg_stat_activity WHERE pid = :pid"),
                        {"pid": b_pid[0]},
                    ).one()
                    probe.rollback()  # a fresh snapshot of pg_stat_activity on each look
                    return row.wait_event_type == "Lock" and row.query.lstrip().upper().startswith("UPDATE TICKETS")

                _wait_for(b_waits_for_a_lock, "worker B to block on worker A's row locks")
        else:
            time.sleep(0.5)  # B is in BEGIN IMMEDIATE, behind A's write lock
        assert b.is_alive() and "B" not in results, "worker B finished while worker A held its locks"
        release_a.set()
        a.join(WAIT)
        b.join(WAIT)
        assert not a.is_alive() and not b.is_alive()
    finally:
        release_a.set()
        event.remove(services.engine, "after_cursor_execute", pause_a_after_update)
    if failures:
        raise failures[0]
    return results["A"], results["B"]
