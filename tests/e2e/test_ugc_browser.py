"""A customer sends a challenge entry through /c/{token} in a real Chromium, and a community
manager sees it in the console's review list in Chinese and approves it."""

import os
import struct
import zlib
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from ugc_support import PASSWORD, add_user, challenge_data, seed

from advocado import clock
from advocado.services import challenges
from advocado.store.db import unit_of_work

pytestmark = pytest.mark.browser


def png(width: int, height: int) -> bytes:
    """A real PNG of one colour, so the browser can show it."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(
            ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)  # fmt: skip

    raw = b"".join(b"\0" + b"\x8b\x5a\x2b" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))  # fmt: skip


def test_entry_through_the_token_page_then_review_in_chinese(
    chromium: Any, live_server: Any, engine: Engine, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    ids = seed(engine, customers=1, locale="zh-CN")
    now = clock.now()
    with unit_of_work(engine) as session:
        challenges.apply_challenge(session, challenge_data(
            starts_at=(now - timedelta(days=1)).isoformat(),
            ends_at=(now + timedelta(days=30)).isoformat()))  # fmt: skip
        token = challenges.invite(session, challenge="story", customer_id=ids[0],
                                  cause_key="browser").token  # fmt: skip
    add_user(engine, "cm@example.com", "community")
    shots = Path(os.environ.get("ADVOCADO_SCREENSHOTS") or tmp_path)
    photo = tmp_path / "cup.png"
    photo.write_bytes(png(40, 30))

    customer = chromium.new_context(locale="en-US", viewport={"width": 900, "height": 900})
    page = customer.new_page()
    page.goto(f"{live_server.url}/c/{token}")  # an English browser, a zh-CN customer
    expect(page.get_by_role("heading", name="#我和壶匠的故事# 我和壶匠的故事")).to_be_visible()
    page.get_by_label("作品链接（可选）").fill("https://weibo.com/demo/42")
    page.get_by_label("照片（PNG、JPEG、GIF 或 WebP，最大 1 MB）").set_input_files(str(photo))
    page.get_by_label("您的故事").fill("周末露营，用壶匠冲了一壶耶加雪菲")
    page.get_by_role("button", name="提交作品").click()
    expect(page.get_by_test_id("thanks")).to_have_text("谢谢！我们已收到您的作品，会尽快审核。")
    expect(page.get_by_test_id("my-entry")).to_contain_text("周末露营")
    page.screenshot(path=str(shots / "challenge-entry-zh-CN.png"), full_page=True)
    customer.close()

    console = chromium.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
    page = console.new_page()
    page.goto(f"{live_server.url}/challenges/story")
    page.get_by_label("邮箱").fill("cm@example.com")
    page.get_by_label("密码").fill(PASSWORD)
    page.get_by_role("button", name="登录").click()
    expect(page.get_by_role("link", name="挑战赛", exact=True)).to_be_visible()
    entry = page.get_by_test_id("entry")
    expect(entry).to_contain_text("周末露营，用壶匠冲了一壶耶加雪菲")
    expect(entry.get_by_test_id("entry-status")).to_have_text("待审核")
    expect(entry.locator("img")).to_have_js_property("naturalWidth", 40)
    page.screenshot(path=str(shots / "challenge-review-zh-CN.png"), full_page=True)
    entry.get_by_role("button", name="通过").click()
    page.get_by_role("link", name="已通过").click()
    expect(page.get_by_test_id("entry").get_by_test_id("entry-status")).to_have_text("已通过")
    expect(page.get_by_test_id("entry")).to_contain_text("由 cm@example.com 于")
    console.close()
