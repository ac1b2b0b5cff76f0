"""The measurement dashboard's rules: the filter every page takes, time buckets, and the
ratios (conversion, K-factor, cost per acquired customer, ROI), each with its reason."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, timedelta
from statistics import median

from advocado.domain.records import FieldError

BUCKETS = ("week", "month")
MAX_DAYS = 3 * 366  # a wider range is allowed, but must be asked for by leaving a side open


@dataclass(frozen=True)
class Filters:
    """What every dashboard page, CSV and JSON answer is cut by: a period of whole UTC days
    (both ends included, either may be open), a saved segment and/or a referral program
    (by slug), and the bucket of time series."""

    start: date | None = None
    end: date | None = None
    segment: str | None = None
    program: str | None = None
    bucket: str = "week"

    def as_params(self) -> dict[str, str]:
        """The filter as query parameters (empty ones left out): links keep the filter."""
        found = {
            "from": self.start.isoformat() if self.start else "",
            "to": self.end.isoformat() if self.end else "",
            "segment": self.segment or "",
            "program": self.program or "",
            "bucket": self.bucket if self.bucket != "week" else "",
        }
        return {k: v for k, v in found.items() if v}

    def with_bucket(self, bucket: str) -> Filters:
        return replace(self, bucket=bucket)


def _day(params: Mapping[str, str], name: str) -> date | None:
    raw = (params.get(name) or "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise FieldError(
            name, f"{raw!r} is not a date (YYYY-MM-DD) / 不是日期（年-月-日）"
        ) from None


def _slug(params: Mapping[str, str], name: str) -> str | None:
    raw = (params.get(name) or "").strip()
    if not raw:
        return None
    if len(raw) > 100:
        raise FieldError(name, "longer than 100 characters / 超过 100 个字符")
    return raw


def parse_filters(params: Mapping[str, str]) -> Filters:
    """The filter from query parameters from, to, segment, program, bucket. FieldError names
    the parameter and the reason (in English and Chinese)."""
    start, end = _day(params, "from"), _day(params, "to")
    if start and end and start > end:
        raise FieldError("to", f"{end} is before from={start} / 结束日期早于开始日期")
    bucket = (params.get("bucket") or "week").strip().lower()
    if bucket not in BUCKETS:
        raise FieldError("bucket", f"{bucket!r} is not one of week, month / 只能是 week 或 month")
    return Filters(start, end, _slug(params, "segment"), _slug(params, "program"), bucket)


def bucket_start(day: date, bucket: str) -> date:
    """The first day of the week (Monday, ISO) or month that `day` falls in."""
    if bucket == "month":
        return day.replace(day=1)
    return day - timedelta(days=day.weekday())


def ratio(part: float, whole: float) -> float | None:
    """part / whole, or None when there is nothing to divide by (shown as n/a, never 0)."""
    return None if not whole else part / whole


def k_factor(*, advocates: int, invitations: int, signups: int) -> dict[str, float | None]:
    """Viral coefficient K = invitations per advocate x conversion (signups per invitation),
    which is signups per advocate; each factor is kept so the page can show why."""
    per_advocate = ratio(invitations, advocates)
    conversion = ratio(signups, invitations)
    k = None if per_advocate is None or conversion is None else per_advocate * conversion
    return {"invitations_per_advocate": per_advocate, "conversion": conversion, "k_factor": k}


def k_reason(k: float | None) -> str:
    if k is None:
        return "no advocate or no invitation in the period / 期间内没有推荐人或邀请"
    if k >= 1:
        return (
            f"K={k:.2f} ≥ 1: each advocate brings at least one more / 每位推荐人至少带来一位新客户"
        )
    return f"K={k:.2f} < 1: growth still needs other channels / 仍需其他渠道获客"


def acquisition(
    *, revenue: int, cost: int, acquired: int, paid_cac: int | None
) -> dict[str, object]:
    """Money of the referral program in minor units: cost per acquired customer, what the same
    customers would have cost at the paid-channel CAC, and ROI = (revenue - cost) / cost."""
    per_customer = None if not acquired else round(cost / acquired)
    roi = ratio(revenue - cost, cost)
    saving = None
    if paid_cac is not None and per_customer is not None:
        saving = (paid_cac - per_customer) * acquired
    if per_customer is None:
        reason = "no acquired (qualified) customer yet / 尚无合格的新客户"
    elif paid_cac is None:
        reason = "enter the paid-channel CAC to compare / 请填写付费渠道获客成本以便比较"
    elif per_customer <= paid_cac:
        reason = "referrals cost less per customer than paid channels / 推荐获客比付费渠道便宜"
    else:
        reason = "referrals cost more per customer than paid channels / 推荐获客比付费渠道贵"
    return {
        "cost_per_acquired": per_customer,
        "paid_cac": paid_cac,
        "roi": roi,
        "saving_vs_paid": saving,
        "reason": reason,
    }


def days_between_summary(days: list[float]) -> dict[str, float | None]:
    """Median and mean of a list of day counts (None when empty)."""
    if not days:
        return {"median_days": None, "mean_days": None, "advocates": 0}
    return {
        "median_days": round(median(days), 2),
        "mean_days": round(sum(days) / len(days), 2),
        "advocates": len(days),
    }


def gap_summary(count: int, total_us: int, middle_us: list[int]) -> dict[str, float | None]:
    """days_between_summary of gaps in whole microseconds, from what a database can say
    without handing over every gap: how many, their sum, and the middle one (odd count) or
    two (even count) in order. Summing integers, the mean does not depend on the order."""
    if not count:
        return {"median_days": None, "mean_days": None, "advocates": 0}
    return {
        "median_days": round(median(us / 10**6 / 86400 for us in middle_us), 2),
        "mean_days": round(total_us / 10**6 / 86400 / count, 2),
        "advocates": count,
    }


def clv(*, customers: int, orders: int, revenue: int) -> dict[str, float | int | None]:
    """Average order value, orders per customer, and value per customer over the window."""
    aov = ratio(revenue, orders)
    frequency = ratio(orders, customers)
    value = ratio(revenue, customers)
    return {
        "customers": customers,
        "orders": orders,
        "revenue": revenue,
        "average_order_value": None if aov is None else round(aov),
        "frequency": None if frequency is None else round(frequency, 2),
        "value_12m": None if value is None else round(value),
    }
