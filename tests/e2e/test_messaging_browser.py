"""A received mail's links in a real Chromium against a real server: the tracked review link
redirects and marks the message clicked; the unsubscribe page speaks the customer's language
and unsubscribes; the console shows the message's history."""

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from advocado.services import messaging
from advocado.services.messaging import enqueue_message
from advocado.services.users import create_user
from advocado.store.db import read_only, unit_of_work
from advocado.store.models import Customer

pytestmark = pytest.mark.browser


def test_mail_links_in_a_browser(
    smtp_server: Any, monkeypatch: pytest.MonkeyPatch, chromium: Any,
    live_server: Any, engine: Engine, tmp_path: Path,
) -> None:  # fmt: skip
    import re

    from playwright.sync_api import expect

    monkeypatch.setenv("ADVOCADO_BASE_URL", live_server.url)
    monkeypatch.setenv("ADVOCADO_QUIET_HOURS", "off")
    monkeypatch.setenv("ADVOCADO_REVIEW_LINKS", f"G2={live_server.url}/healthz")
    with unit_of_work(engine) as session:
        create_user(session, email="ops@example.com", password="correct horse", role="admin")
        person = Customer(external_id="mei", name="林美", email="mei@example.com",
                          locale="zh-TW", timezone="Asia/Taipei", marketing_consent=True,
                          tags=[], attributes={}, created_at=messaging.clock.now(),
                          updated_at=messaging.clock.now())  # fmt: skip
        session.add(person)
        session.flush()
        queued = enqueue_message(session, customer_id=person.id, template="review_ask",
                                 cause_key="review:mei", context={})  # fmt: skip
    assert messaging.deliver_due(engine).sent == 1
    [mail] = smtp_server.to("mei@example.com")
    html = mail.get_body(("html",)).get_content()
    review = re.search(r'href="([^"]+/m/[^"]+)"', html).group(1)
    unsubscribe = mail["List-Unsubscribe"][1:-1]

    # headless Chromium says "HeadlessChrome", which counts as a link scanner, not a reader
    reader = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120 Safari/537.36"
    page = chromium.new_context(locale="zh-TW", user_agent=reader).new_page()
    page.goto(review)
    expect(page).to_have_url(f"{live_server.url}/healthz")
    page.goto(unsubscribe)
    expect(page.get_by_role("heading", name="取消訂閱")).to_be_visible()
    page.get_by_role("button", name="確認取消訂閱").click()
    expect(page.get_by_test_id("done")).to_contain_text("您已取消訂閱")
    with read_only(engine) as session:
        assert session.get(Customer, person.id).marketing_consent is False

    page.goto(f"{live_server.url}/login?lang=en")
    page.get_by_label("Email").fill("ops@example.com")
    page.get_by_label("Password").fill("correct horse")
    page.get_by_role("button", name="Sign in").click()
    page.goto(f"{live_server.url}/messages/{queued.message_id}")
    expect(page.get_by_test_id("status")).to_have_text("clicked")
    expect(page.get_by_test_id("history")).to_contain_text("G2")
    page.screenshot(path=str(tmp_path / "message.png"), full_page=True)
