"""The console's playbook pages (in-process HTTP): list, enable/disable, edit with the error
shown at its line, apply as a new version, enrolments; in three languages; analysts read."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from advocado.services.users import create_user
from advocado.store.db import unit_of_work
from advocado.web.app import create_app

PASSWORD = "correct horse battery"


@pytest.fixture
def app_client(engine: Engine, database_url: str) -> Iterator[TestClient]:
    with unit_of_work(engine) as session:
        create_user(session, email="m@example.com", password=PASSWORD, role="marketer")
        create_user(session, email="a@example.com", password=PASSWORD, role="analyst")
    app = create_app(database_url)
    with TestClient(app, follow_redirects=False) as client:
        yield client
    app.state.engine.dispose()


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found
    return found.group(1)


def sign_in(client: TestClient, email: str) -> None:
    token = csrf_of(client.get("/login").text)
    answer = client.post("/login", data={"email": email, "password": PASSWORD, "csrf": token})
    assert answer.status_code == 303


def test_marketers_edit_playbooks_in_the_console(app_client: TestClient) -> None:
    client = app_client
    assert client.get("/playbooks").status_code == 303  # strangers: to the login page
    sign_in(client, "m@example.com")
    page = client.get("/playbooks?lang=zh-CN").text
    assert "推荐者激活漏斗" in page and "已启用" in page
    assert "推荐者激活漏斗" not in client.get("/playbooks?lang=en").text
    assert "推薦者激活漏斗" in client.get("/playbooks?lang=zh-TW").text

    token = csrf_of(page)
    client.post("/playbooks/activation-funnel/switch", data={"csrf": token, "enabled": "no"})
    assert "disabled" in client.get("/playbooks?lang=en").text

    detail = client.get("/playbooks/activation-funnel?lang=en").text
    source = re.search(r'data-testid="source"[^>]*>(.*?)</textarea>', detail, re.S).group(1)
    import html

    source = html.unescape(source)
    broken = source.replace("wait: 24h", "wait: a day")
    answer = client.post("/playbooks/activation-funnel?lang=en",
                         data={"csrf": token, "source": broken, "action": "validate"})  # fmt: skip
    assert answer.status_code == 400
    line = broken.splitlines().index("    wait: a day") + 1
    assert f"Line {line}, steps[1].wait" in answer.text
    assert "▶ " + html.escape("    wait: a day") in answer.text  # the line itself is shown

    changed = source.replace("wait: 24h", "wait: 36h")
    answer = client.post("/playbooks/activation-funnel?lang=en",
                         data={"csrf": token, "source": changed, "action": "apply"})  # fmt: skip
    assert answer.status_code == 200 and "Applied as a new version" in answer.text
    assert "activation-funnel v2" in answer.text
    assert "Enrolments" in answer.text


def test_analysts_read_but_do_not_change(app_client: TestClient) -> None:
    client = app_client
    sign_in(client, "a@example.com")
    page = client.get("/playbooks?lang=en").text
    assert "activation-funnel" in page and 'data-testid="switch-' not in page
    detail = client.get("/playbooks/activation-funnel").text
    source = re.search(r'data-testid="source"[^>]*>(.*?)</textarea>', detail, re.S).group(1)
    import html

    answer = client.post("/playbooks/activation-funnel?lang=en", data={
        "csrf": csrf_of(detail), "source": html.unescape(source).replace("24h", "1h"),
        "action": "apply"})  # fmt: skip
    assert answer.status_code == 403
    assert "activation-funnel v1" in client.get("/playbooks/activation-funnel").text
