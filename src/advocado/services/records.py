"""Saving customers, orders and responses by their external ids: create, update, or leave
alone. CSV import and the API both write through here, in batches."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Select, Table, Text, bindparam, cast, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from advocado import clock
from advocado.domain.records import CustomerRecord, FieldError, OrderRecord, ResponseRecord
from advocado.store.models import Customer, Order, Response, ResponseDayCount

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


def _known_customers(
    session: Session, external_ids: list[str], known: Mapping[str, int] | None
) -> Mapping[str, int]:
    """external id -> row id for every one named; raises UnknownCustomer before any write.
    `known` is a lookup the caller already made (the importer), so it is not made twice."""
    ids = (
        known
        if known is not None
        else (customer_ids(session, external_ids) if external_ids else {})
    )
    for external_id in external_ids:
        if external_id not in ids:
            raise UnknownCustomer(external_id)
    return ids


def save_orders(
    session: Session,
    records: Sequence[OrderRecord],
    *,
    known_customers: Mapping[str, int] | None = None,
) -> list[Saved]:
    """Raises UnknownCustomer (before writing anything) if a customer does not exist."""
    ids = _known_customers(session, [r.customer_external_id for r in records], known_customers)
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


def save_responses(
    session: Session,
    records: Sequence[ResponseRecord],
    *,
    known_customers: Mapping[str, int] | None = None,
) -> list[Saved]:
    """Raises UnknownCustomer (before writing anything) if a named customer does not exist."""
    named = [r.customer_external_id for r in records if r.customer_external_id]
    ids = _known_customers(session, named, known_customers)
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
    return _save(session, Response.__table__, rows, clock.now(), on_change=count_responses_by_day)


Change = tuple[dict[str, Any] | None, dict[str, Any]]  # (stored row or None if new, new row)


def _save(
    session: Session,
    table: Table,
    rows: list[dict[str, Any]],
    now: datetime,
    merge: Callable[[dict[str, Any] | None, dict[str, Any], datetime], None] | None = None,
    on_change: Callable[[Session, list[Change]], None] | None = None,
) -> list[Saved]:
    """Upsert by external_id. Within one call a later row for the same id wins (it is newer).
    `merge(old, new, now)` may adjust a new row from the stored one before they are compared;
    `on_change(session, changes)` sees every created or updated row, in the same transaction."""
    latest: dict[str, dict[str, Any]] = {row["external_id"]: row for row in rows}
    fields = [name for name in rows[0] if name != "external_id"] if rows else []
    outcomes: dict[str, Saved] = {}
    # Sorted: concurrent writers lock and insert rows in one order, so they queue, not deadlock.
    pending = sorted(latest)
    while pending:  # a second round only for ids a concurrent writer created meanwhile
        existing = _stored(session, table, fields, pending)
        inserts, updates, changes = [], [], []
        for key in pending:
            row, old = latest[key], existing.get(key)
            if merge:
                merge(old, row, now)
            if old is None:
                inserts.append({**row, "created_at": now, "updated_at": now})
            elif any(old[name] != row[name] for name in fields):
                updates.append({**row, "b_id": old["id"], "updated_at": now})
                outcomes[key] = Saved(key, old["id"], Outcome.UPDATED)
                changes.append((old, row))
            else:
                outcomes[key] = Saved(key, old["id"], Outcome.UNCHANGED)
        if updates:
            statement = (
                update(table)
                .where(table.c.id == bindparam("b_id"))
                .values({name: bindparam(name) for name in [*fields, "updated_at"]})
            )
            session.connection().execute(statement, updates)
        pending = []
        if inserts:
            postgres = session.get_bind().dialect.name == "postgresql"
            inserted = (_insert_unnest if postgres else _insert)(session, table, inserts)
            created = {external_id: row_id for external_id, row_id in inserted}
            for row in inserts:
                key = row["external_id"]
                if key in created:
                    outcomes[key] = Saved(key, created[key], Outcome.CREATED)
                    changes.append((None, latest[key]))
                else:
                    pending.append(key)
        if on_change and changes:
            on_change(session, changes)
    return [outcomes[row["external_id"]] for row in rows]


def _stored(
    session: Session, table: Table, fields: list[str], keys: list[str]
) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    columns = [table.c.id, table.c.external_id, *(table.c[name] for name in fields)]
    for start in range(0, len(keys), LOOKUP_CHUNK):
        chunk = keys[start : start + LOOKUP_CHUNK]
        # FOR UPDATE (PostgreSQL): a concurrent update of these rows waits for us, or we for it,
        # so the "before" we compare with (and count from) is the row as it really is.
        query = select(*columns).where(table.c.external_id.in_(chunk)).order_by(table.c.external_id)
        for row in session.execute(query.with_for_update()):
            found[row.external_id] = row._asdict()
    return found


def _insert(
    session: Session, table: Table, rows: list[dict[str, Any]]
) -> Iterable[tuple[str, int]]:
    """Inserts; an id that a concurrent writer created since we looked is skipped, not
    overwritten, and goes round again as an update (so it is counted as what it is)."""
    statement = (
        sqlite.insert(table)
        .on_conflict_do_nothing(index_elements=[table.c.external_id])
        .returning(table.c.external_id, table.c.id)
    )
    return session.connection().execute(statement, rows)


def _insert_unnest(
    session: Session, table: Table, rows: list[dict[str, Any]]
) -> Iterable[tuple[str, int]]:
    """PostgreSQL: one INSERT … SELECT unnest(arrays) per batch. A multi-row VALUES statement
    with thousands of parameters spends most of its time in the driver, not the server."""
    statement = (
        postgresql.insert(table)
        .from_select(list(rows[0]), _unnest(table, rows))
        .on_conflict_do_nothing(index_elements=[table.c.external_id])
        .returning(table.c.external_id, table.c.id)
    )
    return session.connection().execute(statement)


def _unnest(table: Table, rows: list[dict[str, Any]]) -> Select[Any]:
    """SELECT unnest(:column_values), … : the rows as one array parameter per column."""
    columns = []
    for name in rows[0]:
        column = table.c[name]
        as_json = isinstance(column.type, JSON)
        values = [row[name] for row in rows]
        if as_json:
            values = [json.dumps(value, ensure_ascii=False) for value in values]
        array = bindparam(f"a_{name}", values, type_=ARRAY(Text if as_json else column.type))
        columns.append(cast(func.unnest(array), column.type) if as_json else func.unnest(array))
    return select(*columns)


def count_responses_by_day(session: Session, changes: list[Change]) -> None:
    """Keeps response_day_counts equal to the responses table, in the same transaction as the
    write: +1 where a response now counts, -1 where it counted before an update moved it."""
    delta: Counter[tuple[date, str, int]] = Counter()
    for old, new in changes:
        if old is not None:
            delta[_day_key(old)] -= 1
        delta[_day_key(new)] += 1
    rows = [
        {"day": day, "survey": survey, "score": score, "responses": n}
        for (day, survey, score), n in sorted(delta.items())  # one lock order: no deadlocks
        if n
    ]
    if not rows:
        return
    table = ResponseDayCount.__table__
    if session.get_bind().dialect.name == "postgresql":
        statement = postgresql.insert(table).from_select(list(rows[0]), _unnest(table, rows))
        parameters = None
    else:
        statement, parameters = sqlite.insert(table), rows
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.day, table.c.survey, table.c.score],
        set_={"responses": table.c.responses + statement.excluded.responses},
    )
    session.connection().execute(statement, parameters)


def _day_key(row: dict[str, Any]) -> tuple[date, str, int]:
    return row["submitted_at"].astimezone(UTC).date(), row["survey"] or "", row["score"]
