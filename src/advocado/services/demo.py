"""A believable demo brand in an empty database: Kettlecraft 壶匠, a coffee-equipment maker
selling in mainland China, Taiwan, the UK and the US.

Deterministic: everything comes from random.Random(seed), and every date is an offset from
today's UTC midnight (clock.now() truncated to the day), so the same seed on the same day gives
the same rows. The comment phrases and names are data files in advocado/demo/."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import yaml
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from advocado import clock
from advocado.domain.influence import SocialRecord
from advocado.domain.nps import NpsCategory, NpsFigures, category
from advocado.domain.records import CustomerRecord, OrderRecord, ResponseRecord
from advocado.services.challenges import apply_challenge, invite, review_entry, submit_entry
from advocado.services.demo_activation import load_activation_activity
from advocado.services.demo_referrals import load_referral_activity
from advocado.services.insights import recompute_insights, save_social_profiles
from advocado.services.records import save_customers, save_orders, save_responses
from advocado.services.tasks import create_task
from advocado.services.users import create_user
from advocado.store.db import unit_of_work
from advocado.store.models import Customer, CustomerInsight, Response, User

BRAND = "Kettlecraft 壶匠"
ADMIN_EMAIL = "admin@demo.advocado.local"
ADMIN_PASSWORD = "kettlecraft-demo"
CONSOLE_URL = "http://127.0.0.1:8000/"
DATA = Path(__file__).resolve().parent.parent / "demo"
BATCH = 1000
HISTORY_DAYS = 365
ANONYMOUS_SHARE = 0.04
T = TypeVar("T")


class DatabaseNotEmpty(Exception):
    """The demo only fills an empty database, so it never mixes with real customers."""


@dataclass(frozen=True)
class DemoSummary:
    brand: str
    seed: int
    customers: int
    orders: int
    responses: int
    anonymous_responses: int
    nps: NpsFigures
    admin_email: str
    admin_password: str | None  # None: the user existed already and was left alone
    social_profiles: int = 0
    high_influence: int = 0
    value_tiers: dict[str, int] | None = None
    challenge_entries: int = 0
    open_tasks: int = 0

    def describe(self) -> str:
        score = "n/a" if self.nps.nps is None else f"{self.nps.nps:+.1f}"
        lines = [
            f"Demo brand {self.brand} loaded (seed {self.seed}):",
            f"  {self.customers} customers, {self.orders} orders, "
            f"{self.responses} NPS responses ({self.anonymous_responses} anonymous), NPS {score}",
            f"  {self.social_profiles} social profiles, {self.high_influence} high-influence "
            f"customers; value tiers {self.value_tiers or {}}",
            f"  1 running UGC challenge ({STORY_SLUG}) with {self.challenge_entries} entries; "
            f"{self.open_tasks} open tasks",
            "",
            "To see it in the console:",
            "  advocado serve",
            f"  then open {CONSOLE_URL}",
            f"  email:    {self.admin_email}",
        ]
        if self.admin_password is not None:
            lines.append(f"  password: {self.admin_password}")
        else:
            lines.append("  password: unchanged (this user existed before the demo)")
        return "\n".join(lines)


@dataclass(frozen=True)
class Place:
    timezone: str
    city: str
    phone_prefix: str  # followed by random digits to make a plausible (fictional) number
    phone_digits: int


@dataclass(frozen=True)
class Market:
    locale: str
    weight: int
    currency: str
    places: tuple[tuple[Place, int], ...]
    consent_sources: tuple[str, ...]
    channels: tuple[str, ...]
    email_domain: str


MARKETS = (
    Market("zh-CN", 55, "CNY", (
        (Place("Asia/Shanghai", "上海", "+86138", 8), 30),
        (Place("Asia/Shanghai", "北京", "+86139", 8), 25),
        (Place("Asia/Shanghai", "深圳", "+86186", 8), 15),
        (Place("Asia/Shanghai", "杭州", "+86158", 8), 15),
        (Place("Asia/Shanghai", "成都", "+86177", 8), 15),
    ), ("checkout", "wechat-mini-program", "warranty-registration"),
        ("wechat", "sms", "email"), "example.com"),
    Market("zh-TW", 20, "TWD", (
        (Place("Asia/Taipei", "台北", "+8869", 8), 55),
        (Place("Asia/Taipei", "台中", "+8869", 8), 25),
        (Place("Asia/Taipei", "高雄", "+8869", 8), 20),
    ), ("checkout", "line-official-account", "warranty-registration"),
        ("line", "email"), "example.net"),
    Market("en", 25, "USD", (
        (Place("Europe/London", "London", "+447700900", 3), 40),
        (Place("America/New_York", "New York", "+121255501", 2), 35),
        (Place("America/Los_Angeles", "San Francisco", "+141555501", 2), 15),
        (Place("Asia/Singapore", "Singapore", "+65555", 5), 10),
    ), ("checkout", "newsletter", "warranty-registration"),
        ("email", "in-app"), "example.org"),
)  # fmt: skip

# sku, weight, price in minor units per currency
PRODUCTS = (
    ("filter-papers", 30, {"CNY": 3900, "TWD": 18000, "USD": 900}),
    ("bean-subscription", 25, {"CNY": 16800, "TWD": 72000, "USD": 2400}),
    ("dripper-set", 14, {"CNY": 16900, "TWD": 69000, "USD": 2900}),
    ("gooseneck-kettle", 12, {"CNY": 59900, "TWD": 259000, "USD": 8900}),
    ("coffee-scale", 9, {"CNY": 29900, "TWD": 129000, "USD": 4900}),
    ("burr-grinder", 7, {"CNY": 129900, "TWD": 569000, "USD": 19900}),
    ("espresso-machine", 3, {"CNY": 699900, "TWD": 2990000, "USD": 99900}),
)
TAGS = ("home-barista", "pour-over", "espresso", "subscriber", "cafe-owner", "early-adopter",
        "workshop-attendee", "gift-buyer")  # fmt: skip
ORDER_COUNTS = ((0, 12), (1, 30), (2, 22), (3, 14), (4, 9), (6, 7), (9, 4), (14, 2))
# Score weights 0..10 a year ago and now: the brand has been getting better.
SCORES_EARLY = (3, 2, 3, 4, 5, 7, 9, 12, 17, 18, 20)
SCORES_RECENT = (1, 1, 1, 2, 3, 4, 5, 10, 17, 24, 32)
COMMENT_SHARE = {NpsCategory.PROMOTER: 0.8, NpsCategory.PASSIVE: 0.6, NpsCategory.DETRACTOR: 0.9}


def load_demo(engine: Engine, *, customers: int = 3000, seed: int = 7) -> DemoSummary:
    if customers < 1:
        raise ValueError("customers: at least 1")
    with unit_of_work(engine) as session:
        existing = session.scalar(select(func.count()).select_from(Customer)) or 0
        if existing:
            raise DatabaseNotEmpty(
                f"This database already has {existing} customers, and the demo only fills an "
                "empty one so it never mixes with real data. Point ADVOCADO_DATABASE_URL at a "
                "new database (e.g. sqlite:///demo.db) and run `advocado demo` again."
            )
        data = generate(customers=customers, seed=seed, today=_today())
        for batch in _batches(data.customers):
            save_customers(session, batch)
        for batch in _batches(data.orders):
            save_orders(session, batch)
        for batch in _batches(data.responses):
            save_responses(session, batch)
        for batch in _batches(data.social):
            save_social_profiles(session, batch)
        insights = recompute_insights(session)
        work = _challenge_and_tasks(session, _today())
        password: str | None = None
        if session.scalar(select(User.id).where(User.email == ADMIN_EMAIL)) is None:
            create_user(session, email=ADMIN_EMAIL, password=ADMIN_PASSWORD, role="admin")
            password = ADMIN_PASSWORD
    load_referral_activity(engine, seed=seed, today=_today())
    load_activation_activity(engine, seed=seed, today=_today())  # the activation panels
    with unit_of_work(engine) as session:
        _demo_plan(session, today=_today(), customers=customers)
        _demo_segments(session)
    scores = Counter(r.score for r in data.responses)
    return DemoSummary(
        brand=BRAND,
        seed=seed,
        customers=len(data.customers),
        orders=len(data.orders),
        responses=len(data.responses),
        anonymous_responses=sum(1 for r in data.responses if r.customer_external_id is None),
        nps=NpsFigures.from_score_counts(dict(scores)),
        admin_email=ADMIN_EMAIL,
        admin_password=password,
        social_profiles=len(data.social),
        high_influence=insights.high_influence,
        value_tiers=insights.value_tiers,
        challenge_entries=work.entries,
        open_tasks=work.tasks,
    )


def _demo_plan(session: Session, *, today: datetime, customers: int) -> None:
    """A quarter's program plan around today, so the dashboard's plan panel has one."""
    from advocado.services import audit, plans

    scale = max(1, customers // 100)
    plan = {"slug": "demo-quarter", "name": "This quarter's advocacy plan / 本季度口碑计划",
            "owner": "Li Na (marketing) / 李娜（市场部）",
            "starts_on": (today - timedelta(days=60)).date().isoformat(),
            "ends_on": (today + timedelta(days=30)).date().isoformat(), "currency": "CNY",
            "goals": {"leads": 4 * scale, "revenue": f"{1500 * scale}.00",
                      "reviews_asked": 10 * scale, "reviews_clicked": 2 * scale,
                      "ugc_entries": scale, "ugc_featured": 1,
                      "referrals_qualified": 3 * scale},
            "personas": ["emotional", "high_influence"],
            "recruitment": {"email": 2 * scale, "wecom": scale, "events": 1}}  # fmt: skip
    plans.apply_plan(session, data=plan, actor=audit.SYSTEM)


# Saved segments, so the dashboard's segment filter has something to pick (seed 001's
# promoters split by how to ask them, and the high-value customers).
DEMO_SEGMENTS = (
    ("Emotional promoters / 感性推荐者", "emotional-promoters",
     {"nps_category": ["promoter"], "persona": ["emotional"]}),
    ("Rational promoters / 理性推荐者", "rational-promoters",
     {"nps_category": ["promoter"], "persona": ["rational"]}),
    ("High-value customers / 高价值客户", "high-value", {"value_tier": ["high"]}),
)  # fmt: skip


def _demo_segments(session: Session) -> None:
    from advocado.services import segments

    for name, slug, filters in DEMO_SEGMENTS:
        segments.create_segment(session, name=name, slug=slug, filters=filters)


@dataclass(frozen=True)
class DemoData:
    customers: list[CustomerRecord]
    orders: list[OrderRecord]
    responses: list[ResponseRecord]
    social: list[SocialRecord]


def generate(*, customers: int, seed: int, today: datetime) -> DemoData:
    """The demo rows, without touching a database. `today` is a UTC midnight."""
    rng = random.Random(seed)
    names, comments = _names(), _comments()
    start = today - timedelta(days=HISTORY_DAYS)
    people: list[CustomerRecord] = []
    orders: list[OrderRecord] = []
    responses: list[ResponseRecord] = []

    def moment(low: datetime, high: datetime) -> datetime:
        return low + timedelta(seconds=rng.randrange(max(1, int((high - low).total_seconds()))))

    def answer(market: Market, when: datetime, loyal: bool) -> tuple[int, str | None]:
        recent = (when - start) / (today - start)
        weights = [e + (r - e) * recent for e, r in zip(SCORES_EARLY, SCORES_RECENT, strict=True)]
        if loyal:  # regulars are kinder
            weights = [w * (1.6 if s >= 9 else 1.0) for s, w in enumerate(weights)]
        score = rng.choices(range(11), weights)[0]
        kind = category(score)
        if rng.random() > COMMENT_SHARE[kind]:
            return score, None
        if kind is NpsCategory.PROMOTER:
            section = rng.choice(("promoter-emotional", "promoter-rational"))
        else:
            section = kind.value
        return score, rng.choice(comments[(market.locale, section)])

    for n in range(1, customers + 1):
        market = _pick(rng, [(m, m.weight) for m in MARKETS])
        place = _pick(rng, market.places)
        external_id = f"demo-c-{n:05d}"
        name, local_part = _person(rng, names, market.locale)
        signed_up = moment(today - timedelta(days=3 * HISTORY_DAYS), today - timedelta(days=7))
        consent = rng.random() < 0.85
        people.append(
            CustomerRecord(
                external_id=external_id,
                name=name,
                email=f"{local_part}.{n}@{market.email_domain}",
                phone=place.phone_prefix
                + "".join(rng.choice("0123456789") for _ in range(place.phone_digits)),
                locale=market.locale,
                timezone=place.timezone,
                marketing_consent=consent,
                consent_at=signed_up if consent else None,
                consent_source=rng.choice(market.consent_sources) if consent else None,
                tags=tuple(sorted(rng.sample(TAGS, k=rng.choice((0, 1, 1, 2, 2, 3))))),
                attributes={"city": place.city, "signed_up": signed_up.date().isoformat()},
            )
        )
        count = _pick(rng, ORDER_COUNTS)
        first = max(start, signed_up)
        placed = sorted(moment(first, today) for _ in range(count))
        for when in placed:
            sku, _, prices = _pick(rng, [(p, p[1]) for p in PRODUCTS])
            quantity = rng.choice((1, 1, 1, 2, 3)) if prices["CNY"] < 20000 else 1
            status = _order_status(rng, today - when)
            orders.append(
                OrderRecord(
                    external_id=f"demo-o-{len(orders) + 1:06d}",
                    customer_external_id=external_id,
                    amount=prices[market.currency] * quantity,
                    currency=market.currency,
                    placed_at=when,
                    status=status,
                )
            )
            survey_at = when + timedelta(days=3, seconds=rng.randrange(7 * 86400))
            if status in ("paid", "fulfilled") and survey_at < today and rng.random() < 0.35:
                score, comment = answer(market, survey_at, loyal=count >= 4)
                responses.append(
                    ResponseRecord(
                        external_id=f"demo-r-{len(responses) + 1:06d}",
                        customer_external_id=external_id,
                        score=score,
                        comment=comment,
                        survey="post-purchase",
                        channel=rng.choice(market.channels),
                        submitted_at=survey_at,
                    )
                )
        if rng.random() < 0.25:
            when = moment(start, today)
            score, comment = answer(market, when, loyal=count >= 4)
            responses.append(
                ResponseRecord(
                    external_id=f"demo-r-{len(responses) + 1:06d}",
                    customer_external_id=external_id,
                    score=score,
                    comment=comment,
                    survey=f"relationship-{when.year}-q{(when.month - 1) // 3 + 1}",
                    channel=rng.choice(market.channels),
                    submitted_at=when,
                )
            )
    for _ in range(max(1, round(len(responses) * ANONYMOUS_SHARE))):
        market = _pick(rng, [(m, m.weight) for m in MARKETS])
        when = moment(start, today)
        score, comment = answer(market, when, loyal=False)
        responses.append(
            ResponseRecord(
                external_id=f"demo-r-{len(responses) + 1:06d}",
                score=score,
                comment=comment,
                survey="website-feedback",
                channel="web",
                submitted_at=when,
            )
        )
    responses.sort(key=lambda r: (r.submitted_at, r.external_id))
    return DemoData(people, orders, responses, _social_profiles(people, seed))


# Where each market's customers post, and what a few of them post about.
SOCIAL_PLATFORMS = {
    "zh-CN": ("weibo", "xiaohongshu", "douyin"),
    "zh-TW": ("instagram", "facebook", "threads"),
    "en": ("instagram", "youtube", "x"),
}
VERTICALS = ("coffee", "home", "food", "lifestyle", "tech")
SOCIAL_SHARE = 0.06


def _social_profiles(people: Sequence[CustomerRecord], seed: int) -> list[SocialRecord]:
    """A few customers with public accounts, a handful of them loud (KOCs). Its own random
    stream, so adding it left the customers, orders and responses of a seed as they were."""
    rng = random.Random(seed * 7919 + 1)
    profiles = []
    for person in people:
        if rng.random() >= SOCIAL_SHARE:
            continue
        platforms = SOCIAL_PLATFORMS.get(person.locale, SOCIAL_PLATFORMS["en"])
        for platform in rng.sample(platforms, k=rng.choice((1, 1, 2))):
            followers = int(rng.lognormvariate(6.5, 1.8))  # median ~700, a long tail of KOCs
            profiles.append(
                SocialRecord(
                    customer_external_id=person.external_id,
                    platform=platform,
                    handle=f"{person.external_id.replace('demo-c-', 'kc')}_{platform[:2]}",
                    followers=followers,
                    engagement_rate=round(rng.uniform(0.005, 0.09), 4),
                    brand_mentions=rng.choice((0, 0, 0, 1, 2, 3, 5, 8)),
                    vertical=rng.choice(VERTICALS),
                )
            )
    return profiles


def _today() -> datetime:
    now = clock.now()
    return datetime(now.year, now.month, now.day, tzinfo=UTC)


def _order_status(rng: random.Random, age: timedelta) -> str:
    roll = rng.random()
    if roll < 0.03:
        return "refunded"
    if roll < 0.05:
        return "cancelled"
    return "paid" if age < timedelta(days=4) else "fulfilled"


def _person(rng: random.Random, names: dict[str, list[str]], locale: str) -> tuple[str, str]:
    """(display name, email local part)."""
    if locale == "en":
        first, last = rng.choice(names["en first"]), rng.choice(names["en last"])
        return f"{first} {last}", f"{first}.{last}".lower()
    simplified_surname, traditional_surname, surname = rng.choice(names["zh surnames"]).split("|")
    simplified_given, traditional_given, given = rng.choice(names["zh given"]).split("|")
    if locale == "zh-TW":
        return traditional_surname + traditional_given, f"{given}.{surname}"
    return simplified_surname + simplified_given, f"{given}.{surname}"


def _pick(rng: random.Random, weighted: Sequence[tuple[T, int]]) -> T:
    return rng.choices([item for item, _ in weighted], [w for _, w in weighted])[0]


def _batches(items: list[T]) -> Iterator[list[T]]:
    for start in range(0, len(items), BATCH):
        yield items[start : start + BATCH]


def _sections(name: str) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for raw in (DATA / name).read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
        elif current is not None:
            current.append(line)
    return sections


def _names() -> dict[str, list[str]]:
    return _sections("names.txt")


def _comments() -> dict[tuple[str, str], list[str]]:
    found = {}
    for title, lines in _sections("comments.txt").items():
        locale, kind = title.split()
        found[(locale, kind)] = lines
    return found


# --- a running UGC challenge with entries, and open tasks (issue 5 items 3-4) ---------------

STORY_SLUG = "kettlecraft-story"
STORY_FILE = DATA / "story.yaml"  # the same file as examples/challenges/story.yaml
# Entries in the customer's own language: (story, link or None for a photo).
_DEMO_STORIES: dict[str, list[tuple[str, str | None]]] = {
    "zh-CN": [
        ("每天早上用壶匠手冲一杯，细水流真的稳，周末带去露营也不怕。", "https://weibo.com/demo/1"),
        ("送给爸爸的生日礼物，他现在天天研究注水手法 ☕", None),
        ("用壶匠给室友冲了第一杯手冲，她马上下单了同款！", "https://www.xiaohongshu.com/demo/2"),
    ],
    "zh-TW": [("颱風天在家，用壺匠慢慢沖一杯，整個下午都安靜了。", None)],
    "en": [("Our Sunday ritual: the Kettlecraft kettle, a V60 and the first light.", None)],
}
_DEMO_IMAGE = bytes.fromhex(  # a 1x1 brown PNG
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de"
    "0000000c4944415408d763e89a6a000002c80167b3bdc7170000000049454e44ae426082"
)


@dataclass(frozen=True)
class _Work:
    entries: int
    tasks: int


def _challenge_and_tasks(session: Session, today: datetime) -> _Work:
    """The story challenge running from two weeks ago for six more weeks, emotional promoters
    invited with a few entries (one featured, one rejected), and 1:1 tasks: ambassador invites
    for high-influence promoters (one overdue) and detractor follow-ups."""
    data = yaml.safe_load(STORY_FILE.read_text(encoding="utf-8"))
    data.update(starts_at=(today - timedelta(days=14)).isoformat(),
                ends_at=(today + timedelta(days=42)).isoformat())  # fmt: skip
    apply_challenge(session, data)
    latest = _latest_answers(session)
    emotional = [c for c, (score, persona, _) in latest.items()
                 if score >= 9 and persona == "emotional"]  # fmt: skip
    locales = dict(session.execute(select(Customer.id, Customer.locale)).all())
    stories = {locale: list(items) for locale, items in _DEMO_STORIES.items()}
    entries = 0
    moment = clock.now()
    for customer_id in emotional[:12]:
        invitation = invite(session, challenge=STORY_SLUG, customer_id=customer_id,
                            cause_key=f"demo:invite:{customer_id}")  # fmt: skip
        waiting = stories.get(locales.get(customer_id, "en")) or []
        if not waiting:
            continue
        text, link = waiting.pop(0)
        entry = submit_entry(session, token=invitation.token, link=link, text=text,
                             image=_DEMO_IMAGE if link is None else None)  # fmt: skip
        entries += 1
        reviewer = ADMIN_EMAIL
        if entries == 1:
            review_entry(session, entry_id=entry.id, action="approve", reason=None,
                         reviewer=reviewer)  # fmt: skip
            review_entry(session, entry_id=entry.id, action="feature", reason=None,
                         reviewer=reviewer)  # fmt: skip
        elif entries == 3:
            review_entry(session, entry_id=entry.id, action="reject", reviewer=reviewer,
                         reason="链接打不开，请重新提交 / The link does not open")  # fmt: skip
    high = set(session.scalars(select(CustomerInsight.customer_id)
                               .where(CustomerInsight.high_influence.is_(True))))  # fmt: skip
    # Those whose answer has a comment first, so the task shows the highlighted evidence.
    ranked = sorted(latest.items(), key=lambda item: (item[1][2] is None, item[0]))
    ambassadors = [c for c, (score, _, _) in ranked if score >= 9 and c in high][:3]
    detractors = [c for c, (score, _, _) in ranked if score <= 6][:2]
    made = 0
    for index, customer_id in enumerate(ambassadors):
        create_task(session, customer_id=customer_id, kind="ambassador_invite",
                    title="1:1 品牌大使邀请 / Ambassador invite",
                    due_at=moment + timedelta(days=index * 2 - 1),
                    cause_key=f"demo:ambassador:{customer_id}",
                    context={"source": "demo", "level": 4})  # fmt: skip
        made += 1
    for customer_id in detractors:
        create_task(
            session,
            customer_id=customer_id,
            kind="detractor_follow_up",
            title="贬损者回访 / Detractor follow-up",
            due_at=moment + timedelta(days=1),
            cause_key=f"demo:detractor:{customer_id}",
            context={"source": "demo"},
        )
        made += 1
    return _Work(entries=entries, tasks=made)


def _latest_answers(session: Session) -> dict[int, tuple[int, str | None, str | None]]:
    """Each customer's latest (score, persona, comment), in customer id order."""
    latest: dict[int, tuple[int, str | None, str | None]] = {}
    rows = session.execute(
        select(Response.customer_id, Response.score, Response.persona, Response.comment)
        .where(Response.customer_id.is_not(None))
        .order_by(Response.customer_id, Response.submitted_at, Response.id)
    )
    for customer_id, score, persona, comment in rows:
        latest[customer_id] = (score, persona, comment)
    return latest
