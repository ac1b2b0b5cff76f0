"""Segments: a named set of customers described by filters, evaluated whenever it is asked
for (so it is always current). These are the rules of the filters; services/segments turns
them into a query.

All filters given must hold (AND); inside one list filter any value may match (OR).

Customer filters:
- `value_tier`: list of high / mid / low; `lifecycle_stage`: list of new / steady / declining /
  lapsed (from the last `advocado insights recompute`);
- `high_influence`: true / false; `influence_min`: influence score 0-100, at least;
- `tags_any`: has at least one of these tags; `tags_all`: has every one of them;
- `consent`: true (marketing consent given) or false (not given).

Response filters. The *responses in scope* of a customer are their responses in `survey` (if
given) submitted within `submitted_from` .. `submitted_to` (whole UTC days, both included, if
given). When any response filter or scope is given, the customer must have a response in scope,
and `nps_category` (promoter / passive / detractor), `score_min` / `score_max` (0-10, both
included) and `persona` (emotional / rational / neutral) are judged on their **latest** response
in scope (by submission time): someone who was a promoter in March and a detractor in May is a
detractor, unless the range ends before May.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import date
from typing import Any

from advocado.domain.records import FieldError

NPS_CATEGORIES = ("promoter", "passive", "detractor")
PERSONAS = ("emotional", "rational", "neutral")
VALUE_TIERS = ("high", "mid", "low")
LIFECYCLE_STAGES = ("new", "steady", "declining", "lapsed")
_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,98}[a-z0-9])?$")
_MAX_VALUES = 100


@dataclass(frozen=True)
class SegmentFilter:
    nps_category: tuple[str, ...] = ()
    score_min: int | None = None
    score_max: int | None = None
    persona: tuple[str, ...] = ()
    survey: str | None = None
    submitted_from: date | None = None
    submitted_to: date | None = None
    high_influence: bool | None = None
    influence_min: float | None = None
    value_tier: tuple[str, ...] = ()
    lifecycle_stage: tuple[str, ...] = ()
    tags_any: tuple[str, ...] = ()
    tags_all: tuple[str, ...] = ()
    consent: bool | None = None

    @property
    def judges_responses(self) -> bool:
        """Whether the customer's latest response in scope decides anything."""
        return bool(self.nps_category or self.persona) or (
            self.score_min is not None or self.score_max is not None
        )

    @property
    def scoped(self) -> bool:
        """Whether membership needs a response in scope at all."""
        return self.judges_responses or bool(
            self.survey or self.submitted_from or self.submitted_to
        )

    def as_dict(self) -> dict[str, Any]:
        """The canonical JSON form (what is stored), without the filters left out."""
        found: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is None or value == ():
                continue
            if isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, date):
                value = value.isoformat()
            found[f.name] = value
        return found


def _field(name: str) -> str:
    return f"filters.{name}"


def _choices(name: str, value: Any, allowed: tuple[str, ...]) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple):
        raise FieldError(_field(name), f"expected a list of {', '.join(allowed)}")
    chosen: dict[str, None] = {}
    for item in items:
        word = str(item).strip().lower() if isinstance(item, str) else item
        if word not in allowed:
            raise FieldError(_field(name), f"{item!r} is not one of {', '.join(allowed)}")
        chosen[word] = None
    return tuple(chosen)


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise FieldError(_field(name), f"{value!r} is not true or false")
    return value


def _number(name: str, value: Any, low: float, high: float, whole: bool) -> Any:
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            raise FieldError(_field(name), f"{value!r} is not a number") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FieldError(_field(name), f"{value!r} is not a number")
    if whole:
        if value != int(value):
            raise FieldError(_field(name), f"{value!r} is not a whole number")
        value = int(value)
    if not low <= value <= high:
        raise FieldError(_field(name), f"{value} is outside {low:g}-{high:g}")
    return value


def _day(name: str, value: Any) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip())
    except ValueError:
        raise FieldError(_field(name), f"{value!r} is not a date such as 2026-01-31") from None


def _tags(name: str, value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise FieldError(_field(name), "expected a list of tags")
    tags = tuple(dict.fromkeys(i.strip() for i in items if i.strip()))
    if len(tags) > _MAX_VALUES or any(len(tag) > 100 for tag in tags):
        raise FieldError(_field(name), f"at most {_MAX_VALUES} tags of 100 characters")
    return tags


def _text(name: str, value: Any) -> str | None:
    if not isinstance(value, str):
        raise FieldError(_field(name), f"{value!r} is not text")
    value = value.strip()
    if len(value) > 200:
        raise FieldError(_field(name), "longer than 200 characters")
    return value or None


_PARSERS: dict[str, Any] = {
    "nps_category": lambda n, v: _choices(n, v, NPS_CATEGORIES),
    "score_min": lambda n, v: _number(n, v, 0, 10, True),
    "score_max": lambda n, v: _number(n, v, 0, 10, True),
    "persona": lambda n, v: _choices(n, v, PERSONAS),
    "survey": _text,
    "submitted_from": _day,
    "submitted_to": _day,
    "high_influence": _flag,
    "influence_min": lambda n, v: _number(n, v, 0, 100, False),
    "value_tier": lambda n, v: _choices(n, v, VALUE_TIERS),
    "lifecycle_stage": lambda n, v: _choices(n, v, LIFECYCLE_STAGES),
    "tags_any": _tags,
    "tags_all": _tags,
    "consent": _flag,
}
FILTER_NAMES = tuple(_PARSERS)


def parse_filters(raw: Any) -> SegmentFilter:
    """Checks filters as sent (JSON); raises FieldError naming the filter, e.g.
    `filters.score_min`. Empty values (null, "", []) mean "not filtered"."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise FieldError("filters", "expected an object of filters")
    unknown = sorted(set(raw) - set(_PARSERS))
    if unknown:
        raise FieldError(
            _field(unknown[0]), f"unknown filter; the filters are: {', '.join(FILTER_NAMES)}"
        )
    values: dict[str, Any] = {}
    for name, value in raw.items():
        if value is None or value == "" or value == []:
            continue
        values[name] = _PARSERS[name](name, value)
    found = SegmentFilter(**values)
    if (
        found.score_min is not None
        and found.score_max is not None
        and found.score_min > found.score_max
    ):
        raise FieldError(
            _field("score_min"), f"{found.score_min} is above score_max ({found.score_max})"
        )
    if found.submitted_from and found.submitted_to and found.submitted_from > found.submitted_to:
        raise FieldError(
            _field("submitted_from"),
            f"{found.submitted_from} is after submitted_to ({found.submitted_to})",
        )
    return found


def slug(value: Any) -> str:
    if not isinstance(value, str) or not _SLUG.match(value.strip()):
        raise FieldError(
            "slug", f"{value!r} is not a slug: lowercase letters, digits and '-', up to 100"
        )
    return value.strip()


def name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise FieldError("name", "missing")
    if len(value.strip()) > 200:
        raise FieldError("name", "longer than 200 characters")
    return value.strip()


def slug_from_name(value: str) -> str:
    """A slug for a name, when none is given: 'VIP promoters' -> 'vip-promoters'. Names
    without Latin letters or digits (e.g. '高价值推荐者') give 'segment'; the service adds a
    number when that is taken."""
    words = re.sub(r"[^a-z0-9]+", "-", value.lower()).strip("-")[:100].strip("-")
    return words or "segment"
