"""Playbooks: an automation written as data (YAML or JSON), checked here before it is stored.

A playbook has triggers (what enrols a customer), conditions (who may be enrolled: any segment
filter, and "not asked in the last N days"), and steps run in order: wait, branch,
send_message, issue_referral_code, invite_challenge, add_tag, remove_tag, call_webhook,
create_task (hands the customer to a person: ends the automation) and exit. A `branch` or a
`next` may only jump forward, so a playbook always ends and each step runs at most once per
enrolment (the step id is part of its effect's exactly-once key).

Errors name the file, the line and the field: `default.yaml:41: steps[3].send_message.template:
missing`. Pure rules: no I/O here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from advocado.domain.segments import SegmentFilter, parse_filters

RESPONSE_TRIGGERS = ("response_submitted", "response_updated")
ACTIVITY_TRIGGERS = ("onboarding_completed", "usage_milestone", "business_review", "renewal")
EVENT_TRIGGERS = (*RESPONSE_TRIGGERS, *ACTIVITY_TRIGGERS, "referral_status_changed")
SCAN_TRIGGERS = ("segment_entered", "date")
TRIGGERS = (*EVENT_TRIGGERS, *SCAN_TRIGGERS, "manual")
ACTIONS = (
    "wait", "branch", "send_message", "issue_referral_code", "invite_challenge", "add_tag",
    "remove_tag", "call_webhook", "create_task", "exit",
)  # fmt: skip
CHANNELS = ("email", "webhook")
LOCALES = ("en", "zh-CN", "zh-TW")
# Responses older than this when they are written do not enrol anyone (an import of last year's
# survey must not send this year's thank-you), unless a trigger says `within`.
DEFAULT_WITHIN = timedelta(days=3)
_ID = re.compile(r"^[a-z0-9](?:[a-z0-9_-]{0,98}[a-z0-9])?$")
_DURATION = re.compile(r"^\s*(?:(\d+)\s*d)?\s*(?:(\d+)\s*h)?\s*(?:(\d+)\s*m)?\s*(?:(\d+)\s*s)?\s*$")
_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


class PlaybookError(ValueError):
    """A playbook is wrong at `field` (a path such as steps[2].wait); `line` and `file` are
    filled in when it came from a file."""

    def __init__(
        self, field: str, reason: str, *, line: int | None = None, file: str | None = None
    ) -> None:
        self.field, self.reason, self.line, self.file = field, reason, line, file
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ":".join(str(part) for part in (self.file, self.line) if part is not None)
        return f"{where + ': ' if where else ''}{self.field}: {self.reason}"

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "field": self.field, "reason": self.reason}


Path = tuple[str | int, ...]


def field_name(path: Path) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text or "(top)"


class _Invalid(Exception):
    def __init__(self, path: Path, reason: str) -> None:
        self.path, self.reason = path, reason


# --- small values --------------------------------------------------------------------------


def parse_duration(value: Any) -> timedelta:
    """'24h', '30m', '7d', '1h30m', '90s' (or a number of seconds). ValueError if not one."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration such as 24h, 30m or 7d")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"{value} is negative")
        return timedelta(seconds=value)
    found = _DURATION.match(str(value)) if isinstance(value, str) else None
    if not found or not any(found.groups()):
        raise ValueError(f"{value!r} is not a duration such as 24h, 30m or 7d")
    days, hours, minutes, seconds = (int(part or 0) for part in found.groups())
    return timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)


def format_duration(value: timedelta) -> str:
    seconds = int(value.total_seconds())
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"


def parse_clock(value: Any) -> time:
    found = _CLOCK.match(str(value).strip()) if isinstance(value, str | int) else None
    if not found:
        raise ValueError(f"{value!r} is not a time of day such as 10:00")
    return time(int(found.group(1)), int(found.group(2)))


def zone(name: str | None) -> ZoneInfo:
    """The customer's timezone, UTC when unknown or not a real zone."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def next_local_time(after: datetime, at: time, timezone: str | None) -> datetime:
    """The first moment at or after `after` when the customer's clock shows `at` (UTC)."""
    tz = zone(timezone)
    local = after.astimezone(tz)
    candidate = datetime.combine(local.date(), at, tz)
    if candidate < local:
        candidate = datetime.combine(local.date() + timedelta(days=1), at, tz)
    return candidate.astimezone(UTC)


# --- the shape ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Condition:
    """Every segment filter given, and not asked (sent a marketing ask) in the last N days."""

    filters: SegmentFilter = field(default_factory=SegmentFilter)
    not_asked_in_days: int | None = None

    @property
    def empty(self) -> bool:
        return not self.filters.as_dict() and self.not_asked_in_days is None

    def describe(self) -> str:
        parts = [f"{k}={v}" for k, v in self.filters.as_dict().items()]
        if self.not_asked_in_days is not None:
            parts.append(f"not asked in {self.not_asked_in_days}d")
        return ", ".join(parts) or "everyone"


@dataclass(frozen=True)
class Trigger:
    type: str
    within: timedelta | None = None  # response triggers: ignore older responses
    survey: str | None = None
    statuses: tuple[str, ...] = ()  # referral_status_changed
    segment: str | None = None  # segment_entered, date (audience)
    on: date | None = None  # date
    yearly: bool = False  # date: every year on that month and day


@dataclass(frozen=True)
class Wait:
    duration: timedelta = timedelta(0)
    until: time | None = None


@dataclass(frozen=True)
class Branch:
    condition: Condition | None  # None: otherwise
    goto: str


@dataclass(frozen=True)
class Step:
    id: str
    action: str
    params: Mapping[str, Any]
    next: str | None = None  # None: the following step


@dataclass(frozen=True)
class PlaybookSpec:
    name: str
    title: Mapping[str, str]
    description: str
    enabled: bool
    triggers: tuple[Trigger, ...]
    conditions: Condition
    steps: tuple[Step, ...]
    vars: Mapping[str, Any]

    def step(self, step_id: str) -> Step:
        return self.steps[self.index(step_id)]

    def index(self, step_id: str) -> int:
        for number, step in enumerate(self.steps):
            if step.id == step_id:
                return number
        raise KeyError(step_id)

    def following(self, step: Step) -> str | None:
        """The step after `step` when it does not jump (None: the playbook ends)."""
        if step.next:
            return step.next
        number = self.index(step.id) + 1
        return self.steps[number].id if number < len(self.steps) else None

    def triggered_by(self, kind: str) -> list[Trigger]:
        return [trigger for trigger in self.triggers if trigger.type == kind]


def _mapping(path: Path, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _Invalid(path, "expected a mapping (key: value lines)")
    return value


def _known(path: Path, value: Mapping[str, Any], allowed: tuple[str, ...]) -> None:
    for key in value:
        if key not in allowed:
            raise _Invalid((*path, str(key)), f"unknown key; expected one of {', '.join(allowed)}")


def _text(path: Path, value: Any, required: bool = True, limit: int = 2000) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()):
        raise _Invalid(path, "missing" if value is None else f"{value!r} is not text")
    if len(value) > limit:
        raise _Invalid(path, f"longer than {limit} characters")
    return value.strip()


def _localized(path: Path, value: Any, required: bool = True) -> dict[str, str]:
    """Text, or text per locale ({en: …, zh-CN: …, zh-TW: …})."""
    if isinstance(value, Mapping):
        _known(path, value, LOCALES)
        found = {str(k): _text((*path, str(k)), v) for k, v in value.items()}
        if required and not found:
            raise _Invalid(path, "missing")
        return found
    text = _text(path, value, required)
    return {"en": text} if text else {}


def _identifier(path: Path, value: Any) -> str:
    if not isinstance(value, str) or not _ID.match(value):
        raise _Invalid(
            path, f"{value!r} is not an id: lowercase letters, digits, '-' and '_', up to 100"
        )
    return value


def _duration(path: Path, value: Any) -> timedelta:
    try:
        return parse_duration(value)
    except ValueError as error:
        raise _Invalid(path, str(error)) from None


def _bool(path: Path, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Invalid(path, f"{value!r} is not true or false")
    return value


def parse_condition(path: Path, value: Any) -> Condition:
    """A segment filter (domain/segments) plus `not_asked_in_days`."""
    if value is None:
        return Condition()
    raw = dict(_mapping(path, value))
    days = raw.pop("not_asked_in_days", None)
    if days is not None and (isinstance(days, bool) or not isinstance(days, int) or days < 1):
        raise _Invalid((*path, "not_asked_in_days"), f"{days!r} is not a whole number of days")
    try:
        filters = parse_filters(raw)
    except ValueError as error:  # FieldError: field "filters.<name>"
        name = str(getattr(error, "field", "filters")).removeprefix("filters").lstrip(".")
        reason = str(getattr(error, "reason", error))
        raise _Invalid((*path, name) if name else path, reason) from None
    return Condition(filters=filters, not_asked_in_days=days)


def _trigger(path: Path, value: Any) -> Trigger:
    if isinstance(value, str):
        value = {"type": value}
    raw = _mapping(path, value)
    _known(path, raw, ("type", "within", "survey", "status", "segment", "date", "yearly"))
    kind = raw.get("type")
    if kind not in TRIGGERS:
        raise _Invalid((*path, "type"), f"{kind!r} is not one of {', '.join(TRIGGERS)}")
    within = _duration((*path, "within"), raw["within"]) if "within" in raw else None
    if kind in RESPONSE_TRIGGERS and within is None:
        within = DEFAULT_WITHIN
    statuses = raw.get("status") or ()
    statuses = (statuses,) if isinstance(statuses, str) else tuple(statuses)
    segment = raw.get("segment")
    if segment is not None:
        segment = _text((*path, "segment"), segment, limit=100)
    if kind == "segment_entered" and not segment:
        raise _Invalid((*path, "segment"), "missing: the slug of a saved segment")
    on = raw.get("date")  # (not `on`: YAML 1.1 reads a bare on as true)
    if kind == "date":
        if on is None:
            raise _Invalid((*path, "date"), "missing: a date such as 2026-11-11")
        if not isinstance(on, date):
            try:
                on = date.fromisoformat(str(on))
            except ValueError:
                raise _Invalid(
                    (*path, "date"), f"{on!r} is not a date such as 2026-11-11"
                ) from None
    survey = _text((*path, "survey"), raw["survey"], limit=200) if raw.get("survey") else None
    yearly = _bool((*path, "yearly"), raw["yearly"]) if "yearly" in raw else False
    return Trigger(type=kind, within=within, survey=survey, statuses=statuses,
                   segment=segment, on=on, yearly=yearly)  # fmt: skip


def _wait(path: Path, value: Any) -> Wait:
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        return Wait(duration=_duration(path, value))
    raw = _mapping(path, value)
    _known(path, raw, ("for", "until"))
    if not raw:
        raise _Invalid(path, "give `for` (a duration) and/or `until` (a time of day)")
    duration = _duration((*path, "for"), raw["for"]) if "for" in raw else timedelta(0)
    until = None
    if "until" in raw:
        try:
            until = parse_clock(raw["until"])
        except ValueError as error:
            raise _Invalid((*path, "until"), str(error)) from None
    return Wait(duration=duration, until=until)


def _params(path: Path, action: str, value: Any) -> dict[str, Any]:
    """An action's parameters, checked, as plain data (what the runner reads)."""
    if action == "wait":
        wait = _wait(path, value)
        return {"for": wait.duration.total_seconds(),
                "until": wait.until.strftime("%H:%M") if wait.until else None}  # fmt: skip
    if action == "branch":
        if not isinstance(value, list) or not value:
            raise _Invalid(path, "expected a list of {if: condition, goto: step} (the last may "
                                 "have no `if`: otherwise)")  # fmt: skip
        arms = []
        for number, arm in enumerate(value):
            arm_path = (*path, number)
            raw = _mapping(arm_path, arm)
            _known(arm_path, raw, ("if", "goto"))
            goto = _identifier((*arm_path, "goto"), raw.get("goto"))
            parse_condition((*arm_path, "if"), raw.get("if"))
            arms.append({"if": raw.get("if"), "goto": goto})
        return {"arms": arms}
    if action == "send_message":
        raw = _mapping(path, value)
        _known(path, raw, ("template", "channel", "marketing"))
        channel = raw.get("channel", "email")
        if channel not in CHANNELS:
            raise _Invalid((*path, "channel"), f"{channel!r} is not one of {', '.join(CHANNELS)}")
        return {"template": _identifier((*path, "template"), raw.get("template")),
                "channel": channel,
                "marketing": _bool((*path, "marketing"), raw.get("marketing", True))}  # fmt: skip
    if action == "issue_referral_code":
        raw = _mapping(path, value)
        _known(path, raw, ("program",))
        return {"program": _text((*path, "program"), raw.get("program"), limit=100)}
    if action == "invite_challenge":
        raw = _mapping(path, value if value is not None else {})
        _known(path, raw, ("challenge", "otherwise"))
        otherwise = raw.get("otherwise")
        challenge = _text((*path, "challenge"), raw.get("challenge", "active"), limit=100)
        if otherwise:
            otherwise = _identifier((*path, "otherwise"), otherwise)
        return {"challenge": challenge, "otherwise": otherwise}
    if action in ("add_tag", "remove_tag"):
        return {"tag": _text(path, value, limit=100)}
    if action == "call_webhook":
        raw = _mapping(path, value)
        _known(path, raw, ("url", "event"))
        url = _text((*path, "url"), raw.get("url"), limit=2000)
        if not url.startswith(("https://", "http://")):
            raise _Invalid((*path, "url"), f"{url!r} is not an http(s) address")
        return {"url": url, "event": _text((*path, "event"), raw.get("event", "playbook.step"))}
    if action == "create_task":
        raw = _mapping(path, value)
        _known(path, raw, ("kind", "title", "assignee_role", "due_in", "script"))
        return {
            "kind": _identifier((*path, "kind"), raw.get("kind")),
            "title": _localized((*path, "title"), raw.get("title")),
            "assignee_role": _text((*path, "assignee_role"), raw.get("assignee_role",
                                                                     "community"), limit=40),
            "due_in": _duration((*path, "due_in"), raw.get("due_in", "48h")).total_seconds(),
            "script": _localized((*path, "script"), raw.get("script"), required=False),
        }  # fmt: skip
    if action == "exit":
        return {"reason": _text(path, value, required=False) if value is not None else ""}
    raise _Invalid(path, f"unknown action; expected one of {', '.join(ACTIONS)}")


def _step(path: Path, value: Any) -> Step:
    raw = _mapping(path, value)
    step_id = _identifier((*path, "id"), raw.get("id"))
    actions = [key for key in raw if key in ACTIONS]
    for key in raw:
        if key not in (*ACTIONS, "id", "next", "note"):
            raise _Invalid((*path, str(key)), f"unknown key; a step has id, one action of "
                                              f"{', '.join(ACTIONS)}, and maybe next")  # fmt: skip
    if len(actions) != 1:
        raise _Invalid(path, f"a step has exactly one action of {', '.join(ACTIONS)}"
                             + (f" (found {', '.join(actions)})" if actions else ""))  # fmt: skip
    action = actions[0]
    following = _identifier((*path, "next"), raw["next"]) if raw.get("next") else None
    return Step(id=step_id, action=action, params=_params((*path, action), action, raw[action]),
                next=following)  # fmt: skip


TOP_KEYS = ("name", "title", "description", "enabled", "triggers", "conditions", "steps", "vars")


def _parse(data: Any) -> PlaybookSpec:
    raw = _mapping((), data)
    _known((), raw, TOP_KEYS)
    name = _identifier(("name",), raw.get("name"))
    title = _localized(("title",), raw.get("title", name))
    description = _text(("description",), raw.get("description"), required=False, limit=10000)
    enabled = _bool(("enabled",), raw.get("enabled", True))
    triggers_raw = raw.get("triggers")
    if not isinstance(triggers_raw, list) or not triggers_raw:
        raise _Invalid(("triggers",), "expected a list of at least one trigger")
    triggers = tuple(_trigger(("triggers", n), t) for n, t in enumerate(triggers_raw))
    conditions = parse_condition(("conditions",), raw.get("conditions"))
    steps_raw = raw.get("steps")
    if not isinstance(steps_raw, list) or not steps_raw:
        raise _Invalid(("steps",), "expected a list of at least one step")
    steps = tuple(_step(("steps", n), s) for n, s in enumerate(steps_raw))
    positions: dict[str, int] = {}
    for number, step in enumerate(steps):
        if step.id in positions:
            raise _Invalid(("steps", number, "id"), f"{step.id!r} is already step "
                                                   f"{positions[step.id]}")  # fmt: skip
        positions[step.id] = number
    for number, step in enumerate(steps):
        targets: list[tuple[Path, str]] = []
        if step.next:
            targets.append((("steps", number, "next"), step.next))
        for arm_number, arm in enumerate(step.params.get("arms", ())):
            targets.append((("steps", number, "branch", arm_number, "goto"), arm["goto"]))
        if step.params.get("otherwise"):
            targets.append(
                ((*("steps", number), step.action, "otherwise"), step.params["otherwise"])
            )
        for path, target in targets:
            if target not in positions:
                raise _Invalid(path, f"no step {target!r}")
            if positions[target] <= number:
                raise _Invalid(path, f"{target!r} is not after this step: a playbook only "
                                     "jumps forward, so it always ends")  # fmt: skip
    variables = dict(_mapping(("vars",), raw.get("vars") or {}))
    return PlaybookSpec(name=name, title=title, description=description, enabled=enabled,
                        triggers=triggers, conditions=conditions, steps=steps,
                        vars=variables)  # fmt: skip


def parse_playbook(data: Any) -> PlaybookSpec:
    """Checks a playbook given as data (JSON, or YAML already read). PlaybookError names the
    field (no line: use parse_source for text)."""
    try:
        return _parse(data)
    except _Invalid as error:
        raise PlaybookError(field_name(error.path), error.reason) from None


def branch_arms(step: Step) -> list[Branch]:
    return [
        Branch(condition=parse_condition((), arm["if"]) if arm["if"] is not None else None,
               goto=arm["goto"])
        for arm in step.params["arms"]
    ]  # fmt: skip


# --- text with line numbers ---------------------------------------------------------------


def _lines(node: yaml.Node, path: Path, found: dict[Path, int]) -> None:
    found.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            child = (*path, key.value)
            found[child] = key.start_mark.line + 1
            _lines(value, child, found)
    elif isinstance(node, yaml.SequenceNode):
        for number, item in enumerate(node.value):
            _lines(item, (*path, number), found)


def line_of(lines: Mapping[Path, int], path: Path) -> int | None:
    """The line of the deepest part of `path` that the file has (a missing key: its parent)."""
    for end in range(len(path), -1, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None


def load_source(text: str, file: str = "<playbook>") -> tuple[Any, PlaybookSpec]:
    """Reads YAML (or JSON) text: (plain data, checked playbook). PlaybookError names the file,
    line and field of the first problem."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        reason = str(getattr(error, "problem", None) or error)
        raise PlaybookError("(syntax)", f"not valid YAML: {reason}", file=file,
                            line=mark.line + 1 if mark else None) from None  # fmt: skip
    lines: dict[Path, int] = {}
    if node is not None:
        _lines(node, (), lines)
    try:
        return data, _parse(data)
    except _Invalid as error:
        raise PlaybookError(field_name(error.path), error.reason, file=file,
                            line=line_of(lines, error.path)) from None  # fmt: skip


def localized(texts: Mapping[str, str], locale: str | None) -> str:
    """The text for a locale: exact, then same language, then English, then any."""
    if not texts:
        return ""
    locale = locale or "en"
    if locale in texts:
        return texts[locale]
    for key, value in texts.items():
        if key.split("-")[0] == locale.split("-")[0]:
            return value
    return texts.get("en") or next(iter(texts.values()))
