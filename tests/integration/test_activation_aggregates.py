"""activation_counts (services.activation_aggregates) stays equal to what `rebuild` computes
from the rows after every kind of write it follows: the playbook runner's steps (with the
messages, codes, invitations and tasks they make), message sends, skips, bounces, retries and
clicks, a friend's signup and its rejection, an entry (submitted, sent again, reviewed,
featured) and a task outcome; and every panel and plan actual read from the counts equals the
same figure computed from the rows, with no filter, a period, a program, a segment and a
segment with a period — also in the window before the worker judges the customers written
(segment counts corrected live), and after a segment is edited, deleted or every insight is
recomputed. Racing clicks on one message count once. On SQLite and PostgreSQL
(ADVOCADO_TEST_DATABASE)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from smtp_sink import SmtpSink
from sqlalchemy import Engine, select
from ugc_support import challenge_data

from advocado import clock
from advocado.domain.dashboard import Filters
from advocado.domain.records import CustomerRecord, ResponseRecord
from advocado.services import (
    activation_aggregates,
    challenges,
    cohorts,
    dashboard,
    messaging,
    plans,
    playbooks,
    programs,
    referrals,
    segments,
    tasks,
)
from advocado.services.records import save_customers, save_responses
from advocado.store.db import read_only, unit_of_work
from advocado.store.models import (
    ChallengeInvitation,
    Customer,
    CustomerInsight,
    Message,
    MessageLink,
    Referral,
    ReferralCode,
    Task,
)

T0 = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
COMMENTS = (  # the persona picks the level: neutral L1, rational L2, emotional L3
    "Fine.",
    "系统稳定，功能全面，性价比高",
    "超級喜歡，太驚喜了，愛了愛了",
)
# external id, consent, score: promoters go through the default playbook's levels.
PEOPLE = [(f"p{i}", i % 5 != 0, 9 + i % 2) for i in range(24)] + [("d1", True, 3)]
INFLUENCERS = ("p0", "p7")  # level 4
PANELS = ("activation", "activation_steps", "reviews", "ugc")
PLAN = {
    "slug": "winter",
    "name": "Winter plan / 冬季计划",
    "owner": "Li Na",
    "starts_on": "2026-12-01",
    "ends_on": "2026-12-07",
    "currency": "CNY",
    "goals": {"reviews_asked": 10, "reviews_clicked": 2, "ugc_entries": 2, "ugc_featured": 1},
    "recruitment": {"email": 5, "wecom": 1},
}
SEGMENTS = {
    "promoters": {"nps_category": ["promoter"]},
    "consenting": {"consent": True},
    "emotional": {"persona": ["emotional"]},
}
FILTERS = (
    {},
    {"program": "double-sided"},  # its people: code holders and referred friends
    {"segment": "promoters"},  # its members: activation_counts under program -<id>
    {"segment": "consenting", "start": T0.date() + timedelta(days=1)},
    {"segment": "emotional", "end": T0.date() + timedelta(days=1), "bucket": "month"},
    {"segment": "promoters", "program": "double-sided"},  # both: the rows
    {"start": T0.date() + timedelta(days=1)},
    {"end": T0.date()},
    {"bucket": "month"},
)
PLAN_FILTERS = ({}, {"program": "double-sided"}, {"segment": "promoters"},
                {"segment": "consenting"})  # fmt: skip


def _kept_equals_rebuilt(engine: Engine) -> None:
    with read_only(engine) as session:
        kept = activation_aggregates.snapshot(session)
    with unit_of_work(engine) as session:
        activation_aggregates.rebuild(session)
    with read_only(engine) as session:
        rebuilt = activation_aggregates.snapshot(session)
    assert kept == rebuilt


def _from_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Makes the panels read the rows, as they do under a segment filter."""
    monkeypatch.setattr(activation_aggregates, "program_of", lambda scope: None)


def _figures(engine: Engine) -> dict[str, Any]:
    found: dict[str, Any] = {}
    with read_only(engine) as session:
        for name in PANELS:
            for f in FILTERS:
                found[f"{name} {f}"] = dashboard.panel(session, name, Filters(**f)).as_dict()
        for f in PLAN_FILTERS:
            found[f"plan {f}"] = dashboard.panel(session, "plan", Filters(**f)).as_dict()
        for people in PLAN_FILTERS:
            period = Filters(start=T0.date() - timedelta(days=3), end=T0.date() + timedelta(3),
                             **people)  # fmt: skip
            scope = dashboard._scope(session, period)
            program = people.get("program") or people.get("segment")
            for goal in ("reviews_asked", "reviews_clicked", "ugc_entries", "ugc_featured"):
                found[f"{goal} {program}"] = plans._actual(session, goal, scope)
    return found


def _check(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Kept equals rebuilt, and the figures from the counts equal those from the rows."""
    _kept_equals_rebuilt(engine)
    stored = _figures(engine)
    with monkeypatch.context() as patched:
        _from_rows(patched)
        assert _figures(engine) == stored
    return stored


def _tokens(engine: Engine, template: str) -> list[tuple[str, int]]:
    with read_only(engine) as session:
        found = session.execute(
            select(MessageLink.token, MessageLink.message_id)
            .join(Message, Message.id == MessageLink.message_id)
            .where(Message.template == template)
            .order_by(MessageLink.id)
        )
        return [(token, message_id) for token, message_id in found]


@pytest.fixture
def enrolled(engine: Engine, smtp_server: SmtpSink, monkeypatch: pytest.MonkeyPatch) -> Engine:
    monkeypatch.setenv(
        "ADVOCADO_REVIEW_LINKS", "G2=https://g2.example/r;大众点评=https://dp.example/r"
    )
    clock.set_now(T0)
    with unit_of_work(engine) as session:
        playbooks.install_default(session)
        challenges.apply_challenge(session, challenge_data())
        plans.apply_plan(session, data=PLAN, actor="test")
        save_customers(
            session,
            [
                CustomerRecord(
                    external_id=who, name=who, email=f"{who}@example.com", marketing_consent=ok
                )
                for who, ok, _s in PEOPLE
            ],
        )
        save_responses(
            session,
            [
                ResponseRecord(
                    external_id=f"nps-{who}",
                    customer_external_id=who,
                    score=score,
                    comment=COMMENTS[i % 3],
                    submitted_at=T0 - timedelta(minutes=10),
                )
                for i, (who, _ok, score) in enumerate(PEOPLE)
            ],
        )
        for who in INFLUENCERS:
            session.add(
                CustomerInsight(
                    customer_id=session.scalar(
                        select(Customer.id).where(Customer.external_id == who)
                    ),
                    frequency=0,
                    monetary=0,
                    influence_score=90.0,
                    high_influence=True,
                    influence_explanation="40k followers",
                    computed_at=T0,
                )
            )
        for slug, filters in SEGMENTS.items():
            segments.create_segment(session, name=slug, slug=slug, filters=filters)
    yield engine
    clock.set_now(None)


def test_every_write_keeps_the_counts_exact(
    enrolled: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = enrolled
    playbooks.run_once(engine, now=T0 + timedelta(hours=1))
    _check(engine, monkeypatch)
    playbooks.run_once(engine, now=T0 + timedelta(hours=25))  # the levels' steps and sends
    figures = _check(engine, monkeypatch)
    assert figures["activation {}"]["rows"][0]["eligible"] > 0
    recruits = {r["goal"]: r["actual"] for r in figures["plan {}"]["rows"]}
    assert recruits["recruit.email"] > 0, recruits  # codes and invitations, by email
    later = T0 + timedelta(hours=26)
    clock.set_now(later)
    # Clicks: the first click of a review ask and of a referral invitation; a second click.
    for template in ("review_ask", "referral_invite", "ugc_invite"):
        links = _tokens(engine, template)
        if links:
            assert messaging.record_message_click(engine, token=links[0][0])
            assert messaging.record_message_click(engine, token=links[0][0])
            _check(engine, monkeypatch)
    # A bounce of a sent review ask, then an operator's retry and its new send.
    sent = _tokens(engine, "review_ask")
    assert messaging.record_bounce(engine, message_id=sent[-1][1], detail="550 no such user")
    _check(engine, monkeypatch)
    messaging.retry_message(engine, message_id=sent[-1][1])
    _check(engine, monkeypatch)
    messaging.deliver_due(engine, now=later + timedelta(hours=12))
    _check(engine, monkeypatch)
    # A friend signs up with a code the playbook issued, then the referral is rejected.
    with read_only(engine) as session:
        code = session.scalars(select(ReferralCode.code).order_by(ReferralCode.id)).first()
    assert code is not None
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
    acted = _check(engine, monkeypatch)["activation {}"]["rows"][1]["acted"]
    assert acted == 1
    with unit_of_work(engine) as session:
        referral = session.scalars(select(Referral)).one()
        referrals._set_status(session, referral, "rejected")
    assert _check(engine, monkeypatch)["activation {}"]["rows"][1]["acted"] == 0
    # An entry: submitted, sent again, approved, featured, and another rejected.
    with read_only(engine) as session:
        tokens = list(
            session.scalars(
                select(ChallengeInvitation.token)
                .join(Customer, Customer.id == ChallengeInvitation.customer_id)
                .where(Customer.marketing_consent.is_(True))  # asked: an entry is "acted"
                .order_by(ChallengeInvitation.id)
            )
        )
    assert len(tokens) >= 2
    with unit_of_work(engine) as session:
        entry = challenges.submit_entry(
            session, token=tokens[0], link="https://weibo.example/1", text="故事", image=None
        )
    _check(engine, monkeypatch)
    clock.set_now(later + timedelta(days=2))  # sent again two days later: a new day
    with unit_of_work(engine) as session:
        challenges.submit_entry(
            session, token=tokens[0], link="https://weibo.example/2", text="故事 2", image=None
        )
    _check(engine, monkeypatch)
    with unit_of_work(engine) as session:
        for action in ("approve", "feature"):
            challenges.review_entry(
                session, entry_id=entry.id, action=action, reason=None, reviewer="a@example.com"
            )
        other = challenges.submit_entry(
            session, token=tokens[1], link="https://weibo.example/3", text="x", image=None
        )
        challenges.review_entry(
            session, entry_id=other.id, action="reject", reason="off topic", reviewer="a@x.com"
        )
    figures = _check(engine, monkeypatch)
    assert figures["ugc_featured None"] == 1 and figures["ugc_entries None"] == 2
    assert figures["activation {}"]["rows"][2]["featured"] == 1
    # A task outcome (level 4).
    with read_only(engine) as session:
        task_ids = list(session.scalars(select(Task.id).where(Task.kind == "ambassador_invite")))
    assert task_ids
    with unit_of_work(engine) as session:
        tasks.record_outcome(session, task_id=task_ids[0], outcome="accepted", note=None, by="cm")
    assert _check(engine, monkeypatch)["activation {}"]["rows"][3]["acted"] == 1
    # A customer with review asks, an entry and steps becomes one of the program's people
    # (a code issued by hand, then as a referred friend): their counts join the program's.
    with read_only(engine) as session:
        asked = session.scalars(
            select(Customer.external_id)
            .join(Message, Message.customer_id == Customer.id)
            .where(Message.template == "review_ask")
            .order_by(Customer.id)
        ).first()
        entrant = session.scalars(
            select(Customer.external_id)
            .join(ChallengeInvitation, ChallengeInvitation.customer_id == Customer.id)
            .where(ChallengeInvitation.token == tokens[0])
        ).one()
    assert asked is not None
    before = _check(engine, monkeypatch)["reviews {'program': 'double-sided'}"]
    with unit_of_work(engine) as session:
        programs.code_for(session, program_slug="double-sided", customer_external_id=asked)
    after = _check(engine, monkeypatch)["reviews {'program': 'double-sided'}"]
    assert after["summary"]["totals"]["asked"] == before["summary"]["totals"]["asked"] + 1
    with read_only(engine) as session:
        code = session.scalars(
            select(ReferralCode.code).where(ReferralCode.code != code).order_by(ReferralCode.id)
        ).first()
    ugc = "ugc {'program': 'double-sided'}"
    invited = _check(engine, monkeypatch)[ugc]["summary"]["totals"]["invitations"]
    referrals.ingest_event(
        engine,
        referrals.EventIn(
            event_id="signup-entrant",
            type="signup",
            occurred_at=later,
            customer_external_id=entrant,
            referral_code=code,
        ),
    )
    after_all = _check(engine, monkeypatch)[ugc]["summary"]["totals"]
    assert (after_all["invitations"], after_all["entries"]) == (invited + 1, 1)


def test_racing_first_clicks_count_once(enrolled: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = enrolled
    playbooks.run_once(engine, now=T0 + timedelta(hours=1))
    playbooks.run_once(engine, now=T0 + timedelta(hours=25))
    clock.set_now(T0 + timedelta(hours=26))
    by_message: dict[int, list[str]] = {}
    for token, message_id in _tokens(engine, "review_ask"):
        by_message.setdefault(message_id, []).append(token)
    pairs = [tokens for tokens in by_message.values() if len(tokens) >= 2][:4]
    assert pairs
    barrier = threading.Barrier(2 * len(pairs))
    errors: list[BaseException] = []

    def click(token: str) -> None:
        try:
            barrier.wait(timeout=30)
            messaging.record_message_click(engine, token=token)
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [
        threading.Thread(target=click, args=(token,)) for tokens in pairs for token in tokens[:2]
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    figures = _check(engine, monkeypatch)
    level1 = figures["activation {}"]["rows"][0]
    assert level1["clicked"] == len(pairs)


def test_rebuild_is_registered(enrolled: Engine) -> None:
    from advocado.services import aggregates

    assert activation_aggregates.rebuild in aggregates.REBUILDERS
    playbooks.run_once(enrolled, now=T0 + timedelta(hours=1))
    with unit_of_work(enrolled) as session:
        assert aggregates.rebuild(session)["activation_counts"] > 0


def _reviews_asked(figures: dict[str, Any], segment: str) -> int:
    return int(figures[f"reviews {{'segment': '{segment}'}}"]["summary"]["totals"]["asked"])


def test_segment_counts_follow_members(enrolled: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """A segment's counts: read from activation_counts (not the rows), moved when the worker
    moves members, corrected live for the customers written before it runs, recounted when
    the segment is edited or every insight recomputed, gone with the segment."""
    from advocado.services import customer_aggregates

    engine = enrolled
    playbooks.run_once(engine, now=T0 + timedelta(hours=1))
    steps = _check(engine, monkeypatch)["activation_steps {'segment': 'promoters'}"]
    assert sum(r["waiting"] for r in steps["rows"]) > 0  # probed per waiting enrolment
    playbooks.run_once(engine, now=T0 + timedelta(hours=25))  # the worker judged everyone
    with read_only(engine) as session:
        scope = dashboard._scope(session, Filters(segment="promoters"))
        assert scope.cohort is not None and not scope.cohort.into and not scope.cohort.out
        assert activation_aggregates.program_of(scope) is not None
        assert activation_aggregates.program_of(scope) < 0  # the segment's own counts
    before = _check(engine, monkeypatch)
    assert _reviews_asked(before, "promoters") > 0
    # p1 (a promoter who was asked) turns detractor, d1 (a detractor) promoter: both dirty.
    with read_only(engine) as session:
        asked = session.scalars(
            select(Customer.external_id)
            .join(Message, Message.customer_id == Customer.id)
            .where(Message.template == "review_ask", Customer.external_id != "d1")
            .order_by(Customer.id)
        ).first()
    assert asked is not None
    clock.set_now(T0 + timedelta(hours=30))
    with unit_of_work(engine) as session:
        save_responses(
            session,
            [
                ResponseRecord(external_id=f"nps2-{who}", customer_external_id=who, score=score,
                               comment="ok", submitted_at=T0 + timedelta(hours=29))
                for who, score in ((asked, 2), ("d1", 10))
            ],
        )  # fmt: skip
    with read_only(engine) as session:
        scope = dashboard._scope(session, Filters(segment="promoters"))
        assert scope.cohort is not None and scope.cohort.out  # the dirty window
    dirty = _check(engine, monkeypatch)  # corrected live == from the rows
    assert _reviews_asked(dirty, "promoters") < _reviews_asked(before, "promoters")
    cohorts.settle(engine)  # the worker moves them: the stored counts follow
    settled = _check(engine, monkeypatch)
    assert settled == dirty
    # A segment edited (members recomputed), one made and deleted, every insight recomputed.
    with unit_of_work(engine) as session:
        segments.update_segment(session, slug="promoters", name="promoters",
                                filters={"nps_category": ["promoter", "detractor"]})  # fmt: skip
        segments.create_segment(session, name="gone", slug="gone", filters={"consent": False})
        gone = session.scalar(select(segments.Segment.id).where(segments.Segment.slug == "gone"))
    edited = _check(engine, monkeypatch)
    assert _reviews_asked(edited, "promoters") >= _reviews_asked(before, "promoters")
    key = activation_aggregates.segment_key(gone)
    with read_only(engine) as session:
        assert [k for k in activation_aggregates.snapshot(session) if k[1] == key]
    with unit_of_work(engine) as session:
        segments.delete_segment(session, slug="gone")
    with read_only(engine) as session:
        assert not [k for k in activation_aggregates.snapshot(session) if k[1] == key]
    _check(engine, monkeypatch)
    with unit_of_work(engine) as session, customer_aggregates.insights_changing(session, None):
        pass
    _check(engine, monkeypatch)
