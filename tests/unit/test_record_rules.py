from datetime import UTC, datetime

import pytest

from advocado.domain import records as rules
from advocado.domain.records import FieldError


def reason(call, *args):  # type: ignore[no-untyped-def]
    with pytest.raises(FieldError) as caught:
        call(*args)
    return caught.value.field, caught.value.reason


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("zh-CN", "zh-CN"), ("zh_cn", "zh-CN"), ("zh-Hans", "zh-CN"), ("zh-HK", "zh-TW"),
     ("zh-Hant", "zh-TW"), ("繁體中文", "zh-TW"), ("en-US", "en"), ("", "en")],
)  # fmt: skip
def test_locales_are_normalised(raw: str, expected: str) -> None:
    assert rules.locale(raw) == expected


def test_unknown_locale_names_the_field_and_the_choices() -> None:
    field, why = reason(rules.locale, "fr-FR")
    assert field == "locale" and "zh-CN, zh-TW, en" in why


def test_timezone_must_be_iana() -> None:
    assert rules.timezone("Asia/Shanghai") == "Asia/Shanghai"
    assert reason(rules.timezone, "Mars/Olympus")[0] == "timezone"


@pytest.mark.parametrize("raw", ["yes", "TRUE", "1", "是", "同意"])
def test_consent_yes_values(raw: str) -> None:
    assert rules.boolean("marketing_consent", raw) is True


@pytest.mark.parametrize("raw", ["no", "0", "否", "", "false"])
def test_consent_no_values(raw: str) -> None:
    assert rules.boolean("marketing_consent", raw) is False


def test_consent_garbage_is_an_error_not_a_no() -> None:
    assert reason(rules.boolean, "marketing_consent", "maybe")[0] == "marketing_consent"


def test_email_and_phone() -> None:
    assert rules.email(" a.b+x@example.com ") == "a.b+x@example.com"
    assert reason(rules.email, "not-an-email")[0] == "email"
    assert rules.phone("+86 138-0013-8000") == "+8613800138000"
    assert reason(rules.phone, "call me")[0] == "phone"


def test_tags_split_on_common_separators_and_dedupe() -> None:
    assert rules.tags("vip; beta|vip，早鸟、KOC") == ("vip", "beta", "早鸟", "KOC")
    assert rules.tags(["a", " a ", "b"]) == ("a", "b")


@pytest.mark.parametrize(
    ("raw", "expected"), [("0", 0), ("10", 10), (" 9 ", 9), ("8.0", 8), (7, 7)]
)
def test_scores(raw: str | int, expected: int) -> None:
    assert rules.score(raw) == expected


@pytest.mark.parametrize(
    ("raw", "why"),
    [("", "missing"), ("11", "outside 0-10"), ("-1", "outside 0-10"), ("8.5", "whole number"),
     ("ten", "not a number")],
)  # fmt: skip
def test_bad_scores_say_why(raw: str, why: str) -> None:
    field, message = reason(rules.score, raw)
    assert field == "score" and why in message


def test_amounts_become_minor_units_by_currency() -> None:
    assert rules.amount_from_major("199.00", "CNY") == 19900
    assert rules.amount_from_major("¥1,299.5", "CNY") == 129950
    assert rules.amount_from_major("1500", "JPY") == 1500
    assert "decimals" in reason(rules.amount_from_major, "1.999", "USD")[1]
    assert "negative" in reason(rules.amount_from_major, "-5", "USD")[1]
    assert reason(rules.currency, "yuan")[0] == "currency"


def test_moments_are_utc_and_naive_ones_read_in_the_given_zone() -> None:
    assert rules.moment("t", "2026-05-01T08:00:00+08:00") == datetime(2026, 5, 1, 0, 0, tzinfo=UTC)
    assert rules.moment("t", "2026-05-01 08:00", zone="Asia/Shanghai") == datetime(
        2026, 5, 1, 0, 0, tzinfo=UTC
    )
    assert rules.moment("t", "11/04/2018 20:09", "%d/%m/%Y %H:%M") == datetime(
        2018, 4, 11, 20, 9, tzinfo=UTC
    )
    field, why = reason(rules.moment, "submitted_at", "31/31/2018", "%d/%m/%Y")
    assert field == "submitted_at" and "%d/%m/%Y" in why


def test_derived_key_of_a_customers_response_ignores_the_comment() -> None:
    """The comment often arrives after the score: the same answer must keep the same key."""
    when = datetime(2026, 1, 1, tzinfo=UTC)
    common = {"customer_external_id": "c1", "survey": "s", "channel": None, "submitted_at": when}
    first = rules.derived_response_key(**common, score=9, comment=None, line=2)
    later = rules.derived_response_key(**common, score=9, comment="love it", line=40)
    assert first == later


def test_derived_keys_keep_identical_anonymous_answers_apart() -> None:
    when = datetime(2026, 1, 1, tzinfo=UTC)
    common = {"customer_external_id": None, "survey": "s", "channel": None, "submitted_at": when,
              "score": 10, "comment": "great"}  # fmt: skip
    assert rules.derived_response_key(**common, line=2) != rules.derived_response_key(
        **common, line=3
    )
    assert rules.derived_response_key(**common, line=2) == rules.derived_response_key(
        **common, line=2
    )
