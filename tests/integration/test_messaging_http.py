"""Messaging over HTTP, with a real SMTP server: the unsubscribe flow from the link in a received
mail (GET confirm page in the customer's language, POST, RFC 8058 one-click), tracked links,
the API (log, retry, bounce, suppressions, templates, previews, scripts) and console pages."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from test_messaging import T0, ask, customer

from advocado import clock
from advocado.services import messaging
from advocado.services.apikeys import create_api_key
from advocado.services.users import create_user
from advocado.store.db import read_only, unit_of_work
from advocado.store.models import Customer, Message
from advocado.web.app import create_app

EMAIL, PASSWORD = "marketer@example.com", "correct horse"


@pytest.fixture
def web(engine: Engine, database_url: str, smtp_server) -> Iterator[TestClient]:
    clock.set_now(T0)
    with unit_of_work(engine) as session:
        create_user(session, email=EMAIL, password=PASSWORD, role="admin")
    app = create_app(database_url)
    with TestClient(app, follow_redirects=False) as client:
        yield client
    app.state.engine.dispose()


def auth(engine: Engine, *scopes: str) -> dict[str, str]:
    with unit_of_work(engine) as session:
        _, token = create_api_key(session, name="crm", scopes=list(scopes or ("read", "write")))
    return {"Authorization": f"Bearer {token}"}


def sign_in(client: TestClient) -> None:
    page = client.get("/login").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    client.post("/login", data={"email": EMAIL, "password": PASSWORD, "csrf": csrf})


def delivered(engine: Engine, smtp_server, external_id: str, **kwargs) -> tuple[int, object]:
    cid = customer(engine, external_id, **kwargs)
    queued = ask(engine, cid, f"ask:{external_id}")
    messaging.deliver_due(engine)
    [mail] = smtp_server.to(f"{external_id}@example.com")
    return queued.message_id, mail


def path_of(url: str) -> str:
    return re.sub(r"^http://testserver", "", url)


def test_unsubscribe_from_the_received_mail(web: TestClient, engine: Engine, smtp_server) -> None:
    message_id, mail = delivered(engine, smtp_server, "wang", locale="zh-CN")
    link = path_of(mail["List-Unsubscribe"][1:-1])
    page = web.get(link)
    assert page.status_code == 200 and '<html lang="zh-CN">' in page.text
    assert "不再接收来自Avocado Coffee的营销信息" in page.text
    with read_only(engine) as session:  # a GET (a mail scanner) changes nothing
        assert session.get(Customer, 1).marketing_consent is True
    done = web.post(link)
    assert done.status_code == 200 and "您已退订" in done.text
    with read_only(engine) as session:
        assert session.get(Customer, 1).marketing_consent is False
    # instant and final: even with consent given again, marketing stays off
    with unit_of_work(engine) as session:
        session.get(Customer, 1).marketing_consent = True
    clock.set_now(T0.replace(month=6))
    assert ask(engine, 1, "again").reason.startswith("unsubscribed")
    assert "您已经退订" in web.get(link).text
    assert web.get(link[:-3] + "abc").status_code == 404  # a forged token


def test_one_click_unsubscribe_post_rfc8058(web: TestClient, engine: Engine, smtp_server) -> None:
    _, mail = delivered(engine, smtp_server, "amy", locale="zh-TW")
    link = path_of(mail["List-Unsubscribe"][1:-1])
    response = web.post(link, content=b"List-Unsubscribe=One-Click",
                        headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert response.status_code == 200 and "您已取消訂閱" in response.text
    assert [s["kind"] for s in messaging.list_suppressions(engine)] == ["email", "customer"]


def test_tracked_link_redirects_and_marks_clicked_once(
    web: TestClient, engine: Engine, smtp_server
) -> None:
    message_id, mail = delivered(engine, smtp_server, "li")
    text = mail.get_body(("plain",)).get_content()
    links = re.findall(r"http://testserver/m/[\w-]+", text)
    assert links
    scanner = web.get(path_of(links[0]), headers={"User-Agent": "Mozilla/5.0 (compatible; "
                                                   "SafeLinks-Scanner bot)"})  # fmt: skip
    assert scanner.status_code == 302 and web.head(path_of(links[0])).status_code == 302
    assert messaging.message_detail(engine, message_id=message_id)["status"] == "sent"
    first = web.get(path_of(links[0]))
    assert first.status_code == 302
    assert first.headers["location"].startswith("https://apps.apple.com/")
    web.get(path_of(links[0]))
    detail = messaging.message_detail(engine, message_id=message_id)
    assert detail["status"] == "clicked" and detail["clicked_at"] is not None
    customer(engine, "nc", consent=False)
    ask(engine, 2, "skipped")
    assert web.get("/api/v1/messages/funnel", headers=auth(engine, "read")).json() == {
        "review_ask": {"asked": 1, "skipped": 1, "delivered": 1, "clicked": 1, "bounced": 0,
                       "dead": 0, "uncertain": 0}}  # fmt: skip
    assert [e["status"] for e in detail["events"]].count("clicked") == 1
    assert detail["links"][0]["clicks"] == 2
    assert web.get("/m/nope").status_code == 404


def test_api_log_retry_bounce_suppress(web: TestClient, engine: Engine, smtp_server) -> None:
    headers = auth(engine)
    reader = auth(engine, "read")
    message_id, _ = delivered(engine, smtp_server, "bo")
    customer(engine, "nc", consent=False)
    ask(engine, 2, "skip-me")
    log = web.get("/api/v1/messages", headers=reader).json()
    assert [m["status"] for m in log["items"]] == ["skipped", "sent"]
    skipped = web.get("/api/v1/messages?reason=no_consent", headers=reader).json()["items"]
    assert len(skipped) == 1 and skipped[0]["customer_external_id"] == "nc"
    assert web.get("/api/v1/messages?status=nope", headers=reader).status_code == 422
    one = web.get(f"/api/v1/messages/{message_id}", headers=reader).json()
    assert [e["status"] for e in one["events"]] == ["queued", "sent"]
    assert web.post(f"/api/v1/messages/{message_id}/bounce", json={"detail": "550"},
                    headers=reader).status_code == 403  # fmt: skip
    bounced = web.post(f"/api/v1/messages/{message_id}/bounce",
                       json={"detail": "550 5.1.1 user unknown"}, headers=headers)  # fmt: skip
    assert bounced.json() == {"id": message_id, "status": "bounced"}
    assert web.post("/api/v1/messages/999/bounce", json={}, headers=headers).status_code == 404
    retried = web.post(f"/api/v1/messages/{message_id}/retry", headers=headers)
    assert retried.json()["status"] == "queued"
    again = web.post(f"/api/v1/messages/{message_id}/retry", headers=headers)
    assert again.status_code == 422 and "is queued" in again.json()["detail"][0]["reason"]
    added = web.post("/api/v1/suppressions", json={"kind": "phone", "value": "+86 138 0000 1111"},
                     headers=headers)  # fmt: skip
    assert added.status_code == 201
    bad = web.post("/api/v1/suppressions", json={"kind": "fax", "value": "1"}, headers=headers)
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "kind"
    values = [s["value"] for s in web.get("/api/v1/suppressions", headers=reader).json()["items"]]
    assert values == ["+8613800001111", "bo@example.com"]


def test_api_templates_override_and_preview(web: TestClient, engine: Engine, smtp_server) -> None:
    headers = auth(engine)
    listed = web.get("/api/v1/message-templates", headers=headers).json()["items"]
    assert {(t["name"], t["locale"]) for t in listed} >= {("review_ask", "zh-TW"),
                                                         ("ugc_invite", "en")}  # fmt: skip
    body = {"context": {"hashtag": "#我的咖啡时刻#"}}
    preview = web.post("/api/v1/message-templates/ugc_invite/zh-CN/preview", json=body,
                       headers=headers)  # fmt: skip
    assert preview.status_code == 200
    assert "#我的咖啡时刻#" in preview.json()["subject"]
    broken = web.put("/api/v1/message-templates/review_ask/en",
                     json={"subject": "Hi {{ name", "text": "x"}, headers=headers)  # fmt: skip
    assert broken.status_code == 422
    assert "subject, line 1" in broken.json()["detail"][0]["reason"]
    saved = web.put(
        "/api/v1/message-templates/review_ask/en",
        json={"subject": "Dear {{ name }}, one favour?",
              "text": "{% for l in review_links %}{{ track(l.url, l.name) }}\n{% endfor %}"},
        headers=headers,
    )  # fmt: skip
    assert saved.status_code == 200 and saved.json()["origin"] == "override"
    # the brand's version is what customers get, with the footer added regardless
    _, mail = delivered(engine, smtp_server, "zoe")
    assert mail["Subject"] == "Dear Zoe, one favour?"
    text = mail.get_body(("plain",)).get_content()
    assert "Unsubscribe: http://testserver/u/" in text and "Sent by Avocado Coffee" in text
    assert web.delete("/api/v1/message-templates/review_ask/en", headers=headers).json() == {
        "deleted": True
    }


def test_api_scripts(web: TestClient, engine: Engine) -> None:
    headers = auth(engine, "read")
    items = web.get("/api/v1/scripts?locale=zh-CN&code=WANG88", headers=headers).json()["items"]
    assert {(s["style"], s["format"]) for s in items} == {
        (style, fmt) for style in ("benefit", "emotional", "scenario")
        for fmt in ("moments", "private")
    }  # fmt: skip
    assert any("WANG88" in s["text"] for s in items)
    tw = web.get("/api/v1/scripts?locale=zh-TW&style=emotional&format=private", headers=headers)
    assert len(tw.json()["items"]) == 1 and "喜歡" in tw.json()["items"][0]["text"]
    assert web.get("/api/v1/scripts?locale=fr", headers=headers).status_code == 422


def test_console_pages(web: TestClient, engine: Engine, smtp_server, monkeypatch) -> None:
    from smtp_sink import free_port

    message_id, _ = delivered(engine, smtp_server, "kim")
    monkeypatch.setenv("ADVOCADO_SMTP_URL", f"smtp://127.0.0.1:{free_port()}")
    monkeypatch.setenv("ADVOCADO_MESSAGE_MAX_ATTEMPTS", "1")
    cid = customer(engine, "lee")
    dead = ask(engine, cid, "dead").message_id
    messaging.deliver_due(engine)
    assert web.get("/messages").status_code == 303  # login first
    sign_in(web)
    log = web.get("/messages?lang=zh-CN")
    assert log.status_code == 200 and "消息记录" in log.text and "kim" in log.text
    assert 'data-status="dead"' in log.text
    assert "kim" not in web.get("/messages?status=dead").text
    assert "已尝试 1 次" in web.get(f"/messages/{dead}?lang=zh-CN").text
    page = web.get("/messages/dead?lang=zh-TW")
    assert "無法投遞" in page.text and f"retry-{dead}" in page.text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    retried = web.post(f"/messages/{dead}/retry", data={"csrf": csrf})
    assert retried.status_code == 303
    with read_only(engine) as session:
        assert session.get(Message, dead).status == "queued"
    templates = web.get("/messages/templates?name=referral_invite&locale=zh-TW")
    assert "推薦碼" in templates.text and 'data-testid="preview"' in templates.text
    assert "{{ code }}" in templates.text  # the edit form holds the current source
    form = {"csrf": csrf, "name": "referral_invite", "locale": "zh-TW"}
    broken = web.post("/messages/templates", data={**form, "subject": "x", "text": "{% if %}"})
    assert broken.status_code == 400 and "text, line 1" in broken.text
    saved = web.post("/messages/templates", data={**form, "subject": "邀請 {{ name }}",
                                                 "text": "碼：{{ code }}"})  # fmt: skip
    assert saved.status_code == 200 and 'data-testid="saved"' in saved.text
    assert "邀請 陳小明" in saved.text  # the preview now shows the brand's version
    scripts = web.get("/messages/scripts?locale=en&code=KIM1&lang=en")
    assert "KIM1" in scripts.text and "Moments post" in scripts.text
    assert web.get(f"/messages/{message_id}").status_code == 200
