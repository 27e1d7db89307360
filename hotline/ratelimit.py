"""Rate limits and throttles, kept in Redis when the deployment has it (every API process shares the counts) and
in this process otherwise (the embedded single-process default). One backend, ``Counters``, serves them all: the
fixed-window limits here (the citizen page, the channel webhooks, Open311 clients) and the login back-off of
``hotline.login_guard``. If Redis stops answering, the process falls back to its own counts rather than refusing
citizens, and logs it.

A fixed window is ``window_s`` long and starts at a multiple of it; a key over its limit is told how many seconds
remain (``Retry-After``).

Per-client limits of the webhooks (``WEBHOOK_LIMITS``; what each channel answers when one is hit is its own
protocol's business, see README "Rate limits"):

- ``wechat_address``: pushes per sending address, before the body is read. WeChat's servers send every citizen's
  messages from a few addresses, so this only stops a flood from elsewhere.
- ``wechat_openid``: one citizen's messages (per openid); the citizen is answered, so WeChat does not retry.
- ``forum_board``: signed pushes per board; ``twilio_caller``: new calls per calling number; ``open311_key``:
  requests per Open311 client (api_key).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass

import redis

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limit:
    count: int
    window_s: int


WEBHOOK_LIMITS: Mapping[str, Limit] = {
    "wechat_address": Limit(3000, 60),
    "wechat_openid": Limit(20, 60),
    "forum_board": Limit(3000, 60),  # one trusted plugin; a backlog flush of 1,000 threads at once is normal
    "twilio_caller": Limit(10, 600),
    "open311_key": Limit(120, 60),
}


class Counters:
    """Counters with expiry and per-key failure records, in Redis when configured, else in this process."""

    def __init__(self, redis_url: str | None = None, namespace: str = "hotline") -> None:
        self._redis = redis.Redis.from_url(redis_url, socket_timeout=1, socket_connect_timeout=1) if redis_url else None
        self.namespace = namespace
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[int, float]] = {}  # key -> (count, expires at)
        self._failures: dict[str, tuple[int, float]] = {}  # key -> (failures, last failure)

    @property
    def shared(self) -> bool:
        return self._redis is not None

    def _key(self, key: str) -> str:
        return f"{self.namespace}:{key}"

    def incr(self, key: str, ttl_s: int, now: float) -> int:
        """Count one more for ``key`` (expiring ``ttl_s`` after its first count); the count so far."""
        if self._redis is not None:
            try:
                pipe = self._redis.pipeline()
                pipe.incr(self._key(key))
                pipe.expire(self._key(key), ttl_s, nx=True)
                count, _ = pipe.execute()
                return int(count)
            except redis.RedisError as exc:
                log.warning("rate limits fall back to this process: %s", exc)
        with self._lock:
            if len(self._counts) > 100_000:  # forget expired keys now and then
                self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
            count, expires = self._counts.get(key, (0, now + ttl_s))
            if expires <= now:
                count, expires = 0, now + ttl_s
            self._counts[key] = (count + 1, expires)
            return count + 1

    def failures(self, key: str, forget_after_s: float, now: float) -> tuple[int, float]:
        """(failures, time of the last) for ``key``; (0, 0.0) when none within ``forget_after_s``."""
        if self._redis is not None:
            try:
                stored_failures, stored_last = self._redis.hmget(self._key(key), "failures", "last")
                return int(stored_failures or 0), float(stored_last or 0.0)
            except redis.RedisError as exc:
                log.warning("throttle counts fall back to this process: %s", exc)
        with self._lock:
            failures, last = self._failures.get(key, (0, 0.0))
            if failures and now - last > forget_after_s:
                self._failures.pop(key, None)
                return 0, 0.0
            return failures, last

    def add_failure(self, key: str, forget_after_s: float, now: float) -> None:
        if self._redis is not None:
            try:
                pipe = self._redis.pipeline(transaction=True)
                pipe.hincrby(self._key(key), "failures", 1)
                pipe.hset(self._key(key), "last", repr(now))
                pipe.expire(self._key(key), int(forget_after_s))
                pipe.execute()
                return
            except redis.RedisError as exc:
                log.warning("throttle counts fall back to this process: %s", exc)
        with self._lock:
            failures, last = self._failures.get(key, (0, 0.0))
            if failures and now - last > forget_after_s:
                failures = 0
            self._failures[key] = (failures + 1, now)
            if len(self._failures) > 100_000:  # a flood of invented keys must not grow memory without end
                oldest = sorted(self._failures.items(), key=lambda item: item[1][1])[: len(self._failures) // 2]
                for stale, _ in oldest:
                    self._failures.pop(stale, None)

    def clear(self, key: str) -> None:
        if self._redis is not None:
            try:
                self._redis.delete(self._key(key))
            except redis.RedisError as exc:
                log.warning("throttle: Redis unavailable, clearing the local count only: %s", exc)
        with self._lock:
            self._failures.pop(key, None)


class RateLimiter:
    def __init__(self, counters: Counters | None = None) -> None:
        self.counters = counters or Counters()

    def hit(self, name: str, client: str, limit: int, window_s: int, now: float | None = None) -> int | None:
        """Count one request of ``client`` against ``name``; ``None`` if allowed, else the seconds to wait."""
        now = time.time() if now is None else now
        window = int(now // window_s)
        count = self.counters.incr(f"rl:{name}:{client}:{window}", window_s, now)
        if count <= limit:
            return None
        return max(1, int((window + 1) * window_s - now))

    def webhook(self, name: str, client: str) -> int | None:
        """One request against a webhook limit of ``WEBHOOK_LIMITS``; ``None`` if allowed, else seconds to wait."""
        limit = WEBHOOK_LIMITS[name]
        return self.hit(name, client[:200], limit.count, limit.window_s)

    def first_use(self, key: str, ttl_s: int, now: float | None = None) -> bool:
        """True the first time ``key`` is used within ``ttl_s`` (a one-time challenge), False after."""
        now = time.time() if now is None else now
        return self.counters.incr(f"rl:once:{key}", ttl_s, now) == 1
