"""Spending points and credit (idempotent by the caller's key, never below zero, also when
racing or killed mid-way), expiry soonest-first as a job that posts once, and the gift
fulfilment queue."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from test_referrals import T0, order, race, setup, signup

from advocado import clock
from advocado.services import gifts, ledger
from advocado.store.db import unit_of_work
from advocado.store.models import GiftShipment, LedgerEntry

POINTS = {"id": "p", "to": "referrer", "type": "points", "amount": 50, "valid_days": 30}
GIFT = {"id": "mug", "to": "referrer", "type": "gift", "gift": "保温杯 thermos"}
AFTER_HOLD = T0 + timedelta(days=8)


def earn(engine: Engine, friends: int = 1, rewards: list | None = None) -> None:
    """adv-1 earns 50 points per friend's first order at T0 (7-day hold, valid 30 days)."""
    code = setup(engine, rewards=rewards or [POINTS], fraud={"velocity_per_hour": 100})
    clock.set_now(T0)
    for n in range(friends):
        signup(engine, f"f-{n}", code)
        order(engine, f"f-{n}", f"A-{n}")


def spend(engine: Engine, amount: int, key: str, asset: str = "points") -> ledger.Spent:
    return ledger.spend_balance(
        engine, customer_external_id="adv-1", asset=asset, amount=amount, client_key=key
    )


def spends(engine: Engine) -> int:
    with unit_of_work(engine) as session:
        return (
            session.scalar(
                select(func.count()).select_from(LedgerEntry).where(LedgerEntry.key.like("spend:%"))
            )
            or 0
        )


def test_spending_is_once_per_key_and_never_more_than_is_available(engine: Engine) -> None:
    earn(engine)
    with pytest.raises(ledger.InsufficientBalance) as held:  # still in the refund hold
        spend(engine, 10, "k0")
    assert held.value.available == 0 and "可用0" in str(held.value)
    clock.set_now(AFTER_HOLD)
    first = spend(engine, 30, "k1")
    assert (first.duplicate, first.balance.available) == (False, 20)
    again = spend(engine, 30, "k1")
    assert (again.duplicate, again.entry_id, again.balance.available) == (True, first.entry_id, 20)
    with pytest.raises(ledger.SpendError) as reused:
        spend(engine, 10, "k1")
    assert reused.value.field == "key"
    with pytest.raises(ledger.InsufficientBalance):
        spend(engine, 21, "k2")
    with pytest.raises(ledger.SpendError) as bad:
        spend(engine, 5, "k3", asset="yuan")
    assert bad.value.field == "asset"
    assert spends(engine) == 1


def test_racing_spends_never_overdraw_and_one_key_spends_once(engine: Engine) -> None:
    earn(engine)
    clock.set_now(AFTER_HOLD)
    engine.pool.dispose()
    keys = iter(range(100))
    lock = threading.Lock()

    def different_keys() -> object:
        with lock:
            key = f"d-{next(keys)}"
        return spend(engine, 20, key)

    results = race(10, different_keys)
    assert sum(isinstance(r, ledger.Spent) for r in results) == 2  # 50 // 20
    assert all(isinstance(r, ledger.Spent | ledger.InsufficientBalance) for r in results)
    same = race(10, lambda: spend(engine, 10, "same"))
    assert [r for r in same if isinstance(r, Exception)] == []
    assert sum(not r.duplicate for r in same) == 1
    assert spends(engine) == 3
    with unit_of_work(engine) as session:
        assert ledger.balances(session, 1)["POINTS"].available == 0


SPENDER = textwrap.dedent(
    """
    import sys
    from advocado import clock
    from advocado.services import ledger
    from advocado.store.db import make_engine
    from datetime import datetime
    clock.set_now(datetime.fromisoformat(sys.argv[2]))
    engine = make_engine(sys.argv[1])
    for n in range(int(sys.argv[3])):
        ledger.spend_balance(engine, customer_external_id="adv-1", asset="points",
                             amount=1, client_key=f"crash-{n}")
        print(n, flush=True)
    """
)


def test_spends_killed_mid_way_then_retried_spend_each_key_once(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    earn(engine, friends=2)  # 50 + 50 points
    clock.set_now(AFTER_HOLD)
    script = tmp_path / "spender.py"
    script.write_text(SPENDER)
    args = [sys.executable, str(script), database_url, AFTER_HOLD.isoformat(), "80"]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    for _ in range(15):  # let it spend a few, then kill -9 in the middle of the run
        process.stdout.readline()
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    partial = spends(engine)
    assert 15 <= partial < 80
    finished = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert finished.returncode == 0, finished.stderr
    assert spends(engine) == 80
    with unit_of_work(engine) as session:
        assert ledger.balances(session, 1)["POINTS"].available == 100 - 80


def test_expiry_posts_once_per_lapsed_lot_soonest_first(engine: Engine) -> None:
    earn(engine)
    clock.set_now(AFTER_HOLD)
    spend(engine, 20, "k1")
    lapsed = T0 + timedelta(days=38)  # the lot expires 30 days after its 7-day hold
    clock.set_now(lapsed)
    with unit_of_work(engine) as session:
        before = ledger.balances(session, 1)["POINTS"]
        assert before.as_dict() == {"available": 0, "pending": 0, "expired": 30}
        assert ledger.expire_due(session, now=lapsed) == 1
    with unit_of_work(engine) as session:
        assert ledger.expire_due(session, now=lapsed) == 0  # run again: nothing more
        assert ledger.balances(session, 1)["POINTS"] == before  # the same, now posted
        entry = session.scalar(select(LedgerEntry).where(LedgerEntry.key.like("expire:%")))
    assert entry is not None and entry.amount == 30 and entry.credit_account == "expired"
    assert "过期" in (entry.memo or "")


def test_two_expiry_jobs_at_once_post_once(engine: Engine) -> None:
    earn(engine, friends=3)
    lapsed = T0 + timedelta(days=40)
    clock.set_now(lapsed)
    engine.pool.dispose()

    def job() -> int:
        with unit_of_work(engine) as session:
            return ledger.expire_due(session, now=lapsed)

    results = race(4, job)
    assert [r for r in results if isinstance(r, Exception)] == []
    assert sum(results) == 3  # three lots, each expired once whoever ran it
    with unit_of_work(engine) as session:
        assert ledger.balances(session, 1)["POINTS"].expired == 3 * 50


def test_gift_queue_ships_after_the_hold_once(engine: Engine) -> None:
    earn(engine, rewards=[GIFT])
    (waiting,) = gifts.pending_gifts(engine)
    assert waiting["gift"] == "保温杯 thermos" and waiting["ready"] is False
    assert waiting["because"]["zh"] == "仍在退款保留期内"
    with pytest.raises(gifts.GiftError) as early:
        gifts.mark_shipped(engine, reward_id=waiting["reward_id"], tracking="SF123")
    assert early.value.status == 409 and "hold" in early.value.reason
    clock.set_now(AFTER_HOLD)
    assert gifts.pending_gifts(engine)[0]["ready"] is True
    engine.pool.dispose()
    notes = iter(["SF1", "SF2"])
    lock = threading.Lock()

    def ship() -> object:
        with lock:
            note = next(notes)
        return gifts.mark_shipped(engine, reward_id=waiting["reward_id"], tracking=note)

    results = race(2, ship)
    shipped = [r for r in results if isinstance(r, dict)]
    assert len(shipped) == 1 and shipped[0]["duplicate"] is False
    assert isinstance(next(r for r in results if not isinstance(r, dict)), gifts.GiftError)
    again = gifts.mark_shipped(
        engine, reward_id=waiting["reward_id"], tracking=shipped[0]["shipped"]["tracking"]
    )
    assert again["duplicate"] is True
    assert gifts.pending_gifts(engine) == []
    with unit_of_work(engine) as session:
        assert session.scalar(select(func.count()).select_from(GiftShipment)) == 1
    with pytest.raises(gifts.GiftError) as missing:
        gifts.mark_shipped(engine, reward_id=999, tracking="x")
    assert missing.value.status == 404


def test_spend_and_gift_endpoints(engine: Engine, client: TestClient) -> None:
    from advocado.services.apikeys import create_api_key

    earn(engine, rewards=[POINTS, GIFT])
    with unit_of_work(engine) as session:
        token = create_api_key(session, name="shop", scopes=["read", "write"])[1]
    auth = {"Authorization": f"Bearer {token}"}
    url = "/api/v1/advocates/adv-1/spend"
    body = {"asset": "points", "amount": 30, "key": "order-77"}
    short = client.post(url, json=body, headers=auth)
    assert short.status_code == 409 and short.json()["available"] == 0  # in the hold
    clock.set_now(AFTER_HOLD)
    made = client.post(url, json=body, headers=auth)
    assert made.status_code == 201 and made.json()["balance"]["available"] == 20
    again = client.post(url, json=body, headers=auth)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    reused = client.post(url, json={**body, "amount": 5}, headers=auth)
    assert reused.status_code == 422 and reused.json()["detail"][0]["field"] == "key"
    negative = client.post(url, json={**body, "amount": -5}, headers=auth)
    assert negative.status_code == 422 and negative.json()["detail"][0]["field"] == "amount"
    nobody = client.post("/api/v1/advocates/nobody/spend", json=body, headers=auth)
    assert nobody.status_code == 404
    assert client.get("/api/v1/gifts/pending").status_code == 401
    (gift,) = client.get("/api/v1/gifts/pending", headers=auth).json()["items"]
    assert gift["ready"] is True and gift["customer"] == "adv-1"
    ship = f"/api/v1/gifts/{gift['reward_id']}/ship"
    assert client.post(ship, json={"tracking": "SF1"}, headers=auth).status_code == 201
    assert client.post(ship, json={"tracking": "SF1"}, headers=auth).json()["duplicate"]
    other = client.post(ship, json={"tracking": "SF2"}, headers=auth)
    assert other.status_code == 409 and "已发货" in other.json()["detail"]
    assert client.post(ship, json={"tracking": ""}, headers=auth).status_code == 422
    assert client.get("/api/v1/gifts/pending", headers=auth).json()["items"] == []


def test_ledger_and_gift_commands(
    engine: Engine, advocado, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    earn(engine, rewards=[POINTS, GIFT])

    def run(*args: str, at: datetime):  # type: ignore[no-untyped-def]
        monkeypatch.setenv("ADVOCADO_NOW", at.isoformat())
        return advocado(*args, cwd=tmp_path, database_url=database_url)

    spent = run("ledger", "spend", "adv-1", "30", "--key", "k1", "--json", at=AFTER_HOLD)
    assert spent.returncode == 0, spent.stderr
    assert json.loads(spent.stdout)["balance"]["available"] == 20
    again = run("ledger", "spend", "adv-1", "30", "--key", "k1", at=AFTER_HOLD)
    assert again.returncode == 0 and "already spent" in again.stdout
    short = run("ledger", "spend", "adv-1", "21", "--key", "k2", at=AFTER_HOLD)
    assert short.returncode == 3 and "余额不足" in short.stderr
    lapsed = T0 + timedelta(days=38)
    assert run("ledger", "expire", at=lapsed).stdout.strip() == "1"
    assert run("ledger", "expire", at=lapsed).stdout.strip() == "0"
    listed = run("referral", "gifts", "--json", at=T0)
    (gift,) = json.loads(listed.stdout)
    early = run("referral", "ship", str(gift["reward_id"]), "--tracking", "SF1", at=T0)
    assert early.returncode == 2 and "hold" in early.stderr
    shipped = run("referral", "ship", str(gift["reward_id"]), "--tracking", "SF1", at=AFTER_HOLD)
    assert shipped.returncode == 0 and "保温杯" in shipped.stdout
    assert "没有待发货" in run("referral", "gifts", at=AFTER_HOLD).stdout
