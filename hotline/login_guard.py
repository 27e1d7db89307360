"""Login throttling: failed logins per account and per client address, with exponential back-off.

Each key (``account:<username>``, ``address:<ip>``) counts its failed logins; after ``free`` failures every further
attempt must wait ``base × 2^(failures − free)`` seconds (at most ``max_wait``) from the last failure, and a key
without a failure for ``forget_after`` seconds starts afresh. A refused attempt is answered before the password is
hashed, so a flood of logins costs the server almost nothing. A success clears the account's count, never the
address's (a call centre behind one address keeps logging in while an attacker there is slowed down).

Unknown and known usernames are throttled alike, so the throttle does not tell which accounts exist. With
``HOTLINE_REDIS_URL`` the counts live in Redis and every API worker shares them; otherwise in this process — the
same backend as every other limit (``hotline.ratelimit.Counters``). If Redis cannot be reached the process's own
counts are used, so logins keep working.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from hotline.ratelimit import Counters


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
                 clock: Any = time.time, counters: Counters | None = None) -> None:
        self.policy = policy or Policy()
        self.clock = clock
        self.counters = counters or Counters(redis_url, namespace)

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
            failures, last = self.counters.failures(f"login:{key}", self.policy.forget_after, now)
            waits.append(self.policy.wait(failures, free, last, now))
        return math.ceil(max(waits, default=0.0))

    def failed(self, username: str, address: str | None) -> None:
        now = self.clock()
        for key, _ in self._keys(username, address):
            self.counters.add_failure(f"login:{key}", self.policy.forget_after, now)

    def succeeded(self, username: str) -> None:
        self.counters.clear(f"login:account:{username.casefold()}")
