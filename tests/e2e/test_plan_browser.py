"""Plan vs actual and the customer profile in a real Chromium: the dashboard's plan panel,
drill into an actual, open a customer from the list, read their profile in Chinese."""

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from advocado import clock
from advocado.services import audit, plans
from advocado.services.demo import ADMIN_EMAIL, ADMIN_PASSWORD, load_demo
from advocado.store.db import unit_of_work

pytestmark = pytest.mark.browser


def test_plan_panel_drill_to_a_customer_profile(
    chromium: Any,
    live_server: Any,
    engine: Engine,
    tmp_path: Path,
) -> None:
    from playwright.sync_api import expect

    load_demo(engine, customers=200)
    today = clock.now().date()
    plan = {"slug": "now", "name": "This quarter / 本季度", "owner": "Li Na",
            "starts_on": (today - timedelta(days=200)).isoformat(),
            "ends_on": (today + timedelta(days=20)).isoformat(),
            "goals": {"leads": 10_000, "referrals_qualified": 1}, "personas": ["emotional"],
            "recruitment": {"email": 50, "events": 5}}  # fmt: skip
    with unit_of_work(engine) as session:
        plans.apply_plan(session, data=plan, actor=audit.CLI)
    shots = Path(os.environ.get("ADVOCADO_SCREENSHOTS") or tmp_path)
    context = chromium.new_context(locale="en-GB", viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(live_server.url + "/dashboard")
    page.get_by_label("Email").fill(ADMIN_EMAIL)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    panel = page.get_by_test_id("panel-plan").get_by_test_id("plan-figures-now")
    expect(panel).to_be_visible()  # beside the demo's own plan
    leads = panel.locator('tr[data-goal="leads"]')
    expect(leads).to_contain_text("behind")  # 10,000 leads was never going to happen
    expect(panel.locator('tr[data-goal="recruit.events"]')).to_contain_text("not measured")
    page.screenshot(path=str(shots / "plan-panel-en.png"), full_page=True)
    actual = int(leads.locator("td").nth(2).inner_text().replace(",", ""))
    assert actual > 0
    leads.locator("td").nth(2).get_by_role("link").click()
    expect(page.get_by_test_id("drill").locator("tbody tr")).to_have_count(min(actual, 200))

    first = page.get_by_test_id("drill").locator("tbody tr").first.locator("a").first
    who = first.inner_text()
    first.click()
    expect(page.get_by_test_id("customer-name")).to_contain_text(who)
    expect(page.get_by_test_id("p-referred-by")).to_contain_text("Referred by")
    page.goto(page.url + "?lang=zh-CN")
    expect(page.get_by_test_id("p-referred-by")).to_contain_text("推荐来源")
    page.screenshot(path=str(shots / "customer-zh-CN.png"), full_page=True)
    context.close()
