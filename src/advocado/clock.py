"""The one clock. Every read of "now" goes through here so tests and simulations can move time.

`ADVOCADO_NOW` (ISO 8601) pins the clock for a whole process; `set_now` pins it in-process.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

_pinned: datetime | None = None


def set_now(moment: datetime | None) -> None:
    global _pinned
    _pinned = moment.astimezone(UTC) if moment else None


def now() -> datetime:
    if _pinned is not None:
        return _pinned
    env = os.environ.get("ADVOCADO_NOW")
    if env:
        moment = datetime.fromisoformat(env)
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)
    return datetime.now(UTC)
