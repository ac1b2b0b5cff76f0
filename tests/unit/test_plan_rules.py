"""The plan file's checks, time elapsed, and how a goal is judged (behind / on track / done);
and that every word of the plan and customer pages is in all three locales."""

from datetime import date
from typing import Any

import pytest

from advocado.domain.plans import PlanError, parse_plan, progress, time_elapsed
from advocado.web.i18n_plan import WORDS

GOOD: dict[str, Any] = {
    "slug": "q1",
    "name": "Q1",
    "owner": "Li",
    "starts_on": date(2027, 1, 1),
    "ends_on": date(2027, 3, 31),
    "goals": {"leads": 10, "revenue": "1234.50"},
    "personas": ["emotional"],
    "recruitment": {"email": 5, "events": 2},
}


def test_a_good_plan_parses_with_money_in_minor_units() -> None:
    spec = parse_plan(GOOD)
    assert spec.goals == {"leads": 10, "revenue": 123450}
    assert spec.currency == "CNY" and spec.recruitment == {"email": 5, "events": 2}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"slug": "Q 1"}, "slug"),
        ({"owner": ""}, "owner"),
        ({"ends_on": date(2026, 12, 31)}, "ends_on"),
        ({"starts_on": "soon"}, "starts_on"),
        ({"goals": {}}, "goals"),
        ({"goals": {"likes": 3}}, "goals.likes"),
        ({"goals": {"leads": -1}}, "goals.leads"),
        ({"goals": {"leads": 2.5}}, "goals.leads"),
        ({"goals": {"leads": True}}, "goals.leads"),
        ({"goals": {"revenue": "12.345"}}, "goals.revenue"),
        ({"personas": ["loud"]}, "personas[0]"),
        ({"recruitment": {"unknown": 3}}, "recruitment.unknown"),
        ({"recruitment": {"e mail": 3}}, "recruitment.e mail"),
        ({"currency": "yuan"}, "currency"),
        ({"budget": 3}, "budget"),
    ],
)
def test_each_problem_names_its_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(PlanError) as error:
        parse_plan({**GOOD, **change})
    assert error.value.field == field and " / " in error.value.reason  # en / zh


def test_time_elapsed_counts_whole_days_both_ends_included() -> None:
    start, end = date(2027, 1, 1), date(2027, 1, 10)
    assert time_elapsed(start, end, date(2026, 12, 31)) == 0.0
    assert time_elapsed(start, end, date(2027, 1, 1)) == 0.1
    assert time_elapsed(start, end, date(2027, 1, 5)) == 0.5
    assert time_elapsed(start, end, date(2027, 2, 1)) == 1.0


def test_a_goal_is_behind_when_done_is_below_time_gone() -> None:
    behind = progress(target=100, actual=30, elapsed=0.5)
    assert behind.status == "behind" and behind.gap == pytest.approx(0.2)
    assert "30%" in behind.reason and "50%" in behind.reason and "20 below pace" in behind.reason
    assert "落后" in behind.reason
    assert progress(target=100, actual=50, elapsed=0.5).status == "on_track"
    assert progress(target=100, actual=100, elapsed=0.1).status == "done"
    assert progress(target=100, actual=0, elapsed=0.0).status == "not_started"
    assert progress(target=0, actual=5, elapsed=0.5).status == "no_target"


def test_every_word_is_in_every_locale() -> None:
    keys = {locale: set(words) for locale, words in WORDS.items()}
    assert set(keys) == {"en", "zh-CN", "zh-TW"}
    assert keys["en"] == keys["zh-CN"] == keys["zh-TW"]


def test_a_money_shortfall_is_told_in_major_units() -> None:
    behind = progress(target=1_000_000, actual=100_000, elapsed=0.5, currency="CNY")
    assert "4,000.00 CNY below pace" in behind.reason and "比进度少 4,000.00 CNY" in behind.reason
