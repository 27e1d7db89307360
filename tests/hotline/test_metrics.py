"""Prometheus metrics at /metrics: protected, by route template, intake and workflow counted, database figures read
at scrape time, and every API worker's figures added up in multiprocess mode."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from hotline.migrate import upgrade
from tests import infra
from tests.conftest import REPO, City, act, submit

METRICS_TOKEN = "scraper-token-0123456789"


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(text: str, name: str, **labels: str) -> float:
    return samples(text).get((name, frozenset(labels.items())), 0.0)


def scrape(client: TestClient, city: City) -> str:
    response = client.get("/metrics", headers=city.headers("admin"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_metrics_need_the_scraper_token_or_an_admin(client: TestClient, city: City) -> None:
    refused = client.get("/metrics")
    assert refused.status_code == 401 and refused.json()["detail"].startswith("请提供运行指标令牌")
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics", headers=city.headers("agent")).status_code == 403
    assert client.get("/metrics", headers={"Authorization": "Bearer demo-phone-key"}).status_code == 403
    assert client.get("/metrics", headers=city.headers("admin")).status_code == 200
    client.app.state.services.settings.metrics_token = METRICS_TOKEN  # type: ignore[attr-defined]
    assert client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).status_code == 200


def test_an_intake_and_an_action_show_in_the_scrape(client: TestClient, city: City) -> None:
    before = scrape(client, city)
    ticket = submit(client, city)
    assert act(client, city, "agent", ticket["id"], "dispatch", unit_id=city.ids["unit:cjjd"]).status_code == 200
    client.get("/api/tickets/999999", headers=city.headers("agent"))
    after = scrape(client, city)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("hotline_intake_total", channel="phone", outcome="created") == 1
    assert grew("hotline_workflow_actions_total", action="dispatch") == 1
    route = "/api/tickets/{ticket_id}/actions/{action}"
    assert grew("hotline_http_requests_total", method="POST", route=route, status="200") == 1
    assert grew("hotline_http_requests_total", method="GET", route="/api/tickets/{ticket_id}", status="404") == 1
    assert grew("hotline_http_request_duration_seconds_count", method="POST", route="/api/intake") == 1
    # the route's template is the label, never the id asked for (values such as a sum of 0.0999999 s may hold it)
    labels = [line.rsplit(" ", 1)[0] for line in after.splitlines() if line.startswith("hotline_http")]
    assert not any("999999" in label for label in labels)
    # read from the database at scrape time
    assert value(after, "hotline_open_tickets", unit="mh-dh-cj") == 1
    assert value(after, "hotline_overdue_tickets", unit="mh-dh-cj") == 0
    assert value(after, "hotline_database_scrape_ok") == 1


@pytest.mark.postgres
@pytest.mark.slow
def test_two_api_workers_report_one_sum_and_a_killed_worker_is_marked_dead(tmp_path: Path) -> None:
    db_url = infra.fresh_postgres_database()
    upgrade(db_url)
    port = infra._free_port()
    metrics_dir = tmp_path / "metrics"
    env = {**os.environ, "HOTLINE_DEMO": "1", "HOTLINE_DATABASE_URL": db_url, "HOTLINE_METRICS_TOKEN": METRICS_TOKEN,
           "HOTLINE_MODEL_DIR": str(tmp_path / "no-model"), "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}
    env.pop("HOTLINE_REDIS_URL", None)
    server = subprocess.Popen([sys.executable, "-m", "hotline.cli", "serve", "--workers", "2", "--port", str(port)],
                              cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                              stderr=(tmp_path / "server.log").open("wb"), start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {METRICS_TOKEN}"}

    def figures() -> str:
        response = httpx.get(f"{base}/metrics", headers=auth, timeout=10)
        assert response.status_code == 200, response.text
        return response.text

    def live_workers() -> float:
        return value(figures(), "hotline_processes", kind="api")

    def wait_for(condition: object, what: str, seconds: float = 90) -> None:
        deadline = time.monotonic() + seconds
        while True:
            try:
                if callable(condition) and condition():
                    return
            except httpx.HTTPError:
                pass
            assert server.poll() is None, "the server exited: " + (tmp_path / "server.log").read_text()[-3000:]
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.2)

    try:
        wait_for(lambda: live_workers() == 2, "both workers to start")
        for n in range(40):  # a new connection each, so the kernel spreads them over both workers
            response = httpx.post(f"{base}/api/intake", timeout=30,
                                  headers={"Authorization": "Bearer demo-phone-key", "Connection": "close"},
                                  json={"channel": "phone", "external_id": f"call-{n}", "text": f"路灯坏了 {n} 号"})
            assert response.status_code == 201, response.text
        def writers() -> set[int]:  # the workers that have counted something (the supervisor's own files aside)
            return {int(p.stem.rsplit("_", 1)[1]) for p in metrics_dir.glob("counter_*.db")} - {server.pid}

        worker_pids = writers()
        assert len(worker_pids) == 2, "both workers should have counted something"
        for _ in range(6):  # whichever worker answers the scrape, the sum is the same
            assert value(figures(), "hotline_intake_total", channel="phone", outcome="created") == 40
        os.kill(next(iter(worker_pids)), signal.SIGKILL)
        wait_for(lambda: live_workers() == 2 and len(writers() - worker_pids) == 1,
                 "the supervisor to restart the killed worker and the scrape to count the live ones only")
        assert value(figures(), "hotline_intake_total", channel="phone", outcome="created") == 40  # kept
        assert value(figures(), "hotline_open_tickets", unit="none") == 40
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)


@pytest.mark.postgres
@pytest.mark.slow
def test_hotline_worker_serves_its_sweeps_and_the_outbox_backlog_on_its_metrics_port(tmp_path: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from hotline import outbox
    from hotline.db import make_engine, make_sessionmaker
    from tests.processes import Stack, seed_directory, wait_until

    db_url = infra.fresh_postgres_database()
    upgrade(db_url)
    seed_directory(db_url, tmp_path)
    engine = make_engine(db_url)
    with make_sessionmaker(engine).begin() as session:  # an SMS due tomorrow: waiting in the backlog, not sent
        outbox.enqueue(session, channel="phone", kind="ticket_received", key="metrics-port-sms",
                       payload={"text": "您的诉求已受理"}, recipient="13900000000",
                       due=datetime.now(UTC) + timedelta(days=1))
    engine.dispose()
    port = infra._free_port()
    stack = Stack(db_url, tmp_path, extra_env={"HOTLINE_WORKER_METRICS_PORT": str(port)})
    try:
        worker = stack.worker()

        def sweeps() -> float:
            assert worker.alive(), worker.output()[-3000:]
            try:
                return value(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text,
                             "hotline_sweep_duration_seconds_count")
            except httpx.HTTPError:
                return 0.0

        wait_until(lambda: sweeps() >= 2, 90, "the worker to report two sweeps")  # a sweep every second
        figures = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert value(figures, "hotline_outbox_backlog", channel="phone", state="pending") == 1
        assert value(figures, "hotline_database_scrape_ok") == 1
        assert value(figures, "hotline_processes", kind="worker") == 1
        assert value(figures, "hotline_sweep_duration_seconds_sum") > 0
    finally:
        stack.close()
