"""Playbook rules: parsing, errors naming line and field, durations, local times."""

from datetime import UTC, datetime, time, timedelta

import pytest

from advocado.domain import playbooks as rules
from advocado.domain.playbooks import PlaybookError, load_source, parse_playbook
from advocado.services.playbooks import default_source

GOOD = """\
name: welcome
triggers: [manual]
steps:
  - id: hello
    add_tag: welcomed
  - id: pause
    wait: {for: 1h, until: "10:00"}
  - id: done
    exit: bye
"""


def test_the_default_playbook_is_valid_and_follows_seed_000() -> None:
    _, spec = load_source(default_source(), "default.yaml")
    assert spec.name == "activation-funnel" and spec.enabled
    assert [t.type for t in spec.triggers] == ["response_submitted"]
    assert spec.step("wait-24h").params["for"] == 24 * 3600
    actions = {step.id: step.action for step in spec.steps}
    assert actions["ambassador-invite"] == "create_task"
    assert actions["detractor-follow-up"] == "create_task"
    templates = {s.params["template"] for s in spec.steps if s.action == "send_message"}
    assert templates == {"review_ask", "referral_invite", "ugc_invite"}
    arms = rules.branch_arms(spec.step("choose-level"))
    # level 4 is decided before any automated ask
    assert [a.goto for a in arms][:4] == ["passive", *["ambassador-invite"] * 3]


def test_a_good_playbook_parses() -> None:
    _, spec = load_source(GOOD)
    assert spec.following(spec.step("hello")) == "pause"
    assert spec.following(spec.step("done")) is None
    assert spec.step("pause").params == {"for": 3600.0, "until": "10:00"}


@pytest.mark.parametrize(
    ("text", "line", "field", "reason"),
    [
        (GOOD.replace("add_tag: welcomed", "send_message: {channel: email}"), 5,
         "steps[0].send_message.template", "not an id"),
        (GOOD.replace("wait: {for: 1h", "wait: {for: soon"), 7, "steps[1].wait.for",
         "not a duration"),
        (GOOD.replace("exit: bye", "exit: bye\n    next: hello"), 10, "steps[2].next",
         "not after this step"),
        (GOOD.replace("triggers: [manual]", "triggers: [payday]"), 2, "triggers[0].type",
         "is not one of"),
        (GOOD.replace("  - id: pause", "  - id: hello"), 6, "steps[1].id", "already step 0"),
        (GOOD.replace("add_tag: welcomed", "branch:\n      - if: {persona: [grumpy]}\n"
                      "        goto: done"), 6, "steps[0].branch[0].if.persona", "grumpy"),
        (GOOD.replace("name: welcome", "name: welcome\ncolour: red"), 2, "colour",
         "unknown key"),
        (GOOD + "  - id: x\n    add_tag: a\n    remove_tag: b\n", 10, "steps[3]",
         "exactly one action"),
    ],
)  # fmt: skip
def test_errors_name_the_file_line_and_field(text: str, line: int, field: str, reason: str) -> None:
    with pytest.raises(PlaybookError) as caught:
        load_source(text, "mine.yaml")
    error = caught.value
    assert (error.file, error.line, error.field) == ("mine.yaml", line, field), str(error)
    assert reason in error.reason
    assert str(error).startswith(f"mine.yaml:{line}: {field}: ")


def test_a_yaml_syntax_error_names_its_line() -> None:
    with pytest.raises(PlaybookError) as caught:
        load_source("name: x\nsteps: [\n  - id: a\n", "bad.yaml")
    assert caught.value.line is not None and caught.value.field == "(syntax)"


def test_data_from_the_api_is_checked_the_same_way() -> None:
    with pytest.raises(PlaybookError, match=r"^steps: expected a list"):
        parse_playbook({"name": "x", "triggers": ["manual"], "steps": []})


def test_response_triggers_ignore_history_by_default() -> None:
    spec = parse_playbook({"name": "x", "triggers": ["response_submitted"],
                           "steps": [{"id": "a", "exit": None}]})  # fmt: skip
    assert spec.triggers[0].within == rules.DEFAULT_WITHIN


@pytest.mark.parametrize(
    ("text", "expected"),
    [("24h", timedelta(hours=24)), ("7d", timedelta(days=7)), ("1h30m", timedelta(minutes=90)),
     ("90s", timedelta(seconds=90)), (60, timedelta(minutes=1))],
)  # fmt: skip
def test_durations(text: object, expected: timedelta) -> None:
    assert rules.parse_duration(text) == expected
    assert rules.parse_duration(rules.format_duration(expected)) == expected


@pytest.mark.parametrize("text", ["", "soon", "-1h", True, "h"])
def test_not_durations(text: object) -> None:
    with pytest.raises(ValueError):
        rules.parse_duration(text)


def test_until_a_time_of_day_in_the_customers_timezone() -> None:
    after = datetime(2026, 3, 1, 20, 0, tzinfo=UTC)  # 04:00 next day in Shanghai
    due = rules.next_local_time(after, time(10, 0), "Asia/Shanghai")
    assert due == datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
    # already past 10:00 locally: the next day
    due = rules.next_local_time(datetime(2026, 3, 2, 3, 0, tzinfo=UTC), time(10), "Asia/Shanghai")
    assert due == datetime(2026, 3, 3, 2, 0, tzinfo=UTC)
    # an unknown zone is read as UTC
    assert rules.next_local_time(after, time(21), "Mars/Base") == after + timedelta(hours=1)


def test_localized_text_falls_back_by_language_then_english() -> None:
    texts = {"en": "Hi", "zh-CN": "你好"}
    assert rules.localized(texts, "zh-TW") == "你好"
    assert rules.localized(texts, "fr") == "Hi"


def test_the_shipped_default_program_is_the_example() -> None:
    from importlib.resources import files
    from pathlib import Path

    shipped = files("advocado.playbooks").joinpath("programs", "double-sided.yaml").read_text()
    example = Path(__file__).resolve().parents[2] / "examples" / "programs" / "double-sided.yaml"
    assert shipped == example.read_text(encoding="utf-8")
