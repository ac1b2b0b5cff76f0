"""CSV on every console list page: the page links it, it has the whole list (every page, not
just the one on screen), UTF-8 with a BOM
(Excel shows Chinese), formulas neutralised (a leading '), secrets never exported, and the
lists only some roles may read are refused to the others."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from test_ledger_corrections import customer_with_points
from test_roles_audit import PASSWORD, sign_in

from advocado import clock
from advocado.services import ledger, playbooks, segments
from advocado.services.users import create_user
from advocado.store.db import unit_of_work
from advocado.web.app import create_app
from advocado.web.console.exports import ENGINE_LISTS, LISTS

FORMULA = '=HYPERLINK("http://evil.example","点我")'


@pytest.fixture
def app_client(engine: Engine, database_url: str) -> Iterator[TestClient]:
    with unit_of_work(engine) as session:
        for role in ("admin", "marketer", "analyst"):
            create_user(session, email=f"{role}@example.com", password=PASSWORD, role=role)
    customer_with_points(engine, 100, "c-1")
    customer_with_points(engine, 5, "c-2")
    with unit_of_work(engine) as session:
        from sqlalchemy import select

        from advocado.store.models import Customer

        session.scalar(select(Customer).where(Customer.external_id == "c-2")).name = FORMULA
        segments.create_segment(session, name="忠实客户", slug="loyal", filters={})
        playbooks.install_default(session)
    ledger.correct_balance(engine, customer="c-1", amount=-30, unit="points",
                           reason="-误发积分", actor="cli", key="k1")  # fmt: skip
    clock.set_now(None)
    app = create_app(database_url)
    with TestClient(app, follow_redirects=False) as client:
        yield client
    app.state.engine.dispose()


def table(answer) -> list[dict[str, str]]:  # type: ignore[no-untyped-def]
    assert answer.status_code == 200, answer.text[:300]
    assert answer.headers["content-type"].startswith("text/csv")
    assert answer.content.startswith("\ufeff".encode())
    return list(csv.DictReader(io.StringIO(answer.content.decode("utf-8-sig"))))


def test_every_list_exports_with_bom_and_the_pages_link_it(app_client: TestClient) -> None:
    sign_in(app_client, "admin")
    for name in [*LISTS, *ENGINE_LISTS]:
        answer = app_client.get(
            f"/export/{name}.csv",
            params={"customer": "c-1", "slug": "loyal", "name": "activation-funnel"},
        )
        if name in ("challenge-entries",):  # no challenge "loyal": a clear 404
            assert answer.status_code == 404, name
            continue
        table(answer)
    pages = {"/customers": "customers", "/segments": "segments", "/promoters": "promoters",
             "/referrals/review": "review", "/messages": "messages",
             "/messages/dead": "dead-letters", "/tasks": "tasks", "/audit": "audit",
             "/users": "users", "/plans": "plans"}  # fmt: skip
    for path, name in pages.items():
        page = app_client.get(path)
        assert page.status_code == 200 and f'data-testid="csv-{name}"' in page.text, path
    page = app_client.get("/playbooks/activation-funnel").text
    assert 'data-testid="csv-enrolments"' in page
    profile = app_client.get("/customers/c-1").text
    for name in LISTS:
        if name.startswith("customer-"):
            assert f'data-testid="csv-{name}"' in profile, name
    assert app_client.get("/export/nothing.csv").status_code == 404


def test_rows_are_the_pages_with_formulas_neutralised(app_client: TestClient) -> None:
    sign_in(app_client, "admin")
    found = table(app_client.get("/export/customers.csv", params={"q": "c-"}))
    assert [r["external_id"] for r in found] == ["c-1", "c-2"]
    assert found[0]["name"] == "王小明" and found[1]["name"] == "'" + FORMULA
    (only,) = table(app_client.get("/export/customers.csv", params={"q": "c-1"}))
    assert only["external_id"] == "c-1"  # the page's filter
    rows = table(app_client.get("/export/customer-ledger.csv", params={"customer": "c-1"}))
    assert {r["memo"] for r in rows} == {"'-误发积分", ""}
    assert {r["amount"] for r in rows} == {"100", "30"}
    (loyal,) = table(app_client.get("/export/segments.csv"))
    assert loyal["name"] == "忠实客户"
    audit_rows = table(app_client.get("/export/audit.csv", params={"entity": "ledger"}))
    assert [r["entity_id"] for r in audit_rows] == ["c-1"]
    people = table(app_client.get("/export/users.csv"))
    assert {r["email"] for r in people} == {
        f"{r}@example.com" for r in ("admin", "marketer", "analyst")
    }
    assert not any("password" in column for column in people[0])  # never exported
    missing = app_client.get("/export/customer-ledger.csv", params={"customer": "nobody"})
    assert missing.status_code == 404


def test_lists_for_some_roles_are_refused_to_others(app_client: TestClient) -> None:
    sign_in(app_client, "marketer")
    assert app_client.get("/export/audit.csv").status_code == 403
    assert app_client.get("/export/users.csv").status_code == 403
    assert table(app_client.get("/export/customers.csv"))
    sign_in(app_client, "analyst")
    assert table(app_client.get("/export/audit.csv"))
    assert app_client.get("/export/users.csv").status_code == 403
    app_client.cookies.clear()
    signed_out = app_client.get("/export/customers.csv")
    assert signed_out.status_code == 303 and "/login" in signed_out.headers["location"]
    assert re.search(r"next=", signed_out.headers["location"])


def test_rows_inside_a_cell_are_plain_json() -> None:
    import json
    from datetime import UTC, datetime

    from advocado.services import exports
    from advocado.store.models import MessageEvent

    event = MessageEvent(id=7, message_id=1, status="sent", detail="250 OK",
                         at=datetime(2026, 11, 2, tzinfo=UTC))  # fmt: skip
    row = exports.flatten({"message": {"id": 1}, "events": [event], "tags": ["a", "b"]})
    (found,) = json.loads(row["events"])
    assert found["status"] == "sent" and found["at"].startswith("2026-11-02")
    assert row["tags"] == "a;b" and json.loads(row["message"]) == {"id": 1}


def test_an_export_has_every_page_of_the_list_not_only_the_one_on_screen(
    app_client: TestClient, engine: Engine
) -> None:
    from advocado.store.models import Customer
    from advocado.web.console.exports import PAGE

    many = PAGE * 2 + 7  # three pages of the export's walk, the last one short
    with unit_of_work(engine) as session:
        now = clock.now()
        session.add_all(Customer(external_id=f"bulk-{n}", name=f"客户{n}", tags=["bulk"],
                                 created_at=now, updated_at=now) for n in range(many))  # fmt: skip
        segments.create_segment(session, name="Bulk", slug="bulk", filters={"tags_any": ["bulk"]})
    sign_in(app_client, "analyst")
    members = table(app_client.get("/export/segment-members.csv",
                                   params={"slug": "bulk", "after": "5"}))  # fmt: skip
    assert len(members) == many  # the page's cursor is not the export's start
    assert len({m["external_id"] for m in members}) == many
    everyone = table(app_client.get("/export/customers.csv"))
    assert len(everyone) == many + 2
    assert {"bulk-0", f"bulk-{many - 1}", "c-1", "c-2"} <= {c["external_id"] for c in everyone}
    assert app_client.get("/segments/bulk").status_code == 200
