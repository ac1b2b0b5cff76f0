"""Segments: counts, members and export against hand-computed sets; the API and its keys;
the console pages."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, update

from advocado.domain.records import CustomerRecord, ResponseRecord
from advocado.domain.segments import parse_filters
from advocado.services import customer_aggregates, segments
from advocado.services.apikeys import create_api_key
from advocado.services.records import customer_ids, save_customers, save_responses
from advocado.services.users import create_user
from advocado.store.db import unit_of_work
from advocado.store.models import CustomerInsight, Response
from advocado.web.app import create_app

API = "/api/v1/segments"
EMAIL, PASSWORD = "analyst@example.com", "correct horse"


def at(day: str) -> datetime:
    return datetime.fromisoformat(f"{day}T10:00:00+00:00").astimezone(UTC)


@pytest.fixture
def people(engine: Engine) -> None:
    """a: promoter (emotional) in q1 in January, detractor in q2 in March; b: rational promoter
    in q1; c: passive, high influence; d: no response, high value; e: anonymous answers only."""
    with unit_of_work(engine) as session:
        save_customers(session, [
            CustomerRecord("a", name="=HYPERLINK(\"x\")", tags=("vip", "早鸟"),
                           marketing_consent=True, consent_source="test"),
            CustomerRecord("b", name="Bo", tags=("vip",)),
            CustomerRecord("c", name="陈", marketing_consent=True, consent_source="test"),
            CustomerRecord("d", name="Dee", tags=("早鸟",), marketing_consent=True,
                           consent_source="test"),
        ])  # fmt: skip
        save_responses(session, [
            ResponseRecord("ra1", 10, at("2026-01-10"), "a", "<b>爱了爱了</b> 太惊喜", "q1"),
            ResponseRecord("ra2", 3, at("2026-03-05"), "a", "meh", "q2"),
            ResponseRecord("rb1", 9, at("2026-02-01"), "b", "系统稳定，ROI很高", "q1"),
            ResponseRecord("rc1", 7, at("2026-01-20"), "c", "ok", "q1"),
            ResponseRecord("rx1", 10, at("2026-01-21"), None, "anonymous love", "q1"),
        ])  # fmt: skip
        labels = {"ra1": ("emotional", ["爱了", "惊喜"]), "ra2": ("neutral", []),
                  "rb1": ("rational", ["系统稳定", "ROI很高"]), "rc1": ("neutral", [])}  # fmt: skip
        for external_id, (persona, evidence) in labels.items():
            session.execute(update(Response).where(Response.external_id == external_id)
                            .values(persona=persona, evidence=evidence))  # fmt: skip
        ids = customer_ids(session, ["a", "b", "c", "d"])
        now = at("2026-04-01")
        session.add_all([
            CustomerInsight(customer_id=ids["a"], value_tier="mid", lifecycle_stage="steady",
                            frequency=3, monetary=9000, computed_at=now, high_influence=False,
                            influence_score=20.0),
            CustomerInsight(customer_id=ids["c"], value_tier="low", lifecycle_stage="lapsed",
                            frequency=1, monetary=100, computed_at=now, high_influence=True,
                            influence_score=72.5, influence_explanation="weibo … → 73/100"),
            CustomerInsight(customer_id=ids["d"], value_tier="high", lifecycle_stage="new",
                            frequency=9, monetary=99000, computed_at=now, high_influence=False),
        ])  # fmt: skip
        # Labels and insights were written behind the services' back: recompute the aggregates.
        session.flush()
        customer_aggregates.rebuild(session)


def members(engine: Engine, filters: dict[str, Any]) -> set[str]:
    spec = parse_filters(filters)
    with unit_of_work(engine) as session:
        rows, _ = segments.member_page(session, spec, limit=100)
        count = segments.count_members(session, spec)
    found = {row["external_id"] for row in rows}
    assert count == len(found)
    return found


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, {"a", "b", "c", "d"}),
        ({"nps_category": ["promoter"]}, {"b"}),  # a's latest answer is a 3
        ({"nps_category": ["promoter"], "survey": "q1"}, {"a", "b"}),
        ({"nps_category": ["promoter"], "submitted_to": "2026-02-28"}, {"a", "b"}),
        ({"nps_category": ["promoter"], "submitted_from": "2026-03-01"}, set()),
        ({"nps_category": ["detractor"], "submitted_from": "2026-03-05",
          "submitted_to": "2026-03-05"}, {"a"}),
        ({"persona": ["emotional"], "survey": "q1"}, {"a"}),
        ({"persona": ["rational", "emotional"]}, {"b"}),
        ({"score_min": 7, "score_max": 8}, {"c"}),
        ({"nps_category": ["passive", "detractor"]}, {"a", "c"}),
        ({"survey": "q2"}, {"a"}),
        ({"tags_any": ["早鸟"]}, {"a", "d"}),
        ({"tags_any": ["vip", "nobody"]}, {"a", "b"}),
        ({"tags_all": ["vip", "早鸟"]}, {"a"}),
        ({"consent": True}, {"a", "c", "d"}),
        ({"consent": False}, {"b"}),
        ({"high_influence": True}, {"c"}),
        ({"high_influence": False}, {"a", "b", "d"}),
        ({"influence_min": 20}, {"a", "c"}),
        ({"value_tier": ["high", "low"]}, {"c", "d"}),
        ({"lifecycle_stage": ["new"]}, {"d"}),
        ({"consent": True, "tags_any": ["早鸟"], "value_tier": ["high"]}, {"d"}),
    ],
)  # fmt: skip
def test_members_match_hand_computed_sets(
    engine: Engine, people: None, filters: dict[str, Any], expected: set[str]
) -> None:
    assert members(engine, filters) == expected


def test_paging_and_latest_response_in_scope(engine: Engine, people: None) -> None:
    spec = parse_filters({"survey": "q1"})
    with unit_of_work(engine) as session:
        first, cursor = segments.member_page(session, spec, limit=2)
        second, end = segments.member_page(session, spec, limit=2, after=cursor)
    assert [m["external_id"] for m in first + second] == ["a", "b", "c"] and end is None
    a = first[0]
    assert (a["response_score"], a["response_category"], a["response_persona"]) == (
        10, "promoter", "emotional")  # fmt: skip


def test_export_is_every_member_and_safe_in_a_spreadsheet(engine: Engine, people: None) -> None:
    with unit_of_work(engine) as session:
        text = "".join(segments.export_csv(session, parse_filters({"consent": True})))
    assert text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    assert [row["external_id"] for row in rows] == ["a", "c", "d"]
    assert rows[0]["name"] == '\'=HYPERLINK("x")'  # never run as a formula
    assert rows[0]["tags"] == "vip;早鸟" and rows[0]["response_category"] == "detractor"
    assert rows[1]["influence_score"] == "72.5" and rows[1]["high_influence"] == "True"


# --- API ----------------------------------------------------------------------------------


def bearer(engine: Engine, scopes: list[str]) -> dict[str, str]:
    with unit_of_work(engine) as session:
        _, token = create_api_key(session, name="crm", scopes=scopes)
    return {"Authorization": f"Bearer {token}"}


def test_api_segment_lifecycle(client: TestClient, engine: Engine, people: None) -> None:
    auth = bearer(engine, ["read", "write"])
    body = {"name": "VIP promoters", "filters": {"nps_category": "promoter", "survey": "q1"}}
    created = client.post(API, json=body, headers=auth)
    assert created.status_code == 201, created.text
    assert created.json()["slug"] == "vip-promoters" and created.json()["members"] == 2
    assert created.json()["filters"] == {"nps_category": ["promoter"], "survey": "q1"}
    assert client.post(API, json={**body, "slug": "vip-promoters"}, headers=auth).status_code == 409
    listed = client.get(API, headers=auth).json()["items"]
    assert [(s["slug"], s["members"]) for s in listed] == [("vip-promoters", 2)]
    page = client.get(f"{API}/vip-promoters/members?limit=1", headers=auth).json()
    assert [m["external_id"] for m in page["items"]] == ["a"] and page["next"]
    rest = client.get(f"{API}/vip-promoters/members?after={page['next']}", headers=auth).json()
    assert [m["external_id"] for m in rest["items"]] == ["b"] and rest["next"] is None
    assert rest["items"][0]["response_evidence"] == ["系统稳定", "ROI很高"]
    export = client.get(f"{API}/vip-promoters/export.csv", headers=auth)
    assert export.headers["content-type"].startswith("text/csv")
    assert [r["external_id"] for r in csv.DictReader(io.StringIO(export.text.lstrip("\ufeff")))
            ] == ["a", "b"]  # fmt: skip
    changed = client.put(f"{API}/vip-promoters", headers=auth,
                         json={"name": "VIP", "filters": {"tags_any": ["vip"]}})  # fmt: skip
    assert changed.status_code == 200 and changed.json()["members"] == 2
    assert client.get(f"{API}/vip-promoters", headers=auth).json()["name"] == "VIP"
    assert client.delete(f"{API}/vip-promoters", headers=auth).status_code == 204
    assert client.get(f"{API}/vip-promoters", headers=auth).status_code == 404
    assert client.get(f"{API}/vip-promoters/members", headers=auth).status_code == 404


def test_api_preview_and_validation(client: TestClient, engine: Engine, people: None) -> None:
    reader = bearer(engine, ["read"])
    preview = client.get(API + "/preview", headers=reader,
                         params={"filters": json.dumps({"tags_all": ["vip", "早鸟"]})})  # fmt: skip
    assert preview.status_code == 200 and preview.json()["members"] == 1
    bad = client.get(API + "/preview", headers=reader,
                     params={"filters": json.dumps({"score_min": 12})})  # fmt: skip
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "filters.score_min"
    writer = bearer(engine, ["write"])
    wrong = client.post(API, headers=writer, json={"name": "x", "filters": {"tier": ["high"]}})
    assert wrong.status_code == 422 and wrong.json()["detail"][0]["field"] == "filters.tier"
    nameless = client.post(API, headers=writer, json={"name": " ", "filters": {}})
    assert nameless.status_code == 422 and nameless.json()["detail"][0]["field"] == "name"


def test_api_keys_and_scopes(client: TestClient, engine: Engine) -> None:
    assert client.get(API).status_code == 401
    assert client.get(API + "/preview").status_code == 401
    reader, writer = bearer(engine, ["read"]), bearer(engine, ["write"])
    assert client.post(API, headers=reader, json={"name": "x"}).status_code == 403
    assert client.post(API, headers=writer, json={"name": "x"}).status_code == 201
    assert client.get(API, headers=writer).status_code == 403
    assert client.get(API + "/x/export.csv", headers=reader).status_code == 200
    assert client.delete(API + "/x", headers=reader).status_code == 403


# --- console ------------------------------------------------------------------------------


@pytest.fixture
def console(engine: Engine, database_url: str) -> Iterator[TestClient]:
    with unit_of_work(engine) as session:
        create_user(session, email=EMAIL, password=PASSWORD, role="marketer")
    app = create_app(database_url)
    with TestClient(app, follow_redirects=False) as client:
        yield client
    app.state.engine.dispose()


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found
    return found.group(1)


def sign_in(client: TestClient) -> None:
    token = csrf_of(client.get("/login").text)
    client.post("/login", data={"email": EMAIL, "password": PASSWORD, "csrf": token})


@pytest.mark.parametrize("path", ["/segments", "/segments/x", "/segments/x/export.csv",
                                  "/promoters?persona=rational"])  # fmt: skip
def test_console_pages_send_strangers_to_login(console: TestClient, path: str) -> None:
    response = console.get(path)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


def test_console_create_list_members_export(console: TestClient, people: None) -> None:
    sign_in(console)
    page = console.get("/segments")
    assert page.status_code == 200
    form = {"csrf": csrf_of(page.text), "name": "早鸟 with consent", "tags_any": "早鸟, vip",
            "consent": "yes"}  # fmt: skip
    preview = console.post("/segments", data={**form, "action": "preview"})
    assert preview.status_code == 200 and 'data-testid="preview"' in preview.text
    assert "2 customers match" in preview.text
    bad = console.post("/segments", data={**form, "score_min": "11", "action": "save"})
    assert bad.status_code == 400 and "filters.score_min" in bad.text
    saved = console.post("/segments", data={**form, "action": "save"})
    assert saved.status_code == 303
    slug = saved.headers["location"].rsplit("/", 1)[1]
    listing = console.get("/segments").text
    assert f'data-testid="count-{slug}">2<' in listing
    detail = console.get(f"/segments/{slug}")
    assert detail.status_code == 200 and "Dee" in detail.text and "Bo<" not in detail.text
    export = console.get(f"/segments/{slug}/export.csv")
    assert export.status_code == 200 and "Dee" in export.text
    zh = console.get("/segments?lang=zh-CN").text
    assert "客户分群" in zh and "导出 CSV" in zh
    token = csrf_of(detail.text)
    assert console.post(f"/segments/{slug}/delete", data={"csrf": token}).status_code == 303
    assert console.get(f"/segments/{slug}").status_code == 404


def test_promoters_by_persona_highlight_evidence_safely(console: TestClient, people: None) -> None:
    sign_in(console)
    page = console.get("/promoters?persona=rational")
    assert page.status_code == 200
    assert "<mark>系统稳定</mark>，<mark>ROI很高</mark>" in page.text
    assert 'data-testid="tab-rational"' in page.text
    # a's latest answer is a 3, so a is not among the emotional promoters now.
    emotional = console.get("/promoters?persona=emotional").text
    assert "爱了" not in emotional
    influential = console.get("/promoters?persona=high_influence&lang=zh-TW").text
    assert "推薦者畫像" in influential and "陈" not in influential  # c is a passive


def test_promoter_comment_markup_is_escaped(console: TestClient, engine: Engine,
                                            people: None) -> None:  # fmt: skip
    with unit_of_work(engine) as session:
        session.execute(update(Response).where(Response.external_id == "ra2")
                        .values(score=10, persona="emotional", evidence=["爱了", "<b>"],
                                comment="<script>alert(1)</script><b>爱了</b>"))  # fmt: skip
        customer_aggregates.rebuild(session)  # the update bypassed services.records
    sign_in(console)
    page = console.get("/promoters?persona=emotional").text
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;<mark>&lt;b&gt;</mark><mark>爱了</mark>" in page
