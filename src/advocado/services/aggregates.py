"""Every dashboard pre-aggregate kept from the customer-side rows, rebuilt in one place.

Each aggregate is maintained in the same transaction as the writes it follows (its module
says how); `rebuild` recomputes them all from the rows, for repair or after a bulk load that
went around the services (`advocado dashboard rebuild`, bench/dashboard.py). The click side
has its own roll-up (services.click_rollup) and is rebuilt separately: it is the slow one
(only its per-segment sums, from click_day_counts and the members, are rebuilt here).
A new aggregate adds its rebuild function to REBUILDERS.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy.orm import Session

from advocado.services import (
    activation_aggregates,
    click_rollup,
    cohort_firsts,
    cohort_referrals,
    cohorts,
    customer_aggregates,
    customer_value,
    referral_aggregates,
)

REBUILDERS: list[Callable[[Session], dict[str, int]]] = [
    customer_aggregates.rebuild,
    customer_value.rebuild,
    referral_aggregates.rebuild,
    cohorts.rebuild,  # after those: it reads customer_latest_responses and value_groups
    activation_aggregates.rebuild,  # after cohorts: it counts per segment's stored members
    cohort_referrals.rebuild,  # after cohorts': it reads the stored members
    click_rollup.rebuild_cohorts,  # after cohorts': clicks per segment's stored members
    cohort_firsts.rebuild,  # after cohorts' and referral_aggregates': their rows per segment
]


def rebuild(session: Session) -> dict[str, int]:
    """Recompute every aggregate in REBUILDERS in the caller's transaction; row counts."""
    found: dict[str, int] = {}
    for rebuild_one in REBUILDERS:
        found.update(rebuild_one(session))
    return found
