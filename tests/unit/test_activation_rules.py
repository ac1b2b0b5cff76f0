"""The activation funnel's rules (domain/activation.py) and its words in all three locales."""

from advocado.domain import activation as rules
from advocado.web.i18n_activation import WORDS

LOCALES = ("en", "zh-CN", "zh-TW")


def test_a_level_is_recognised_by_what_a_step_does() -> None:
    steps = [
        ("route", "branch", {}),
        ("code", "issue_referral_code", {"program": "p"}),
        ("invite", "send_message", {"template": "referral_invite"}),
        ("ugc", "invite_challenge", {"challenge": "active"}),
        ("ugc-mail", "send_message", {"template": "ugc_invite"}),
        ("ask", "send_message", {"template": "review_ask"}),
        ("thanks", "send_message", {"template": "thank_you"}),
        ("vip", "create_task", {"kind": "ambassador_invite"}),
        ("sorry", "create_task", {"kind": "detractor_follow_up"}),
    ]
    found = {s.level: (s.entry, s.ask) for s in rules.level_steps(steps)}
    assert found == {
        "L1": (("ask",), ("ask",)),
        "L2": (("code",), ("invite",)),
        "L3": (("ugc",), ("ugc-mail",)),
        "L4": (("vip",), ("vip",)),
    }


def test_a_level_without_its_entry_step_is_entered_at_the_ask() -> None:
    found = rules.level_steps([("invite", "send_message", {"template": "referral_invite"})])
    assert [(s.level, s.entry, s.ask) for s in found] == [("L2", ("invite",), ("invite",))]


def test_unmeasurable_stages_are_none_not_zero_and_rates_follow() -> None:
    row = rules.funnel_row("L1", {"eligible": 4, "asked": 2, "clicked": 1, "acted": 9})
    assert (row["acted"], row["featured"], row["act_rate"]) == (None, None, None)
    assert (row["ask_rate"], row["click_rate"]) == (0.5, 0.5)
    assert rules.funnel_row("L4", {"eligible": 0})["ask_rate"] is None
    assert rules.funnel_row("L3", {})["featured"] == 0


def test_every_definition_and_word_in_three_languages() -> None:
    for level in rules.LEVELS:
        for stage in rules.STAGES:
            en, zh_cn, zh_tw = (rules.meaning(level, stage, lang) for lang in LOCALES)
            assert en and zh_cn and zh_tw and en != zh_cn
        assert "/" in rules.definitions()[level]["acted"]
    assert rules.meaning("L1", "asked", "zh-TW") != rules.meaning("L1", "asked", "zh-CN")
    assert rules.skip_label("frequency_cap", "zh-CN") == "达到邀请频次上限"
    assert rules.skip_label("something_new") == "something_new"
    assert set(WORDS["en"]) == set(WORDS["zh-CN"]) == set(WORDS["zh-TW"])
    assert rules.skip_reason_code("no_consent: no / 无") == "no_consent"
