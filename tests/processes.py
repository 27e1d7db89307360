"""The production shape as real processes: ``hotline serve --workers N`` and ``hotline worker`` on a database (and a
Redis) of the caller's choice, for the crash, restart and soak proofs (tests/hotline/test_survival.py,
bench/soak.py).

Each process runs in its own session (process group), so a test can SIGKILL one API worker or the whole server; its
output goes to a log file the test can read when something goes wrong.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
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
