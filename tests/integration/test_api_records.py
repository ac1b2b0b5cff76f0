"""The REST API as an integrator uses it: keys, upserts, batches, pagination, NPS, errors."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from advocado import clock
from advocado.services.apikeys import create_api_key, revoke_api_key
from advocado.store.db import unit_of_work
from advocado.store.models import Customer, Order, Response

API = "/api/v1"


def new_key(engine: Engine, scopes: list[str]) -> tuple[str, str]:
    with unit_of_work(engine) as session:
        key, token = create_api_key(session, name="shop", scopes=scopes)
    return key.prefix, token


@pytest.fixture
def auth(engine: Engine) -> dict[str, str]:
    return {"Authorization": f"Bearer {new_key(engine, ['read', 'write'])[1]}"}


def count(engine: Engine, model: Any) -> int:
    with unit_of_work(engine) as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def response_item(external_id: str, score: int = 9, **extra: Any) -> dict[str, Any]:
    return {"external_id": external_id, "score": score,
            "submitted_at": "2026-03-01T10:00:00+08:00", **extra}  # fmt: skip


# --- keys ---------------------------------------------------------------------------------


def test_no_key_bad_key_and_revoked_key_get_401(client: TestClient, engine: Engine) -> None:
    prefix, token = new_key(engine, ["read"])
    missing = client.get(f"{API}/customers")
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"].startswith("Bearer")
    forged = client.get(f"{API}/customers", headers={"Authorization": f"Bearer {token}x"})
    assert forged.status_code == 401 and "invalid_token" in forged.headers["WWW-Authenticate"]
    good = {"Authorization": f"Bearer {token}"}
    assert client.get(f"{API}/customers", headers=good).status_code == 200
    with unit_of_work(engine) as session:
        revoke_api_key(session, prefix=prefix)
    assert client.get(f"{API}/customers", headers=good).status_code == 401


def test_scopes_decide_reads_and_writes(client: TestClient, engine: Engine) -> None:
    reader = {"Authorization": f"Bearer {new_key(engine, ['read'])[1]}"}
    writer = {"Authorization": f"Bearer {new_key(engine, ['write'])[1]}"}
    body = {"external_id": "c1"}
    assert client.post(f"{API}/customers", json=body, headers=reader).status_code == 403
    assert client.post(f"{API}/customers", json=body, headers=writer).status_code == 201
    assert client.get(f"{API}/customers/c1", headers=writer).status_code == 403
    assert client.get(f"{API}/customers/c1", headers=reader).status_code == 200
    assert count(engine, Customer) == 1


# --- single records -----------------------------------------------------------------------


def test_customer_upsert_creates_updates_and_leaves_alone(
    client: TestClient, auth: dict[str, str]
) -> None:
    clock.set_now(datetime(2026, 5, 1, 8, 0, tzinfo=UTC))
    body = {"external_id": "c1", "name": " 王小明 ", "email": "ming@example.cn",
            "locale": "zh_cn", "tags": ["vip", "早鸟", "vip"],
            "marketing_consent": True, "attributes": {"city": "杭州"}}  # fmt: skip
    created = client.post(f"{API}/customers", json=body, headers=auth)
    assert created.status_code == 201
    row = created.json()
    assert row["name"] == "王小明" and row["locale"] == "zh-CN"
    assert row["tags"] == ["vip", "早鸟"] and row["attributes"] == {"city": "杭州"}
    assert row["consent_source"] == "api"
    assert row["consent_at"] == "2026-05-01T08:00:00+00:00"

    clock.set_now(datetime(2026, 5, 2, 8, 0, tzinfo=UTC))
    again = client.post(f"{API}/customers", json=body, headers=auth)
    assert again.status_code == 200
    # Saying yes again is not new consent: its time stays; nothing changed at all.
    assert again.json() == row

    changed = client.post(
        f"{API}/customers", json={"external_id": "c1", "phone": "138 0013 8000"}, headers=auth
    )
    assert changed.status_code == 200
    after = changed.json()
    assert after["phone"] == "13800138000" and after["updated_at"] > row["updated_at"]
    # Fields left out of a POST keep their values.
    assert after["email"] == "ming@example.cn" and after["marketing_consent"] is True
    assert client.get(f"{API}/customers/c1", headers=auth).json() == after


def test_put_replaces_and_withdraws_what_is_left_out(
    client: TestClient, auth: dict[str, str]
) -> None:
    client.post(f"{API}/customers",
                json={"external_id": "c1", "email": "a@b.cn", "marketing_consent": True},
                headers=auth)  # fmt: skip
    replaced = client.put(f"{API}/customers/c1", json={"name": "A"}, headers=auth)
    assert replaced.status_code == 200
    row = replaced.json()
    assert row["name"] == "A" and row["email"] is None
    assert row["marketing_consent"] is False and row["consent_at"] is None
    created = client.put(f"{API}/customers/c2", json={"name": "B"}, headers=auth)
    assert created.status_code == 201 and created.json()["external_id"] == "c2"
    clash = client.put(f"{API}/customers/c3", json={"external_id": "c4"}, headers=auth)
    assert clash.status_code == 422 and clash.json()["detail"][0]["field"] == "external_id"


def test_unknown_resource_is_404(client: TestClient, auth: dict[str, str]) -> None:
    assert client.get(f"{API}/orders/nope", headers=auth).status_code == 404
    patch = client.patch(f"{API}/responses/nope", json={"comment": "x"}, headers=auth)
    assert patch.status_code == 404


def test_order_amount_is_minor_units_and_customer_must_exist(
    client: TestClient, auth: dict[str, str], engine: Engine
) -> None:
    order = {"external_id": "o1", "customer_external_id": "c1", "amount": 19900,
             "currency": "cny", "placed_at": "2026-03-01T10:00:00+08:00"}  # fmt: skip
    unknown = client.post(f"{API}/orders", json=order, headers=auth)
    assert unknown.status_code == 422
    assert unknown.json()["detail"][0]["field"] == "customer_external_id"
    assert "c1" in unknown.json()["detail"][0]["reason"]

    client.post(f"{API}/customers", json={"external_id": "c1"}, headers=auth)
    made = client.post(f"{API}/orders", json=order, headers=auth)
    assert made.status_code == 201
    assert made.json() | {"created_at": None, "updated_at": None} == {
        "external_id": "o1", "customer_external_id": "c1", "amount": 19900, "currency": "CNY",
        "status": "paid", "placed_at": "2026-03-01T02:00:00+00:00",
        "created_at": None, "updated_at": None,
    }  # fmt: skip

    # 199.00 is a major-unit amount: refused, not read as 199 fen.
    major = client.post(f"{API}/orders", json={**order, "amount": 199.00}, headers=auth)
    assert major.status_code == 422 and major.json()["detail"][0]["field"] == "amount"
    naive = client.post(f"{API}/orders", json={**order, "placed_at": "2026-03-01T10:00"},
                        headers=auth)  # fmt: skip
    assert naive.status_code == 422
    assert naive.json()["detail"][0]["field"] == "placed_at"
    assert "offset" in naive.json()["detail"][0]["reason"]
    refunded = client.put(f"{API}/orders/o1", json={**order, "status": "refunded"}, headers=auth)
    assert refunded.status_code == 200 and refunded.json()["status"] == "refunded"
    assert count(engine, Order) == 1


def test_comment_after_score_updates_the_response(
    client: TestClient, auth: dict[str, str], engine: Engine
) -> None:
    client.post(f"{API}/customers", json={"external_id": "c1"}, headers=auth)
    first = client.post(
        f"{API}/responses", json=response_item("r1", 4, customer_external_id="c1"), headers=auth
    )
    assert first.status_code == 201 and first.json()["comment"] is None
    assert first.json()["category"] == "detractor"
    later = client.patch(f"{API}/responses/r1", json={"comment": "物流太慢了"}, headers=auth)
    assert later.status_code == 200
    row = later.json()
    assert row["comment"] == "物流太慢了" and row["score"] == 4
    assert row["customer_external_id"] == "c1"
    assert count(engine, Response) == 1
    bad = client.patch(f"{API}/responses/r1", json={"score": 11}, headers=auth)
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "score"
    nulled = client.patch(f"{API}/responses/r1", json={"score": None}, headers=auth)
    assert nulled.status_code == 422
    assert client.get(f"{API}/responses/r1", headers=auth).json()["score"] == 4


# --- errors -------------------------------------------------------------------------------


def test_every_error_has_field_and_reason(client: TestClient, auth: dict[str, str]) -> None:
    cases: list[tuple[Any, str, str]] = [
        ({"external_id": "c1", "email": "not-an-email"}, "email", "not an email"),
        ({"external_id": "c1", "locale": "fr"}, "locale", "zh-CN, zh-TW, en"),
        ({"external_id": "c1", "timezone": "Mars/Base"}, "timezone", "IANA"),
        ({"external_id": "c1", "emial": "x@y.cn"}, "emial", "unknown field"),
        ({"name": "no id"}, "external_id", "missing"),
        ({"external_id": "  "}, "external_id", "missing"),
        ([1, 2], "body", ""),
    ]
    for body, field, reason in cases:
        answer = client.post(f"{API}/customers", json=body, headers=auth)
        assert answer.status_code == 422, body
        problem = answer.json()["detail"][0]
        assert problem["field"] == field and reason in problem["reason"], (body, problem)

    broken = client.post(f"{API}/customers", content=b'{"external_id": ',
                         headers={**auth, "Content-Type": "application/json"})  # fmt: skip
    assert broken.status_code == 422
    assert broken.json()["detail"][0]["field"] == "body"
    assert "invalid JSON" in broken.json()["detail"][0]["reason"]


# --- batches ------------------------------------------------------------------------------


def test_batch_is_all_or_nothing_and_names_the_bad_item(
    client: TestClient, auth: dict[str, str], engine: Engine
) -> None:
    items = [response_item(f"r{i}", i % 11) for i in range(600)]
    items[500]["score"] = 12
    refused = client.post(f"{API}/responses/batch", json={"items": items}, headers=auth)
    assert refused.status_code == 422
    assert [p["field"] for p in refused.json()["detail"]] == ["items[500].score"]
    assert count(engine, Response) == 0

    # A rule only the database can check (the customer exists) is named the same way.
    items[500] = response_item("r500", 5, customer_external_id="ghost")
    ghost = client.post(f"{API}/responses/batch", json={"items": items}, headers=auth)
    assert ghost.status_code == 422
    assert ghost.json()["detail"][0]["field"] == "items[500].customer_external_id"
    assert count(engine, Response) == 0

    items[500] = response_item("r500", 5)
    saved = client.post(f"{API}/responses/batch", json={"items": items}, headers=auth)
    assert saved.status_code == 200
    summary = saved.json()
    assert (summary["created"], summary["updated"], summary["unchanged"]) == (600, 0, 0)
    assert count(engine, Response) == 600

    items[7]["comment"] = "late comment"
    again = client.post(f"{API}/responses/batch", json={"items": items}, headers=auth).json()
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 1, 599)
    assert again["items"][7]["outcome"] == "updated" and again["items"][8]["outcome"] == "unchanged"


def test_batch_over_1000_items_is_refused(
    client: TestClient, auth: dict[str, str], engine: Engine
) -> None:
    items = [{"external_id": f"c{i}"} for i in range(1001)]
    refused = client.post(f"{API}/customers/batch", json={"items": items}, headers=auth)
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["field"] == "items"
    assert "1000" in refused.json()["detail"][0]["reason"]
    assert count(engine, Customer) == 0
    ok = client.post(f"{API}/customers/batch", json={"items": items[:1000]}, headers=auth)
    assert ok.status_code == 200 and count(engine, Customer) == 1000


def test_orders_batch_names_the_unknown_customer(
    client: TestClient, auth: dict[str, str], engine: Engine
) -> None:
    client.post(f"{API}/customers", json={"external_id": "c1"}, headers=auth)
    order = {"customer_external_id": "c1", "amount": 100, "currency": "USD",
             "placed_at": "2026-03-01T10:00:00Z"}  # fmt: skip
    items = [{**order, "external_id": f"o{i}"} for i in range(5)]
    items[3]["customer_external_id"] = "c9"
    refused = client.post(f"{API}/orders/batch", json={"items": items}, headers=auth)
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["field"] == "items[3].customer_external_id"
    assert count(engine, Order) == 0


# --- reading ------------------------------------------------------------------------------


def test_pages_follow_the_cursor_to_the_end(client: TestClient, auth: dict[str, str]) -> None:
    items = [{"external_id": f"c{i:02}"} for i in range(25)]
    client.post(f"{API}/customers/batch", json={"items": items}, headers=auth)
    seen: list[str] = []
    after: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 10} | ({"after": after} if after else {})
        page = client.get(f"{API}/customers", params=params, headers=auth).json()
        seen += [row["external_id"] for row in page["items"]]
        pages += 1
        after = page["next"]
        if after is None:
            break
    assert seen == [item["external_id"] for item in items] and pages == 3
    too_big = client.get(f"{API}/customers", params={"limit": 5000}, headers=auth)
    assert too_big.status_code == 422 and too_big.json()["detail"][0]["field"] == "limit"
    bad_cursor = client.get(f"{API}/customers", params={"after": "xyz"}, headers=auth)
    assert bad_cursor.status_code == 422 and bad_cursor.json()["detail"][0]["field"] == "after"


def test_nps_endpoint_counts_whole_days_with_to_included(
    client: TestClient, auth: dict[str, str]
) -> None:
    def at(day: str, score: int, survey: str = "onboarding", n: list[int] = [0]) -> dict:  # noqa: B006
        n[0] += 1
        return {"external_id": f"r{n[0]}", "score": score, "survey": survey,
                "submitted_at": f"{day}T23:30:00+00:00"}  # fmt: skip

    items = [at("2026-03-01", 10), at("2026-03-02", 9), at("2026-03-02", 7),
             at("2026-03-03", 3), at("2026-03-04", 10), at("2026-03-02", 0, "renewal")]  # fmt: skip
    client.post(f"{API}/responses/batch", json={"items": items}, headers=auth)

    def nps(**params: str) -> dict[str, Any]:
        answer = client.get(f"{API}/nps", params=params, headers=auth)
        assert answer.status_code == 200
        return answer.json()

    assert nps(**{"from": "2026-03-01", "to": "2026-03-03", "survey": "onboarding"}) == {
        "nps": 25.0, "promoters": 2, "passives": 1, "detractors": 1, "responses": 4,
    }  # fmt: skip
    assert nps()["responses"] == 6
    assert nps(**{"from": "2026-03-05"}) == {
        "nps": None, "promoters": 0, "passives": 0, "detractors": 0, "responses": 0,
    }  # fmt: skip
    reversed_ = client.get(f"{API}/nps", params={"from": "2026-03-05", "to": "2026-03-01"},
                           headers=auth)  # fmt: skip
    assert reversed_.status_code == 422 and reversed_.json()["detail"][0]["field"] == "from"
    bad_day = client.get(f"{API}/nps", params={"to": "March 3"}, headers=auth)
    assert bad_day.status_code == 422 and bad_day.json()["detail"][0]["field"] == "to"


def test_consent_is_dated_once_and_cleared_on_withdrawal(
    client: TestClient, auth: dict[str, str]
) -> None:
    clock.set_now(datetime(2026, 5, 1, tzinfo=UTC))
    client.post(f"{API}/customers", json={"external_id": "c1"}, headers=auth)
    clock.set_now(datetime(2026, 5, 2, tzinfo=UTC))
    given = client.post(f"{API}/customers", json={"external_id": "c1", "marketing_consent": True},
                        headers=auth).json()  # fmt: skip
    assert (given["consent_at"], given["consent_source"]) == ("2026-05-02T00:00:00+00:00", "api")
    clock.set_now(datetime(2026, 5, 3, tzinfo=UTC))
    kept = client.put(f"{API}/customers/c1", json={"marketing_consent": True}, headers=auth)
    assert kept.json()["consent_at"] == "2026-05-02T00:00:00+00:00"
    withdrawn = client.post(f"{API}/customers",
                            json={"external_id": "c1", "marketing_consent": False},
                            headers=auth).json()  # fmt: skip
    assert withdrawn["consent_at"] is None and withdrawn["consent_source"] is None
    dated = client.post(f"{API}/customers",
                        json={"external_id": "c2", "marketing_consent": True,
                              "consent_at": "2026-04-01T12:00:00+08:00",
                              "consent_source": "checkout"}, headers=auth).json()  # fmt: skip
    assert (dated["consent_at"], dated["consent_source"]) == (
        "2026-04-01T04:00:00+00:00", "checkout",
    )  # fmt: skip
