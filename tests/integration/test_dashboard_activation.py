"""The activation funnel, playbook steps, review and UGC panels against a known set built by
the real playbook (the default seed-000 one, run by the worker's run_once, messages delivered
to a real SMTP server), real clicks on tracked links, a real referral signup, a real entry and
a real task outcome. Each figure must equal its drill-down's row count, and the JSON API and
the CSV must say the same, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from smtp_sink import SmtpSink
from sqlalchemy import Engine, select
from ugc_support import challenge_data

from advocado import clock
from advocado.domain.dashboard import Filters
from advocado.domain.records import CustomerRecord, FieldError, ResponseRecord
from advocado.services import (
    challenges,
    cohorts,
    dashboard,
    dashboard_activation,
    messaging,
    playbooks,
    referrals,
    segments,
    tasks,
)
from advocado.services.apikeys import create_api_key
from advocado.services.records import save_customers, save_responses
from advocado.store.db import read_only, unit_of_work
from advocado.store.models import (
    ChallengeInvitation,
    Customer,
    CustomerInsight,
    EnrolmentStep,
    Message,
    MessageLink,
    ReferralCode,
    Task,
)
from advocado.web.app import create_app

T0 = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
NEUTRAL, RATIONAL, EMOTIONAL = (
    "Fine.",
    "系统稳定，功能全面，性价比高",
    "超級喜歡，太驚喜了，愛了愛了",
)
# external id, locale, consent, score, comment
PEOPLE = [
    ("n1", "en", True, 10, NEUTRAL),  # L1, clicks G2
    ("n2", "en", True, 9, NEUTRAL),  # L1, no click
    ("n3", "en", False, 10, NEUTRAL),  # L1, skipped: no consent
    ("r1", "zh-CN", True, 9, RATIONAL),  # L2, clicks, a friend signs up
    ("r2", "zh-CN", False, 10, RATIONAL),  # L2, skipped: no consent
    ("e1", "zh-TW", True, 10, EMOTIONAL),  # L3, enters, approved and featured
    ("e2", "zh-TW", True, 10, EMOTIONAL),  # L3, nothing more
    ("i1", "en", True, 10, NEUTRAL),  # L4 (influential), accepts
    ("p1", "en", True, 8, NEUTRAL),  # passive: not asked
    ("d1", "en", True, 2, "Slow."),  # detractor: a follow-up task, not a level
]
EXPECTED = {  # level -> stage -> customers behind the figure
    "L1": {
        "eligible": {"n1", "n2", "n3"},
        "asked": {"n1", "n2"},
        "skipped": {"n3"},
        "clicked": {"n1"},
    },
    "L2": {
        "eligible": {"r1", "r2"},
        "asked": {"r1"},
        "skipped": {"r2"},
        "clicked": {"r1"},
        "acted": {"r1"},
    },
    "L3": {
        "eligible": {"e1", "e2"},
        "asked": {"e1", "e2"},
        "skipped": set(),
        "clicked": set(),
        "acted": {"e1"},
        "featured": {"e1"},
    },
    "L4": {"eligible": {"i1"}, "asked": {"i1"}, "skipped": set(), "acted": {"i1"}},
}
DAY = T0.date()


def _click_first_link(engine: Engine, customer: str, label: str | None = None) -> None:
    with read_only(engine) as session:
        query = (
            select(MessageLink.token)
            .join(Message, Message.id == MessageLink.message_id)
            .join(Customer, Customer.id == Message.customer_id)
            .where(Customer.external_id == customer, Message.cause_key.like("enrolment:%"))
            .order_by(MessageLink.id)
        )
        if label is not None:
            query = query.where(MessageLink.label == label)
        token = session.scalars(query).first()
    assert token is not None, f"no tracked link for {customer}"
    assert messaging.record_message_click(engine, token=token)


@pytest.fixture
def funnel(
    engine: Engine, smtp_server: SmtpSink, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Engine]:
    monkeypatch.setenv("ADVOCADO_QUIET_HOURS", "21:00-07:00")
    monkeypatch.setenv(
        "ADVOCADO_REVIEW_LINKS", "G2=https://g2.example/r;大众点评=https://dp.example/r"
    )
    clock.set_now(T0)
    with unit_of_work(engine) as session:
        playbooks.install_default(session)
        challenges.apply_challenge(session, challenge_data())
        save_customers(
            session,
            [
                CustomerRecord(
                    external_id=who,
                    name=who.upper(),
                    email=f"{who}@example.com",
                    locale=locale,
                    marketing_consent=consent,
                )
                for who, locale, consent, _s, _c in PEOPLE
            ],
        )
        save_responses(
            session,
            [
                ResponseRecord(
                    external_id=f"nps-{who}",
                    customer_external_id=who,
                    score=score,
                    comment=comment,
                    submitted_at=T0 - timedelta(minutes=10),
                )
                for who, _l, _c, score, comment in PEOPLE
            ],
        )
        influencer = session.scalar(select(Customer.id).where(Customer.external_id == "i1"))
        session.add(
            CustomerInsight(
                customer_id=influencer,
                frequency=0,
                monetary=0,
                influence_score=90.0,
                high_influence=True,
                influence_explanation="40k followers",
                computed_at=T0,
            )
        )
    playbooks.run_once(engine, now=T0 + timedelta(hours=1))
    playbooks.run_once(engine, now=T0 + timedelta(hours=25))
    later = T0 + timedelta(hours=26)
    clock.set_now(later)
    _click_first_link(engine, "n1", "G2")
    _click_first_link(engine, "r1")
    with read_only(engine) as session:
        code = session.scalar(
            select(ReferralCode.code)
            .join(Customer, Customer.id == ReferralCode.customer_id)
            .where(Customer.external_id == "r1")
        )
        token = session.scalar(
            select(ChallengeInvitation.token)
            .join(Customer, Customer.id == ChallengeInvitation.customer_id)
            .where(Customer.external_id == "e1")
        )
        task_id = session.scalar(select(Task.id).where(Task.kind == "ambassador_invite"))
    referrals.ingest_event(
        engine,
        referrals.EventIn(
            event_id="signup-friend",
            type="signup",
            occurred_at=later,
            customer_external_id="friend1",
            email="friend1@example.org",
            referral_code=code,
        ),
    )
    with unit_of_work(engine) as session:
        entry = challenges.submit_entry(
            session, token=token, link="https://weibo.example/1", text="我的故事", image=None
        )
        for action in ("approve", "feature"):
            challenges.review_entry(
                session, entry_id=entry.id, action=action, reason=None, reviewer="admin@example.com"
            )
        tasks.record_outcome(
            session, task_id=task_id, outcome="accepted", note="yes!", by="cm@example.com"
        )
    clock.set_now(None)
    yield engine


def panel(engine: Engine, name: str, **filters: Any) -> dashboard.Panel:
    with read_only(engine) as session:
        return dashboard.panel(session, name, Filters(**filters))


def drill(engine: Engine, name: str, key: dict[str, str], **filters: Any) -> dashboard.Panel:
    with read_only(engine) as session:
        return dashboard.drill(session, name, Filters(**filters), key, limit=None)


def test_each_level_counts_its_cohort_and_each_figure_opens_its_customers(funnel: Engine) -> None:
    found = panel(funnel, "activation")
    rows = {r["level"]: r for r in found.rows}
    for level, stages in EXPECTED.items():
        for stage, people in stages.items():
            assert rows[level][stage] == len(people), (level, stage)
            behind = drill(funnel, "activation", {"level": level, "stage": stage})
            assert {r["customer"] for r in behind.rows} == people, (level, stage)
    # What a level cannot measure is shown as unmeasured, not as zero.
    assert rows["L1"]["acted"] is None and rows["L4"]["clicked"] is None
    assert rows["L2"]["ask_rate"] == 0.5 and rows["L2"]["act_rate"] == 1.0
    assert rows["L1"]["click_rate"] == 0.5
    # The skipped asks with their reason, and the drill by reason.
    assert {(s["level"], s["reason"], s["count"]) for s in found.summary["skipped"]} == {
        ("L1", "no_consent", 1),
        ("L2", "no_consent", 1),
    }
    by_reason = drill(
        funnel, "activation", {"level": "L1", "stage": "skipped", "reason": "no_consent"}
    )
    assert [r["customer"] for r in by_reason.rows] == ["n3"]
    assert by_reason.rows[0]["reason"].startswith("no_consent:")
    assert "review site" in found.summary["definitions"]["L1"]["acted"]
    everyone = drill(funnel, "activation", {"stage": "asked"})
    assert len(everyone.rows) == sum(len(s["asked"]) for s in EXPECTED.values())


def test_filters_cut_the_funnel(funnel: Engine) -> None:
    program = {r["level"]: r for r in panel(funnel, "activation", program="double-sided").rows}
    assert (program["L1"]["eligible"], program["L2"]["eligible"]) == (0, 2)  # code holders
    before = {
        r["level"]: r["eligible"]
        for r in panel(funnel, "activation", end=DAY - timedelta(days=1)).rows
    }
    assert before == {"L1": 0, "L2": 0, "L3": 0, "L4": 0}
    same_day = {
        r["level"]: r["eligible"]
        for r in panel(funnel, "activation", start=DAY + timedelta(days=1)).rows
    }
    assert same_day == {"L1": 3, "L2": 2, "L3": 2, "L4": 1}  # the levels ran at T0 + 25 h
    with pytest.raises(FieldError):
        drill(funnel, "activation", {"level": "L9"})


def test_playbook_steps_and_their_enrolments(funnel: Engine) -> None:
    rows = {r["step"]: r for r in panel(funnel, "activation_steps").rows}
    assert rows["route"]["ran"] == len(PEOPLE)
    assert rows["review-ask"]["outcomes"] == "queued: 2; skipped: 1"
    assert rows["review-ask"]["level"] == "L1"
    assert rows["ambassador-invite"]["outcomes"] == "handed_off: 1"
    key = {"playbook": "activation-funnel", "version": "1", "step": "review-ask"}
    behind = drill(funnel, "activation_steps", key)
    assert len(behind.rows) == rows["review-ask"]["ran"] == 3
    skipped = drill(funnel, "activation_steps", {**key, "outcome": "skipped"})
    assert [r["customer"] for r in skipped.rows] == ["n3"]


def test_review_asks_per_site(funnel: Engine) -> None:
    found = panel(funnel, "reviews")
    period = (DAY - timedelta(days=DAY.weekday())).isoformat()
    sites = {r["site"]: r for r in found.rows if r["period"] == period}
    assert {
        k: (v["asked"], v["skipped"], v["delivered"], v["clicked"]) for k, v in sites.items()
    } == {"": (2, 1, 2, 1), "G2": (2, None, 2, 1), "大众点评": (2, None, 2, 0)}
    for site, row in sites.items():
        for stage in ("asked", "delivered", "clicked"):
            behind = drill(funnel, "reviews", {"period": period, "site": site, "stage": stage})
            assert len(behind.rows) == row[stage], (site, stage)
    clicked = drill(funnel, "reviews", {"site": "G2", "stage": "clicked"})
    assert [r["customer"] for r in clicked.rows] == ["n1"]
    skipped = drill(funnel, "reviews", {"stage": "skipped"})
    assert [r["customer"] for r in skipped.rows] == ["n3"]


def test_ugc_per_challenge(funnel: Engine) -> None:
    found = panel(funnel, "ugc", bucket="month")
    assert [
        (r["period"], r["challenge"], r["invitations"], r["entries"], r["approved"], r["featured"])
        for r in found.rows
    ] == [("2026-12-01", "story", 2, 1, 1, 1)]
    for stage, people in (
        ("invitations", {"e1", "e2"}),
        ("entries", {"e1"}),
        ("approved", {"e1"}),
        ("featured", {"e1"}),
    ):
        behind = drill(
            funnel,
            "ugc",
            {"period": "2026-12-01", "challenge": "story", "stage": stage},
            bucket="month",
        )
        assert {r["customer"] for r in behind.rows} == people
    assert panel(funnel, "ugc", start=date(2027, 1, 1)).rows == []


@pytest.fixture
def api(funnel: Engine, database_url: str) -> Iterator[TestClient]:
    with unit_of_work(funnel) as session:
        _, token = create_api_key(session, name="t", scopes=["read"])
    app = create_app(database_url)
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
        yield client
    app.state.engine.dispose()


def test_json_and_csv_agree_with_the_service(api: TestClient, funnel: Engine) -> None:
    for name in ("activation", "activation_steps", "reviews", "ugc"):
        body = api.get(f"/api/v1/dashboard/{name}").json()
        assert body == panel(funnel, name).as_dict()
        text = api.get(f"/api/v1/dashboard/{name}", params={"format": "csv"}).text
        rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
        assert len(rows) == len(body["rows"]) > 0
    answer = api.get(
        "/api/v1/dashboard/activation/drill",
        params={"level": "L2", "stage": "acted", "format": "csv"},
    )
    assert [r["customer"] for r in csv.DictReader(io.StringIO(answer.text.lstrip("\ufeff")))] == [
        "r1"
    ]
    assert api.get("/api/v1/dashboard/activation/drill", params={"level": "x"}).status_code == 422


OTHER = """\
name: other
triggers:
  - type: response_submitted
steps:
  - id: review-ask
    add_tag: not-a-review
"""


def test_a_step_id_shared_with_another_playbook_is_told_apart(funnel: Engine) -> None:
    """Another playbook (and a second version of the default) with the same step ids: the
    figures are read per version then, and stay the same."""
    before = (panel(funnel, "activation").rows, panel(funnel, "activation_steps").rows)
    with unit_of_work(funnel) as session:
        playbooks.apply_source(session, source=OTHER, file="other.yaml")
        changed = playbooks.default_source().replace("wait: 24h", "wait: 48h")
        playbooks.apply_source(session, source=changed, file="default.yaml")
        playbooks.enrol_manually(session, name="other", customer_external_ids=["n1", "p1"])
    playbooks.run_due_steps(funnel)  # "review-ask" of `other` runs twice: it only tags
    levels, steps = panel(funnel, "activation").rows, panel(funnel, "activation_steps").rows
    assert levels == before[0]
    assert [r for r in steps if r["playbook"] != "other"] == before[1]
    assert [(r["step"], r["ran"], r["outcomes"]) for r in steps if r["playbook"] == "other"] == [
        ("review-ask", 2, "tagged: 2")
    ]


# --- drill-down pages: a page is the head of the whole list, under every filter ----------

PAGE_SEGMENTS = {"promoters": {"nps_category": ["promoter"]}, "consenting": {"consent": True}}


@pytest.fixture
def dirty(funnel: Engine, monkeypatch: pytest.MonkeyPatch) -> Engine:
    """Two segments judged by the worker, then customers written since: n2 turns detractor
    (dirty, out of "promoters"), r2 gives consent (dirty, into "consenting"). The steps
    spread over a few seconds of their day (some still at one instant), and a page read a
    window of one entry step per step id at a time (then 2, 4 …), so pages cross windows."""
    with unit_of_work(funnel) as session:
        for step in session.scalars(select(EnrolmentStep)):
            step.ran_at += timedelta(seconds=step.enrolment_id % 3)
    monkeypatch.setattr(dashboard_activation, "WINDOW", 1)
    with unit_of_work(funnel) as session:
        for slug, filters in PAGE_SEGMENTS.items():
            segments.create_segment(session, name=slug, slug=slug, filters=filters)
    cohorts.settle(funnel)
    with unit_of_work(funnel) as session:
        save_responses(session, [ResponseRecord(
            external_id="nps2-n2", customer_external_id="n2", score=2, comment="meh",
            submitted_at=T0 + timedelta(hours=30))])  # fmt: skip
        save_customers(session, [CustomerRecord(
            external_id="r2", name="R2", email="r2@example.com", locale="zh-CN",
            marketing_consent=True)])  # fmt: skip
    for slug in PAGE_SEGMENTS:
        with read_only(funnel) as session:
            members = dashboard._scope(session, Filters(segment=slug)).cohort
            assert members is not None and (members.out or members.into), slug  # dirty
    return funnel


PAGE_FILTERS: list[dict[str, Any]] = [
    {},
    {"start": DAY + timedelta(days=1)},
    {"end": DAY + timedelta(days=1)},
    {"program": "double-sided"},
    {"segment": "promoters"},
    {"segment": "consenting"},
    {"segment": "promoters", "start": DAY},
    {"segment": "consenting", "program": "double-sided"},
]


def _page(engine: Engine, name: str, key: dict[str, str], limit: int | None,
          **filters: Any) -> list[dict[str, Any]]:  # fmt: skip
    with read_only(engine) as session:
        return dashboard.drill(session, name, Filters(**filters), key, limit=limit).rows


def _heads_agree(engine: Engine, name: str, key: dict[str, str], filters: dict[str, Any]
                 ) -> list[dict[str, Any]]:  # fmt: skip
    whole = _page(engine, name, key, None, **filters)
    for limit in range(1, len(whole) + 2):
        assert _page(engine, name, key, limit, **filters) == whole[:limit], (key, filters, limit)
    return whole


def test_activation_pages_are_the_head_of_the_list_the_figure_counts(dirty: Engine) -> None:
    for filters in PAGE_FILTERS:
        found = panel(dirty, "activation", **filters)
        everyone: dict[str, list[dict[str, Any]]] = {}
        for row in found.rows:
            for stage in ("eligible", "asked", "skipped", "clicked", "acted", "featured"):
                key = {"level": row["level"], "stage": stage}
                whole = _heads_agree(dirty, "activation", key, filters)
                everyone.setdefault(stage, []).extend(whole)
                if row[stage] is not None:
                    assert row[stage] == len(whole), (key, filters)
        for stage, rows in everyone.items():  # no level: the levels one after the other
            assert _heads_agree(dirty, "activation", {"stage": stage}, filters) == rows
        for skip in found.summary["skipped"]:
            key = {"level": skip["level"], "stage": "skipped", "reason": skip["reason"]}
            assert len(_heads_agree(dirty, "activation", key, filters)) == skip["count"]
    promoters = {r["customer"] for r in _page(dirty, "activation", {}, None, segment="promoters")}
    assert "n2" not in promoters and "n1" in promoters  # the dirty member is judged live
    consenting = {r["customer"] for r in _page(dirty, "activation", {}, None, segment="consenting")}
    assert "r2" in consenting and "n3" not in consenting


def test_step_pages_are_the_head_of_the_list_the_figure_counts(dirty: Engine) -> None:
    for filters in PAGE_FILTERS:
        found = panel(dirty, "activation_steps", **filters)
        assert len(_heads_agree(dirty, "activation_steps", {}, filters)) == sum(
            r["ran"] for r in found.rows
        )
        for row in found.rows:
            key = {"playbook": row["playbook"], "version": str(row["version"]),
                   "step": row["step"]}  # fmt: skip
            assert len(_heads_agree(dirty, "activation_steps", key, filters)) == row["ran"]
            waiting = _heads_agree(dirty, "activation_steps", {**key, "stage": "waiting"}, filters)
            assert len(waiting) == row["waiting"], (key, filters)
            for outcome_count in filter(None, row["outcomes"].split("; ")):
                outcome, n = outcome_count.split(": ")
                rows = _heads_agree(dirty, "activation_steps", {**key, "outcome": outcome}, filters)
                assert len(rows) == int(n), (key, outcome, filters)
