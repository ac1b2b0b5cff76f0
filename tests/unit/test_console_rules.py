from datetime import UTC, datetime, timedelta

import pytest

from advocado.domain.roles import Role, role
from advocado.domain.throttle import LoginThrottle
from advocado.web.access import is_public, safe_next
from advocado.web.i18n import CATALOGUE, from_accept_language, negotiate, translate

T0 = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)


def test_roles_are_the_four_console_roles() -> None:
    assert {r.value for r in Role} == {"admin", "marketer", "community", "analyst"}
    assert role(" Marketer ") is Role.MARKETER


def test_unknown_role_names_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="admin, marketer, community, analyst"):
        role("owner")


def test_throttle_blocks_the_sixth_try_after_five_failures() -> None:
    throttle = LoginThrottle(limit=5, window=timedelta(minutes=15))
    for minute in range(5):
        assert throttle.retry_after("a@x.com|1.2.3.4", T0 + timedelta(minutes=minute)) is None
        throttle.record_failure("a@x.com|1.2.3.4", T0 + timedelta(minutes=minute))
    wait = throttle.retry_after("a@x.com|1.2.3.4", T0 + timedelta(minutes=5))
    assert wait == timedelta(minutes=10)  # until the first failure is 15 minutes old
    assert throttle.retry_after("a@x.com|5.6.7.8", T0 + timedelta(minutes=5)) is None
    assert throttle.retry_after("a@x.com|1.2.3.4", T0 + timedelta(minutes=15)) is None


def test_throttle_reset_forgets_failures() -> None:
    throttle = LoginThrottle(limit=2)
    throttle.record_failure("k", T0)
    throttle.record_failure("k", T0)
    assert throttle.retry_after("k", T0) is not None
    throttle.reset("k")
    assert throttle.retry_after("k", T0) is None


@pytest.mark.parametrize(
    ("header", "expected"),
    [("zh-TW,zh;q=0.9,en;q=0.8", "zh-TW"), ("zh-HK", "zh-TW"), ("zh-Hant-TW", "zh-TW"),
     ("zh-CN,zh;q=0.9", "zh-CN"), ("zh", "zh-CN"), ("zh-Hans-SG", "zh-CN"),
     ("en-GB,en;q=0.9", "en"), ("fr-FR,zh-CN;q=0.5", "zh-CN"), ("en;q=0.3,zh-TW;q=0.8", "zh-TW"),
     ("fr, de", None), ("", None), ("zh-CN;q=0", None)],
)  # fmt: skip
def test_accept_language_picks_the_best_known_locale(header: str, expected: str | None) -> None:
    assert from_accept_language(header) == expected


def test_query_beats_cookie_beats_browser() -> None:
    assert negotiate(query="zh-CN", cookie="zh-TW", accept_language="en") == "zh-CN"
    assert negotiate(query=None, cookie="zh-TW", accept_language="en") == "zh-TW"
    assert negotiate(query="klingon", cookie=None, accept_language="zh-TW") == "zh-TW"
    assert negotiate(query=None, cookie=None, accept_language=None) == "en"


def test_every_locale_has_every_string() -> None:
    keys = set(CATALOGUE["en"])
    for locale, strings in CATALOGUE.items():
        assert set(strings) == keys, locale
    assert translate("zh-TW", "nps_recent", days=90) == "淨推薦值（最近 90 天）"


@pytest.mark.parametrize(
    ("path", "public"),
    [("/healthz", True), ("/login", True), ("/static/console.css", True), ("/r/abc", True),
     ("/api/v1/customers", True), ("/", False), ("/docs", False), ("/openapi.json", False),
     ("/loginx", False), ("/api/v2/x", False), ("/static", False), ("/redoc", False)],
)  # fmt: skip
def test_only_a_few_paths_are_public(path: str, public: bool) -> None:
    assert is_public(path) is public


@pytest.mark.parametrize(
    ("value", "expected"),
    [("/docs", "/docs"), ("/?lang=zh-CN", "/?lang=zh-CN"), ("//evil.example", "/"),
     ("https://evil.example/", "/"), ("/\\evil.example", "/"), ("", "/"), (None, "/")],
)  # fmt: skip
def test_after_login_only_local_paths(value: str | None, expected: str) -> None:
    assert safe_next(value) == expected
