"""Liveness and readiness: what a load balancer or an orchestrator asks before it sends a process traffic.

- **alive** (``/healthz``): the process answers HTTP. No dependency is touched, so a database outage never makes
  the orchestrator kill every API process at once (they recover by themselves when the database is back).
- **ready** (``/readyz``): this process can do its work now — the database answers, its schema is at the newest
  Alembic revision, Redis answers when the deployment has one, and the classifier model is loaded.

Every check runs in a thread under ``CHECK_TIMEOUT_S``: a stopped server refuses at once, an unreachable one must
not hold the probe for a TCP timeout. A check still running from an earlier probe (a connection hanging on a
blackholed host) is reported as failing instead of starting a second one, so probes never pile up threads.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import redis
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Engine

from hotline.migrate import alembic_config
from hotline.services import Services

CHECK_TIMEOUT_S = 1.0


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str  # English, for operators and logs
    zh: str  # the same for a person on the admin desk

    def as_json(self) -> dict[str, object]:
        return {"ok": self.ok, "detail": self.detail, "zh": self.zh}


class CheckFailed(Exception):
    def __init__(self, detail: str, zh: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.zh = zh


@lru_cache
def migration_heads() -> frozenset[str]:
    """The newest revision(s) this code ships; read once per process (the code does not change while it runs)."""
    return frozenset(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads())


def check_database(engine: Engine) -> str:
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        raise CheckFailed(f"database unreachable: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}",
                          "数据库无法连接") from exc
    return f"{engine.dialect.name} answers"


def check_migrations(engine: Engine) -> str:
    try:
        with engine.connect() as conn:
            current = frozenset(MigrationContext.configure(conn).get_current_heads())
    except Exception as exc:
        raise CheckFailed(f"cannot read the schema revision: {type(exc).__name__}", "无法读取数据库结构版本") from exc
    heads = migration_heads()
    if current != heads:
        have = ", ".join(sorted(current)) or "none"
        raise CheckFailed(f"database schema is at {have}, the code needs {', '.join(sorted(heads))}; "
                          "run `hotline migrate`", "数据库结构不是最新版本，请先执行 hotline migrate")
    return f"at {', '.join(sorted(heads))}"


def check_redis(url: str) -> str:
    client = redis.Redis.from_url(url, socket_timeout=CHECK_TIMEOUT_S, socket_connect_timeout=CHECK_TIMEOUT_S)
    try:
        client.ping()
    except redis.RedisError as exc:
        raise CheckFailed(f"Redis unreachable: {exc}", "Redis 无法连接") from exc
    finally:
        client.close()
    return "answers"


def check_model(services: Services) -> str:
    model = getattr(services.suggester, "model", None)
    if model is None:
        raise CheckFailed(f"no classifier model loaded (looked in {services.settings.model_dir}); "
                          "train one with `hotline nlp train` or `hotline nlp starter`", "分类模型未加载")
    return f"model {getattr(model, 'version', 'unknown')}"


_running: set[str] = set()
_running_lock = threading.Lock()


async def _run(owner: object, name: str, check: Callable[[], str]) -> CheckResult:
    key = f"{id(owner)}:{name}"
    with _running_lock:
        if key in _running:
            return CheckResult(name, False, f"the previous {name} check has not returned yet", "上一次检查仍未返回")
        _running.add(key)

    def guarded() -> str:
        try:
            return check()
        finally:
            with _running_lock:
                _running.discard(key)

    try:
        detail = await asyncio.wait_for(asyncio.to_thread(guarded), CHECK_TIMEOUT_S)
    except CheckFailed as exc:
        return CheckResult(name, False, exc.detail, exc.zh)
    except TimeoutError:
        return CheckResult(name, False, f"{name} did not answer within {CHECK_TIMEOUT_S:g} s", "检查超时")
    except Exception as exc:  # a check must report, never raise into the probe
        return CheckResult(name, False, f"{type(exc).__name__}: {exc}", "检查出错")
    return CheckResult(name, True, detail, "正常")


async def readiness(services: Services) -> list[CheckResult]:
    """Every readiness check, run side by side (the probe takes as long as the slowest, at most the timeout)."""
    checks: dict[str, Callable[[], str]] = {
        "database": lambda: check_database(services.engine),
        "migrations": lambda: check_migrations(services.engine),
        "model": lambda: check_model(services),
    }
    if services.settings.redis_url:
        url = services.settings.redis_url
        checks["redis"] = lambda: check_redis(url)
    return list(await asyncio.gather(*(_run(services, name, check) for name, check in checks.items())))
