"""The K-factor's time to first referral from whole microseconds (count, sum, middle) equals
the summary of the days themselves."""

from __future__ import annotations

import random

from advocado.domain.dashboard import days_between_summary, gap_summary


def test_gap_summary_equals_the_days_summary() -> None:
    rng = random.Random(6)
    for n in (0, 1, 2, 3, 10, 11, 500):
        gaps = sorted(rng.choice((0, 3 * 3600 * 10**6, rng.randrange(10**12))) for _ in range(n))
        days = [g / 10**6 / 86400 for g in gaps]
        middle = gaps[(n - 1) // 2 : (n - 1) // 2 + 2 - n % 2] if n else []
        assert gap_summary(n, sum(gaps), middle) == days_between_summary(days)
