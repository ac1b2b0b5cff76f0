"""Create-or-update from partial input (the API), and reading rows back as the API shows them.

An item carries only the fields its sender gave (already checked by the rules in
domain/records). It is merged onto the stored row, or onto the defaults, and the result is
written through services/records, which decides created / updated / unchanged. A batch is all
or nothing: the caller's transaction rolls back on the first error.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from advocado.domain import records as rules
from advocado.domain.records import Kind
from advocado.services.records import (
    LOOKUP_CHUNK,
    Outcome,
    Saved,
    UnknownCustomer,
    save_customers,
    save_orders,
    save_responses,
)
from advocado.store.models import Customer, Order, Response


class Mode(StrEnum):
    MERGE = "merge"  # fields left out keep their stored values (POST)
    REPLACE = "replace"  # fields left out take their defaults (PUT)
    PATCH = "patch"  # like MERGE, but the row must already exist (PATCH)


class ItemError(Exception):
    """Item `index` of a call cannot be saved because of `field`."""

    def __init__(self, index: int, field: str, reason: str) -> None:
        super().__init__(f"item {index}: {field}: {reason}")
        self.index = index
        self.field = field
        self.reason = reason


class NotFound(LookupError):
    pass


@dataclass(frozen=True)
class Stored:
    outcome: Outcome
    row: dict[str, Any]


@dataclass(frozen=True)
class _Spec:
    model: type[Customer] | type[Order] | type[Response]
    record: type[Any]
    save: Callable[[Session, Sequence[Any]], list[Saved]]
    required: tuple[str, ...]

    @property
    def fields(self) -> tuple[str, ...]:
        """The record's fields but external_id, in order."""
        return tuple(f.name for f in dataclasses.fields(self.record) if f.name != "external_id")

    @property
    def defaults(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for f in dataclasses.fields(self.record):
            if f.default is not dataclasses.MISSING:
                found[f.name] = f.default
            elif f.default_factory is not dataclasses.MISSING:
                found[f.name] = f.default_factory()
            elif f.name != "external_id":
                found[f.name] = None
        return found


_SPECS = {
    Kind.CUSTOMERS: _Spec(Customer, rules.CustomerRecord, save_customers, ()),
    Kind.ORDERS: _Spec(
        Order,
        rules.OrderRecord,
        save_orders,
        ("customer_external_id", "amount", "currency", "placed_at"),
    ),
    Kind.RESPONSES: _Spec(
        Response, rules.ResponseRecord, save_responses, ("score", "submitted_at")
    ),
}


def _select(kind: Kind) -> Select[Any]:
    """The row as the API shows it: the customer by its external id, never a row id."""
    spec = _SPECS[kind]
    model = spec.model
    if kind is Kind.CUSTOMERS:
        names = ("external_id", *spec.fields, "created_at", "updated_at")
        return select(model.id, *(getattr(model, name) for name in names))
    own = [name for name in spec.fields if name != "customer_external_id"]
    columns = [
        model.id,
        model.external_id,
        Customer.external_id.label("customer_external_id"),
        *(getattr(model, name) for name in own),
        model.created_at,
        model.updated_at,
    ]
    return select(*columns).select_from(model).outerjoin(Customer, model.customer_id == Customer.id)


def _as_dict(row: Any) -> dict[str, Any]:
    found = row._asdict()
    found.pop("id")
    return found


def rows_by_external_id(
    session: Session, kind: Kind, external_ids: Sequence[str]
) -> dict[str, dict[str, Any]]:
    model = _SPECS[kind].model
    wanted = sorted(set(external_ids))
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(wanted), LOOKUP_CHUNK):
        chunk = wanted[start : start + LOOKUP_CHUNK]
        for row in session.execute(_select(kind).where(model.external_id.in_(chunk))):
            found[row.external_id] = _as_dict(row)
    return found


def get_one(session: Session, kind: Kind, external_id: str) -> dict[str, Any]:
    """NotFound if there is no such row."""
    found = rows_by_external_id(session, kind, [external_id]).get(external_id)
    if found is None:
        raise NotFound(f"no {kind.removesuffix('s')} with external_id {external_id!r}")
    return found


def list_page(
    session: Session, kind: Kind, *, limit: int, after: int | None = None
) -> tuple[list[dict[str, Any]], int | None]:
    """Up to `limit` rows in the order they were first stored, and the cursor of the next
    page (None at the end). Keyset paging: rows written meanwhile neither repeat nor vanish."""
    model = _SPECS[kind].model
    query = _select(kind).order_by(model.id).limit(limit + 1)
    if after is not None:
        query = query.where(model.id > after)
    rows = list(session.execute(query))
    more = len(rows) > limit
    rows = rows[:limit]
    return [_as_dict(row) for row in rows], (rows[-1].id if more and rows else None)


def upsert(
    session: Session, kind: Kind, items: Sequence[Mapping[str, Any]], *, mode: Mode
) -> list[Stored]:
    """Save items (each has external_id plus the fields its sender gave), in one go.

    Raises ItemError naming the item and field, or NotFound (PATCH of a missing row), before
    anything is written by this call. Several items with one external_id apply in order.
    """
    spec = _SPECS[kind]
    stored = rows_by_external_id(session, kind, [item["external_id"] for item in items])
    current: dict[str, dict[str, Any]] = {}
    for index, item in enumerate(items):
        external_id = item["external_id"]
        before = current.get(external_id) or stored.get(external_id)
        if before is None and mode is Mode.PATCH:
            raise NotFound(f"no {kind.removesuffix('s')} with external_id {external_id!r}")
        given = {name: value for name, value in item.items() if name != "external_id"}
        if before is None or mode is Mode.REPLACE:
            values = {**spec.defaults, **given}
        else:
            values = {**{name: before[name] for name in spec.fields}, **given}
        for name in spec.required:
            if values.get(name) is None:
                raise ItemError(index, name, "missing")
        if kind is Kind.CUSTOMERS and values["marketing_consent"]:
            # The time is left to save_customers: it keeps the first consent's date and source
            # when "yes" is merely repeated, and dates new consent now.
            values["consent_source"] = values["consent_source"] or "api"
        current[external_id] = values

    records = [spec.record(external_id=key, **values) for key, values in current.items()]
    try:
        saved = spec.save(session, records)
    except UnknownCustomer as error:
        index = next(
            (
                index
                for index, item in enumerate(items)
                if item.get("customer_external_id") == error.external_id
            ),
            0,
        )
        raise ItemError(index, error.field, error.reason) from None
    outcomes = {result.external_id: result.outcome for result in saved}
    rows = rows_by_external_id(session, kind, list(current))
    return [Stored(outcomes[item["external_id"]], rows[item["external_id"]]) for item in items]
