"""Failed sign-ins: after `limit` failures for one key (email + address) within `window`, the
key is refused until the oldest of those failures leaves the window."""

from __future__ import annotations

import threading
from collections import deque
from datetime import datetime, timedelta

MAX_KEYS = 10_000


class LoginThrottle:
    def __init__(self, *, limit: int = 5, window: timedelta = timedelta(minutes=15)) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[str, deque[datetime]] = {}
        self._lock = threading.Lock()

    def retry_after(self, key: str, now: datetime) -> timedelta | None:
        """How long `key` must still wait, or None if it may try now."""
        with self._lock:
            failures = self._recent(key, now)
            if len(failures) < self.limit:
                return None
            return failures[-self.limit] + self.window - now

    def record_failure(self, key: str, now: datetime) -> None:
        with self._lock:
            if len(self._failures) >= MAX_KEYS:
                self._forget_stale(now)
            self._recent(key, now).append(now)

    def reset(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def _recent(self, key: str, now: datetime) -> deque[datetime]:
        failures = self._failures.setdefault(key, deque())
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        return failures

    def _forget_stale(self, now: datetime) -> None:
        for key in [k for k, v in self._failures.items() if not v or v[-1] <= now - self.window]:
            del self._failures[key]
        while len(self._failures) >= MAX_KEYS:  # all recent: drop the oldest-inserted keys
            del self._failures[next(iter(self._failures))]
