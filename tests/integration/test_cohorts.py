"""Cohorts (services.cohorts): a segment's stored members, corrected for the customers written
since the worker judged them, equal the segment's filter evaluated live after every kind of
write, before the worker runs (the dirty window) and after; the per-cohort counts kept by the
writes equal the ones rebuilt from the rows; the nps and promoters figures under a segment or
program filter equal the figures computed from the rows. On SQLite and PostgreSQL
(ADVOCADO_TEST_DATABASE)."""

from __future__ import annotations

import random
import threading
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from advocado import clock
from advocado.domain.dashboard import Filters
from advocado.domain.influence import SocialRecord
from advocado.domain.records import CustomerRecord, OrderRecord, ResponseRecord
from advocado.services import cohorts, dashboard, insights, programs, records, referrals, segments
from advocado.services.voc import reclassify_responses
from advocado.store.db import read_only, unit_of_work
from advocado.store.models import CohortDirty, Program, Referral, ReferralCode, Response

NOW = datetime(2026, 6, 30, 12, tzinfo=UTC)
COMMENTS = (None, "爱了爱了 太惊喜", "系统稳定，ROI很高", "ok")
SEGMENTS = {
    "everyone": {},
    "promoters": {"nps_category": ["promoter"]},
    "emotional": {"persona": ["emotional"], "score_min": 7},
    "vip": {"tags_any": ["vip"]},
    "no-consent": {"consent": False},
    "q1-spring": {"survey": "q1", "submitted_to": "2026-05-31", "score_min": 7},
    "high-value": {"value_tier": ["high"]},
    "influencers": {"high_influence": True, "nps_category": ["promoter", "passive"]},
}
PROGRAM = {
    "slug": "p", "name": "P", "currency": "CNY", "starts_at": "2026-01-01",
    "landing_url": "https://shop.example.com/", "attribution_days": 30,
    "qualify": {"event": "first_order", "min_amount": 0}, "hold_days": 7,
    "rewards": [{"id": "t", "to": "referrer", "type": "points", "label": "p", "amount": 10}],
    "fraud": {"rules": {"same_ip_user_agent": "off"}},
}  # fmt: skip


def _responses(rng: random.Random, start: int, n: int, people: int = 14) -> list[ResponseRecord]:
    return [
        ResponseRecord(
            f"r{start + i}",
            rng.choice((0, 5, 7, 8, 9, 10)),
            NOW - timedelta(days=rng.randint(0, 120), minutes=rng.randint(0, 900)),
            rng.choice([f"c{k}" for k in range(people)] + [None]),
            rng.choice(COMMENTS),
            rng.choice(("q1", "q2", None)),
        )
        for i in range(n)
    ]


def _panel(engine: Engine, name: str, f: Filters) -> dict[str, Any]:
    with read_only(engine) as session:
        return dashboard.PANELS[name](session, f).as_dict()


def _live_panel(engine: Engine, name: str, f: Filters, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The figure from the rows: the segment's filter evaluated, no stored counts."""
    with monkeypatch.context() as patch:
        patch.setattr(cohorts, "LIVE_LIMIT", -1)
        return _panel(engine, name, f)


def _periods() -> list[tuple[date | None, date | None]]:
    return [(None, None), ((NOW - timedelta(days=90)).date(), NOW.date())]


def _check(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the dashboard reads now (stored cohorts + live tail) equals the rows."""
    with read_only(engine) as session:
        found = list(session.execute(select(segments.Segment.id, segments.Segment.slug)))
        for segment_id, slug in found:
            _, spec = segments.segment_filter(session, slug=slug)
            members = cohorts.segment_members(session, segment_id, spec)
            assert members is not None
            live = set(session.scalars(segments.member_ids(session, spec)))
            assert set(session.scalars(members.ids)) == live, slug
        for program_id in session.scalars(select(Program.id)):
            people = set(
                session.scalars(select(ReferralCode.customer_id).where(
                    ReferralCode.program_id == program_id))
            ) | set(
                session.scalars(select(Referral.referee_id).where(
                    Referral.program_id == program_id))
            )  # fmt: skip
            stored = set(session.scalars(cohorts.program_members(session, program_id).ids))
            assert stored == people
        slugs = [slug for _, slug in found]
        program_slugs = list(session.scalars(select(Program.slug)))
    for name in ("nps", "promoters", "clv"):
        for start, end in _periods():
            for slug in slugs:
                f = Filters(start=start, end=end, segment=slug)
                assert _panel(engine, name, f) == _live_panel(engine, name, f, monkeypatch), slug
            for program in program_slugs:
                # The program's figure equals its people ∩ everyone, computed from the rows.
                f = Filters(start=start, end=end, program=program)
                both = Filters(start=start, end=end, program=program, segment="everyone")
                assert _panel(engine, name, f) == _live_panel(engine, name, both, monkeypatch)


def _drill(engine: Engine, f: Filters, group: str, limit: int | None) -> Any:
    with read_only(engine) as session:
        return dashboard.drill(session, "clv", f, {"group": group}, limit=limit).as_dict()


def _check_clv_drills(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """The clv drill-down pages under each segment and program equal the rows' (the
    segment's filter evaluated; the program's people ∩ everyone)."""
    with read_only(engine) as session:
        slugs = list(session.scalars(select(segments.Segment.slug)))
        program_slugs = list(session.scalars(select(Program.slug)))
    cases = [(Filters(segment=slug), Filters(segment=slug)) for slug in slugs]
    cases += [(Filters(program=p), Filters(program=p, segment="everyone")) for p in program_slugs]
    for f, live in cases:
        for group in ("advocates", "non_advocates"):
            for limit in (1, 3, 200, None):
                got = _drill(engine, f, group, limit)
                with monkeypatch.context() as patch:
                    patch.setattr(cohorts, "LIVE_LIMIT", -1)
                    assert got == _drill(engine, live, group, limit), (f, group, limit)


def _settle_and_compare(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Check the dirty window, let the worker judge, check again; the kept cohorts equal
    the rebuilt ones."""
    _check(engine, monkeypatch)
    _check_clv_drills(engine, monkeypatch)
    cohorts.settle(engine)
    with read_only(engine) as session:
        assert session.scalar(select(func.count()).select_from(CohortDirty)) == 0
        kept = cohorts.snapshot(session)
    _check(engine, monkeypatch)
    _check_clv_drills(engine, monkeypatch)
    with unit_of_work(engine) as session:
        cohorts.rebuild(session)
    with read_only(engine) as session:
        assert cohorts.snapshot(session) == kept
    return kept


def _save_segments(engine: Engine) -> None:
    with unit_of_work(engine) as session:
        for slug, filters in SEGMENTS.items():
            segments.create_segment(session, name=slug, slug=slug, filters=filters)


def test_segments_follow_every_write(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    clock.set_now(NOW)
    rng = random.Random(17)
    with unit_of_work(engine) as session:
        records.save_customers(session, [
            CustomerRecord(f"c{k}", tags=("vip",) if k % 3 == 0 else (),
                           marketing_consent=k % 4 != 0)
            for k in range(12)
        ])  # fmt: skip
        records.save_responses(session, _responses(rng, 0, 50, people=12))
        records.save_orders(session, [
            OrderRecord(f"o{k}", f"c{k % 12}", 1000 * (k + 1), "CNY", NOW - timedelta(days=k))
            for k in range(30)
        ])  # fmt: skip
        insights.recompute_insights(session, now=NOW)
    _save_segments(engine)  # created: members computed over everyone
    kept = _settle_and_compare(engine, monkeypatch)
    assert kept["members"]["segment:1"] and kept["nps"] and kept["promoters"] and kept["orders"]

    # Responses: new ones (earlier-dated too), new customers, a score flips, moves to
    # another customer and day.
    with unit_of_work(engine) as session:
        records.save_customers(session, [CustomerRecord(f"c{k}") for k in range(12, 14)])
        records.save_responses(session, _responses(rng, 50, 30))
    _settle_and_compare(engine, monkeypatch)
    with read_only(engine) as session:
        stored = {r.external_id: r for r in session.scalars(select(Response))}
    some = sorted(stored)[:4]
    with unit_of_work(engine) as session:
        records.save_responses(session, [
            ResponseRecord(some[0], 10, NOW, "c1", "爱了爱了 太惊喜 超喜欢", "q1"),
            ResponseRecord(some[1], 0, NOW - timedelta(days=1), "c2", None, "q1"),
            ResponseRecord(some[2], 9, datetime(2026, 5, 1, tzinfo=UTC), "c3", None, "q1"),
        ])  # fmt: skip
    _settle_and_compare(engine, monkeypatch)
    with unit_of_work(engine) as session:  # erasure
        records.delete_responses(session, [some[3], *[k for k in stored if k.endswith("7")]])
    _settle_and_compare(engine, monkeypatch)

    # Orders (the tally hook of cohort_paid_order_days): new ones, earlier-dated, moved to
    # another customer, no longer paid, in another currency.
    with unit_of_work(engine) as session:
        records.save_orders(session, [
            OrderRecord("o1", "c7", 1500, "CNY", NOW - timedelta(days=1)),
            OrderRecord("o2", "c2", 2000, "CNY", NOW - timedelta(days=2), status="cancelled"),
            OrderRecord("o-new", "c4", 700, "CNY", NOW - timedelta(days=400)),
            OrderRecord("o-usd", "c4", 900, "USD", NOW - timedelta(days=3)),
            OrderRecord("o-old", "c9", 3300, "CNY", NOW - timedelta(days=200)),
        ])  # fmt: skip
    _settle_and_compare(engine, monkeypatch)

    # Customers: tags and consent.
    with unit_of_work(engine) as session:
        records.save_customers(session, [
            CustomerRecord("c1", tags=("vip",), marketing_consent=False),
            CustomerRecord("c3", tags=(), marketing_consent=True),
        ])  # fmt: skip
    _settle_and_compare(engine, monkeypatch)

    # Insights: one customer's influence, then everyone's value tiers.
    with unit_of_work(engine) as session:
        insights.save_social_profiles(
            session,
            [SocialRecord("c2", "weibo", "c2", followers=900_000, engagement_rate=0.2,
                          brand_mentions=40)],
            high_influence_min=10.0,
        )  # fmt: skip
    _settle_and_compare(engine, monkeypatch)
    with unit_of_work(engine) as session:
        records.save_orders(session, [OrderRecord("o-big", "c5", 9_000_000, "CNY", NOW)])
        insights.recompute_insights(session, now=NOW)
    _settle_and_compare(engine, monkeypatch)

    # Personas of stored comments, re-analysed (the voc path).
    with unit_of_work(engine) as session:
        session.execute(Response.__table__.update().values(persona=None, analyzed_at=None))
        from advocado.services import aggregates

        aggregates.rebuild(session)  # the line above bypassed the services
    reclassify_responses(engine, batch_size=7)
    _settle_and_compare(engine, monkeypatch)

    # Segments edited and deleted.
    with unit_of_work(engine) as session:
        segments.update_segment(session, slug="vip", name="vip", filters={"tags_all": ["vip"],
                                "consent": False})  # fmt: skip
        segments.delete_segment(session, slug="emotional")
    kept = _settle_and_compare(engine, monkeypatch)
    assert "segment:3" not in kept["members"]


def _event(engine: Engine, when: datetime, **fields: Any) -> dict[str, Any]:
    clock.set_now(when)
    return referrals.ingest_event(engine, referrals.EventIn(occurred_at=when, **fields))


def test_program_people_and_event_customers(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Codes issued and referrals created join the program's cohort in their transaction; a
    customer an event creates is judged for the segments (no consent: a member at once)."""
    clock.set_now(datetime(2026, 3, 1, tzinfo=UTC))
    rng = random.Random(4)
    with unit_of_work(engine) as session:
        records.save_customers(session, [CustomerRecord(f"c{k}") for k in range(8)])
        records.save_responses(session, _responses(rng, 0, 30, people=8))
        programs.apply_program(session, PROGRAM)
    _save_segments(engine)
    with unit_of_work(engine) as session:
        codes = [
            programs.code_for(session, program_slug="p", customer_external_id=f"c{k}").code
            for k in range(3)
        ]
    _settle_and_compare(engine, monkeypatch)
    for n, code in enumerate(codes * 2):
        _event(engine, datetime(2026, 3, 2 + n, tzinfo=UTC), event_id=f"s{n}", type="signup",
               customer_external_id=f"f{n}", email=f"f{n}@example.cn", referral_code=code,
               ip=f"203.0.113.{n}", user_agent=f"ua{n}")  # fmt: skip
    clock.set_now(NOW)
    with unit_of_work(engine) as session:  # a referee answers: in the program's counts
        records.save_responses(session, [
            ResponseRecord("rf0", 10, NOW - timedelta(days=3), "f0", None, "q1"),
            ResponseRecord("rf1", 2, NOW - timedelta(days=2), "f1", None, "q2"),
        ])  # fmt: skip
    kept = _settle_and_compare(engine, monkeypatch)
    assert len(kept["members"]["program:1"]) == 3 + 6


def test_racing_writers_and_worker(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Threads answering for the same customers, buying, re-tagging them and issuing their
    codes while the worker judges them and a segment is saved again (a whole recompute): the
    kept cohorts still equal the rebuilt ones (PostgreSQL: customers locked, cohort_dirty
    marks counted, recomputes and tallies queue on cohort_dirty's lock)."""
    clock.set_now(NOW)
    with unit_of_work(engine) as session:
        records.save_customers(session, [CustomerRecord(f"c{k}") for k in range(4)])
        programs.apply_program(session, PROGRAM)
    _save_segments(engine)
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        rng = random.Random(worker)
        try:
            for n in range(6):
                batch = [
                    ResponseRecord(f"w{worker}-{n}-{k}", rng.choice((3, 8, 9, 10)),
                                   NOW - timedelta(minutes=rng.randint(0, 5000)), f"c{k}")
                    for k in range(4)
                ]  # fmt: skip
                with unit_of_work(engine) as session:
                    records.save_responses(session, batch)
                with unit_of_work(engine) as session:
                    records.save_orders(session, [
                        OrderRecord(f"w{worker}-{n}-{k}", f"c{k}", 100 * (n + 1), "CNY",
                                    NOW - timedelta(days=rng.randint(0, 500)))
                        for k in range(4)
                    ])  # fmt: skip
                with unit_of_work(engine) as session:
                    programs.code_for(session, program_slug="p", customer_external_id=f"c{n % 4}")
                with unit_of_work(engine) as session:
                    records.save_customers(session, [
                        CustomerRecord(f"c{(n + worker) % 4}", tags=("vip",) * (n % 2))
                    ])  # fmt: skip
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            errors.append(error)

    def judge() -> None:
        try:
            for n in range(12):
                cohorts.settle(engine)
                if n % 4 == 1:
                    with unit_of_work(engine) as session:
                        segments.update_segment(session, slug="vip", name="vip",
                                                filters=SEGMENTS["vip"])  # fmt: skip
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(3)]
    threads.append(threading.Thread(target=judge))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    _settle_and_compare(engine, monkeypatch)


def test_playbook_tags_move_segment_members(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A playbook's add_tag / remove_tag step marks the customer: after the worker's run the
    stored members of a tag segment equal its filter (without the mark they would not)."""
    from advocado.services import playbooks

    flow = (
        "name: vip\ntriggers:\n  - {type: segment_entered, segment: promoters}\n"
        "steps:\n  - id: tag\n    add_tag: vip\n  - id: untag\n    remove_tag: new\n"
    )
    clock.set_now(NOW)
    with unit_of_work(engine) as session:
        playbooks.install_default(session)
        playbooks.set_enabled(session, name="activation-funnel", enabled=False)
        records.save_customers(session, [CustomerRecord(f"c{k}", tags=("new",)) for k in range(3)])
        playbooks.apply_source(session, source=flow)
    _save_segments(engine)
    with unit_of_work(engine) as session:
        segments.create_segment(session, name="new", slug="new", filters={"tags_any": ["new"]})
        records.save_responses(session, [
            ResponseRecord(f"r{k}", score, NOW - timedelta(days=40), f"c{k}")
            for k, score in enumerate((10, 5, 5))
        ])  # fmt: skip
    cohorts.settle(engine)
    assert playbooks.run_once(engine, now=NOW, deliver=False).enrolled == 1
    kept = _settle_and_compare(engine, monkeypatch)
    with read_only(engine) as session:
        c0 = records.customer_ids(session, ["c0"])["c0"]
        vip = session.scalar(select(segments.Segment.id).where(segments.Segment.slug == "vip"))
        new = session.scalar(select(segments.Segment.id).where(segments.Segment.slug == "new"))
    assert c0 in kept["members"][f"segment:{vip}"]
    assert c0 not in kept["members"][f"segment:{new}"]


def test_unsubscribe_moves_consent_segments(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Consent withdrawn through an unsubscribe link marks the customer (the link itself is
    tested in test_messaging_http; here its target is given)."""
    from advocado.services import messaging

    clock.set_now(NOW)
    with unit_of_work(engine) as session:
        records.save_customers(
            session, [CustomerRecord(f"c{k}", marketing_consent=True) for k in range(3)]
        )
    _save_segments(engine)
    with read_only(engine) as session:
        c1 = records.customer_ids(session, ["c1"])["c1"]
    target = messaging.UnsubscribeTarget(message_id=1, customer_id=c1, locale="en", already=False)
    monkeypatch.setattr(messaging, "unsubscribe_target", lambda engine, token: target)
    messaging.unsubscribe(engine, token="t")
    kept = _settle_and_compare(engine, monkeypatch)
    with read_only(engine) as session:
        slug = select(segments.Segment.id).where(segments.Segment.slug == "no-consent")
        no_consent = session.scalar(slug)
    assert kept["members"][f"segment:{no_consent}"] == {c1}
