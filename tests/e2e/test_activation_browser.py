"""The activation funnel in a real Chromium against a real server (the demo's data, which ran
the real default playbook): the panel and its chart load, a level's "asked" figure opens the
enrolments behind it, that list exports as CSV with as many rows, and the panel reads in
Chinese."""

import csv
import io
import os
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from advocado.services.demo import ADMIN_EMAIL, ADMIN_PASSWORD, load_demo

pytestmark = pytest.mark.browser


def test_activation_drill_into_asked_and_export(
    chromium: Any, live_server: Any, engine: Engine, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    load_demo(engine, customers=300)
    shots = Path(os.environ.get("ADVOCADO_SCREENSHOTS") or tmp_path)
    context = chromium.new_context(locale="en-GB", viewport={"width": 1400, "height": 1000},
                                   accept_downloads=True)  # fmt: skip
    page = context.new_page()
    page.goto(live_server.url + "/dashboard")
    page.get_by_label("Email").fill(ADMIN_EMAIL)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    panel = page.get_by_test_id("panel-activation")
    expect(panel.get_by_test_id("table-activation")).to_be_visible()
    expect(panel.locator(".chart svg")).to_be_visible()
    for name in ("activation_steps", "reviews", "ugc"):
        expect(page.get_by_test_id(f"panel-{name}").locator(".panel-body")).to_be_visible()
    panel.get_by_test_id("activation-definitions").locator("summary").click()
    expect(panel.get_by_test_id("activation-definitions")).to_contain_text("review sites")
    page.screenshot(path=str(shots / "activation-en.png"), full_page=True)

    # the first level with asks: its "asked" figure opens the enrolments behind it
    asked = {}
    for level in ("L1", "L2", "L3", "L4"):
        asked[level] = int(panel.get_by_test_id(f"drill-{level}-asked").inner_text())
    level = next(level for level, n in asked.items() if n > 0)
    panel.get_by_test_id(f"drill-{level}-asked").click()
    expect(page.get_by_role("heading", name="Behind the activation funnel")).to_be_visible()
    assert f"level={level}" in page.url and "stage=asked" in page.url
    rows = page.get_by_test_id("drill").locator("tbody tr")
    expect(rows).to_have_count(min(asked[level], 200))
    expect(rows.first).to_contain_text(level)

    with page.expect_download() as download_info:
        page.get_by_test_id("drill-csv").click()
    text = Path(download_info.value.path()).read_text("utf-8-sig")
    exported = list(csv.DictReader(io.StringIO(text)))
    assert len(exported) == asked[level]
    assert {r["level"] for r in exported} == {level}
    assert all(r["ask"] != "skipped" for r in exported)

    page.goto(f"{live_server.url}/dashboard?lang=zh-CN")
    panel = page.get_by_test_id("panel-activation")
    expect(panel).to_contain_text("各层级激活漏斗")
    expect(panel.get_by_test_id("table-activation")).to_contain_text("已邀请")
    page.screenshot(path=str(shots / "activation-zh-CN.png"), full_page=True)
    context.close()
