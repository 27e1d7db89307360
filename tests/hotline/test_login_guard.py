"""Login is throttled per account and per client address, with back-off, and does not tell which users exist."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from hotline import auth
from hotline.errors import Unauthorized
from hotline.login_guard import LoginGuard, Policy
from tests import infra
from tests.conftest import City


def login(client: TestClient, username: str, password: str) -> int:
    return client.post("/api/auth/login", json={"username": username, "password": password}).status_code


def test_wrong_passwords_for_one_account_get_429_with_retry_after(client: TestClient, city: City) -> None:
    for _ in range(5):
        assert login(client, "agent", "wrong") == 401
    r = client.post("/api/auth/login", json={"username": "agent", "password": "agent123"})
    assert r.status_code == 429
    assert int(r.headers["Retry-After"]) >= 1
    assert "秒后再试" in r.json()["detail"] and r.json()["retry_after"] == int(r.headers["Retry-After"])
    assert login(client, "agent2", "agent2123") == 200  # other accounts are not locked out


def test_the_wait_doubles_and_a_success_clears_the_account() -> None:
    now = [1000.0]
    guard = LoginGuard(Policy(account_free=3, address_free=100), clock=lambda: now[0])
    for _ in range(3):
        assert guard.retry_after("agent", "10.0.0.1") == 0
        guard.failed("agent", "10.0.0.1")
    assert guard.retry_after("agent", "10.0.0.1") == 1
    now[0] += 1
    guard.failed("agent", "10.0.0.1")
    assert guard.retry_after("agent", "10.0.0.1") == 2
    now[0] += 2
    guard.failed("agent", "10.0.0.1")
    assert guard.retry_after("AGENT", "10.0.0.2") == 4  # the account, whatever the case or address
    now[0] += 4
    guard.succeeded("agent")
    assert guard.retry_after("agent", "10.0.0.1") == 0
    now[0] += 3600
    assert guard.retry_after("x", "10.0.0.1") == 0


def test_one_address_trying_many_usernames_is_slowed_down() -> None:
    now = [0.0]
    guard = LoginGuard(Policy(account_free=5, address_free=10), clock=lambda: now[0])
    for i in range(10):
        guard.failed(f"user{i}", "10.0.0.9")
    assert guard.retry_after("someone-else", "10.0.0.9") == 1
    assert guard.retry_after("someone-else", "10.0.0.10") == 0


def test_the_counts_are_shared_through_redis() -> None:
    redis_url = infra.require_redis()
    namespace = f"test-{time.time_ns()}"
    first = LoginGuard(Policy(account_free=2), redis_url=redis_url, namespace=namespace)
    second = LoginGuard(Policy(account_free=2), redis_url=redis_url, namespace=namespace)
    first.failed("agent", None)
    second.failed("agent", None)
    assert first.retry_after("agent", None) >= 1 and second.retry_after("agent", None) >= 1
    second.succeeded("agent")
    assert first.retry_after("agent", None) == 0


def test_an_unknown_user_costs_as_much_as_a_known_one(session: Session, city: City) -> None:
    def cost(username: str) -> float:
        started = time.perf_counter()
        with pytest.raises(Unauthorized):
            auth.authenticate(session, username, "wrong-password")
        return time.perf_counter() - started

    cost("nobody")  # the dummy hash is made once, on first use
    known = min(cost("agent") for _ in range(3))
    unknown = min(cost("nobody") for _ in range(3))
    assert 0.5 < unknown / known < 2, (known, unknown)
