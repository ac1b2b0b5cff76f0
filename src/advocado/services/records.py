"""Saving customers, orders and responses by their external ids: create, update, or leave
alone. CSV import and the API both write through here, in batches."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Table, Text, bindparam, cast, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from advocado import clock
from advocado.domain.records import CustomerRecord, FieldError, OrderRecord, ResponseRecord
from advocado.store.models import Customer, Order, Response

# SQLite allows 32,766 bound parameters per statement; stay well under for IN (...) lists.
LOOKUP_CHUNK = 900


class Outcome(StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class Saved:
    external_id: str
    id: int
    outcome: Outcome


class UnknownCustomer(FieldError):
    def __init__(self, external_id: str) -> None:
        super().__init__(
            "customer_external_id", f"no customer {external_id!r} (import or create it first)"
        )
        self.external_id = external_id


def customer_ids(session: Session, external_ids: Sequence[str]) -> dict[str, int]:
    """external id -> row id for those that exist."""
    wanted = sorted(set(external_ids))
    found: dict[str, int] = {}
    for start in range(0, len(wanted), LOOKUP_CHUNK):
        chunk = wanted[start : start + LOOKUP_CHUNK]
        rows = session.execute(
            select(Customer.external_id, Customer.id).where(Customer.external_id.in_(chunk))
        )
        found.update({external_id: row_id for external_id, row_id in rows})
    return found


def save_customers(session: Session, records: Sequence[CustomerRecord]) -> list[Saved]:
    now = clock.now()
    rows = [
        {
            "external_id": r.external_id,
            "name": r.name,
            "email": r.email,
            "phone": r.phone,
            "locale": r.locale,
            "timezone": r.timezone,
            "marketing_consent": r.marketing_consent,
            "consent_at": r.consent_at,
            "consent_source": r.consent_source,
            "tags": list(r.tags),
            "attributes": r.attributes,
        }
        for r in records
    ]
    return _save(session, Customer.__table__, rows, now, merge=_keep_consent_evidence)


def _keep_consent_evidence(old: dict[str, Any] | None, new: dict[str, Any], now: datetime) -> None:
    """Consent given without a time is dated now, once: a re-import of the same "yes" must not
    move the date of consent (it is the evidence of when and how it was given)."""
    if not new["marketing_consent"]:
        new["consent_at"] = new["consent_source"] = None
    elif new["consent_at"] is None:
        if old is not None and old["marketing_consent"] and old["consent_at"] is not None:
            new["consent_at"], new["consent_source"] = old["consent_at"], old["consent_source"]
        else:
            new["consent_at"] = now


def save_orders(session: Session, records: Sequence[OrderRecord]) -> list[Saved]:
    """Raises UnknownCustomer (before writing anything) if a customer does not exist."""
    ids = customer_ids(session, [r.customer_external_id for r in records])
    for record in records:
        if record.customer_external_id not in ids:
            raise UnknownCustomer(record.customer_external_id)
    rows = [
        {
            "external_id": r.external_id,
            "customer_id": ids[r.customer_external_id],
            "amount": r.amount,
            "currency": r.currency,
            "status": r.status,
            "placed_at": r.placed_at,
        }
        for r in records
    ]
    return _save(session, Order.__table__, rows, clock.now())


def save_responses(session: Session, records: Sequence[ResponseRecord]) -> list[Saved]:
    """Raises UnknownCustomer (before writing anything) if a named customer does not exist."""
    named = [r.customer_external_id for r in records if r.customer_external_id]
    ids = customer_ids(session, named) if named else {}
    for external_id in named:
        if external_id not in ids:
            raise UnknownCustomer(external_id)
    rows = [
        {
            "external_id": r.external_id,
            "customer_id": ids.get(r.customer_external_id or ""),
            "score": r.score,
            "comment": r.comment,
            "survey": r.survey,
            "channel": r.channel,
            "submitted_at": r.submitted_at,
        }
        for r in records
    ]
    return _save(session, Response.__table__, rows, clock.now())


def _save(
    session: Session,
    table: Table,
    rows: list[dict[str, Any]],
    now: datetime,
    merge: Callable[[dict[str, Any] | None, dict[str, Any], datetime], None] | None = None,
) -> list[Saved]:
    """Upsert by external_id. Within one call a later row for the same id wins (it is newer).
    `merge(old, new, now)` may adjust a new row from the stored one before they are compared."""
    latest: dict[str, dict[str, Any]] = {row["external_id"]: row for row in rows}
    fields = [name for name in rows[0] if name != "external_id"] if rows else []
    existing: dict[str, dict[str, Any]] = {}
    keys = list(latest)
    for start in range(0, len(keys), LOOKUP_CHUNK):
        chunk = keys[start : start + LOOKUP_CHUNK]
        columns = [table.c.id, table.c.external_id, *(table.c[name] for name in fields)]
        for found in session.execute(select(*columns).where(table.c.external_id.in_(chunk))):
            existing[found.external_id] = found._asdict()

    inserts, updates, outcomes = [], [], {}
    for key, row in latest.items():
        old = existing.get(key)
        if merge:
            merge(old, row, now)
        if old is None:
            inserts.append({**row, "created_at": now, "updated_at": now})
        elif any(old[name] != row[name] for name in fields):
            updates.append({**row, "b_id": old["id"], "updated_at": now})
            outcomes[key] = Saved(key, old["id"], Outcome.UPDATED)
        else:
            outcomes[key] = Saved(key, old["id"], Outcome.UNCHANGED)

    if updates:
        statement = (
            update(table)
            .where(table.c.id == bindparam("b_id"))
            .values({name: bindparam(name) for name in [*fields, "updated_at"]})
        )
        session.connection().execute(statement, updates)
    if inserts:
        insert_rows = _insert_unnest if session.get_bind().dialect.name == "postgresql" else _insert
        for external_id, row_id in insert_rows(session, table, inserts, [*fields, "updated_at"]):
            outcomes[external_id] = Saved(external_id, row_id, Outcome.CREATED)
    return [outcomes[row["external_id"]] for row in rows]


def _insert(
    session: Session, table: Table, rows: list[dict[str, Any]], refresh: list[str]
) -> Iterable[tuple[str, int]]:
    statement = sqlite.insert(table).returning(table.c.external_id, table.c.id)
    # A concurrent writer may have created the same id since we looked: take its row.
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.external_id],
        set_={name: statement.excluded[name] for name in refresh},
    )
    return session.connection().execute(statement, rows)


def _insert_unnest(
    session: Session, table: Table, rows: list[dict[str, Any]], refresh: list[str]
) -> Iterable[tuple[str, int]]:
    """PostgreSQL: one INSERT … SELECT unnest(arrays) per batch. A multi-row VALUES statement
    with thousands of parameters spends most of its time in the driver, not the server."""
    names = list(rows[0])
    columns = []
    for name in names:
        column = table.c[name]
        as_json = isinstance(column.type, JSON)
        values = [
            json.dumps(row[name], ensure_ascii=False) if as_json else row[name] for row in rows
        ]
        array = bindparam(f"a_{name}", values, type_=ARRAY(Text if as_json else column.type))
        columns.append(cast(func.unnest(array), column.type) if as_json else func.unnest(array))
    statement = postgresql.insert(table).from_select(names, select(*columns))
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.external_id],
        set_={name: statement.excluded[name] for name in refresh},
    ).returning(table.c.external_id, table.c.id)
    return session.connection().execute(statement)
