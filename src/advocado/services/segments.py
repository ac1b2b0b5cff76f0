"""Segments: saving them, and turning their filters (domain/segments) into one query over
customers, their insights and their latest response in scope.

Members are listed in customer order with a keyset cursor, so paging through a large segment
costs the same on page 1 and page 1000, and export streams them the same way.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import Engine, Select, Text, and_, cast, exists, func, literal, or_, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from advocado import clock
from advocado.domain import segments as rules
from advocado.domain.nps import category
from advocado.domain.records import FieldError
from advocado.domain.segments import SegmentFilter
from advocado.services import audit
from advocado.services.audit import SYSTEM
from advocado.store.db import read_only
from advocado.store.models import (
    Customer,
    CustomerInsight,
    CustomerLatestResponse,
    Response,
    Segment,
)

EXPORT_BATCH = 2000
CSV_COLUMNS = (
    "external_id", "name", "email", "phone", "locale", "marketing_consent", "tags",
    "value_tier", "lifecycle_stage", "recency_days", "frequency", "monetary",
    "influence_score", "high_influence", "value_explanation", "influence_explanation",
    "response_score", "response_category",
    "response_persona", "response_survey", "response_submitted_at", "response_comment",
)  # fmt: skip


class SegmentNotFound(LookupError):
    pass


class SegmentExists(FieldError):
    def __init__(self, slug: str) -> None:
        super().__init__("slug", f"a segment {slug!r} already exists")
        self.slug = slug


@dataclass(frozen=True)
class SegmentView:
    slug: str
    name: str
    filters: dict[str, Any]
    members: int
    created_at: datetime
    updated_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {"slug": self.slug, "name": self.name, "filters": self.filters,
                "members": self.members, "created_at": self.created_at.isoformat(),
                "updated_at": self.updated_at.isoformat()}  # fmt: skip


# --- the query ---------------------------------------------------------------------------


def _latest_responses(spec: SegmentFilter, among: list[int] | None = None) -> Any:
    """Each customer's latest response in scope (survey, period), as a subquery. Without a
    survey or an end date that is the customer's latest response of all (if it is on or after
    the start date): customer_latest_responses, kept by services.customer_aggregates."""
    if not spec.survey and not spec.submitted_to:
        latest = CustomerLatestResponse
        query = select(
            latest.customer_id, latest.response_id, latest.score, latest.persona,
            Response.evidence, Response.comment, Response.survey, latest.submitted_at,
        ).outerjoin(Response, Response.id == latest.response_id)  # fmt: skip
        if among is not None:
            query = query.where(latest.customer_id.in_(among))
        if spec.submitted_from:
            query = query.where(
                latest.submitted_at >= datetime.combine(spec.submitted_from, time(), UTC)
            )
        return query.subquery("latest")
    rank = func.row_number().over(
        partition_by=Response.customer_id,
        order_by=(Response.submitted_at.desc(), Response.id.desc()),
    )
    query = select(
        Response.customer_id, Response.id.label("response_id"), Response.score,
        Response.persona, Response.evidence, Response.comment, Response.survey,
        Response.submitted_at, rank.label("rank"),
    ).where(Response.customer_id.is_not(None))  # fmt: skip
    if among is not None:  # a few customers: rank only their responses
        query = query.where(Response.customer_id.in_(among))
    if spec.survey:
        query = query.where(Response.survey == spec.survey)
    if spec.submitted_from:
        query = query.where(
            Response.submitted_at >= datetime.combine(spec.submitted_from, time(), UTC)
        )
    if spec.submitted_to:
        end = datetime.combine(spec.submitted_to + timedelta(days=1), time(), UTC)
        query = query.where(Response.submitted_at < end)
    ranked = query.subquery("ranked")
    return select(ranked).where(ranked.c.rank == 1).subquery("latest")


def _score_range(spec: SegmentFilter) -> tuple[int, int]:
    """nps_category and score_min/max folded into one inclusive range (or an empty one)."""
    low, high = spec.score_min or 0, 10 if spec.score_max is None else spec.score_max
    return low, high


def _category_condition(score: Any, spec: SegmentFilter) -> ColumnElement[bool] | None:
    if not spec.nps_category:
        return None
    bounds = {"promoter": (9, 10), "passive": (7, 8), "detractor": (0, 6)}
    return or_(*(score.between(*bounds[name]) for name in spec.nps_category))


def _tag_conditions(session: Session, spec: SegmentFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if not (spec.tags_any or spec.tags_all):
        return conditions
    if session.get_bind().dialect.name == "postgresql":
        tags = cast(Customer.tags, postgresql.JSONB)
        text_array = postgresql.ARRAY(Text)
        if spec.tags_any:
            conditions.append(tags.has_any(cast(list(spec.tags_any), text_array)))
        if spec.tags_all:
            conditions.append(tags.has_all(cast(list(spec.tags_all), text_array)))
        return conditions
    each = func.json_each(Customer.tags).table_valued("value")
    if spec.tags_any:
        conditions.append(exists(select(literal(1)).select_from(each)
                                 .where(each.c.value.in_(spec.tags_any))))  # fmt: skip
    if spec.tags_all:
        matched = (
            select(func.count(func.distinct(each.c.value)))
            .select_from(each)
            .where(each.c.value.in_(spec.tags_all))
            .scalar_subquery()
        )
        conditions.append(matched == len(spec.tags_all))
    return conditions


def _members(
    session: Session, spec: SegmentFilter, columns: bool, among: list[int] | None = None
) -> Select[Any]:
    """Customers in the segment (only those `among` these ids, if given); with `columns`,
    everything a member list shows."""
    latest = _latest_responses(spec, among)
    insight = CustomerInsight
    if columns:
        query = select(
            Customer.id, Customer.external_id, Customer.name, Customer.email, Customer.phone,
            Customer.locale, Customer.marketing_consent, Customer.tags, insight.value_tier,
            insight.lifecycle_stage, insight.recency_days, insight.frequency, insight.monetary,
            insight.influence_score, insight.high_influence, insight.value_explanation,
            insight.influence_explanation, latest.c.response_id,
            latest.c.score.label("response_score"),
            latest.c.persona.label("response_persona"),
            latest.c.evidence.label("response_evidence"),
            latest.c.comment.label("response_comment"),
            latest.c.survey.label("response_survey"),
            latest.c.submitted_at.label("response_submitted_at"),
        )  # fmt: skip
    else:
        query = select(Customer.id)
    needs_insight = columns or any(
        value is not None and value != ()
        for value in (spec.value_tier, spec.lifecycle_stage, spec.high_influence,
                      spec.influence_min)
    )  # fmt: skip
    query = query.select_from(Customer)
    if needs_insight:
        query = query.outerjoin(insight, insight.customer_id == Customer.id)
    if spec.scoped:
        query = query.join(latest, latest.c.customer_id == Customer.id)
    elif columns:
        query = query.outerjoin(latest, latest.c.customer_id == Customer.id)
    conditions: list[ColumnElement[bool]] = []
    if spec.score_min is not None or spec.score_max is not None:
        conditions.append(latest.c.score.between(*_score_range(spec)))
    found = _category_condition(latest.c.score, spec)
    if found is not None:
        conditions.append(found)
    if spec.persona:
        conditions.append(latest.c.persona.in_(spec.persona))
    if spec.value_tier:
        conditions.append(insight.value_tier.in_(spec.value_tier))
    if spec.lifecycle_stage:
        conditions.append(insight.lifecycle_stage.in_(spec.lifecycle_stage))
    if spec.high_influence is True:
        conditions.append(insight.high_influence.is_(True))
    elif spec.high_influence is False:
        conditions.append(or_(insight.high_influence.is_(None),
                              insight.high_influence.is_(False)))  # fmt: skip
    if spec.influence_min is not None:
        conditions.append(insight.influence_score >= spec.influence_min)
    if spec.consent is not None:
        conditions.append(Customer.marketing_consent.is_(spec.consent))
    conditions += _tag_conditions(session, spec)
    if among is not None:
        conditions.append(Customer.id.in_(among))
    return query.where(and_(True, *conditions))


def count_members(session: Session, spec: SegmentFilter) -> int:
    query = _members(session, spec, columns=False).subquery()
    return session.scalar(select(func.count()).select_from(query)) or 0


def members_among(session: Session, spec: SegmentFilter, customer_ids: list[int]) -> set[int]:
    """Which of these customers the filters select (playbook conditions ask this)."""
    found: set[int] = set()
    for start in range(0, len(customer_ids), 900):
        chunk = customer_ids[start : start + 900]
        found.update(session.scalars(_members(session, spec, columns=False, among=chunk)))
    return found


def _member(row: Any) -> dict[str, Any]:
    found = row._asdict()
    score = found["response_score"]
    found["response_category"] = None if score is None else str(category(score))
    return found


def member_page(
    session: Session, spec: SegmentFilter, *, limit: int, after: int | None = None
) -> tuple[list[dict[str, Any]], int | None]:
    """Up to `limit` members after the cursor, and the next cursor (None at the end)."""
    query = _members(session, spec, columns=True).order_by(Customer.id).limit(limit + 1)
    if after is not None:
        query = query.where(Customer.id > after)
    rows = list(session.execute(query))
    more = len(rows) > limit
    rows = rows[:limit]
    return [_member(row) for row in rows], (rows[-1].id if more and rows else None)


def _csv_cell(value: Any) -> Any:
    """Text that a spreadsheet would run as a formula (=, +, -, @) is quoted with a leading '."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


csv_cell = _csv_cell  # the one rule, shared with the dashboard's exports


def export_csv(session: Session, spec: SegmentFilter) -> Iterator[str]:
    """The members as CSV text, in chunks (UTF-8 with a BOM so Excel reads Chinese right)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")
    writer.writerow(CSV_COLUMNS)
    after = None
    while True:
        members, after = member_page(session, spec, limit=EXPORT_BATCH, after=after)
        for member in members:
            member = {**member, "tags": ";".join(member["tags"] or [])}
            if member["response_submitted_at"] is not None:
                member["response_submitted_at"] = member["response_submitted_at"].isoformat()
            writer.writerow([_csv_cell(member[name]) for name in CSV_COLUMNS])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        if after is None:
            return


def stream_csv(engine: Engine, *, slug: str) -> Iterator[str]:
    """A saved segment's members as CSV, read in one read-only transaction while it streams."""
    with read_only(engine) as session:
        _, spec = segment_filter(session, slug=slug)
        yield from export_csv(session, spec)


# --- saved segments ----------------------------------------------------------------------


def _view(session: Session, segment: Segment) -> SegmentView:
    spec = rules.parse_filters(segment.filters)
    return SegmentView(slug=segment.slug, name=segment.name, filters=spec.as_dict(),
                       members=count_members(session, spec), created_at=segment.created_at,
                       updated_at=segment.updated_at)  # fmt: skip


def _find(session: Session, slug: str) -> Segment:
    segment = session.scalars(select(Segment).where(Segment.slug == slug)).one_or_none()
    if segment is None:
        raise SegmentNotFound(f"no segment {slug!r}")
    return segment


def list_segments(session: Session) -> list[SegmentView]:
    """Every saved segment with its live member count, by name."""
    segments = session.scalars(select(Segment).order_by(Segment.name, Segment.id))
    return [_view(session, segment) for segment in segments]


def get_segment(session: Session, *, slug: str) -> SegmentView:
    return _view(session, _find(session, slug))


def segment_filter(session: Session, *, slug: str) -> tuple[Segment, SegmentFilter]:
    segment = _find(session, slug)
    return segment, rules.parse_filters(segment.filters)


def create_segment(
    session: Session, *, name: str, filters: Any, slug: str | None = None, actor: str = SYSTEM
) -> SegmentView:
    """Raises FieldError (bad name, slug or filter) or SegmentExists."""
    name = rules.name(name)
    spec = rules.parse_filters(filters)
    if slug:
        slug = rules.slug(slug)
        if session.scalar(select(Segment.id).where(Segment.slug == slug)) is not None:
            raise SegmentExists(slug)
    else:
        base = rules.slug_from_name(name)
        taken = set(session.scalars(select(Segment.slug).where(Segment.slug.like(f"{base}%"))))
        slug, number = base, 2
        while slug in taken:
            slug, number = f"{base[:95]}-{number}", number + 1
    now = clock.now()
    segment = Segment(slug=slug, name=name, filters=spec.as_dict(), created_at=now,
                      updated_at=now)  # fmt: skip
    session.add(segment)
    session.flush()
    from advocado.services import cohorts  # (it builds on this module)

    cohorts.recompute(session, segment.id)
    audit.record(
        session,
        actor=actor,
        entity="segment",
        entity_id=slug,
        action="create",
        after={"name": name, "filters": segment.filters},
    )
    return _view(session, segment)


def update_segment(
    session: Session, *, slug: str, name: str, filters: Any, actor: str = SYSTEM
) -> SegmentView:
    segment = _find(session, slug)
    before = {"name": segment.name, "filters": segment.filters}
    segment.name = rules.name(name)
    segment.filters = rules.parse_filters(filters).as_dict()
    segment.updated_at = clock.now()
    session.flush()
    from advocado.services import cohorts

    cohorts.recompute(session, segment.id)
    audit.record(
        session,
        actor=actor,
        entity="segment",
        entity_id=slug,
        action="update",
        before=before,
        after={"name": segment.name, "filters": segment.filters},
    )
    return _view(session, segment)


def delete_segment(session: Session, *, slug: str, actor: str = SYSTEM) -> None:
    segment = _find(session, slug)
    audit.record(
        session,
        actor=actor,
        entity="segment",
        entity_id=slug,
        action="delete",
        before={"name": segment.name, "filters": segment.filters},
    )
    from advocado.services import cohorts

    segment_id = segment.id
    session.delete(segment)
    session.flush()  # first: a worker judging this segment finishes before its rows go
    cohorts.forget_segment(session, segment_id)


def member_ids(session: Session, spec: SegmentFilter) -> Select[Any]:
    """SELECT of the ids of the customers in a segment, for other queries to filter on."""
    return _members(session, spec, columns=False)


# --- promoters by persona (console) ------------------------------------------------------

PERSONA_TABS = ("emotional", "rational", "neutral", "high_influence")


@dataclass(frozen=True)
class PromoterPage:
    tab: str
    counts: dict[str, int]
    members: list[dict[str, Any]]
    next: int | None


def persona_filter(tab: str) -> SegmentFilter:
    """The promoters of one persona tab (high_influence: whatever their persona)."""
    if tab == "high_influence":
        return SegmentFilter(nps_category=("promoter",), high_influence=True)
    return SegmentFilter(nps_category=("promoter",), persona=(tab,))


def promoters_by_persona(
    session: Session, *, tab: str, limit: int = 50, after: int | None = None
) -> PromoterPage:
    """Customers whose latest response is a promoter's (9-10), by persona of that response,
    or high-influence promoters whatever their persona. Raises FieldError for an unknown tab."""
    if tab not in PERSONA_TABS:
        raise FieldError("persona", f"{tab!r} is not one of {', '.join(PERSONA_TABS)}")
    specs = {name: persona_filter(name) for name in PERSONA_TABS}
    counts = {name: count_members(session, spec) for name, spec in specs.items()}
    members, following = member_page(session, specs[tab], limit=limit, after=after)
    return PromoterPage(tab=tab, counts=counts, members=members, next=following)
