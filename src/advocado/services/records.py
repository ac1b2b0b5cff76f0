"""Saving customers, orders and responses by their external ids: create, update, or leave
alone. CSV import and the API both write through here, in batches."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from operator import itemgetter
from typing import Any

from sqlalchemy import JSON, Select, Table, Text, bindparam, cast, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from advocado import clock
from advocado.domain.records import CustomerRecord, FieldError, OrderRecord, ResponseRecord
from advocado.services import cohorts, customer_aggregates
from advocado.services.lexicon import brand_lexicon
from advocado.services.playbooks import record_response_events
from advocado.store.models import Customer, Order, Response, ResponseDayCount, UtcDateTime
from advocado.text.analyze import Analysis, analyze_cached
from advocado.text.lexicon import Lexicon

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
    return _save(session, Customer.__table__, rows, now, merge=_keep_consent_evidence,
                 on_change=_customers_changed)  # fmt: skip


def _customers_changed(session: Session, changes: list[Change]) -> None:
    """Tags and consent are segment filters: the customers' memberships are judged again."""
    cohorts.mark_dirty(session, [(old or new)["id"] for old, new in changes if (old or new)])


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
    # The dashboard's paid_order_days, for the owners before and after, same transaction.
    owners = customer_aggregates.order_owners(session, [r.external_id for r in records])
    with customer_aggregates.orders_changing(session, owners | {r["customer_id"] for r in rows}):
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
            **_NOT_ANALYZED,
        }
        for r in records
    ]
    return _save(
        session, Response.__table__, rows, clock.now(),
        merge=_CommentAnalysis(session), on_change=_responses_changed,
    )  # fmt: skip


def _responses_changed(session: Session, changes: list[Change]) -> None:
    """In the transaction that writes responses: the day counts, and the playbook outbox
    (one event per response of a known customer, written set-based)."""
    count_responses_by_day(session, changes)
    record_response_events(session, changes)
    customer_aggregates.responses_changed(
        session, [row["customer_id"] for pair in changes for row in pair if row is not None]
    )


def delete_responses(session: Session, external_ids: Sequence[str]) -> int:
    """Delete responses by external id (erasure), with the day counts and the customers'
    latest responses adjusted in the same transaction. Returns how many were deleted."""
    table = Response.__table__
    stored = _stored(session, table, ["customer_id", "survey", "score", "submitted_at"],
                     sorted(set(external_ids)))  # fmt: skip
    if not stored:
        return 0
    ids = [row["id"] for row in stored.values()]
    customer_aggregates.forget(session, [r["customer_id"] for r in stored.values()])
    for start in range(0, len(ids), LOOKUP_CHUNK):
        session.execute(delete(table).where(table.c.id.in_(ids[start : start + LOOKUP_CHUNK])))
    count_responses_by_day(session, [(row, None) for row in stored.values()])
    customer_aggregates.responses_changed(session, [r["customer_id"] for r in stored.values()])
    return len(ids)


ANALYSIS_FIELDS = ("language", "sentiment", "persona", "persona_confidence", "evidence")
_NOT_ANALYZED: dict[str, Any] = dict.fromkeys((*ANALYSIS_FIELDS, "analyzed_at"))


class _CommentAnalysis:
    """The `merge` step of saving responses: classifies a comment that is new, changed or never
    analysed, and otherwise keeps the stored analysis, so an unchanged re-import does no
    classification work and compares equal. The brand's lexicon is read once per call, and
    only if some comment needs it."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._lexicon: Lexicon | None = None

    def __call__(self, old: dict[str, Any] | None, new: dict[str, Any], now: datetime) -> None:
        unchanged = old is not None and old["comment"] == new["comment"]
        if unchanged and (old["analyzed_at"] is not None or not new["comment"]):  # type: ignore[index]
            new.update({name: old[name] for name in _NOT_ANALYZED})  # type: ignore[index]
            return
        if not new["comment"] or not new["comment"].strip():
            new.update(_NOT_ANALYZED)
            return
        if self._lexicon is None:
            self._lexicon = brand_lexicon(self._session)
        new.update(_analysis_fields(analyze_cached(new["comment"], self._lexicon)))
        new["analyzed_at"] = now


def _analysis_fields(analysis: Analysis) -> dict[str, Any]:
    return {
        "language": analysis.language,
        "sentiment": analysis.sentiment,
        "persona": analysis.persona,
        "persona_confidence": analysis.confidence,
        "evidence": analysis.evidence,
    }


# (stored row or None if new, new row or None if deleted: deletes only reach the day counts)
Change = tuple[dict[str, Any] | None, dict[str, Any] | None]


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
                    changes.append((None, {**latest[key], "id": created[key]}))
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
    """SQLite: the rows through the driver's own executemany, each value converted once by its
    column type; SQLAlchemy's per-row statement machinery cost more than SQLite itself.
    Transactions begin IMMEDIATE here, so no other writer can have created one of these ids
    since we looked: a conflict would be a bug, and raises."""
    connection = session.connection()
    names = list(rows[0])
    converters = [
        (name, _sqlite_converter(table.c[name].type, connection.dialect)) for name in names
    ]
    columns_of_values = []  # column by column: map() keeps the per-value loop in C
    for name, convert in converters:
        raw = map(itemgetter(name), rows)
        columns_of_values.append(list(map(convert, raw) if convert else raw))
    values = list(zip(*columns_of_values, strict=True))
    columns = ", ".join(f'"{name}"' for name in names)
    marks = ", ".join("?" * len(names))
    cursor = connection.connection.driver_connection.cursor()
    cursor.executemany(f'INSERT INTO "{table.name}" ({columns}) VALUES ({marks})', values)
    keys = [row["external_id"] for row in rows]
    found: list[tuple[str, int]] = []
    for start in range(0, len(keys), LOOKUP_CHUNK):
        chunk = keys[start : start + LOOKUP_CHUNK]
        query = select(table.c.external_id, table.c.id).where(table.c.external_id.in_(chunk))
        found.extend((external_id, row_id) for external_id, row_id in session.execute(query))
    return found


def _sqlite_converter(column_type: Any, dialect: Any) -> Callable[[Any], Any] | None:
    """How a value of this column is handed to sqlite3, as SQLAlchemy would store it."""
    if isinstance(column_type, UtcDateTime):
        return _sqlite_utc_text
    return column_type._cached_bind_processor(dialect)


def _sqlite_utc_text(value: datetime | None) -> str | None:
    # SQLAlchemy's SQLite DATETIME text ("2026-01-31 09:30:00.000000"), written by C code:
    # the generic path costs several Python calls per timestamp on the import hot path.
    if value is None:
        return None
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


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
    per_customer: list[tuple[int | None, tuple[date, str, int], int]] = []
    for old, new in changes:
        if old is not None:
            delta[_day_key(old)] -= 1
            per_customer.append((old["customer_id"], _day_key(old), -1))
        if new is not None:
            delta[_day_key(new)] += 1
            per_customer.append((new["customer_id"], _day_key(new), +1))
    cohorts.responses_counted(session, per_customer)  # the same counts per segment / program
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
