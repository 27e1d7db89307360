"""Login throttling: failed logins per account and per client address, with exponential back-off.

Each key (``account:<username>``, ``address:<ip>``) counts its failed logins; after ``free`` failures every further
attempt must wait ``base × 2^(failures − free)`` seconds (at most ``max_wait``) from the last failure, and a key
without a failure for ``forget_after`` seconds starts afresh. A refused attempt is answered before the password is
hashed, so a flood of logins costs the server almost nothing. A success clears the account's count, never the
address's (a call centre behind one address keeps logging in while an attacker there is slowed down).

Unknown and known usernames are throttled alike, so the throttle does not tell which accounts exist. With
``HOTLINE_REDIS_URL`` the counts live in Redis and every API worker shares them; otherwise in this process. If
Redis cannot be reached the process's own counts are used, so logins keep working.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Policy:
    account_free: int = 5
    address_free: int = 30
    base: float = 1.0
    max_wait: float = 15 * 60.0
    forget_after: float = 60 * 60.0

    def wait(self, failures: int, free: int, last_failure: float, now: float) -> float:
        if failures < free:
            return 0.0
        backoff = min(self.base * 2 ** min(failures - free, 32), self.max_wait)
        return max(0.0, last_failure + backoff - now)


class LoginGuard:
    def __init__(self, policy: Policy | None = None, redis_url: str | None = None, namespace: str = "hotline",
                 clock: Any = time.time) -> None:
        self.policy = policy or Policy()
        self.namespace = namespace
        self.clock = clock
        self._local: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()
        self._redis: Any = None
        if redis_url:
            import redis

            self._redis = redis.Redis.from_url(redis_url, socket_timeout=1, socket_connect_timeout=1)

    def _keys(self, username: str, address: str | None) -> list[tuple[str, int]]:
        keys = [(f"account:{username.casefold()}", self.policy.account_free)]
        if address:
            keys.append((f"address:{address}", self.policy.address_free))
        return keys

    def retry_after(self, username: str, address: str | None) -> int:
        """Seconds until this login may be tried (0: now)."""
        now = self.clock()
        waits = []
        for key, free in self._keys(username, address):
            failures, last = self._get(key)
            waits.append(self.policy.wait(failures, free, last, now))
        return math.ceil(max(waits, default=0.0))

    def failed(self, username: str, address: str | None) -> None:
        now = self.clock()
        for key, _ in self._keys(username, address):
            self._add(key, now)

    def succeeded(self, username: str) -> None:
        key = f"account:{username.casefold()}"
        if self._redis is not None:
            try:
                self._redis.delete(self._redis_key(key))
            except Exception:
                log.warning("login guard: Redis unavailable, clearing the local count only")
        with self._lock:
            self._local.pop(key, None)

    # --- storage -----------------------------------------------------------------------------------------------
    def _redis_key(self, key: str) -> str:
        return f"{self.namespace}:login:{key}"

    def _get(self, key: str) -> tuple[int, float]:
        if self._redis is not None:
            try:
                failures, last = self._redis.hmget(self._redis_key(key), "failures", "last")
                return int(failures or 0), float(last or 0.0)
            except Exception:
                log.warning("login guard: Redis unavailable, using this process's counts")
        with self._lock:
            failures, last = self._local.get(key, (0, 0.0))
            if failures and self.clock() - last > self.policy.forget_after:
                self._local.pop(key, None)
                return 0, 0.0
            return failures, last

    def _add(self, key: str, now: float) -> None:
        if self._redis is not None:
            try:
                pipe = self._redis.pipeline(transaction=True)
                name = self._redis_key(key)
                pipe.hincrby(name, "failures", 1)
                pipe.hset(name, "last", repr(now))
                pipe.expire(name, int(self.policy.forget_after))
                pipe.execute()
                return
            except Exception:
                log.warning("login guard: Redis unavailable, counting in this process")
        with self._lock:
            failures, last = self._local.get(key, (0, 0.0))
            if failures and now - last > self.policy.forget_after:
                failures = 0
            self._local[key] = (failures + 1, now)
            if len(self._local) > 100_000:  # a flood of invented usernames must not grow memory without end
                oldest = sorted(self._local.items(), key=lambda item: item[1][1])[: len(self._local) // 2]
                for stale, _ in oldest:
                    self._local.pop(stale, None)
