"""Segment filters: what is accepted, what is refused (naming the field), and highlighting."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from advocado.domain.records import FieldError
from advocado.domain.segments import SegmentFilter, parse_filters, slug, slug_from_name
from advocado.web.console.segments import highlight


def test_filters_are_normalised_to_one_canonical_form() -> None:
    spec = parse_filters({
        "nps_category": "Promoter", "score_min": "9", "persona": ["emotional", "emotional"],
        "submitted_from": "2026-01-01", "tags_any": ["vip", " ", "vip"], "consent": True,
        "value_tier": [], "survey": "",
    })  # fmt: skip
    assert spec == SegmentFilter(nps_category=("promoter",), score_min=9,
                                 persona=("emotional",), submitted_from=date(2026, 1, 1),
                                 tags_any=("vip",), consent=True)  # fmt: skip
    assert spec.as_dict() == {"nps_category": ["promoter"], "score_min": 9,
                              "persona": ["emotional"], "submitted_from": "2026-01-01",
                              "tags_any": ["vip"], "consent": True}  # fmt: skip
    assert parse_filters(spec.as_dict()) == spec


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"score_min": 11}, "filters.score_min"),
        ({"score_max": 8.5}, "filters.score_max"),
        ({"score_min": 9, "score_max": 7}, "filters.score_min"),
        ({"nps_category": ["fan"]}, "filters.nps_category"),
        ({"persona": "funny"}, "filters.persona"),
        ({"value_tier": ["platinum"]}, "filters.value_tier"),
        ({"lifecycle_stage": ["dead"]}, "filters.lifecycle_stage"),
        ({"high_influence": "maybe"}, "filters.high_influence"),
        ({"influence_min": 101}, "filters.influence_min"),
        ({"submitted_from": "01/02/2026"}, "filters.submitted_from"),
        ({"submitted_from": "2026-03-01", "submitted_to": "2026-02-01"},
         "filters.submitted_from"),
        ({"tags_all": [1, 2]}, "filters.tags_all"),
        ({"consent": 1}, "filters.consent"),
        ({"colour": "red"}, "filters.colour"),
        (["promoter"], "filters"),
    ],
)  # fmt: skip
def test_bad_filters_are_refused_naming_the_field(raw: Any, field: str) -> None:
    with pytest.raises(FieldError) as error:
        parse_filters(raw)
    assert error.value.field == field


def test_which_filters_need_a_response() -> None:
    assert not parse_filters({"consent": True}).scoped
    assert parse_filters({"survey": "q1"}).scoped
    assert not parse_filters({"survey": "q1"}).judges_responses
    assert parse_filters({"score_max": 6}).judges_responses


def test_slugs() -> None:
    assert slug("vip-promoters") == "vip-promoters"
    for bad in ("VIP", "-x", "a b", "", "x" * 101):
        with pytest.raises(FieldError):
            slug(bad)
    assert slug_from_name("VIP promoters, Q1!") == "vip-promoters-q1"
    assert slug_from_name("高价值推荐者") == "segment"


def test_highlight_marks_evidence_words_whatever_their_case() -> None:
    parts = highlight("Love it, LOVE the ROI很高!", ["love", "ROI很高"])
    assert parts == [("Love", True), (" it, ", False), ("LOVE", True), (" the ", False),
                     ("ROI很高", True), ("!", False)]  # fmt: skip


def test_highlight_prefers_the_longest_word_and_keeps_markup_as_text() -> None:
    parts = highlight("<b>太惊喜了</b>", ["惊喜", "太惊喜了", "<b>"])
    assert parts == [("<b>", True), ("太惊喜了", True), ("</b>", False)]
    assert highlight(None, ["x"]) == [] and highlight("ok", None) == [("ok", False)]
