"""UGC challenges as data (seed 000 level 3: the #hashtag# story challenge), and the rules of
entries and their review. Pure: no I/O.

The file format is documented line by line in examples/challenges/story.yaml.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

LOCALES = ("zh-CN", "zh-TW", "en")
TEXT_FIELDS = ("title", "prompt", "prize")
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,98}$")
MAX_IMAGE_BYTES = 5 * 1024 * 1024
MAX_TEXT = 5000
MAX_LINK = 1000
MAX_REASON = 500
_TOP_KEYS = {"slug", "title", "hashtag", "prompt", "prize", "starts_at", "ends_at", "texts",
             "max_image_mb"}  # fmt: skip


class ChallengeError(ValueError):
    """`field` of the challenge file is wrong, for `reason`."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class LocaleTexts:
    title: str
    prompt: str
    prize: str


@dataclass(frozen=True)
class ChallengeSpec:
    slug: str
    hashtag: str  # with its # marks, as people type it: #我和壶匠的故事#
    starts_at: datetime
    ends_at: datetime
    texts: dict[str, LocaleTexts]  # every locale in LOCALES
    max_image_bytes: int = MAX_IMAGE_BYTES

    def running_at(self, moment: datetime) -> bool:
        return running(self.starts_at, self.ends_at, moment)


def running(starts_at: datetime, ends_at: datetime, moment: datetime) -> bool:
    """Open for entries from `starts_at` (inclusive) until `ends_at` (exclusive)."""
    return starts_at <= moment < ends_at


def _moment(value: Any, where: str) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, str) and value.strip():
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ChallengeError(where, f"not a date or time: {value!r}") from None
    else:
        raise ChallengeError(where, "missing: give a date such as 2026-12-01 or an ISO time")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _text(value: Any, where: str, max_length: int = 2000) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ChallengeError(where, "missing")
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ChallengeError(where, f"expected text, got {type(value).__name__}")
    text = str(value).strip()
    if len(text) > max_length:
        raise ChallengeError(where, f"longer than {max_length} characters")
    return text


def normalise_hashtag(value: str) -> str:
    """`我和壶匠的故事`, `#我和壶匠的故事` and `#我和壶匠的故事#` are one hashtag (Weibo style,
    closed by a second #); spaces inside are not allowed."""
    core = value.strip().strip("#").strip()
    if not core:
        raise ChallengeError("hashtag", "missing")
    if any(ch.isspace() for ch in core) or "#" in core:
        raise ChallengeError("hashtag", f"no spaces or # inside a hashtag: {value!r}")
    if len(core) > 60:
        raise ChallengeError("hashtag", "longer than 60 characters")
    return f"#{core}#"


def parse_challenge(data: Any) -> ChallengeSpec:
    """The challenge a YAML/JSON mapping describes; ChallengeError names the first bad field.

    `title`, `prompt` and `prize` are given per locale under `texts:` (zh-CN, zh-TW, en); a
    top-level `title`/`prompt`/`prize` is the fallback for a locale that leaves one out."""
    if not isinstance(data, Mapping):
        raise ChallengeError("file", "expected a mapping with slug, hashtag, dates and texts")
    unknown = sorted(str(key) for key in data if key not in _TOP_KEYS)
    if unknown:
        raise ChallengeError(unknown[0], f"unknown field (known: {', '.join(sorted(_TOP_KEYS))})")
    slug = _text(data.get("slug"), "slug", 100)
    if not SLUG.match(slug):
        raise ChallengeError("slug", "use lower-case letters, digits and dashes, e.g. story-2026")
    hashtag = normalise_hashtag(_text(data.get("hashtag"), "hashtag", 62))
    starts_at = _moment(data.get("starts_at"), "starts_at")
    ends_at = _moment(data.get("ends_at"), "ends_at")
    if ends_at <= starts_at:
        raise ChallengeError("ends_at", "must be after starts_at")
    raw_texts = data.get("texts") or {}
    if not isinstance(raw_texts, Mapping):
        raise ChallengeError("texts", "expected a mapping of locale (zh-CN, zh-TW, en) to texts")
    for locale in raw_texts:
        if locale not in LOCALES:
            raise ChallengeError(f"texts.{locale}", f"unknown locale (use {', '.join(LOCALES)})")
    texts: dict[str, LocaleTexts] = {}
    for locale in LOCALES:
        given = raw_texts.get(locale) or {}
        if not isinstance(given, Mapping):
            raise ChallengeError(f"texts.{locale}", "expected title, prompt and prize")
        for key in given:
            if key not in TEXT_FIELDS:
                raise ChallengeError(
                    f"texts.{locale}.{key}", "unknown field (title, prompt, prize)"
                )
        values = {}
        for name in TEXT_FIELDS:
            if given.get(name) is not None:
                values[name] = _text(given[name], f"texts.{locale}.{name}")
            elif data.get(name) is not None:
                values[name] = _text(data[name], name)
            else:
                raise ChallengeError(f"texts.{locale}.{name}", f"missing (and no top-level {name})")
        texts[locale] = LocaleTexts(**values)
    max_mb = data.get("max_image_mb", MAX_IMAGE_BYTES // (1024 * 1024))
    if isinstance(max_mb, bool) or not isinstance(max_mb, int | float) or not 0 < max_mb <= 20:
        raise ChallengeError("max_image_mb", f"expected a number from 1 to 20, got {max_mb!r}")
    return ChallengeSpec(slug=slug, hashtag=hashtag, starts_at=starts_at, ends_at=ends_at,
                         texts=texts, max_image_bytes=int(max_mb * 1024 * 1024))  # fmt: skip


def texts_for(texts: Mapping[str, Mapping[str, str]], locale: str) -> dict[str, str]:
    """A stored challenge's texts in `locale`, else English, else any."""
    chosen = texts.get(locale) or texts.get("en") or next(iter(texts.values()), {})
    return dict(chosen)


# --- Entries -------------------------------------------------------------------------------


class EntryStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class ReviewAction(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    FEATURE = "feature"
    UNFEATURE = "unfeature"


class EntryProblem(StrEnum):
    """Why an entry was refused. Each has a message in every locale (web/i18n.py `entry_<x>`)."""

    BAD_TOKEN = "bad_token"
    NOT_STARTED = "not_started"
    ENDED = "ended"
    EMPTY = "empty"
    BAD_LINK = "bad_link"
    TEXT_TOO_LONG = "text_too_long"
    IMAGE_TOO_LARGE = "image_too_large"
    IMAGE_TYPE = "image_type"
    ALREADY_REVIEWED = "already_reviewed"
    FORM_EXPIRED = "form_expired"


class EntryRefused(ValueError):
    def __init__(self, problem: EntryProblem, field: str, detail: str = "") -> None:
        super().__init__(f"{field}: {problem.value}{': ' + detail if detail else ''}")
        self.problem = problem
        self.field = field
        self.detail = detail


# Magic numbers: the bytes decide the type, never the name or the declared Content-Type.
_IMAGE_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def image_type(head: bytes) -> str | None:
    """The image type the first bytes show (PNG, JPEG, GIF, WebP), or None."""
    for signature, kind in _IMAGE_SIGNATURES:
        if head.startswith(signature):
            return kind
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def check_link(value: str | None) -> str | None:
    """An http(s) link to the post, or None when left empty."""
    link = (value or "").strip()
    if not link:
        return None
    if len(link) > MAX_LINK:
        raise EntryRefused(EntryProblem.BAD_LINK, "link", f"longer than {MAX_LINK} characters")
    parts = urlsplit(link)
    if parts.scheme not in ("http", "https") or not parts.netloc or " " in link:
        raise EntryRefused(EntryProblem.BAD_LINK, "link", "not an http(s) link")
    return link


def check_entry(
    *, link: str | None, text: str | None, image: bytes | None, max_image_bytes: int
) -> tuple[str | None, str | None, str | None]:
    """(link, text, image type) of a valid entry; EntryRefused naming the field otherwise.
    An entry needs at least a link or an image; the text is the story."""
    clean_link = check_link(link)
    story = (text or "").strip() or None
    if story and len(story) > MAX_TEXT:
        raise EntryRefused(EntryProblem.TEXT_TOO_LONG, "text", f"at most {MAX_TEXT} characters")
    kind = None
    if image:
        if len(image) > max_image_bytes:
            raise EntryRefused(EntryProblem.IMAGE_TOO_LARGE, "image",
                               f"{len(image)} bytes > {max_image_bytes}")  # fmt: skip
        kind = image_type(image[:16])
        if kind is None:
            raise EntryRefused(EntryProblem.IMAGE_TYPE, "image", "not PNG, JPEG, GIF or WebP")
    if clean_link is None and kind is None and story is None:
        raise EntryRefused(EntryProblem.EMPTY, "link", "give a link, an image or your story")
    return clean_link, story, kind


def check_window(starts_at: datetime, ends_at: datetime, moment: datetime) -> None:
    if moment < starts_at:
        raise EntryRefused(EntryProblem.NOT_STARTED, "challenge", f"opens {starts_at:%Y-%m-%d}")
    if moment >= ends_at:
        raise EntryRefused(EntryProblem.ENDED, "challenge", f"closed {ends_at:%Y-%m-%d}")


@dataclass(frozen=True)
class Review:
    status: EntryStatus
    featured: bool
    reason: str | None


class ReviewError(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def review(
    status: EntryStatus, featured: bool, action: ReviewAction | str, reason: str | None
) -> Review:
    """The entry after a reviewer's action. Rejecting needs a reason (the customer may ask
    why); only an approved entry can be featured; rejecting un-features."""
    try:
        act = ReviewAction(action)
    except ValueError:
        valid = ", ".join(a.value for a in ReviewAction)
        raise ReviewError("action", f"{action!r} is not one of {valid}") from None
    why = (reason or "").strip() or None
    if why and len(why) > MAX_REASON:
        raise ReviewError("reason", f"at most {MAX_REASON} characters")
    if act is ReviewAction.APPROVE:
        return Review(EntryStatus.APPROVED, featured, why)
    if act is ReviewAction.REJECT:
        if why is None:
            raise ReviewError("reason", "say why the entry is rejected")
        return Review(EntryStatus.REJECTED, False, why)
    if act is ReviewAction.FEATURE:
        if status is not EntryStatus.APPROVED:
            raise ReviewError("action", "approve the entry before featuring it")
        return Review(status, True, why)
    return Review(status, False, why)
