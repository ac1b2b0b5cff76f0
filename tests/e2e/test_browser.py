"""The console in a real Chromium (Debian's /usr/bin/chromium) against a real server."""

import os
import re
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from advocado.services.demo import ADMIN_EMAIL, ADMIN_PASSWORD, load_demo

pytestmark = pytest.mark.browser


def test_sign_in_see_nps_and_switch_to_chinese(
    chromium: Any, live_server: Any, engine: Engine, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    load_demo(engine, customers=200)
    shots = Path(os.environ.get("ADVOCADO_SCREENSHOTS") or tmp_path)
    context = chromium.new_context(locale="en-GB", viewport={"width": 1280, "height": 900})
    page = context.new_page()

    page.goto(live_server.url + "/")
    expect(page).to_have_url(live_server.url + "/login")
    page.get_by_label("Email").fill(ADMIN_EMAIL)
    page.get_by_label("Password").fill("a wrong password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong email or password.")

    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(live_server.url + "/")
    all_time = page.get_by_test_id("nps-all-time")
    expect(all_time).to_contain_text("NPS, all time")
    expect(all_time.locator(".score")).to_have_text(re.compile(r"^[+-]\d+\.\d$"))
    expect(page.get_by_test_id("customers")).to_have_text("200")
    rows = page.locator("table.responses tbody tr")
    expect(rows).to_have_count(20)
    page.screenshot(path=str(shots / "console-en.png"), full_page=True)

    page.get_by_role("link", name="简体中文").click()
    expect(page.get_by_role("heading", name="概览")).to_be_visible()
    expect(all_time).to_contain_text("净推荐值（全部时间）")
    expect(page.get_by_role("columnheader", name="评论")).to_be_visible()
    page.screenshot(path=str(shots / "console-zh-CN.png"), full_page=True)

    page.goto(live_server.url + "/")  # the choice is remembered
    expect(page.get_by_role("heading", name="最新回复")).to_be_visible()
    context.close()
