"""Rules of UGC challenges (file format, entries, review), the task queue and role grants."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from advocado.domain import challenges as rules
from advocado.domain import tasks
from advocado.domain.challenges import ChallengeError, EntryProblem, EntryRefused, ReviewError
from advocado.domain.roles import Permission, may
from advocado.services.challenges import public_name

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 12, 5, tzinfo=UTC)


def valid(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "slug": "story",
        "hashtag": "我和壶匠的故事",
        "starts_at": "2026-12-01",
        "ends_at": "2027-01-01T00:00:00+08:00",
        "title": "Story",
        "prompt": "Tell us",
        "prize": "A kettle",
        "texts": {"zh-CN": {"title": "故事"}},
    }
    data.update(changes)
    return data


def test_the_shipped_example_is_valid_and_the_demo_uses_the_same_file() -> None:
    example = ROOT / "examples" / "challenges" / "story.yaml"
    spec = rules.parse_challenge(yaml.safe_load(example.read_text(encoding="utf-8")))
    assert spec.hashtag == "#我和壶匠的故事#" and set(spec.texts) == {"zh-CN", "zh-TW", "en"}
    packaged = ROOT / "src" / "advocado" / "demo" / "story.yaml"
    assert packaged.read_bytes() == example.read_bytes()


def test_top_level_texts_fill_in_for_locales_and_hashtags_are_normalised() -> None:
    spec = rules.parse_challenge(valid())
    assert spec.texts["zh-CN"].title == "故事" and spec.texts["zh-CN"].prize == "A kettle"
    assert spec.texts["en"].title == "Story"
    assert spec.hashtag == "#我和壶匠的故事#"
    assert spec.ends_at == datetime(2026, 12, 31, 16, tzinfo=UTC)
    assert spec.max_image_bytes == 5 * 1024 * 1024
    assert rules.normalise_hashtag("#壶匠#") == rules.normalise_hashtag("壶匠#") == "#壶匠#"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"slug": "Story 2026"}, "slug"),
        ({"hashtag": "two words"}, "hashtag"),
        ({"hashtag": "##"}, "hashtag"),
        ({"starts_at": "soon"}, "starts_at"),
        ({"ends_at": "2026-11-01"}, "ends_at"),
        ({"prize": None}, "texts.zh-CN.prize"),
        ({"texts": {"fr": {}}}, "texts.fr"),
        ({"texts": {"en": {"subtitle": "x"}}}, "texts.en.subtitle"),
        ({"max_image_mb": 50}, "max_image_mb"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_a_bad_field_is_named(change: dict[str, Any], field: str) -> None:
    with pytest.raises(ChallengeError) as caught:
        rules.parse_challenge(valid(**change))
    assert caught.value.field == field


def test_images_are_judged_by_their_bytes() -> None:
    assert rules.image_type(b"\x89PNG\r\n\x1a\n....") == "image/png"
    assert rules.image_type(b"\xff\xd8\xff\xe0") == "image/jpeg"
    assert rules.image_type(b"GIF89a") == "image/gif"
    assert rules.image_type(b"RIFF\0\0\0\0WEBPVP8 ") == "image/webp"
    assert rules.image_type(b"<svg xmlns=") is None
    assert rules.image_type(b"%PDF-1.7") is None


@pytest.mark.parametrize(
    ("link", "text", "image", "problem"),
    [
        (None, None, None, EntryProblem.EMPTY),
        ("ftp://x.example/a", None, None, EntryProblem.BAD_LINK),
        ("javascript:alert(1)", None, None, EntryProblem.BAD_LINK),
        (None, "x" * 5001, None, EntryProblem.TEXT_TOO_LONG),
        (None, None, b"\x89PNG\r\n\x1a\n" + b"\0" * 2000, EntryProblem.IMAGE_TOO_LARGE),
        (None, None, b"not an image", EntryProblem.IMAGE_TYPE),
    ],
)
def test_entries_are_checked(
    link: str | None, text: str | None, image: bytes | None, problem: EntryProblem
) -> None:
    with pytest.raises(EntryRefused) as caught:
        rules.check_entry(link=link, text=text, image=image, max_image_bytes=1000)
    assert caught.value.problem is problem


def test_a_story_alone_or_a_link_alone_is_an_entry() -> None:
    assert rules.check_entry(link=None, text=" 故事 ", image=None, max_image_bytes=10) == (
        None, "故事", None)  # fmt: skip
    assert rules.check_entry(link="https://weibo.com/x", text="", image=None,
                             max_image_bytes=10)[0] == "https://weibo.com/x"  # fmt: skip


def test_the_window_is_start_inclusive_end_exclusive() -> None:
    end = T0 + timedelta(days=1)
    rules.check_window(T0, end, T0)
    with pytest.raises(EntryRefused) as caught:
        rules.check_window(T0, end, end)
    assert caught.value.problem is EntryProblem.ENDED
    with pytest.raises(EntryRefused) as caught:
        rules.check_window(T0, end, T0 - timedelta(seconds=1))
    assert caught.value.problem is EntryProblem.NOT_STARTED


def test_review_transitions() -> None:
    pending, approved = rules.EntryStatus.PENDING, rules.EntryStatus.APPROVED
    assert rules.review(pending, False, "approve", None).status is approved
    with pytest.raises(ReviewError, match="approve the entry before featuring"):
        rules.review(pending, False, "feature", None)
    assert rules.review(approved, False, "feature", None).featured
    rejected = rules.review(approved, True, "reject", "不是原创")
    assert rejected.status is rules.EntryStatus.REJECTED and not rejected.featured
    with pytest.raises(ReviewError) as caught:
        rules.review(pending, False, "reject", "  ")
    assert caught.value.field == "reason"
    with pytest.raises(ReviewError) as caught:
        rules.review(pending, False, "delete", None)
    assert caught.value.field == "action"
    assert not rules.review(approved, True, "unfeature", None).featured


def test_public_names_hide_most_of_a_name() -> None:
    assert public_name("张三丰") == "张**"
    assert public_name("Alice Smith") == "Alice S."
    assert public_name(None) == "—"


def test_overdue_tasks_sort_first_most_overdue_on_top() -> None:
    rows = [(T0 + timedelta(hours=5), False), (T0 - timedelta(hours=1), False),
            (T0 - timedelta(hours=9), False), (T0 - timedelta(days=3), True)]  # fmt: skip
    ordered = sorted(rows, key=lambda r: tasks.queue_order(r[0], r[1], T0))
    assert ordered == [rows[2], rows[1], rows[0], rows[3]]
    assert tasks.is_overdue(T0 - timedelta(seconds=1), False, T0)
    assert not tasks.is_overdue(T0 - timedelta(days=1), True, T0)


def test_shipped_scripts_follow_the_seed_in_every_locale() -> None:
    invite_zh = tasks.default_script("ambassador_invite", "zh-CN", "李雷")
    assert (
        invite_zh.startswith("李雷您好")
        and "新品免费内测" in invite_zh
        and "研发师（KOE）" in invite_zh
    )
    assert "官方專屬身份標識" in tasks.default_script("ambassador_invite", "zh-TW", None)
    english = tasks.default_script("ambassador_invite", "en", "Ann")
    assert "beta-test" in english and "R&D" in english and "badge" in english
    sorry = tasks.default_script("detractor_follow_up", "en", "Ann")
    assert "sorry" in sorry and "fixed" in sorry
    assert "顾客" in tasks.default_script("unknown_kind", "zh-CN", "")


def test_outcomes_and_notes_are_checked() -> None:
    assert tasks.outcome(" Accepted ") is tasks.Outcome.ACCEPTED
    with pytest.raises(tasks.TaskError, match="outcome: 'later' is not one of"):
        tasks.outcome("later")
    with pytest.raises(tasks.TaskError):
        tasks.note("x" * 2001)


def test_analysts_read_only_the_others_work() -> None:
    for role in ("admin", "community", "marketer"):
        assert all(may(role, p) for p in Permission)
    assert not any(may("analyst", p) for p in Permission)
    assert not may("intruder", Permission.WORK_TASKS)
