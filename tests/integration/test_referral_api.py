"""The referral engine over the API (in-process): events, the signed webhook, the short link
and its click counts, coupons at checkout, progress, the review queue."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from advocado import clock
from advocado.services.apikeys import create_api_key
from advocado.services.clicks import stored_secret
from advocado.store.db import unit_of_work
from advocado.store.models import Click, ReferralEvent
from advocado.web.api.referrals import WEBHOOK_SECRET, sign

API = "/api/v1"
PROGRAM = {
    "slug": "friends",
    "name": "老带新",
    "currency": "CNY",
    "starts_at": "2026-01-01",
    "landing_url": "https://shop.example.com/welcome?lang=zh",
    "hold_days": 7,
    "rewards": [
        {
            "id": "friend",
            "to": "referee",
            "type": "coupon",
            "coupon": {"amount_off": 2000, "valid_days": 30},
        },
        {"id": "pts", "to": "referrer", "type": "points", "amount": 50},
    ],
}


@pytest.fixture
def auth(engine: Engine) -> dict[str, str]:
    with unit_of_work(engine) as session:
        token = create_api_key(session, name="shop", scopes=["read", "write"])[1]
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def code(client: TestClient, auth: dict[str, str]) -> str:
    assert client.put(f"{API}/programs", json=PROGRAM, headers=auth).status_code == 201
    answer = client.post(
        f"{API}/programs/friends/codes", json={"customer_external_id": "adv-1"}, headers=auth
    )
    assert answer.status_code == 200
    return answer.json()["code"]


def clicks_written(engine: Engine, expected: int, within: float = 3.0) -> bool:
    deadline = time.monotonic() + within
    while True:
        with unit_of_work(engine) as session:
            if session.scalar(select(func.count()).select_from(Click)) == expected:
                return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def event(**fields: Any) -> dict[str, Any]:
    return fields  # occurred_at left out: the server's clock


def test_events_need_a_key_and_a_known_type(client: TestClient, auth: dict[str, str]) -> None:
    body = event(event_id="e1", type="signup", customer_external_id="c1")
    assert client.post(f"{API}/events", json=body).status_code == 401
    wrong = client.post(f"{API}/events", json={**body, "type": "share"}, headers=auth)
    assert wrong.status_code == 422
    assert wrong.json()["detail"][0]["field"] == "type"
    float_amount = client.post(
        f"{API}/events",
        headers=auth,
        json=event(
            event_id="e2",
            type="order",
            customer_external_id="c1",
            order_external_id="o",
            amount=199.5,
            currency="CNY",
        ),
    )
    assert float_amount.status_code == 422


def test_signup_and_order_over_the_api_keep_unknown_fields(
    client: TestClient, auth: dict[str, str], code: str, engine: Engine
) -> None:
    clock.set_now(datetime(2026, 3, 2, tzinfo=UTC))  # inside the 7-day hold of the order
    signup = event(
        event_id="s-1",
        type="signup",
        customer_external_id="f-1",
        name="王五",
        referral_code=code,
        store="shanghai-01",
    )
    first = client.post(f"{API}/events", json=signup, headers=auth)
    assert first.status_code == 201 and first.json()["status"] == "signed_up"
    again = client.post(f"{API}/events", json=signup, headers=auth)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    with unit_of_work(engine) as session:
        payload = session.scalar(select(ReferralEvent.payload))
    assert payload["store"] == "shanghai-01"
    order = event(
        event_id="o-1",
        type="order",
        customer_external_id="f-1",
        order_external_id="A-1",
        amount=9900,
        currency="CNY",
    )
    assert client.post(f"{API}/events", json=order, headers=auth).status_code == 201
    progress = client.get(f"{API}/advocates/adv-1/progress", headers=auth).json()
    assert progress["programs"][0]["friends"][0]["status"] == "reward_pending"
    assert progress["balances"]["POINTS"]["pending"] == 50
    assert client.get(f"{API}/ledger/adv-1", headers=auth).json()["balances"]["POINTS"] == {
        "available": 0,
        "pending": 50,
        "expired": 0,
    }


def test_signed_webhook(client: TestClient, engine: Engine, code: str) -> None:
    secret = stored_secret(engine, WEBHOOK_SECRET)
    raw = json.dumps(
        event(event_id="w-1", type="signup", customer_external_id="f-9", referral_code=code)
    ).encode()
    now = str(int(time.time()))
    headers = {
        "X-Advocado-Timestamp": now,
        "X-Advocado-Signature": sign(secret, now, raw),
        "Content-Type": "application/json",
    }
    assert client.post(f"{API}/webhooks/events", content=raw, headers=headers).status_code == 201
    assert client.post(f"{API}/webhooks/events", content=raw, headers=headers).json()["duplicate"]
    tampered = raw.replace(b"f-9", b"f-8")
    bad = client.post(f"{API}/webhooks/events", content=tampered, headers=headers)
    assert bad.status_code == 401 and "签名" in bad.json()["detail"]
    old = str(int(time.time()) - 301)
    stale = {**headers, "X-Advocado-Timestamp": old, "X-Advocado-Signature": sign(secret, old, raw)}
    replay = client.post(f"{API}/webhooks/events", content=raw, headers=stale)
    assert replay.status_code == 401 and "5" in replay.json()["detail"]


def test_short_link_redirects_counts_raw_and_unique_and_attributes(
    client: TestClient, auth: dict[str, str], code: str, engine: Engine
) -> None:
    browser = {"user-agent": "Mozilla/5.0 (iPhone) Safari"}
    first = client.get(f"/r/{code.lower()}", headers=browser, follow_redirects=False)
    assert first.status_code == 302
    location = first.headers["location"]
    assert location.startswith("https://shop.example.com/welcome?lang=zh&ref=" + code)
    assert "utm_source=advocado" in location and "utm_campaign=friends" in location
    visitor = first.cookies["adv_vid"]
    assert location.endswith(f"adv_vid={visitor}")
    client.get(f"/r/{code}", headers=browser, follow_redirects=False)  # a repeat
    client.get(f"/r/{code}", headers={"user-agent": "Googlebot/2.1"}, follow_redirects=False)
    assert client.get("/r/NOSUCHCODE", follow_redirects=False).status_code == 404
    assert clicks_written(engine, 3)  # batched: written within a fraction of a second
    stats = client.get(f"{API}/programs/stats", headers=auth).json()[0]
    assert (stats["clicks"], stats["unique_clicks"]) == (3, 1)
    joined = client.post(
        f"{API}/events",
        headers=auth,
        json=event(
            event_id="s-v",
            type="signup",
            customer_external_id="f-v",
            visitor_id=visitor,
            occurred_at="2099-01-01T00:00:00+00:00",
        ),
    )
    assert joined.json()["attributed"] is False  # outside the 30-day window
    now = client.post(
        f"{API}/events",
        headers=auth,
        json={
            "event_id": "s-w",
            "type": "signup",
            "customer_external_id": "f-w",
            "visitor_id": visitor,
        },
    )
    assert now.json()["source"] == "click"


def test_coupon_checkout_endpoints(client: TestClient, auth: dict[str, str], code: str) -> None:
    client.post(
        f"{API}/events",
        headers=auth,
        json=event(event_id="s-1", type="signup", customer_external_id="f-1", referral_code=code),
    )
    coupon = client.get(f"{API}/advocates/f-1/progress", headers=auth)
    assert coupon.status_code == 200
    coupon_code = coupon.json()["coupons"][0]["code"]
    check = {"code": coupon_code, "customer_external_id": "f-1", "cart_amount": 1500}
    valid = client.post(f"{API}/coupons/validate", json=check, headers=auth).json()
    assert (valid["valid"], valid["discount"]) == (True, 1500)  # never more than the cart
    other = client.post(
        f"{API}/coupons/validate", headers=auth, json={**check, "customer_external_id": "f-2"}
    ).json()
    assert other["valid"] is False and other["reason"]["zh"] == "该优惠券属于其他用户"
    redeem = {**check, "order_external_id": "B-1"}
    assert client.post(f"{API}/coupons/redeem", json=redeem, headers=auth).status_code == 200
    used = client.post(
        f"{API}/coupons/redeem", headers=auth, json={**redeem, "order_external_id": "B-2"}
    )
    assert used.status_code == 409 and "已使用" in used.json()["reason"]["zh"]


def test_review_queue_over_the_api(client: TestClient, auth: dict[str, str], code: str) -> None:
    office = {"ip": "10.1.1.1", "user_agent": "Mozilla/5.0 Office"}
    client.post(
        f"{API}/events",
        headers=auth,
        json=event(event_id="a", type="signup", customer_external_id="adv-1", **office),
    )
    held = client.post(
        f"{API}/events",
        headers=auth,
        json=event(
            event_id="b", type="signup", customer_external_id="f-1", referral_code=code, **office
        ),
    ).json()
    assert held["status"] == "review"
    queue = client.get(f"{API}/referrals/review", headers=auth).json()["items"]
    assert queue[0]["findings"][0]["rule"] == "same_ip_user_agent"
    rejected = client.post(
        f"{API}/referrals/{queue[0]['id']}/reject", headers=auth, json={"note": "same person"}
    )
    assert rejected.json()["status"] == "rejected"
    again = client.post(f"{API}/referrals/{queue[0]['id']}/approve", headers=auth, json={})
    assert again.status_code == 409
