"""Messaging rules without a database: skip reasons, quiet hours across timezones and DST,
backoff, locale choice, reasons in three languages; templates: sandbox, escaping, links."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from advocado.channels import render as templates
from advocado.channels.config import parse_review_links
from advocado.domain import messaging as rules

QUIET = rules.QuietHours.parse("21:00-09:00")


def person(**changes: object) -> rules.Recipient:
    values: dict[str, object] = {"consent": True, "unsubscribed": False, "suppressed": False,
                                 "address": "a@b.c"}  # fmt: skip
    values.update(changes)
    return rules.Recipient(**values)  # type: ignore[arg-type]


def why(recipient: rules.Recipient, *, marketing: bool = True, asks: int = 0) -> str | None:
    found = rules.skip_reason(recipient, channel="email", marketing=marketing,
                              recent_asks=asks, cap=2, days=30)  # fmt: skip
    return rules.reason_code(found)


def test_skip_reasons_in_order() -> None:
    assert why(person()) is None
    assert why(person(address=None)) == "no_address"
    assert why(person(unsubscribed=True, consent=False)) == "unsubscribed"
    assert why(person(suppressed=True)) == "suppressed"
    assert why(person(consent=False)) == "no_consent"
    assert why(person(), asks=2) == "frequency_cap"
    assert why(person(), asks=1) is None
    # transactional: only an address is needed
    assert why(person(consent=False, unsubscribed=True), marketing=False, asks=9) is None
    assert why(person(address=None), marketing=False) == "no_address"


def test_reasons_read_in_three_languages() -> None:
    stored = rules.reason("frequency_cap", count=2, days=30, cap=2)
    assert stored.startswith("frequency_cap: already asked 2 times in the last 30 days")
    assert rules.explain(stored, "zh-CN") == "frequency_cap: 近 30 天已邀请 2 次（上限 2 次）"
    assert rules.explain(stored, "zh-TW") == "frequency_cap: 近 30 天已邀請 2 次（上限 2 次）"
    assert rules.explain(stored, "en") == stored
    assert rules.explain(None, "zh-CN") is None
    assert set(rules.REASONS) >= {"no_consent", "unsubscribed", "suppressed", "frequency_cap"}


@pytest.mark.parametrize(
    ("utc", "zone", "expected"),
    [
        # 10:00 in Shanghai: allowed as it is
        (datetime(2026, 3, 2, 2, 0, tzinfo=UTC), "Asia/Shanghai", None),
        # 22:30 in Shanghai -> 09:00 next day Shanghai = 01:00 UTC
        (datetime(2026, 3, 2, 14, 30, tzinfo=UTC), "Asia/Shanghai",
         datetime(2026, 3, 3, 1, 0, tzinfo=UTC)),
        # 03:00 in Shanghai -> 09:00 the same day
        (datetime(2026, 3, 1, 19, 0, tzinfo=UTC), "Asia/Shanghai",
         datetime(2026, 3, 2, 1, 0, tzinfo=UTC)),
        # 21:00 sharp in New York is quiet -> 09:00 EST next day
        (datetime(2026, 3, 3, 2, 0, tzinfo=UTC), "America/New_York",
         datetime(2026, 3, 3, 14, 0, tzinfo=UTC)),
        # the night the clocks go forward (Mar 8 2026): 09:00 EDT = 13:00 UTC
        (datetime(2026, 3, 8, 5, 0, tzinfo=UTC), "America/New_York",
         datetime(2026, 3, 8, 13, 0, tzinfo=UTC)),
        # 20:59 London: allowed
        (datetime(2026, 1, 5, 20, 59, tzinfo=UTC), "Europe/London", None),
        # an unknown zone is read as UTC
        (datetime(2026, 1, 5, 23, 0, tzinfo=UTC), "Mars/Olympus",
         datetime(2026, 1, 6, 9, 0, tzinfo=UTC)),
    ],
)  # fmt: skip
def test_quiet_hours(utc: datetime, zone: str, expected: datetime | None) -> None:
    assert rules.next_allowed(utc, timezone=zone, quiet=QUIET) == (expected or utc)


def test_quiet_hours_within_a_day_and_off() -> None:
    lunch = rules.QuietHours.parse("12:00-13:30")
    at = datetime(2026, 1, 5, 12, 10, tzinfo=UTC)
    assert rules.next_allowed(at, timezone="UTC", quiet=lunch) == at.replace(hour=13, minute=30)
    assert rules.next_allowed(at, timezone="UTC", quiet=rules.QuietHours.parse("off")) == at
    assert lunch.contains(time(12, 0)) and not lunch.contains(time(13, 30))
    with pytest.raises(ValueError, match="expected HH:MM-HH:MM"):
        rules.QuietHours.parse("9pm to 9am")


def test_backoff_doubles_up_to_a_cap() -> None:
    assert [rules.backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [60, 120, 240, 480]
    assert rules.backoff(30) == timedelta(hours=6)


@pytest.mark.parametrize(
    ("tag", "locale"),
    [("zh-CN", "zh-CN"), ("zh", "zh-CN"), ("zh_Hans_SG", "zh-CN"), ("zh-TW", "zh-TW"),
     ("zh-HK", "zh-TW"), ("zh-Hant", "zh-TW"), ("en-GB", "en"), ("fr", "en"), (None, "en")],
)  # fmt: skip
def test_locale_choice(tag: str | None, locale: str) -> None:
    assert rules.pick_locale(tag) == locale


def test_review_links_setting() -> None:
    links = parse_review_links("App Store=https://a.example/x;大众点评=https://d.example/y")
    assert [(link.name, link.url) for link in links] == [
        ("App Store", "https://a.example/x"), ("大众点评", "https://d.example/y")]  # fmt: skip
    with pytest.raises(ValueError, match="entry 2"):
        parse_review_links("G2=https://g2.example;Capterra")


def _render(text: str, html: str | None = None, **context: object) -> templates.Rendered:
    return templates.render(
        templates.Source("Hi {{ name }}", text, html, "override"), name="t", locale="en",
        context=context, secret="s", message_id=7, base_url="https://x.example",
        sender="Brand", unsubscribe_url="https://x.example/u/7.abc",
    )  # fmt: skip


def test_templates_are_sandboxed_and_strict() -> None:
    with pytest.raises(templates.TemplateProblem, match="unsafe|attribute"):
        _render("{{ name.__class__.__mro__ }}", name="x")
    with pytest.raises(templates.TemplateProblem, match="'code' is undefined"):
        _render("{{ code }}", name="x")
    assert "fallback" in _render("{{ code | default('fallback') }}", name="x").text


def test_html_is_escaped_and_footer_always_added() -> None:
    shown = _render("plain {{ name }}", "<p>{{ name }}</p>", name="<script>")
    assert "<p>&lt;script&gt;</p>" in shown.html and "plain <script>" in shown.text
    assert "https://x.example/u/7.abc" in shown.html  # added although the template left it out
    assert shown.text.rstrip().endswith("Unsubscribe: https://x.example/u/7.abc")


def test_tracked_links_are_stable_per_message_and_url() -> None:
    first = _render("{{ track('https://g2.example/r', 'G2') }} {{ track('https://g2.example/r') }}")
    again = _render("{{ track('https://g2.example/r') }}")
    assert len(first.links) == 1 and first.links[0][:2] == again.links[0][:2]
    token = first.links[0][0]
    assert f"https://x.example/m/{token}" in first.text
    assert templates.link_token("s", 8, "https://g2.example/r") != token


def test_every_shipped_template_renders_in_every_locale() -> None:
    for name in templates.shipped_names():
        for locale in rules.LOCALES:
            source = templates.shipped_source(name, locale)
            assert source is not None, (name, locale)
            shown = templates.render(
                source, name=name, locale=locale,
                context=templates.sample_context(name, locale), secret="s", message_id=1,
                base_url="https://x.example", sender="Brand", unsubscribe_url=None,
            )  # fmt: skip
            assert shown.subject and shown.html and "Brand" in shown.text
            if name != "referral_notice":
                assert shown.links, (name, locale)
