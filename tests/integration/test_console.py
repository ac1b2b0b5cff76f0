"""The console through the ASGI app in-process: access control, sign-in, languages."""

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from advocado import clock
from advocado.domain.records import ResponseRecord
from advocado.services.installation import SESSION_KEY_SETTING
from advocado.services.records import save_responses
from advocado.services.users import create_user, set_disabled
from advocado.store.db import unit_of_work
from advocado.store.models import Setting
from advocado.web.app import create_app

EMAIL, PASSWORD = "analyst@example.com", "correct horse"


@pytest.fixture
def client(engine: Engine, database_url: str) -> Iterator[TestClient]:
    with unit_of_work(engine) as session:
        create_user(session, email=EMAIL, password=PASSWORD, role="analyst")
    app = create_app(database_url)
    with TestClient(app, follow_redirects=False) as client:
        yield client
    app.state.engine.dispose()


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "no CSRF field on the page"
    return found.group(1)


def sign_in(client: TestClient, email: str = EMAIL, password: str = PASSWORD, **form: str):
    token = csrf_of(client.get("/login").text)
    return client.post("/login", data={"email": email, "password": password, "csrf": token, **form})


@pytest.mark.parametrize("path", ["/", "/docs", "/openapi.json", "/nothing-here", "/api/v2"])
def test_everything_but_public_paths_sends_strangers_to_login(client: TestClient,
                                                             path: str) -> None:  # fmt: skip
    response = client.get(path)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")
    assert "openapi" not in response.text


def test_public_paths_answer_without_login(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"
    assert client.get("/static/console.css").status_code == 200
    assert client.get("/login").status_code == 200
    assert client.get("/r/some-code").status_code == 404  # not the login page: no links yet
    assert client.post("/").status_code == 401


def test_sign_in_goes_back_where_you_were_going(client: TestClient) -> None:
    assert client.get("/docs").headers["location"] == "/login?next=%2Fdocs"
    response = sign_in(client, next="/docs")
    assert (response.status_code, response.headers["location"]) == (303, "/docs")
    assert "swagger" in client.get("/docs").text.lower()
    assert client.get("/openapi.json").json()["info"]["title"] == "Advocado"


def test_api_docs_need_no_internet(client: TestClient) -> None:
    """Swagger UI's files come from this server, not a CDN: /docs works offline."""
    sign_in(client)
    page = client.get("/docs").text
    assert "cdn" not in page and "/static/swagger/swagger-ui-bundle.js" in page
    script = client.get("/static/swagger/swagger-ui-bundle.js")
    assert script.status_code == 200 and "SwaggerUIBundle" in script.text


def test_sign_in_never_sends_you_to_another_site(client: TestClient) -> None:
    assert sign_in(client, next="//evil.example/").headers["location"] == "/"


def test_wrong_password_says_so_and_lets_nobody_in(client: TestClient) -> None:
    response = sign_in(client, password="wrong password")
    assert response.status_code == 400
    assert "Wrong email or password." in response.text
    assert client.get("/").status_code == 303


def test_login_without_the_form_token_is_refused(client: TestClient) -> None:
    client.get("/login")
    response = client.post("/login", data={"email": EMAIL, "password": PASSWORD, "csrf": "x"})
    assert response.status_code == 400
    assert "expired" in response.text
    assert client.get("/").status_code == 303


def test_overview_after_sign_in(client: TestClient, engine: Engine) -> None:
    with unit_of_work(engine) as session:
        save_responses(session, [
            ResponseRecord("r1", 10, clock.now() - timedelta(days=1), comment="love it!"),
            ResponseRecord("r2", 3, clock.now() - timedelta(days=200), comment="broken"),
        ])  # fmt: skip
    sign_in(client)
    page = client.get("/")
    assert page.status_code == 200
    assert "NPS, all time" in page.text and "NPS, last 90 days" in page.text
    assert "+0.0" in page.text and "+100.0" in page.text
    assert "love it!" in page.text and "anonymous" in page.text


def test_sign_out_ends_the_session(client: TestClient) -> None:
    sign_in(client)
    token = csrf_of(client.get("/").text)
    assert client.post("/logout", data={"csrf": token}).headers["location"] == "/login"
    assert client.get("/").status_code == 303


def test_disabled_user_is_signed_out_at_once(client: TestClient, engine: Engine) -> None:
    sign_in(client)
    assert client.get("/").status_code == 200
    with unit_of_work(engine) as session:
        set_disabled(session, email=EMAIL, disabled=True)
    assert client.get("/").status_code == 303
    assert client.get("/docs").status_code == 303


def test_five_failures_lock_the_email_for_fifteen_minutes(client: TestClient) -> None:
    for _ in range(5):
        assert sign_in(client, password="guess").status_code == 400
    locked = sign_in(client)  # even the right password
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.text
    assert client.get("/").status_code == 303
    assert sign_in(client, email="other@example.com", password="guess").status_code == 400
    clock.set_now(clock.now() + timedelta(minutes=15, seconds=1))
    assert sign_in(client).status_code == 303


def test_language_from_browser_switch_and_cookie(client: TestClient) -> None:
    assert "登入" in client.get("/login", headers={"Accept-Language": "zh-TW,zh;q=0.9"}).text
    sign_in(client)
    page = client.get("/?lang=zh-CN")
    assert "净推荐值（全部时间）" in page.text and '<html lang="zh-CN">' in page.text
    assert "最新回复" in client.get("/").text  # remembered by the cookie
    assert "最新回覆" in client.get("/?lang=zh-TW").text
    assert "Latest responses" in client.get("/?lang=en").text


def test_signing_key_is_generated_once_and_kept(client: TestClient, engine: Engine,
                                                database_url: str) -> None:  # fmt: skip
    sign_in(client)
    with unit_of_work(engine) as session:
        key = session.scalar(select(Setting.value).where(Setting.key == SESSION_KEY_SETTING))
    assert key and len(key) >= 32
    restarted = create_app(database_url)  # same database: the session cookie still works
    with TestClient(restarted, follow_redirects=False, cookies=client.cookies) as again:
        assert again.get("/").status_code == 200
    restarted.state.engine.dispose()


def test_configured_signing_key_wins(client: TestClient, database_url: str,
                                     monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    sign_in(client)
    monkeypatch.setenv("ADVOCADO_SECRET_KEY", "a-key-from-the-environment-0123456789")
    other = create_app(database_url)
    with TestClient(other, follow_redirects=False, cookies=client.cookies) as again:
        assert again.get("/").status_code == 303  # signed with the stored key, not this one
    other.state.engine.dispose()
