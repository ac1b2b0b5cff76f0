"""Program plan vs actual against figures counted by hand (the dashboard's dataset plus review
asks, UGC entries and invitations), YAML errors naming field and line, roles and the audit
log on the console, the API, and the customer profile page; on SQLite and PostgreSQL."""

import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from test_dashboard import NOW, at, data  # noqa: F401  (the dashboard's dataset fixture)
from ugc_support import PASSWORD, add_user, challenge_data

from advocado import clock
from advocado.domain.dashboard import Filters
from advocado.domain.plans import PlanError
from advocado.domain.records import FieldError
from advocado.services import activation_aggregates, audit, dashboard, ledger, plans
from advocado.services.apikeys import create_api_key
from advocado.services.challenges import apply_challenge
from advocado.store.db import read_only, unit_of_work
from advocado.store.models import (
    Challenge,
    ChallengeEntry,
    ChallengeInvitation,
    Customer,
    Message,
    MessageEvent,
    Plan,
    Response,
    Task,
)
from advocado.web.app import create_app

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "plans" / "2027-q1.yaml"
PLAN = {
    "slug": "q2",
    "name": "Q2 plan / 第二季度计划",
    "owner": "Li Na",
    "starts_on": "2026-05-01",
    "ends_on": "2026-07-30",  # 91 days; on NOW (30 June) 61 days are gone: 67.0 %
    "currency": "CNY",
    "goals": {
        "leads": 3,
        "revenue": "200.00",
        "reviews_asked": 10,
        "reviews_clicked": 1,
        "ugc_entries": 2,
        "ugc_featured": 1,
        "referrals_qualified": 3,
    },
    "personas": ["emotional", "high_influence"],
    "recruitment": {"email": 2, "wecom": 1, "in_app": 5},
}


def _id(session: Any, external_id: str) -> int:
    return session.scalar(select(Customer.id).where(Customer.external_id == external_id))


def _message(
    session: Any, who: str, template: str, channel: str, sent: Any, *, clicked: Any = None
) -> None:
    status = "clicked" if clicked else "sent"
    row = Message(
        cause_key=f"{template}:{who}:{sent.isoformat()}",
        customer_id=_id(session, who),
        template=template,
        channel=channel,
        marketing=True,
        status=status,
        context={},
        due_at=sent,
        attempts=1,
        sent_at=sent,
        clicked_at=clicked,
        created_at=sent,
        updated_at=clicked or sent,
    )
    session.add(row)
    session.flush()
    session.add(MessageEvent(message_id=row.id, status="sent", detail="250 OK", at=sent))
    if clicked:
        session.add(MessageEvent(message_id=row.id, status="clicked", detail=None, at=clicked))


@pytest.fixture
def planned(data: Engine) -> Iterator[Engine]:  # noqa: F811
    """On top of the dashboard's data (a1, a2 got codes on 1 May; friends f1, f2 qualified on
    5 and 12 May with 200 + 100 yuan of orders; f3 rejected): review asks to c1 (sent 15 May,
    clicked 16 May), c2 (sent 2 June) and c3 (20 April, before the plan); a referral invite to
    a1 by email; c1 and c2 invited to a challenge on 1 June (c1 by a wecom ugc_invite), their
    entries on 3 June (c1's featured) and 4 June."""
    with unit_of_work(data) as session:
        apply_challenge(session, challenge_data(starts_at="2026-05-01", ends_at="2026-08-01"))
        _message(session, "c1", "review_ask", "email", at(5, 15), clicked=at(5, 16))
        _message(session, "c2", "review_ask", "email", at(6, 2))
        _message(session, "c3", "review_ask", "email", at(4, 20), clicked=at(4, 21))
        _message(session, "a1", "referral_invite", "email", at(5, 1, 8))
        _message(session, "c1", "ugc_invite", "wecom", at(6, 1, 8))
        challenge_id = session.scalar(select(Challenge.id))
        for who, featured, day in (("c1", True, 3), ("c2", False, 4)):
            invitation = ChallengeInvitation(
                challenge_id=challenge_id,
                customer_id=_id(session, who),
                token=f"t-{who}",
                cause_key=f"invite:{who}",
                created_at=at(6, 1),
            )
            session.add(invitation)
            session.flush()
            session.add(
                ChallengeEntry(
                    challenge_id=challenge_id,
                    invitation_id=invitation.id,
                    customer_id=_id(session, who),
                    link="https://x.example/1",
                    text="我的故事",
                    status="approved",
                    featured=featured,
                    submitted_at=at(6, day),
                )
            )
        plans.apply_plan(session, data=PLAN, actor=audit.CLI)
        # Rows written around the services (like a bulk load): the counts are rebuilt.
        activation_aggregates.rebuild(session)
    clock.set_now(NOW)
    yield data


def rows_of(engine: Engine, **params: Any) -> dict[str, dict[str, Any]]:
    with read_only(engine) as session:
        found = dashboard.panel(session, "plan", Filters(**params))
    return {r["goal"]: r for r in found.rows}


def test_plan_vs_actual_matches_the_hand_count(planned: Engine) -> None:
    rows = rows_of(planned)
    actual = {goal: r["actual"] for goal, r in rows.items()}
    assert actual == {
        "leads": 2,  # f1, f2 (f3 rejected)
        "revenue": 30000,  # 200 + 100 yuan, in fen
        "reviews_asked": 2,  # c1, c2 (c3's was before the plan)
        "reviews_clicked": 1,  # c1
        "ugc_entries": 2,
        "ugc_featured": 1,
        "referrals_qualified": 2,
        "recruit.email": 1,  # a1, through the email referral invite
        "recruit.wecom": 1,  # c1, through the wecom UGC invite
        "recruit.in_app": None,  # not recorded by Advocado: said so, not zero
        "recruit.unknown": 2,  # a2 (code, no invite message) and c2 (no invite message)
        "recruit.total": 4,
    }
    elapsed = round(100 * 61 / 91, 1)
    assert all(r["time_elapsed"] == elapsed for r in rows.values())
    assert rows["leads"]["percent_done"] == 66.7 and rows["leads"]["status"] == "behind"
    assert rows["leads"]["gap"] == round(100 * (61 / 91 - 2 / 3), 1)
    assert "behind" in rows["leads"]["reason"] and "落后" in rows["leads"]["reason"]
    assert rows["revenue"]["target"] == 20000 and rows["revenue"]["status"] == "done"
    assert rows["reviews_asked"]["status"] == "behind"  # 20 % with 67 % of the time gone
    assert rows["reviews_clicked"]["status"] == "done"
    assert rows["recruit.in_app"]["status"] == "not_measured"
    assert "unknown" in rows["recruit.in_app"]["reason"]
    assert rows["recruit.total"]["target"] == 8
    with read_only(planned) as session:
        summary = dashboard.panel(session, "plan", Filters()).summary
    assert summary["behind"] == [
        "q2: leads",
        "q2: reviews_asked",
        "q2: referrals_qualified",
        "q2: recruit.email",
        "q2: recruit.total",
    ]


def test_the_program_filter_cuts_the_actuals(planned: Engine) -> None:
    rows = rows_of(planned, program="p")  # a1, a2 and their friends only: c1, c2 are out
    assert rows["leads"]["actual"] == 2 and rows["reviews_asked"]["actual"] == 0
    assert rows["ugc_entries"]["actual"] == 0 and rows["recruit.total"]["actual"] == 2
    assert rows_of(planned, start=at(8, 1).date()) == {}  # the plan ended before


def test_drill_down_lists_the_rows_behind_each_actual(planned: Engine) -> None:
    with read_only(planned) as session:
        for goal, expected in rows_of(planned).items():
            if expected["actual"] is None:
                continue
            found = dashboard.drill(
                session, "plan", Filters(), {"plan": "q2", "goal": goal}, limit=None
            )
            if goal == "revenue":
                assert sum(r["amount"] for r in found.rows) == expected["actual"]
            else:
                assert len(found.rows) == expected["actual"], goal
        unknown = dashboard.drill(
            session, "plan", Filters(), {"plan": "q2", "goal": "recruit.unknown"}, limit=None
        )
        assert sorted(r["customer"] for r in unknown.rows) == ["a2", "c2"]
        with pytest.raises(FieldError, match="goal"):
            dashboard.drill(session, "plan", Filters(), {"plan": "q2", "goal": "nope"}, limit=1)


def test_the_example_file_applies_and_reapplying_changes_nothing(engine: Engine) -> None:
    example = plans.read_plan_file(EXAMPLE)
    with unit_of_work(engine) as session:
        first = plans.apply_plan(session, data=example, actor=audit.CLI)
        again = plans.apply_plan(session, data=example, actor=audit.CLI)
        changed = plans.apply_plan(session, data={**example, "owner": "Wang"}, actor=audit.CLI)
    assert (first.created, again.changed, changed.changed) == (True, False, True)
    with read_only(engine) as session:
        assert [e.action for e in audit.entries(session, entity="plan")] == ["update", "create"]
        plan = plans.plan_by_slug(session, "2027-q1")
        assert plan.owner == "Wang" and plan.spec["goals"]["revenue"] == 25_000_000


@pytest.mark.parametrize(
    ("change", "field", "line"),
    [
        ("  leads: 400", "goals.leads", 24),
        ("ends_on: 2026-12-31", "ends_on", 16),
        ("  in_app: 80", "recruitment.in_app", 47),
    ],
)
def test_a_bad_file_names_the_field_and_line(
    engine: Engine, tmp_path: Path, change: str, field: str, line: int
) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    bad = {
        "  leads: 400": "  leads: -4",
        "ends_on: 2026-12-31": "ends_on: 2026-12-31",
        "  in_app: 80": "  in_app: lots",
    }[change]
    if field == "ends_on":
        text = text.replace("ends_on: 2027-03-31", bad)
    else:
        text = text.replace(change, bad)
    assert text.splitlines()[line - 1].strip().startswith(field.split(".")[-1])
    path = tmp_path / "plan.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PlanError) as error:
        plans.read_plan_file(path)
    assert error.value.field == field and f"{path}:{line}" in error.value.reason
    with pytest.raises(PlanError, match="line 3|:3"):
        plans.read_plan_text("slug: a\nname: [unclosed\nowner: x\n", source="f")


def test_the_cli_applies_a_plan_and_refuses_a_bad_one(
    advocado: Any, tmp_path: Path, database_url: str, engine: Engine
) -> None:
    done = advocado("plan", "apply", str(EXAMPLE), cwd=tmp_path, database_url=database_url)
    assert done.returncode == 0 and done.stdout.strip() == "2027-q1"
    bad = tmp_path / "bad.yaml"
    bad.write_text(EXAMPLE.read_text(encoding="utf-8").replace("leads: 400", "leads: many"))
    refused = advocado("plan", "apply", str(bad), cwd=tmp_path, database_url=database_url)
    assert refused.returncode == 2 and "goals.leads" in refused.stderr and ":24" in refused.stderr
    with read_only(engine) as session:
        assert session.scalar(select(func.count()).select_from(Plan)) == 1


# --- HTTP: the console (roles, audit), the API, the customer pages ---------------------------


@pytest.fixture
def http(planned: Engine, database_url: str) -> Iterator[TestClient]:
    for role in ("admin", "marketer", "community", "analyst"):
        add_user(planned, f"{role}@example.com", role)
    app = create_app(database_url)
    with TestClient(app, follow_redirects=False) as client:
        yield client
    app.state.engine.dispose()


def sign_in(client: TestClient, role: str) -> str:
    client.cookies.clear()
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
    assert token
    answer = client.post(
        "/login",
        data={"email": f"{role}@example.com", "password": PASSWORD, "csrf": token.group(1)},
    )
    assert answer.status_code == 303
    found = re.search(r'name="csrf" value="([^"]+)"', client.get("/dashboard").text)
    assert found
    return found.group(1)


def test_only_marketers_and_admins_change_plans_and_each_change_is_audited(
    http: TestClient, planned: Engine
) -> None:
    source = EXAMPLE.read_text(encoding="utf-8")
    for role in ("analyst", "community"):
        token = sign_in(http, role)
        page = http.get("/plans")
        assert page.status_code == 200 and "<textarea" not in page.text
        refused = http.post("/plans", data={"csrf": token, "source": source})
        assert refused.status_code == 403 and "plans.edit" in refused.text
    token = sign_in(http, "marketer")
    assert "<textarea" in http.get("/plans").text
    assert http.post("/plans", data={"csrf": token, "source": source}).status_code == 303
    bad = http.post(
        "/plans", data={"csrf": token, "source": source.replace("leads: 400", "leads: x")}
    )
    assert bad.status_code == 400 and "goals.leads" in bad.text and "line:24" in bad.text
    with read_only(planned) as session:
        entries = audit.entries(session, entity="plan")
        assert [(e.action, e.entity_id, e.actor) for e in entries] == [
            ("create", "2027-q1", "user:marketer@example.com"),
            ("create", "q2", "cli"),
        ]
    page = http.get("/plans?lang=zh-CN")
    assert "计划" in page.text and "落后" in page.text and "2027-q1" in page.text


def test_the_dashboard_panel_drill_and_csv(http: TestClient) -> None:
    sign_in(http, "analyst")
    panel = http.get("/dashboard/panels/plan?lang=zh-TW")
    assert panel.status_code == 200 and "落後" in panel.text
    assert 'data-testid="plan-behind"' in panel.text and "q2: leads" in panel.text
    assert "/dashboard/drill/plan?plan=q2&amp;goal=leads" in panel.text
    drill = http.get("/dashboard/drill/plan?plan=q2&goal=leads")
    assert drill.status_code == 200 and 'href="/customers/f1"' in drill.text
    exported = http.get("/dashboard/export/plan.csv")
    assert exported.status_code == 200 and "q2,leads,3,2,66.7" in exported.text
    rows = http.get("/dashboard/drill/plan.csv?plan=q2&goal=reviews_clicked").text
    assert rows.count("\n") == 2 and ",c1," in rows


def test_the_api_lists_and_shows_plans(planned: Engine, database_url: str) -> None:
    with unit_of_work(planned) as session:
        _, token = create_api_key(session, name="t", scopes=["read"])
    app = create_app(database_url)
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
        listed = client.get("/api/v1/plans").json()["plans"]
        assert [p["slug"] for p in listed] == ["q2"]
        one = client.get("/api/v1/plans/q2").json()
        figures = {r["goal"]: r for r in one["figures"]}
        assert figures["revenue"]["actual"] == 30000 and one["goals"]["revenue"] == 20000
        assert client.get("/api/v1/plans/nope").status_code == 404
    app.state.engine.dispose()


def test_the_customer_profile_shows_every_area(http: TestClient, planned: Engine) -> None:
    with unit_of_work(planned) as session:
        a1 = _id(session, "a1")
        response = session.scalar(select(Response).where(Response.customer_id == a1))
        response.comment, response.persona = "颜值太高了，推荐给朋友", "emotional"
        response.evidence = ["颜值"]
        ledger.post(
            session,
            key="t:1",
            asset="POINTS",
            debit="brand:points",
            credit=ledger.account(a1, "POINTS"),
            amount=150,
            available_at=at(5, 1),
            memo="welcome points",
        )
        _message(session, "a1", "review_ask", "email", at(6, 5), clicked=at(6, 6))
        session.add(
            Task(
                cause_key="t:a1",
                customer_id=a1,
                kind="ambassador_invite",
                title="Invite a1 to the ambassador club",
                assignee_role="community",
                due_at=at(7, 1),
                script="Call",
                context={},
                created_at=at(6, 1),
            )
        )
        challenge_id = session.scalar(select(ChallengeInvitation.challenge_id))
        invitation = ChallengeInvitation(
            challenge_id=challenge_id,
            customer_id=a1,
            token="t-a1",
            cause_key="invite:a1",
            created_at=at(6, 1),
        )
        session.add(invitation)
        session.flush()
        session.add(
            ChallengeEntry(
                challenge_id=challenge_id,
                invitation_id=invitation.id,
                customer_id=a1,
                text="a1 的故事",
                status="pending",
                submitted_at=at(6, 2),
            )
        )
        activation_aggregates.rebuild(session)  # rows written around the services
    clock.set_now(NOW + timedelta(days=30))  # rewards past their hold
    sign_in(http, "analyst")
    listed = http.get("/customers?q=A1")
    assert listed.status_code == 200 and 'href="/customers/a1"' in listed.text
    by_email = http.get("/customers?q=F1@example.CN").text  # exact email, any case
    assert 'href="/customers/f1"' in by_email and 'href="/customers/f2"' not in by_email
    assert 'href="/customers/' not in http.get("/customers?q=%25").text  # % is not a wildcard
    page = http.get("/customers/a1")
    assert page.status_code == 200
    text = page.text
    assert "<mark>颜值</mark>" in text  # the persona evidence, highlighted
    assert "fo-f1" not in text and "o2" in text  # a1's own orders, not the friends'
    sections = dict(re.findall(r'data-testid="p-([a-z-]+)">(.*?)</section>', text, re.S))
    assert "f1" in sections["referrals-made"] and "f2" in sections["referrals-made"]
    assert "f3" not in sections["referrals-made"]  # a2's friend
    a2 = http.get("/customers/a2").text
    assert "f3" in a2 and "rejected" in a2 and "disposable" in a2  # status and its reason
    assert "+150" in sections["ledger"] and "welcome points" in sections["ledger"]
    assert "coupon" in sections["referrals-made"]  # the rewards a1 earned
    assert "review_ask" in sections["messages"] and "clicked" in sections["messages"]
    assert "Invite a1 to the ambassador club" in sections["tasks"]
    assert "a1 的故事" in sections["entries"]
    friend = http.get("/customers/f1?lang=zh-CN").text
    assert "推荐来源" in friend and 'href="/customers/a1"' in friend
    assert "<code>" in friend and friend.count('data-testid="p-coupons"') == 1
    assert http.get("/customers/nobody").status_code == 404
