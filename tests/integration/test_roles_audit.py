"""Roles are enforced by the server (direct POSTs, not hidden buttons), and every change is
in the audit log, written in the change's own transaction."""

import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import yaml
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from advocado.services import audit, lexicon, programs, segments
from advocado.services.apikeys import create_api_key
from advocado.services.users import create_user, set_disabled
from advocado.store.db import read_only, unit_of_work
from advocado.store.models import AuditEntry, Base, Program, Segment, Setting, User
from advocado.web.access import PUBLIC_PREFIXES
from advocado.web.app import create_app

PASSWORD = "correct horse"
PROGRAM_YAML = """slug: spring
name: Spring
currency: CNY
starts_at: 2026-01-01
landing_url: https://shop.example.com/
rewards:
  - id: thanks
    to: referrer
    type: points
    label: 100 points
    amount: 100
"""
WRITES = {"POST", "PUT", "PATCH", "DELETE"}
NOT_CHANGES = {"/login", "/logout", "/account/weekly-summary"}  # one's own session/email


@pytest.fixture
def app_client(engine: Engine, database_url: str) -> Iterator[TestClient]:
    with unit_of_work(engine) as session:
        for role in ("admin", "marketer", "community", "analyst"):
            create_user(session, email=f"{role}@example.com", password=PASSWORD, role=role)
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
    page = client.get("/dashboard").text
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found
    return found.group(1)


def counts(engine: Engine) -> dict[str, int]:
    with read_only(engine) as session:
        return {
            table.name: session.scalar(select(func.count()).select_from(table)) or 0
            for table in Base.metadata.sorted_tables
        }


def _all_routes(routes: list) -> Iterator[object]:  # type: ignore[type-arg]
    """The routes, looking inside included routers (newer FastAPI keeps them nested)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _all_routes(inner.routes)
        else:
            yield route


def console_writes(client: TestClient) -> list[tuple[str, str]]:
    """Every console route that changes something (all but the API, the public pages for
    customers, sign-in and sign-out)."""
    found = []
    for route in _all_routes(client.app.routes):  # type: ignore[attr-defined]
        if not isinstance(route, APIRoute) or route.path.startswith(("/api/", *PUBLIC_PREFIXES)):
            continue
        if route.path in NOT_CHANGES:
            continue
        for method in sorted(route.methods & WRITES):
            found.append((method, re.sub(r"\{[^}]+\}", "1", route.path)))
    return found


def test_an_analyst_cannot_change_anything(app_client: TestClient, engine: Engine) -> None:
    with unit_of_work(engine) as session:
        segments.create_segment(session, name="One", slug="1", filters={})
    before = counts(engine)
    token = sign_in(app_client, "analyst")
    writes = console_writes(app_client)
    assert ("POST", "/segments") in writes and ("POST", "/programs") in writes
    assert ("POST", "/segments/1/delete") in writes and ("POST", "/dashboard/paid-cac") in writes
    form = {
        "csrf": token,
        "name": "Mine",
        "slug": "mine",
        "source": PROGRAM_YAML,
        "amount": "99",
        "currency": "CNY",
    }
    for method, path in writes:
        answer = app_client.request(method, path, data=form)
        assert answer.status_code == 403, (method, path, answer.status_code)
        assert "analyst" in answer.text and "分析师" in answer.text
    assert counts(engine) == before  # nothing written, not even an audit row


def test_a_community_manager_cannot_edit_a_program(app_client: TestClient, engine: Engine) -> None:
    token = sign_in(app_client, "community")
    page = app_client.get("/programs")
    assert page.status_code == 200 and "<textarea" not in page.text  # and the button is gone …
    answer = app_client.post("/programs", data={"csrf": token, "source": PROGRAM_YAML})
    assert answer.status_code == 403  # … but the server is what refuses
    json_answer = app_client.post(
        "/programs",
        data={"csrf": token, "source": PROGRAM_YAML},
        headers={"Accept": "application/json"},
    )
    assert json_answer.status_code == 403 and "programs.edit" in json_answer.json()["detail"]
    with read_only(engine) as session:
        assert session.scalar(select(func.count()).select_from(Program)) == 0


def test_a_marketer_edits_a_program_and_the_change_is_audited(
    app_client: TestClient, engine: Engine
) -> None:
    token = sign_in(app_client, "marketer")
    answer = app_client.post("/programs", data={"csrf": token, "source": PROGRAM_YAML})
    assert answer.status_code == 303
    changed = PROGRAM_YAML.replace("name: Spring", "name: Spring sale")
    assert app_client.post("/programs", data={"csrf": token, "source": changed}).status_code == 303
    assert app_client.post("/programs", data={"csrf": token, "source": changed}).status_code == 303
    with read_only(engine) as session:
        found = audit.entries(session, entity="program")
    assert [(e.action, e.actor) for e in found] == [
        ("update", "user:marketer@example.com"),
        ("create", "user:marketer@example.com"),
    ]  # the third apply changed nothing, so it is not in the log
    assert found[0].before["name"] == "Spring" and found[0].after["name"] == "Spring sale"
    assert "name" in found[0].changed
    bad = app_client.post("/programs", data={"csrf": token, "source": "slug: [unclosed"})
    assert bad.status_code == 400


def test_audit_page_for_admin_and_analyst_only(app_client: TestClient, engine: Engine) -> None:
    with unit_of_work(engine) as session:
        segments.create_segment(session, name="Seen", slug="seen", filters={}, actor="cli")
    for role, status in (("admin", 200), ("analyst", 200), ("marketer", 403), ("community", 403)):
        sign_in(app_client, role)
        page = app_client.get("/audit")
        assert page.status_code == status, role
        if status == 200:
            assert "seen" in page.text and "cli" in page.text


def test_console_segment_changes_are_audited_with_the_user(
    app_client: TestClient, engine: Engine
) -> None:
    token = sign_in(app_client, "marketer")
    made = app_client.post("/segments", data={"csrf": token, "name": "VIP", "slug": "vip"})
    assert made.status_code == 303
    gone = app_client.post("/segments/vip/delete", data={"csrf": token})
    assert gone.status_code == 303
    with read_only(engine) as session:
        found = audit.entries(session, entity="segment")
    assert [(e.action, e.entity_id, e.actor) for e in found] == [
        ("delete", "vip", "user:marketer@example.com"),
        ("create", "vip", "user:marketer@example.com"),
    ]


def test_paid_cac_is_a_marketers_setting_and_audited(
    app_client: TestClient, engine: Engine
) -> None:
    token = sign_in(app_client, "marketer")
    answer = app_client.post(
        "/dashboard/paid-cac", data={"csrf": token, "amount": "80.50", "currency": "CNY"}
    )
    assert answer.status_code == 303
    bad = app_client.post(
        "/dashboard/paid-cac", data={"csrf": token, "amount": "8.505", "currency": "CNY"}
    )
    assert bad.status_code == 400 and "amount" in bad.text
    with read_only(engine) as session:
        assert session.get(Setting, "dashboard.paid_cac").value == (
            '{"amount": 8050, "currency": "CNY"}'
        )
        (entry,) = audit.entries(session, entity="setting")
    assert entry.after == {"amount": 8050, "currency": "CNY"}


def test_api_and_cli_changes_name_their_actor(
    app_client: TestClient, engine: Engine, advocado, tmp_path, database_url: str
) -> None:  # type: ignore[no-untyped-def]
    with unit_of_work(engine) as session:
        key, token = create_api_key(session, name="shop", scopes=["read", "write"])
    headers = {"Authorization": f"Bearer {token}"}
    assert (
        app_client.post(
            "/api/v1/lexicon", json={"term": "丝滑", "persona": "emotional"}, headers=headers
        ).status_code
        == 201
    )
    assert app_client.delete("/api/v1/lexicon/丝滑", headers=headers).status_code == 204
    done = advocado(
        "user",
        "create",
        "--email",
        "new@example.com",
        "--password",
        PASSWORD,
        "--role",
        "analyst",
        cwd=tmp_path,
        database_url=database_url,
    )
    assert done.returncode == 0, done.stderr
    with read_only(engine) as session:
        found = [(e.entity, e.action, e.actor) for e in audit.entries(session)]
    assert found[:3] == [
        ("user", "create", "cli"),
        ("lexicon_term", "delete", f"api:{key.prefix}"),
        ("lexicon_term", "create", f"api:{key.prefix}"),
    ]


def test_audit_row_and_change_commit_or_roll_back_together(engine: Engine) -> None:
    with pytest.raises(RuntimeError), unit_of_work(engine) as session:
        segments.create_segment(session, name="Half", slug="half", filters={}, actor="t")
        lexicon.add_terms(session, [lexicon.validate_term("好用", "rational")], actor="t")
        raise RuntimeError("crash before commit")
    with read_only(engine) as session:
        assert session.scalar(select(func.count()).select_from(Segment)) == 0
        assert session.scalar(select(func.count()).select_from(AuditEntry)) == 0
    with unit_of_work(engine) as session:
        programs.apply_program(session, yaml.safe_load(PROGRAM_YAML), actor="t")
        create_user(session, email="x@example.com", password=PASSWORD, role="analyst", actor="t")
        set_disabled(session, email="x@example.com", disabled=True, actor="t")
    with read_only(engine) as session:
        found = [(e.entity, e.action) for e in audit.entries(session)]
    assert found == [("user", "disable"), ("user", "create"), ("program", "create")]


def test_review_decisions_need_the_right_and_are_audited(
    app_client: TestClient, engine: Engine
) -> None:
    from advocado.services import referrals

    program = yaml.safe_load(PROGRAM_YAML)
    program["fraud"] = {"rules": {"disposable_email": "review"}}
    with unit_of_work(engine) as session:
        programs.apply_program(session, program)
        code = programs.code_for(session, program_slug="spring", customer_external_id="adv").code
    referrals.ingest_event(
        engine,
        referrals.EventIn(
            event_id="s1",
            type="signup",
            occurred_at=datetime(2026, 3, 1, tzinfo=UTC),
            customer_external_id="friend",
            email="friend@mailinator.com",
            referral_code=code,
        ),
    )
    with read_only(engine) as session:
        (held,) = referrals.review_queue(session)
    referral_id = held["id"]
    token = sign_in(app_client, "community")
    page = app_client.get("/referrals/review")
    assert page.status_code == 200 and "friend" in page.text and "Approve" not in page.text
    refused = app_client.post(
        f"/referrals/{referral_id}/decide", data={"csrf": token, "decision": "approve"}
    )
    assert refused.status_code == 403
    token = sign_in(app_client, "marketer")
    assert "Approve" in app_client.get("/referrals/review").text
    done = app_client.post(
        f"/referrals/{referral_id}/decide",
        data={"csrf": token, "decision": "reject", "note": "throwaway"},
    )
    assert done.status_code == 303
    again = app_client.post(
        f"/referrals/{referral_id}/decide", data={"csrf": token, "decision": "approve"}
    )
    assert again.status_code == 409  # decided once; the second click changes nothing
    with read_only(engine) as session:
        (entry,) = audit.entries(session, entity="referral")
    assert (entry.action, entry.actor, entry.after["note"]) == (
        "reject",
        "user:marketer@example.com",
        "throwaway",
    )


def test_only_an_admin_manages_users(app_client: TestClient, engine: Engine) -> None:
    token = sign_in(app_client, "marketer")
    assert app_client.get("/users").status_code == 403
    refused = app_client.post(
        "/users",
        data={"csrf": token, "email": "x@example.com", "password": PASSWORD, "role": "admin"},
    )
    assert refused.status_code == 403
    token = sign_in(app_client, "admin")
    assert app_client.get("/users").status_code == 200
    made = app_client.post(
        "/users",
        data={"csrf": token, "email": "new@example.com", "password": PASSWORD, "role": "analyst"},
    )
    assert made.status_code == 303
    bad = app_client.post(
        "/users",
        data={"csrf": token, "email": "new@example.com", "password": PASSWORD, "role": "analyst"},
    )
    assert bad.status_code == 400 and "already exists" in bad.text
    with read_only(engine) as session:
        new_id = session.scalar(select(User.id).where(User.email == "new@example.com"))
    off = app_client.post(f"/users/{new_id}/disabled", data={"csrf": token, "disabled": "yes"})
    assert off.status_code == 303
    with read_only(engine) as session:
        found = [(e.entity_id, e.action, e.actor) for e in audit.entries(session, entity="user")]
    assert found[:2] == [
        ("new@example.com", "disable", "user:admin@example.com"),
        ("new@example.com", "create", "user:admin@example.com"),
    ]
