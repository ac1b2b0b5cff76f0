from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, select

from advocado import clock
from advocado.domain.records import CustomerRecord
from advocado.services.demo import ADMIN_EMAIL, ADMIN_PASSWORD, DatabaseNotEmpty, load_demo
from advocado.services.records import save_customers
from advocado.services.users import verify_login
from advocado.store.db import unit_of_work
from advocado.store.models import (
    Base,
    Customer,
    Order,
    Response,
    Setting,
    User,
)


def _snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """Every demo row, by external ids rather than row ids."""
    with unit_of_work(engine) as session:
        ext = {i: e for i, e in session.execute(select(Customer.id, Customer.external_id))}
        customers = [
            (c.external_id, c.name, c.email, c.phone, c.locale, c.timezone, c.marketing_consent,
             c.consent_at, c.consent_source, tuple(c.tags), sorted(c.attributes.items()))
            for c in session.scalars(select(Customer).order_by(Customer.external_id))
        ]  # fmt: skip
        orders = [
            (o.external_id, ext[o.customer_id], o.amount, o.currency, o.status, o.placed_at)
            for o in session.scalars(select(Order).order_by(Order.external_id))
        ]
        responses = [
            (r.external_id, ext.get(r.customer_id), r.score, r.comment, r.survey, r.channel,
             r.submitted_at)
            for r in session.scalars(select(Response).order_by(Response.external_id))
        ]  # fmt: skip
        users = [(u.email, u.role) for u in session.scalars(select(User))]
    return {"customers": customers, "orders": orders, "responses": responses, "users": users}


def _empty(engine: Engine) -> None:
    """Every table the demo may fill, children first (settings such as secrets stay)."""
    with unit_of_work(engine) as session:
        for table in reversed(Base.metadata.sorted_tables):
            if table.name != Setting.__tablename__:
                session.execute(table.delete())


def test_same_seed_gives_identical_rows(engine: Engine) -> None:
    clock.set_now(datetime(2026, 3, 15, 8, 30, tzinfo=UTC))
    first_summary = load_demo(engine, customers=150, seed=11)
    first = _snapshot(engine)
    _empty(engine)
    clock.set_now(datetime(2026, 3, 15, 21, 0, tzinfo=UTC))  # later the same day
    second_summary = load_demo(engine, customers=150, seed=11)
    assert _snapshot(engine) == first
    assert second_summary.describe() == first_summary.describe()
    assert len(first["customers"]) == 150
    assert len(first["orders"]) > 150 and len(first["responses"]) > 50
    _empty(engine)
    load_demo(engine, customers=150, seed=12)
    assert _snapshot(engine)["responses"] != first["responses"]


def test_refuses_a_database_that_has_customers(engine: Engine) -> None:
    with unit_of_work(engine) as session:
        save_customers(session, [CustomerRecord("real-1", name="A real customer")])
    with pytest.raises(DatabaseNotEmpty, match="already has 1 customers"):
        load_demo(engine, customers=10)
    with unit_of_work(engine) as session:
        assert session.scalars(select(Customer.external_id)).all() == ["real-1"]
        assert session.scalars(select(User)).all() == []


def test_demo_admin_can_sign_in_and_describe_says_how(engine: Engine) -> None:
    summary = load_demo(engine, customers=20)
    text = summary.describe()
    for needed in ("http://127.0.0.1:8000/", ADMIN_EMAIL, ADMIN_PASSWORD, "advocado serve"):
        assert needed in text
    assert f"{summary.customers} customers" in text
    with unit_of_work(engine) as session:
        assert verify_login(session, email=ADMIN_EMAIL, password=ADMIN_PASSWORD) is not None


def test_the_demo_has_segments_to_filter_the_dashboard_by(engine: Engine) -> None:
    from advocado.domain.dashboard import Filters
    from advocado.services import dashboard, segments
    from advocado.services.demo import DEMO_SEGMENTS
    from advocado.store.db import read_only

    load_demo(engine, customers=300, seed=5)
    with read_only(engine) as session:
        for _name, slug, filters in DEMO_SEGMENTS:
            spec = segments.segment_filter(session, slug=slug)[1]
            members = segments.count_members(session, spec)
            assert members > 0, slug
            promoters = dashboard.panel(session, "promoters", Filters(segment=slug))
            if "nps_category" in filters:  # every member is a promoter: all of them counted
                assert promoters.summary["promoters"] == members
