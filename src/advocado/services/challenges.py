"""UGC challenges: create or update from YAML/JSON, invite customers (a tokenised link),
take their entries, review them, list the featured ones.

`invite` runs in the caller's transaction (a playbook step) and is exactly-once: unique per
(challenge, customer) and on its cause key."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from advocado import clock
from advocado.domain import challenges as rules
from advocado.domain.challenges import ChallengeError, EntryProblem, EntryRefused
from advocado.services import activation_aggregates
from advocado.store.models import Challenge, ChallengeEntry, ChallengeInvitation, Customer


class UnknownChallenge(LookupError):
    pass


class ChallengeNotRunning(ValueError):
    pass


class EntryNotFound(LookupError):
    pass


@dataclass(frozen=True)
class Invitation:
    challenge_id: int
    customer_id: int
    token: str
    url_path: str  # "/c/{token}"


@dataclass(frozen=True)
class Applied:
    slug: str
    created: bool


# --- challenges ------------------------------------------------------------------------------


def line_of(text: str, field: str) -> int | None:
    """The line of `field` (a dotted path such as texts.en.title) in a YAML text, if found."""
    try:
        node = yaml.compose(text)
    except yaml.YAMLError:
        return None
    line = None
    for part in field.split("."):
        if not isinstance(node, yaml.MappingNode):
            break
        found = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
        key = next((k for k, _ in node.value if getattr(k, "value", None) == part), None)
        if found is None or key is None:
            break
        line, node = key.start_mark.line + 1, found
    return line


def read_challenge_file(path: Path) -> dict[str, Any]:
    """The parsed and checked file (YAML, or JSON); ChallengeError names the file, line and
    field of the first problem."""
    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ChallengeError("file", f"{path}: {error}") from None
    try:
        rules.parse_challenge(data)
    except ChallengeError as error:
        line = line_of(text, error.field)
        where = f"{path}:{line}" if line else str(path)
        raise ChallengeError(error.field, f"{error.reason} ({where})") from None
    assert isinstance(data, dict)
    return data


def _plain(data: Any) -> Any:
    return json.loads(json.dumps(data, default=str, ensure_ascii=False))


def apply_challenge(session: Session, data: dict[str, Any]) -> Applied:
    """Create or update a challenge by slug. ChallengeError naming the field if it is wrong."""
    spec = rules.parse_challenge(data)
    now = clock.now()
    row = session.scalar(select(Challenge).where(Challenge.slug == spec.slug).with_for_update())
    created = row is None
    if row is None:
        row = Challenge(slug=spec.slug, created_at=now)
        session.add(row)
    row.hashtag = spec.hashtag
    row.starts_at = spec.starts_at
    row.ends_at = spec.ends_at
    row.texts = {loc: vars(texts) for loc, texts in spec.texts.items()}
    row.max_image_bytes = spec.max_image_bytes
    row.config = _plain(data)
    row.updated_at = now
    session.flush()
    return Applied(spec.slug, created)


def challenge_by_slug(session: Session, slug: str) -> Challenge:
    found = session.scalar(select(Challenge).where(Challenge.slug == slug))
    if found is None:
        raise UnknownChallenge(
            f"no challenge {slug!r} (create it with `advocado challenge apply FILE`)"
        )
    return found


def active_challenge(session: Session, *, now: datetime) -> Challenge | None:
    """The default pick when a playbook step names no challenge: of those running at `now`,
    the one ending soonest (then the lowest id)."""
    return session.scalar(
        select(Challenge)
        .where(Challenge.starts_at <= now, Challenge.ends_at > now)
        .order_by(Challenge.ends_at, Challenge.id)
        .limit(1)
    )


def challenge_view(challenge: Challenge, locale: str, now: datetime) -> dict[str, Any]:
    texts = rules.texts_for(challenge.texts, locale)
    return {
        "id": challenge.id,
        "slug": challenge.slug,
        "hashtag": challenge.hashtag,
        "title": texts.get("title"),
        "prompt": texts.get("prompt"),
        "prize": texts.get("prize"),
        "texts": challenge.texts,
        "starts_at": challenge.starts_at.isoformat(),
        "ends_at": challenge.ends_at.isoformat(),
        "running": rules.running(challenge.starts_at, challenge.ends_at, now),
        "max_image_bytes": challenge.max_image_bytes,
    }


def list_challenges(session: Session, *, locale: str = "en") -> list[dict[str, Any]]:
    """Every challenge, newest start first, with its entry counts by status."""
    now = clock.now()
    counts: dict[int, dict[str, int]] = {}
    for challenge_id, status, featured, n in session.execute(
        select(ChallengeEntry.challenge_id, ChallengeEntry.status, ChallengeEntry.featured,
               func.count())
        .group_by(ChallengeEntry.challenge_id, ChallengeEntry.status, ChallengeEntry.featured)
    ):  # fmt: skip
        bucket = counts.setdefault(challenge_id, {s.value: 0 for s in rules.EntryStatus})
        bucket[status] = bucket.get(status, 0) + n
        bucket["featured"] = bucket.get("featured", 0) + (n if featured else 0)
    invited = dict(
        session.execute(
            select(ChallengeInvitation.challenge_id, func.count()).group_by(
                ChallengeInvitation.challenge_id
            )
        ).all()
    )
    result = []
    for challenge in session.scalars(
        select(Challenge).order_by(Challenge.starts_at.desc(), Challenge.id)
    ):
        view = challenge_view(challenge, locale, now)
        view["entries"] = counts.get(challenge.id, {s.value: 0 for s in rules.EntryStatus})
        view["entries"].setdefault("featured", 0)
        view["invited"] = invited.get(challenge.id, 0)
        result.append(view)
    return result


# --- invitations -----------------------------------------------------------------------------


def _insert(session: Session) -> Any:
    return (postgresql if session.get_bind().dialect.name == "postgresql" else sqlite).insert


def _invitation(row: ChallengeInvitation) -> Invitation:
    return Invitation(row.challenge_id, row.customer_id, row.token, f"/c/{row.token}")


def invite(session: Session, *, challenge: str, customer_id: int, cause_key: str) -> Invitation:
    """The customer's invitation to the challenge (by slug), made once in the caller's
    transaction: unique per (challenge, customer) and on cause_key; a repeat or a racing call
    returns the first one. ChallengeNotRunning/UnknownChallenge say why none can be made."""
    key = (cause_key or "").strip()
    if not key or len(key) > 250:
        raise ChallengeError("cause_key", "required, at most 250 characters")
    existing = session.scalar(
        select(ChallengeInvitation).where(ChallengeInvitation.cause_key == key)
    )
    if existing is not None:
        return _invitation(existing)
    found = challenge_by_slug(session, challenge)
    now = clock.now()
    if not rules.running(found.starts_at, found.ends_at, now):
        raise ChallengeNotRunning(
            f"challenge {challenge!r} is not running at {now:%Y-%m-%d %H:%M} UTC "
            f"(it runs {found.starts_at:%Y-%m-%d %H:%M} to {found.ends_at:%Y-%m-%d %H:%M})"
        )
    if session.get(Customer, customer_id) is None:
        raise ChallengeError("customer_id", f"no customer {customer_id}")
    # The UGC figures count it, and it may make the customer a plan's recruit.
    with activation_aggregates.recruiting(session, [customer_id]):
        made = session.execute(
            _insert(session)(ChallengeInvitation)
            .values(challenge_id=found.id, customer_id=customer_id,
                    token=secrets.token_urlsafe(18), cause_key=key, created_at=now)
            .on_conflict_do_nothing()
            .returning(ChallengeInvitation.id)
        ).scalar()  # fmt: skip
        if made is not None:
            activation_aggregates.added(session, invitations=[made])
    row = session.scalar(
        select(ChallengeInvitation)
        .where(ChallengeInvitation.challenge_id == found.id,
               ChallengeInvitation.customer_id == customer_id)
        .execution_options(populate_existing=True)
    )  # fmt: skip
    if row is None:  # the cause key was taken, in a race, for another (challenge, customer)
        row = session.scalar(
            select(ChallengeInvitation).where(ChallengeInvitation.cause_key == key)
        )
    assert row is not None
    return _invitation(row)


@dataclass(frozen=True)
class InvitationPage:
    token: str
    locale: str
    customer_name: str | None
    challenge: dict[str, Any]
    entry: dict[str, Any] | None


def _by_token(session: Session, token: str) -> tuple[ChallengeInvitation, Challenge, Customer]:
    if not token or len(token) > 64:
        raise EntryRefused(EntryProblem.BAD_TOKEN, "token")
    row = session.execute(
        select(ChallengeInvitation, Challenge, Customer)
        .join(Challenge, Challenge.id == ChallengeInvitation.challenge_id)
        .join(Customer, Customer.id == ChallengeInvitation.customer_id)
        .where(ChallengeInvitation.token == token)
    ).one_or_none()
    if row is None:
        raise EntryRefused(EntryProblem.BAD_TOKEN, "token")
    return row[0], row[1], row[2]


def invitation_page(session: Session, *, token: str, locale: str | None = None) -> InvitationPage:
    """What /c/{token} shows: the challenge in the customer's language (or `locale`), and
    their entry if they sent one. EntryRefused(BAD_TOKEN) for an unknown token."""
    invitation, challenge, customer = _by_token(session, token)
    lang = locale or customer.locale
    entry = session.scalar(
        select(ChallengeEntry).where(ChallengeEntry.invitation_id == invitation.id)
    )
    return InvitationPage(
        token=token, locale=lang, customer_name=customer.name,
        challenge=challenge_view(challenge, lang, clock.now()),
        entry=None if entry is None else entry_view(entry),
    )  # fmt: skip


def customer_locale(session: Session, *, token: str) -> str | None:
    """The invited customer's locale, or None for an unknown token (for error pages)."""
    return session.scalar(
        select(Customer.locale)
        .join(ChallengeInvitation, ChallengeInvitation.customer_id == Customer.id)
        .where(ChallengeInvitation.token == token)
    )


def image_limit(session: Session, *, token: str) -> int | None:
    """The largest image the token's challenge takes, or None for an unknown token."""
    return session.scalar(
        select(Challenge.max_image_bytes)
        .join(ChallengeInvitation, ChallengeInvitation.challenge_id == Challenge.id)
        .where(ChallengeInvitation.token == token)
    )


# --- entries ---------------------------------------------------------------------------------


def entry_view(entry: ChallengeEntry, customer: Customer | None = None) -> dict[str, Any]:
    view = {
        "id": entry.id,
        "challenge_id": entry.challenge_id,
        "customer_id": entry.customer_id,
        "link": entry.link,
        "text": entry.text,
        "has_image": entry.image_type is not None,
        "image_type": entry.image_type,
        "status": entry.status,
        "featured": entry.featured,
        "review_reason": entry.review_reason,
        "reviewed_by": entry.reviewed_by,
        "reviewed_at": entry.reviewed_at.isoformat() if entry.reviewed_at else None,
        "submitted_at": entry.submitted_at.isoformat(),
    }
    if customer is not None:
        view["customer_name"] = customer.name
        view["customer_external_id"] = customer.external_id
    return view


def submit_entry(
    session: Session,
    *,
    token: str,
    link: str | None,
    text: str | None,
    image: bytes | None,
) -> ChallengeEntry:
    """The invited customer's entry. Sent again before review, it replaces the first (one
    entry per invitation, by a unique key); after review it is refused. EntryRefused names the
    problem and field: bad token, challenge not running, empty, bad link, image too large or
    not an image."""
    invitation, challenge, _customer = _by_token(session, token)
    now = clock.now()
    rules.check_window(challenge.starts_at, challenge.ends_at, now)
    clean_link, story, kind = rules.check_entry(
        link=link, text=text, image=image, max_image_bytes=challenge.max_image_bytes
    )
    values = {"link": clean_link, "text": story, "image": image if kind else None,
              "image_type": kind, "submitted_at": now}  # fmt: skip
    # The UGC figures and the funnel's level 3 of the enrolment that invited them follow
    # the entry (activation_aggregates), in this transaction.
    before = session.scalar(
        select(ChallengeEntry.id).where(ChallengeEntry.invitation_id == invitation.id)
    )
    with activation_aggregates.changing(
        session,
        entries=[before],
        enrolments=[activation_aggregates.enrolment_of_cause(invitation.cause_key)],
    ):
        entry = _write_entry(session, challenge, invitation, values)
    return entry


def _write_entry(
    session: Session, challenge: Challenge, invitation: ChallengeInvitation, values: dict[str, Any]
) -> ChallengeEntry:
    inserted = session.execute(
        _insert(session)(ChallengeEntry)
        .values(challenge_id=challenge.id, invitation_id=invitation.id,
                customer_id=invitation.customer_id, status=rules.EntryStatus.PENDING.value,
                featured=False, **values)
        .on_conflict_do_nothing(index_elements=[ChallengeEntry.invitation_id])
        .returning(ChallengeEntry.id)
    ).scalar_one_or_none()  # fmt: skip
    if inserted is not None:
        activation_aggregates.added(session, entries=[inserted])
    entry = session.scalar(
        select(ChallengeEntry)
        .where(ChallengeEntry.invitation_id == invitation.id)
        .execution_options(populate_existing=True)
    )
    assert entry is not None
    if inserted is None:  # it existed: replace it, unless already reviewed
        replaced = session.execute(
            update(ChallengeEntry)
            .where(ChallengeEntry.id == entry.id,
                   ChallengeEntry.status == rules.EntryStatus.PENDING.value)
            .values(**values)
            .execution_options(synchronize_session=False)
        ).rowcount  # fmt: skip
        if not replaced:
            raise EntryRefused(EntryProblem.ALREADY_REVIEWED, "entry")
        session.refresh(entry)
    return entry


def list_entries(
    session: Session, *, slug: str, status: str | None = None, featured: bool | None = None,
    limit: int = 100, offset: int = 0,
) -> list[dict[str, Any]]:  # fmt: skip
    """A challenge's entries, newest first; filtered by status and featured."""
    challenge = challenge_by_slug(session, slug)
    query = (
        select(ChallengeEntry, Customer)
        .join(Customer, Customer.id == ChallengeEntry.customer_id)
        .where(ChallengeEntry.challenge_id == challenge.id)
    )
    if status:
        if status not in {s.value for s in rules.EntryStatus}:
            valid = ", ".join(s.value for s in rules.EntryStatus)
            raise ChallengeError("status", f"{status!r} is not one of {valid}")
        query = query.where(ChallengeEntry.status == status)
    if featured is not None:
        query = query.where(ChallengeEntry.featured.is_(featured))
    query = query.order_by(ChallengeEntry.submitted_at.desc(), ChallengeEntry.id.desc())
    rows = session.execute(query.limit(min(max(limit, 1), 500)).offset(max(offset, 0)))
    return [entry_view(entry, customer) for entry, customer in rows]


def featured_entries(session: Session, *, slug: str) -> dict[str, Any]:
    """The public list: approved and featured entries, with first names only."""
    challenge = challenge_by_slug(session, slug)
    rows = session.execute(
        select(ChallengeEntry, Customer.name)
        .join(Customer, Customer.id == ChallengeEntry.customer_id)
        .where(ChallengeEntry.challenge_id == challenge.id,
               ChallengeEntry.status == rules.EntryStatus.APPROVED.value,
               ChallengeEntry.featured.is_(True))
        .order_by(ChallengeEntry.reviewed_at.desc(), ChallengeEntry.id.desc())
    ).all()  # fmt: skip
    return {
        "challenge": challenge,
        "entries": [
            {"id": e.id, "author": public_name(name), "link": e.link, "text": e.text,
             "has_image": e.image_type is not None}
            for e, name in rows
        ],
    }  # fmt: skip


def public_name(name: str | None) -> str:
    """What a public page shows of a customer's name: 张三 -> 张*, Alice Smith -> Alice S."""
    text = (name or "").strip()
    if not text:
        return "—"
    parts = text.split()
    if len(parts) > 1:
        return f"{parts[0]} {parts[-1][0]}."
    if text.isascii():
        return text
    return text[0] + "*" * max(len(text) - 1, 1)


def review_entry(
    session: Session, *, entry_id: int, action: str, reason: str | None, reviewer: str
) -> ChallengeEntry:
    """Approve, reject (with a reason) or feature an entry; the reviewer and time are kept."""
    entry = session.scalar(
        select(ChallengeEntry).where(ChallengeEntry.id == entry_id).with_for_update()
    )
    if entry is None:
        raise EntryNotFound(f"no entry {entry_id}")
    result = rules.review(rules.EntryStatus(entry.status), entry.featured, action, reason)
    cause_key = session.scalar(
        select(ChallengeInvitation.cause_key).where(ChallengeInvitation.id == entry.invitation_id)
    )
    # Status and featured move the UGC figures and the funnel's level 3 (featured).
    with activation_aggregates.changing(
        session,
        entries=[entry.id],
        enrolments=[activation_aggregates.enrolment_of_cause(cause_key)],
    ):
        entry.status = result.status.value
        entry.featured = result.featured
        entry.review_reason = result.reason
        entry.reviewed_by = reviewer
        entry.reviewed_at = clock.now()
    session.flush()
    return entry


def entry_image(session: Session, *, entry_id: int, public: bool) -> tuple[bytes, str] | None:
    """An entry's image and type; `public` only for approved, featured entries."""
    entry = session.get(ChallengeEntry, entry_id)
    if entry is None or entry.image is None or entry.image_type is None:
        return None
    if public and not (entry.featured and entry.status == rules.EntryStatus.APPROVED.value):
        return None
    return entry.image, entry.image_type
