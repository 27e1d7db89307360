"""The production shape as real processes: ``hotline serve --workers N`` and ``hotline worker`` on a database (and a
Redis) of the caller's choice, for the crash, restart and soak proofs (tests/hotline/test_survival.py,
bench/soak.py).

Each process runs in its own session (process group), so a test can SIGKILL one API worker or the whole server; its
output goes to a log file the test can read when something goes wrong.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
WEB_KEY = "demo-web-key"  # the demo city's key of the web channel (hotline.settings)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll ``condition`` until it returns something truthy; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def seed_directory(database_url: str, tmp: Path) -> None:
    """The demo city's directory and accounts (no tickets) on a migrated database."""
    from hotline.demo import seed_demo
    from hotline.services import build_services
    from hotline.settings import Settings

    settings = Settings(demo=True, database_url=database_url, redis_url=None, model_dir=tmp / "no-model",
                        embedded_worker=False)
    services = build_services(settings, load_model=False)
    try:
        seed_demo(services, ticket_limit=0)
    finally:
        services.engine.dispose()


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def children(self) -> list[int]:
        """Pids of the direct children (uvicorn's API worker processes under ``hotline serve --workers N``)."""
        path = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        return [int(p) for p in path.read_text().split()] if path.exists() else []

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL the whole process group: no handler, no cleanup, as a crash or the OOM killer."""
        if self.alive():
            os.killpg(self.pid, signal.SIGKILL)
        self.popen.wait()

    def stop(self) -> None:
        if self.alive():
            os.killpg(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Stack:
    """The API and the deadline worker as ``docker compose`` runs them, on ``database_url`` (and ``redis_url``)."""

    database_url: str
    tmp: Path
    redis_url: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: list[Process] = field(default_factory=list)
    port: int = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("HOTLINE_")}
        env.update({"HOTLINE_DEMO": "1", "HOTLINE_DATABASE_URL": self.database_url,
                    "HOTLINE_EMBEDDED_WORKER": "false", "HOTLINE_MODEL_DIR": str(self.tmp / "no-model"),
                    "HOTLINE_SWEEP_INTERVAL_SECONDS": "1", "PYTHONUNBUFFERED": "1"})
        if self.redis_url:
            env["HOTLINE_REDIS_URL"] = self.redis_url
        env.update(self.extra_env)
        return env

    def _start(self, name: str, *args: str) -> Process:
        log = self.tmp / f"{name}-{len(self.processes)}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen([sys.executable, "-m", "hotline.cli", *args], cwd=REPO, env=self.env(),
                                     stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        process = Process(name, popen, log)
        self.processes.append(process)
        return process

    def serve(self, workers: int = 2, timeout: float = 120) -> Process:
        self.port = self.port or free_port()
        server = self._start("serve", "serve", "--port", str(self.port), "--workers", str(workers))

        def ready() -> bool:
            assert server.alive(), f"hotline serve exited:\n{server.output()[-3000:]}"
            try:
                return httpx.get(f"{self.base}/healthz", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, timeout, "hotline serve to answer /healthz", interval=0.3)
        if workers > 1:
            wait_until(lambda: len(server.children()) >= workers, timeout, f"{workers} API workers")
        return server

    def worker(self) -> Process:
        return self._start("worker", "worker")

    def login(self, username: str) -> dict[str, str]:
        response = httpx.post(f"{self.base}/api/auth/login", json={"username": username,
                                                                    "password": username + "123"}, timeout=30)
        assert response.status_code == 200, response.text
        return {"Authorization": f"Bearer {response.json()['access_token']}"}

    def close(self) -> None:
        for process in reversed(self.processes):
            process.stop()


CHANNEL_HEADERS = {"Authorization": f"Bearer {WEB_KEY}"}


class DeskSocket:
    """A desk's live connection as ``agent_ui/static/js/live.js`` keeps it, in a thread: hello with the token (and
    ``last_event_id`` after a reconnect), pong to pings, reconnect on any close but 4401/4403, drop event ids it
    has seen. Records what each connection received, so a test can tell a server-side duplicate from a replay."""

    def __init__(self, ws_url: str, token: str) -> None:
        self.ws_url, self.token = ws_url, token
        self.seen: list[int] = []  # event ids in the order they were first received (what the desk shows)
        self.per_connection: list[list[int]] = []  # every event id each connection delivered, duplicates included
        self.close_codes: list[int | None] = []
        self.errors: list[str] = []
        self.connected = False  # a hello arrived on the current connection and it has not closed since
        self.disconnected_at: float | None = None  # monotonic time the last connection ended, while not connected
        self._seen_set: set[int] = set()
        self._stop = threading.Event()
        self._bounce = threading.Event()
        self._hello = threading.Event()
        self._thread = threading.Thread(target=self._run, name="desk-socket", daemon=True)

    def start(self, timeout: float = 30) -> DeskSocket:
        self._thread.start()
        assert self._hello.wait(timeout), f"no hello on {self.ws_url}: {self.errors[-3:]}"
        return self

    def bounce(self) -> None:
        """Close the current connection from the client side (a laptop lid, a flaky Wi-Fi); the desk reconnects with
        its ``last_event_id``. A close the desk asked for is not counted in ``close_codes`` or ``errors``."""
        self._bounce.set()

    @property
    def last_event_id(self) -> int | None:
        return max(self._seen_set) if self._seen_set else None

    def _run(self) -> None:
        from websockets.exceptions import ConnectionClosed, InvalidHandshake
        from websockets.sync.client import connect

        attempt = 0
        while not self._stop.is_set():
            received: list[int] = []
            try:
                with connect(self.ws_url, open_timeout=10, close_timeout=2) as ws:
                    hello: dict[str, Any] = {"token": self.token}
                    if self.last_event_id is not None:
                        hello["last_event_id"] = self.last_event_id
                    ws.send(json.dumps(hello))
                    self.per_connection.append(received)
                    while not self._stop.is_set() and not self._bounce.is_set():
                        try:
                            raw = ws.recv(timeout=0.5)
                        except TimeoutError:
                            continue
                        message = json.loads(raw)
                        if message.get("type") == "ping":
                            ws.send(json.dumps({"type": "pong", "t": message.get("t")}))
                        elif message.get("type") == "hello":
                            attempt = 0
                            self.connected, self.disconnected_at = True, None
                            self._hello.set()
                        elif "event_id" in message:
                            received.append(int(message["event_id"]))
                            if message["event_id"] not in self._seen_set:
                                self._seen_set.add(int(message["event_id"]))
                                self.seen.append(int(message["event_id"]))
            except ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd is not None else None
                self.close_codes.append(code)
                if code in (4401, 4403):
                    return
            except (OSError, InvalidHandshake, TimeoutError) as exc:
                self.errors.append(repr(exc))
            finally:
                if self.connected:
                    self.connected, self.disconnected_at = False, time.monotonic()
            self._bounce.clear()
            attempt += 1
            self._stop.wait(min(5.0, 0.2 * 2 ** min(attempt, 5)))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
