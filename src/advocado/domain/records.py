"""What a customer, an order and an NPS response are when they come in, and the rules that
check them. CSV import and the API both end here, so a value is judged the same way wherever it
arrives. Parsers raise FieldError naming the field and the reason."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

LOCALES = ("zh-CN", "zh-TW", "en")
_LOCALE_ALIASES = {
    "zh": "zh-CN", "zh-cn": "zh-CN", "zh_cn": "zh-CN", "zh-hans": "zh-CN", "zh-sg": "zh-CN",
    "zh-hans-cn": "zh-CN", "简体": "zh-CN", "简体中文": "zh-CN",
    "zh-tw": "zh-TW", "zh_tw": "zh-TW", "zh-hant": "zh-TW", "zh-hk": "zh-TW", "zh_hk": "zh-TW",
    "zh-mo": "zh-TW", "zh-hant-tw": "zh-TW", "繁體": "zh-TW", "繁體中文": "zh-TW",
    "en": "en", "en-us": "en", "en-gb": "en", "en_us": "en", "en_gb": "en", "english": "en",
}  # fmt: skip
_TRUE = {"1", "true", "yes", "y", "t", "on", "是", "同意", "opt-in", "opted_in", "subscribed"}
_FALSE = {"0", "false", "no", "n", "f", "off", "否", "不同意", "", "opt-out", "unsubscribed"}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE = re.compile(r"^\+?[0-9]{5,20}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
# Currencies whose minor unit is not 1/100.
_CURRENCY_EXPONENT = {"JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "ISK": 0, "BHD": 3, "KWD": 3}
ORDER_STATUSES = ("pending", "paid", "fulfilled", "cancelled", "refunded")
_TAG_SPLIT = re.compile(r"[;|,，、；]")


class Kind(StrEnum):
    """The kinds of record that come in from outside."""

    CUSTOMERS = "customers"
    ORDERS = "orders"
    RESPONSES = "responses"
    SOCIAL = "social"  # social profiles (domain/influence): CSV import only


class FieldError(ValueError):
    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(f"{field_name}: {reason}")
        self.field = field_name
        self.reason = reason


@dataclass(frozen=True)
class CustomerRecord:
    external_id: str
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    locale: str = "en"
    timezone: str = "UTC"
    marketing_consent: bool = False
    consent_at: datetime | None = None
    consent_source: str | None = None
    tags: tuple[str, ...] = ()
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OrderRecord:
    external_id: str
    customer_external_id: str
    amount: int  # minor units
    currency: str
    placed_at: datetime
    status: str = "paid"


@dataclass(frozen=True)
class ResponseRecord:
    external_id: str
    score: int
    submitted_at: datetime
    customer_external_id: str | None = None
    comment: str | None = None
    survey: str | None = None
    channel: str | None = None


def required_text(name: str, value: str | None, max_length: int = 200) -> str:
    value = (value or "").strip()
    if not value:
        raise FieldError(name, "missing")
    return optional_text(name, value, max_length) or ""


def optional_text(name: str, value: str | None, max_length: int = 200) -> str | None:
    value = (value or "").strip()
    if len(value) > max_length:
        raise FieldError(name, f"longer than {max_length} characters")
    return value or None


def locale(value: str | None) -> str:
    raw = (value or "").strip()
    if not raw:
        return "en"
    if raw in LOCALES:
        return raw
    found = _LOCALE_ALIASES.get(raw.lower())
    if found is None:
        raise FieldError("locale", f"{raw!r} is not one of zh-CN, zh-TW, en")
    return found


def timezone(value: str | None) -> str:
    raw = (value or "").strip()
    if not raw:
        return "UTC"
    try:
        ZoneInfo(raw)
    except (ZoneInfoNotFoundError, ValueError):
        raise FieldError(
            "timezone", f"{raw!r} is not an IANA time zone (e.g. Asia/Shanghai)"
        ) from None
    return raw


def boolean(name: str, value: str | bool | None) -> bool:
    if isinstance(value, bool):
        return value
    raw = (value or "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise FieldError(name, f"{value!r} is not yes/no (true/false, 1/0, 是/否)")


def email(value: str | None) -> str | None:
    raw = (value or "").strip()
    if not raw:
        return None
    if not _EMAIL.match(raw) or len(raw) > 320:
        raise FieldError("email", f"{raw!r} is not an email address")
    return raw


def phone(value: str | None) -> str | None:
    raw = (value or "").strip()
    if not raw:
        return None
    compact = re.sub(r"[\s\-().]", "", raw)
    if not _PHONE.match(compact):
        raise FieldError("phone", f"{raw!r} is not a phone number")
    return compact


def tags(value: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    items = _TAG_SPLIT.split(value) if isinstance(value, str) else list(value or ())
    seen: dict[str, None] = {}
    for item in items:
        item = str(item).strip()
        if item:
            if len(item) > 100:
                raise FieldError("tags", f"tag {item[:20]!r}… is longer than 100 characters")
            seen[item] = None
    return tuple(seen)


def score(value: str | int | None) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        raw = (value or "").strip() if isinstance(value, str) else ""
        if not raw:
            raise FieldError("score", "missing")
        try:
            as_decimal = Decimal(raw)
        except InvalidOperation:
            raise FieldError("score", f"{raw!r} is not a number") from None
        if as_decimal != as_decimal.to_integral_value():
            raise FieldError("score", f"{raw!r} is not a whole number")
        number = int(as_decimal)
    if not 0 <= number <= 10:
        raise FieldError("score", f"{number} is outside 0-10")
    return number


def currency(value: str | None) -> str:
    raw = (value or "").strip().upper()
    if not _CURRENCY.match(raw):
        raise FieldError("currency", f"{value!r} is not a 3-letter ISO 4217 code (e.g. CNY)")
    return raw


def amount_from_major(value: str | None, currency_code: str) -> int:
    """'199.00' CNY -> 19900 fen. More decimals than the currency has is an error, not a guess."""
    raw = (value or "").strip().replace(",", "")
    for symbol in ("¥", "￥", "$", "€", "£", "NT$", "HK$"):
        raw = raw.removeprefix(symbol)
    if not raw:
        raise FieldError("amount", "missing")
    try:
        major = Decimal(raw)
    except InvalidOperation:
        raise FieldError("amount", f"{value!r} is not an amount") from None
    exponent = _CURRENCY_EXPONENT.get(currency_code, 2)
    minor = major.scaleb(exponent)
    if minor != minor.to_integral_value():
        raise FieldError(
            "amount", f"{value!r} has more than {exponent} decimals for {currency_code}"
        )
    return minor_amount(int(minor))


def minor_amount(value: int) -> int:
    if value < 0:
        raise FieldError(
            "amount", f"{value} is negative (a refund is a status, not a negative order)"
        )
    return value


def order_status(value: str | None) -> str:
    raw = (value or "").strip().lower()
    if not raw:
        return "paid"
    if raw not in ORDER_STATUSES:
        raise FieldError("status", f"{value!r} is not one of {', '.join(ORDER_STATUSES)}")
    return raw


def moment(
    name: str, value: str | datetime | None, date_format: str | None = None, zone: str = "UTC"
) -> datetime:
    """A point in time. Naive values are read in `zone`; the result is UTC."""
    if isinstance(value, datetime):
        parsed = value
    else:
        raw = (value or "").strip()
        if not raw:
            raise FieldError(name, "missing")
        try:
            if date_format:
                parsed = datetime.strptime(raw, date_format)
            else:
                parsed = datetime.fromisoformat(raw)
        except ValueError:
            expected = date_format or "ISO 8601, e.g. 2026-05-01T09:30:00+08:00"
            raise FieldError(name, f"{raw!r} does not match {expected}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(zone))
    return parsed.astimezone(UTC)


def derived_response_key(
    *,
    customer_external_id: str | None,
    survey: str | None,
    channel: str | None,
    submitted_at: datetime,
    score: int,
    comment: str | None,
    line: int,
) -> str:
    """A key for a response sent without an id of its own, so a re-import never duplicates it.

    With a customer, the response is "this customer's answer to this survey at this moment":
    a later row with the same three (the comment arriving after the score) updates it. Without
    one, nothing identifies the person, so the row's content and line make the key: the same
    file imported again matches itself, and two identical anonymous answers stay two.
    """
    if customer_external_id:
        parts = ["c", customer_external_id, survey or "", channel or "", submitted_at.isoformat()]
    else:
        parts = ["a", survey or "", channel or "", submitted_at.isoformat(), str(score),
                 comment or "", str(line)]  # fmt: skip
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]
    return f"derived:{digest}"
