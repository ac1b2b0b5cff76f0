"""The dashboard in a real Chromium against a real server: sign in, open the dashboard,
apply a filter, drill into a figure, export it as CSV, and read it in Chinese."""

import csv
import io
import os
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from advocado.services.demo import ADMIN_EMAIL, ADMIN_PASSWORD, load_demo
from advocado.services.demo_referrals import PROGRAM

pytestmark = pytest.mark.browser


def test_dashboard_filter_drill_export_and_chinese(
    chromium: Any,
    live_server: Any,
    engine: Engine,
    tmp_path: Path,
) -> None:
    from playwright.sync_api import expect

    load_demo(engine, customers=200)
    shots = Path(os.environ.get("ADVOCADO_SCREENSHOTS") or tmp_path)
    context = chromium.new_context(locale="en-GB", viewport={"width": 1400, "height": 1000},
                                   accept_downloads=True)  # fmt: skip
    page = context.new_page()
    page.goto(live_server.url + "/dashboard")
    page.get_by_label("Email").fill(ADMIN_EMAIL)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Dashboard", exact=True)).to_be_visible()

    # every panel loads (htmx) and the charts are drawn (ECharts, served from this server)
    for name in ("nps", "promoters", "referrals", "k_factor", "clv", "top_advocates"):
        expect(page.get_by_test_id(f"panel-{name}").locator(".panel-body")).to_be_visible()
    expect(page.get_by_test_id("panel-nps").locator(".chart svg")).to_be_visible()
    expect(page.get_by_test_id("panel-referrals").locator(".chart svg")).to_be_visible()

    # a filter: the demo's program, monthly buckets
    page.get_by_label("Program").select_option(PROGRAM)
    page.get_by_label("Buckets").select_option("month")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(
        f"{live_server.url}/dashboard?from=&to=&segment=&program={PROGRAM}&bucket=month"
    )
    funnel = page.get_by_test_id("table-referrals")
    expect(funnel).to_be_visible()
    clicks_row = funnel.locator("tbody tr").first
    expect(clicks_row.locator("td").first).to_have_text("clicks")
    clicks = int(clicks_row.locator("td").nth(1).inner_text())
    assert clicks > 0
    page.screenshot(path=str(shots / "dashboard-en.png"), full_page=True)

    # drill into the clicks figure: the click events behind it, one per row
    clicks_row.get_by_role("link", name="Details").click()
    expect(page.get_by_role("heading", name="Referral events")).to_be_visible()
    expect(page.get_by_test_id("drill").locator("tbody tr")).to_have_count(min(clicks, 200))
    assert f"program={PROGRAM}" in page.url and "stage=clicks" in page.url

    # export what the list shows as CSV
    with page.expect_download() as download_info:
        page.get_by_test_id("drill-csv").click()
    download = download_info.value
    rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text("utf-8-sig"))))
    assert len(rows) == clicks
    assert set(rows[0]) >= {"click_id", "clicked_at", "code", "advocate", "bot"}

    # the same dashboard in Chinese
    page.goto(f"{live_server.url}/dashboard?program={PROGRAM}&lang=zh-CN")
    expect(page.get_by_role("heading", name="数据看板")).to_be_visible()
    expect(page.get_by_test_id("panel-referrals")).to_contain_text("推荐漏斗与回报")
    expect(page.get_by_test_id("panel-referrals").locator(".chart svg")).to_be_visible()
    expect(page.get_by_test_id("table-referrals")).to_contain_text("阶段")
    page.screenshot(path=str(shots / "dashboard-zh-CN.png"), full_page=True)
    context.close()
