"""Fixed-window rate limits and one-time keys for the public endpoints, kept in Redis when the deployment has it
(every API process shares the counts) and in this process otherwise (the embedded single-process default).

A window is ``window_s`` long and starts at a multiple of it; a key over its limit is told how many seconds remain
(``Retry-After``). If Redis stops answering, the process falls back to its own counts rather than refusing citizens.
"""

from __future__ import annotations

import logging
import threading
import time

import redis

log = logging.getLogger(__name__)


class RateLimiter:
    def __init__(self, redis_url: str | None = None, namespace: str = "hotline:rl") -> None:
        self._redis = redis.Redis.from_url(redis_url, socket_timeout=1, socket_connect_timeout=1) if redis_url else None
        self._namespace = namespace
        self._lock = threading.Lock()
        self._counts: dict[str, tuple[int, float]] = {}  # key -> (count, expires at)

    def _local_incr(self, key: str, ttl: float, now: float) -> int:
        with self._lock:
            if len(self._counts) > 100_000:  # forget expired keys now and then
                self._counts = {k: v for k, v in self._counts.items() if v[1] > now}
            count, expires = self._counts.get(key, (0, now + ttl))
            if expires <= now:
                count, expires = 0, now + ttl
            self._counts[key] = (count + 1, expires)
            return count + 1

    def _incr(self, key: str, ttl: int, now: float) -> int:
        if self._redis is not None:
            try:
                pipe = self._redis.pipeline()
                pipe.incr(f"{self._namespace}:{key}")
                pipe.expire(f"{self._namespace}:{key}", ttl, nx=True)
                count, _ = pipe.execute()
                return int(count)
            except redis.RedisError as exc:
                log.warning("rate limits fall back to this process: %s", exc)
        return self._local_incr(key, ttl, now)

    def hit(self, name: str, client: str, limit: int, window_s: int, now: float | None = None) -> int | None:
        """Count one request of ``client`` against ``name``; ``None`` if allowed, else the seconds to wait."""
        now = time.time() if now is None else now
        window = int(now // window_s)
        count = self._incr(f"{name}:{client}:{window}", window_s, now)
        if count <= limit:
            return None
        return max(1, int((window + 1) * window_s - now))

    def first_use(self, key: str, ttl_s: int, now: float | None = None) -> bool:
        """True the first time ``key`` is used within ``ttl_s`` (a one-time challenge), False after."""
        now = time.time() if now is None else now
        return self._incr(f"once:{key}", ttl_s, now) == 1
