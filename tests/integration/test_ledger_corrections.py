"""Manual ledger corrections (Action.CORRECT_LEDGER): a new adjusting entry, never an edit;
once per key, also when two identical corrections race; never below zero; audited in the same
transaction; refused (and nothing written) for a role that may not correct; the same service
behind the console form, the CLI and the API."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from test_referrals import race
from test_roles_audit import PASSWORD, counts, sign_in

from advocado import clock
from advocado.services import audit, ledger
from advocado.services.apikeys import create_api_key
from advocado.services.users import create_user
from advocado.store.db import read_only, unit_of_work
from advocado.store.models import AuditEntry, Customer, LedgerEntry
from advocado.web.app import create_app

NOW = datetime(2026, 11, 20, 10, tzinfo=UTC)


def customer_with_points(engine: Engine, points: int = 100, external_id: str = "c-1") -> int:
    clock.set_now(NOW)
    with unit_of_work(engine) as session:
        person = Customer(external_id=external_id, name="王小明", created_at=NOW, updated_at=NOW)
        session.add(person)
        session.flush()
        ledger.post(session, key=f"seed:{person.id}", asset=ledger.POINTS, debit="rewards",
                    credit=ledger.account(person.id, ledger.POINTS), amount=points,
                    available_at=NOW)  # fmt: skip
        return person.id


def available(engine: Engine, customer_id: int, asset: str = ledger.POINTS) -> int:
    with read_only(engine) as session:
        return ledger.balances(session, customer_id)[asset].available


def corrections(engine: Engine) -> int:
    with read_only(engine) as session:
        query = (
            select(func.count())
            .select_from(LedgerEntry)
            .where(LedgerEntry.key.like(f"{ledger.CORRECTION}%"))
        )
        return session.scalar(query) or 0


def correct(engine: Engine, amount: int, key: str, **more: object) -> ledger.Corrected:
    arguments = {"customer": "c-1", "amount": amount, "unit": "points", "reason": "客服补偿",
                 "actor": "user:admin@example.com", "key": key, **more}  # fmt: skip
    return ledger.correct_balance(engine, **arguments)


def test_a_correction_is_a_new_entry_once_per_key_and_audited(engine: Engine) -> None:
    cid = customer_with_points(engine)
    added = correct(engine, 25, "k1")
    assert (added.duplicate, added.before.available, added.after.available) == (False, 100, 125)
    again = correct(engine, 25, "k1")
    assert (again.duplicate, again.entry_id) == (True, added.entry_id)
    with pytest.raises(ledger.SpendError) as reused:
        correct(engine, 30, "k1")
    assert reused.value.field == "key" and "+25" in str(reused.value)
    taken = correct(engine, -125, "k2")
    assert taken.after.available == 0 and available(engine, cid) == 0
    with pytest.raises(ledger.InsufficientBalance) as short:
        correct(engine, -1, "k3")
    assert short.value.available == 0 and "only 0 available" in str(short.value)
    with read_only(engine) as session:
        rows = session.scalars(
            select(LedgerEntry).where(LedgerEntry.key.like("correct:%")).order_by(LedgerEntry.id)
        ).all()
        found = audit.entries(session, entity="ledger")
        seed = session.scalar(select(LedgerEntry).where(LedgerEntry.key.like("seed:%")))
    assert [(r.debit_account, r.credit_account, r.amount) for r in rows] == [
        ("corrections", f"customer:{cid}:points", 25),
        (f"customer:{cid}:points", "corrections", 125),
    ]
    assert seed.amount == 100  # the old entry is untouched
    assert [
        (e.action, e.entity_id, e.before["available"], e.after["available"]) for e in found
    ] == [
        ("correct", "c-1", 125, 0),
        ("correct", "c-1", 100, 125),
    ]
    assert found[1].after["reason"] == "客服补偿" and found[1].actor == "user:admin@example.com"


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"amount": 0}, "amount"),
        ({"reason": "  "}, "reason"),
        ({"unit": "coins"}, "unit"),
        ({"unit": "credit"}, "currency"),  # holds no credit: which currency?
        ({"customer": "nobody"}, "customer"),
        ({"key": ""}, "key"),
    ],
)
def test_bad_corrections_name_the_field_and_write_nothing(
    engine: Engine, arguments: dict[str, object], field: str
) -> None:
    customer_with_points(engine)
    before = counts_of(engine)
    with pytest.raises(ledger.SpendError) as bad:
        correct(engine, **{"amount": 5, "key": "k", **arguments})  # type: ignore[arg-type]
    assert bad.value.field == field
    assert counts_of(engine) == before


def counts_of(engine: Engine) -> tuple[int, int]:
    with read_only(engine) as session:
        return (
            session.scalar(select(func.count()).select_from(LedgerEntry)) or 0,
            session.scalar(select(func.count()).select_from(AuditEntry)) or 0,
        )


def test_store_credit_corrections_use_the_customers_currency(engine: Engine) -> None:
    cid = customer_with_points(engine)
    done = correct(engine, 500, "credit-1", unit="credit", currency="cny")
    assert done.asset == "CNY" and available(engine, cid, "CNY") == 500
    taken = correct(engine, -200, "credit-2", unit="credit")  # its only currency
    assert taken.asset == "CNY" and taken.after.available == 300


def test_two_identical_corrections_racing_post_one_entry(engine: Engine) -> None:
    cid = customer_with_points(engine)
    engine.pool.dispose()
    results = race(8, lambda: correct(engine, -60, "same"))
    assert [r for r in results if isinstance(r, Exception)] == []
    assert sum(not r.duplicate for r in results) == 1
    assert corrections(engine) == 1 and available(engine, cid) == 40
    keys = iter(range(100))
    different = race(8, lambda: correct(engine, -15, f"d-{next(keys)}"))
    assert sum(isinstance(r, ledger.Corrected) for r in different) == 2  # 40 // 15
    assert all(isinstance(r, ledger.Corrected | ledger.InsufficientBalance) for r in different)
    assert available(engine, cid) == 10
    with read_only(engine) as session:
        assert (
            session.scalar(
                select(func.count()).select_from(AuditEntry).where(AuditEntry.entity == "ledger")
            )
            == 3
        )


@pytest.fixture
def app_client(engine: Engine, database_url: str) -> Iterator[TestClient]:
    with unit_of_work(engine) as session:
        for role in ("admin", "marketer", "analyst"):
            create_user(session, email=f"{role}@example.com", password=PASSWORD, role=role)
    app = create_app(database_url)
    with TestClient(app, follow_redirects=False) as client:
        yield client
    app.state.engine.dispose()


def test_console_form_for_admins_only_checked_by_the_server(
    app_client: TestClient, engine: Engine
) -> None:
    cid = customer_with_points(engine)
    clock.set_now(None)
    token = sign_in(app_client, "analyst")
    page = app_client.get("/customers/c-1")
    assert page.status_code == 200 and 'data-testid="lc-form"' not in page.text
    before = counts(engine)
    form = {"csrf": token, "amount": "-10", "unit": "points", "reason": "x", "key": "a1"}
    refused = app_client.post("/customers/c-1/corrections", data=form)
    assert refused.status_code == 403 and "ledger.correct" in refused.text
    assert counts(engine) == before  # no entry, no audit row
    sign_in(app_client, "marketer")
    assert app_client.post("/customers/c-1/corrections", data=form).status_code == 403

    token = sign_in(app_client, "admin")
    page = app_client.get("/customers/c-1?lang=zh-CN")
    assert 'data-testid="lc-form"' in page.text and "调整余额" in page.text
    key = re.search(r'name="key" value="([0-9a-f]+)"', page.text).group(1)
    form = {"csrf": token, "amount": "+30", "unit": "points", "reason": "补发积分", "key": key}
    done = app_client.post("/customers/c-1/corrections", data=form)
    assert done.status_code == 303 and "corrected=" in done.headers["location"]
    twice = app_client.post("/customers/c-1/corrections", data=form)  # a double click
    assert twice.status_code == 303 and twice.headers["location"].endswith("corrected=again")
    assert available(engine, cid) == 130 and corrections(engine) == 1
    shown = app_client.get(done.headers["location"])
    assert "补发积分" in shown.text and 'data-testid="lc-done"' in shown.text
    over = app_client.post(
        "/customers/c-1/corrections", data={**form, "amount": "-500", "key": "k-over"}
    )
    assert over.status_code == 409 and "only 130 available" in over.text
    bad = app_client.post("/customers/c-1/corrections", data={**form, "amount": "ten", "key": "z"})
    assert bad.status_code == 400 and "amount" in bad.text
    expired = app_client.post("/customers/c-1/corrections", data={**form, "csrf": "x", "key": "y"})
    assert expired.status_code == 400 and corrections(engine) == 1
    with read_only(engine) as session:
        (entry,) = audit.entries(session, entity="ledger")
    assert entry.actor == "user:admin@example.com" and entry.after["amount"] == 30


def test_api_corrections_are_idempotent_and_refuse_overdraft(
    client: TestClient, engine: Engine
) -> None:
    cid = customer_with_points(engine)
    clock.set_now(None)
    with unit_of_work(engine) as session:
        token = create_api_key(session, name="ops", scopes=["read", "write"])[1]
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "api-1"}
    body = {"amount": -40, "unit": "points", "reason": "duplicate reward"}
    first = client.post("/api/v1/advocates/c-1/corrections", json=body, headers=headers)
    assert first.status_code == 201, first.text
    assert first.json()["balance"]["available"] == 60
    again = client.post("/api/v1/advocates/c-1/corrections", json=body, headers=headers)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    over = client.post(
        "/api/v1/advocates/c-1/corrections",
        json={**body, "amount": -61, "key": "api-2"},
        headers={"Authorization": headers["Authorization"]},
    )
    assert over.status_code == 409 and over.json()["available"] == 60
    nobody = client.post("/api/v1/advocates/zz/corrections", json=body, headers=headers)
    assert nobody.status_code == 404
    assert available(engine, cid) == 60 and corrections(engine) == 1
    with read_only(engine) as session:
        (entry,) = audit.entries(session, entity="ledger")
    assert entry.actor.startswith("api:")


def test_cli_correct(engine: Engine, database_url: str, advocado, tmp_path) -> None:  # type: ignore[no-untyped-def]
    cid = customer_with_points(engine)
    clock.set_now(None)
    args = ("ledger", "correct", "c-1", "-30", "--reason", "误发", "--key", "cli-1", "--json")
    done = advocado(*args, cwd=tmp_path, database_url=database_url)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["balance"]["available"] == 70
    again = advocado(*args, cwd=tmp_path, database_url=database_url)
    assert json.loads(again.stdout)["duplicate"] is True
    over = advocado("ledger", "correct", "c-1", "-71", "--reason", "r", "--key", "cli-2",
                    cwd=tmp_path, database_url=database_url)  # fmt: skip
    assert over.returncode == 3 and "70 available" in over.stderr
    assert available(engine, cid) == 70 and corrections(engine) == 1
    with read_only(engine) as session:
        (entry,) = audit.entries(session, entity="ledger")
    assert entry.actor == "cli"
