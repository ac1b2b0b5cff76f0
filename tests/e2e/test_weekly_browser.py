"""In a real Chromium: an admin corrects a customer's points on the profile (in Chinese) and
sees the entry and the new balance; downloads the ledger CSV; turns on their own weekly
summary on "my account"."""

import csv
import io
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from advocado import clock
from advocado.services import ledger
from advocado.services.users import create_user
from advocado.store.db import read_only, unit_of_work
from advocado.store.models import Customer, User

pytestmark = pytest.mark.browser
PASSWORD = "correct horse"


def test_correct_points_export_csv_and_choose_the_weekly_summary(
    chromium: Any, live_server: Any, engine: Engine, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    with unit_of_work(engine) as session:
        person = Customer(external_id="c-1", name="王小明", created_at=clock.now(),
                          updated_at=clock.now())  # fmt: skip
        session.add(person)
        session.flush()
        ledger.post(session, key="seed", asset=ledger.POINTS, debit="rewards",
                    credit=ledger.account(person.id, ledger.POINTS), amount=100,
                    available_at=clock.now())  # fmt: skip
        create_user(session, email="admin@example.com", password=PASSWORD, role="admin")
    context = chromium.new_context(locale="zh-CN", accept_downloads=True)
    page = context.new_page()
    page.goto(live_server.url + "/customers/c-1?lang=zh-CN")
    page.locator('input[name="email"]').fill("admin@example.com")
    page.locator('input[name="password"]').fill(PASSWORD)
    page.locator('button[type="submit"]').first.click()
    page.get_by_text("调整余额").click()
    form = page.get_by_test_id("lc-form")
    form.locator('input[name="amount"]').fill("-40")
    form.locator('input[name="reason"]').fill("重复发放")
    form.get_by_role("button").click()
    expect(page.get_by_test_id("lc-done")).to_contain_text("已提交调整")
    section = page.get_by_test_id("p-ledger")
    expect(section).to_contain_text("可用 60")
    expect(section).to_contain_text("重复发放")
    page.screenshot(path=str(tmp_path / "correction-zh.png"), full_page=True)

    with page.expect_download() as waiting:
        page.get_by_test_id("csv-customer-ledger").click()
    text = Path(waiting.value.path()).read_bytes().decode("utf-8")
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    assert sorted(r["amount"] for r in rows) == ["100", "40"]

    page.goto(live_server.url + "/account")
    page.locator('input[name="weekly_summary"]').check()
    page.locator('select[name="locale"]').select_option("zh-TW")
    page.get_by_test_id("weekly-summary").get_by_role("button").click()
    expect(page.locator('input[name="weekly_summary"]')).to_be_checked()
    with read_only(engine) as session:
        (admin,) = session.query(User).all()
        assert (admin.weekly_summary, admin.locale) == (True, "zh-TW")
    context.close()
