"""Tasks and challenges over HTTP (in-process app, real database): the public entry page
/c/{token} (valid, expired challenge, bad token, too large or fake image, forged form), the
featured page, console review and outcome forms with role checks, and the API."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from ugc_support import PASSWORD, T0, add_user, seed

from advocado import clock
from advocado.services import challenges, tasks
from advocado.services.apikeys import create_api_key
from advocado.store.db import read_only, unit_of_work
from advocado.store.models import ChallengeEntry, Task
from advocado.web.app import create_app

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 200


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    app = create_app(database_url)
    with TestClient(app, base_url="http://testserver") as test_client:
        yield test_client
    app.state.engine.dispose()


@pytest.fixture
def invited(engine: Engine) -> tuple[str, list[int]]:
    clock.set_now(T0)
    ids = seed(engine)
    with unit_of_work(engine) as session:
        token = challenges.invite(session, challenge="story", customer_id=ids[0],
                                  cause_key="k").token  # fmt: skip
    return token, ids


def form_key(page: str) -> str:
    found = re.search(r'name="form_key" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, page
    return found.group(1)


def sign_in(client: TestClient, engine: Engine, role: str) -> str:
    email = f"{role}@example.com"
    add_user(engine, email, role)
    token = csrf_of(client.get("/login").text)
    response = client.post("/login", data={"email": email, "password": PASSWORD, "csrf": token},
                           follow_redirects=False)  # fmt: skip
    assert response.status_code == 303
    return email


def entries(engine: Engine) -> list[ChallengeEntry]:
    with read_only(engine) as session:
        return list(session.scalars(select(ChallengeEntry)))


# --- the public entry page -----------------------------------------------------------------


def test_entry_page_is_in_the_customers_language_and_takes_an_entry(
    client: TestClient, engine: Engine, invited: tuple[str, list[int]]
) -> None:
    token, _ = invited
    page = client.get(f"/c/{token}")
    assert page.status_code == 200
    assert "#我和壶匠的故事#" in page.text and "张0号，诚邀您参加！" in page.text
    assert page.headers["referrer-policy"] == "same-origin"  # the token stays on this site
    response = client.post(
        f"/c/{token}",
        data={"form_key": form_key(page.text), "link": "https://weibo.com/123/abc",
              "text": "每天早上用壶匠手冲一杯"},
        files={"image": ("cup.png", PNG, "image/png")},
        follow_redirects=False,
    )  # fmt: skip
    assert response.status_code == 303 and response.headers["location"].endswith("saved=1")
    thanks = client.get(response.headers["location"])
    assert "谢谢！我们已收到您的作品" in thanks.text and "每天早上用壶匠手冲一杯" in thanks.text
    [entry] = entries(engine)
    assert entry.image == PNG and entry.image_type == "image/png" and entry.status == "pending"
    english = client.get(f"/c/{token}?lang=en")
    assert "My Kettlecraft story" in english.text


def test_a_bad_token_is_a_clear_404(client: TestClient, invited: tuple[str, list[int]]) -> None:
    response = client.get("/c/not-a-real-token", headers={"accept-language": "zh-CN"})
    assert response.status_code == 404
    assert "This link is not valid" in response.text  # unknown customer: English by default
    response = client.post("/c/not-a-real-token?lang=zh-TW", data={"text": "x"})
    assert response.status_code == 404 and "此連結無效" in response.text


def test_an_ended_challenge_refuses_entries_in_the_customers_language(
    client: TestClient, engine: Engine, invited: tuple[str, list[int]]
) -> None:
    token, _ = invited
    key = form_key(client.get(f"/c/{token}").text)
    clock.set_now(T0 + timedelta(days=40))
    response = client.post(f"/c/{token}", data={"form_key": key, "text": "迟到的故事"})
    assert response.status_code == 410
    assert "挑战赛已结束" in response.text
    assert entries(engine) == []


def test_too_large_or_fake_images_are_refused_and_nothing_is_saved(
    client: TestClient, engine: Engine, invited: tuple[str, list[int]]
) -> None:
    token, _ = invited
    key = form_key(client.get(f"/c/{token}").text)
    big = PNG + b"\0" * (1024 * 1024)  # the test challenge takes 1 MB
    response = client.post(f"/c/{token}", data={"form_key": key, "text": "大图"},
                           files={"image": ("big.png", big, "image/png")})  # fmt: skip
    assert response.status_code == 413
    assert "照片太大了：最大 1 MB" in response.text
    assert "大图" in response.text  # what they typed is kept
    huge = PNG + b"\0" * (3 * 1024 * 1024)  # refused on its Content-Length, before reading
    response = client.post(f"/c/{token}", data={"form_key": key},
                           files={"image": ("huge.png", huge, "image/png")})  # fmt: skip
    assert response.status_code == 413 and "照片太大了" in response.text
    fake = b"<?php echo 'hi'; ?>" + b"\0" * 100
    response = client.post(f"/c/{token}", data={"form_key": key, "text": "x"},
                           files={"image": ("cup.png", fake, "image/png")})  # fmt: skip
    assert response.status_code == 415 and "无法识别该文件为照片" in response.text
    response = client.post(f"/c/{token}", data={"form_key": key, "link": "javascript:alert(1)"})
    assert response.status_code == 422 and "http://" in response.text
    assert entries(engine) == []


def test_forged_forms_are_refused(
    client: TestClient, engine: Engine, invited: tuple[str, list[int]]
) -> None:
    token, _ = invited
    key = form_key(client.get(f"/c/{token}").text)
    assert client.post(f"/c/{token}", data={"form_key": "forged", "text": "x"}).status_code == 403
    cross_site = client.post(f"/c/{token}", data={"form_key": key, "text": "x"},
                             headers={"origin": "https://evil.example"})  # fmt: skip
    assert cross_site.status_code == 403 and "表单已过期" in cross_site.text
    assert entries(engine) == []


# --- console review, featured page, role checks ---------------------------------------------


def submit(client: TestClient, token: str, text: str) -> None:
    key = form_key(client.get(f"/c/{token}").text)
    response = client.post(f"/c/{token}", data={"form_key": key, "text": text},
                           files={"image": ("a.png", PNG, "image/png")},
                           follow_redirects=False)  # fmt: skip
    assert response.status_code == 303, response.text


def test_review_in_the_console_and_the_featured_page(
    client: TestClient, engine: Engine, invited: tuple[str, list[int]]
) -> None:
    token, _ = invited
    submit(client, token, "我的故事")
    [entry] = entries(engine)
    assert client.get(f"/c/image/{entry.id}").status_code == 404  # not public before featuring
    email = sign_in(client, engine, "community")
    page = client.get("/challenges/story?lang=zh-CN")
    assert "我的故事" in page.text and "待审核" in page.text
    assert client.get(f"/challenges/entries/{entry.id}/image").content == PNG
    csrf = csrf_of(page.text)
    url = f"/challenges/story/entries/{entry.id}/review"
    no_reason = client.post(url, data={"csrf": csrf, "action": "reject", "reason": ""})
    assert no_reason.status_code == 422 and "reason" in no_reason.text
    for action in ("approve", "feature"):
        response = client.post(url, data={"csrf": csrf, "action": action},
                               follow_redirects=False)  # fmt: skip
        assert response.status_code == 303
    with read_only(engine) as session:
        reviewed = session.get(ChallengeEntry, entry.id)
        assert reviewed is not None and reviewed.featured and reviewed.reviewed_by == email
    public = client.get("/c/featured/story", headers={"accept-language": "zh-TW"})
    assert public.status_code == 200 and "我的故事" in public.text and "張" not in public.text
    assert "精選作品" in public.text and "张**" in public.text
    assert client.get(f"/c/image/{entry.id}").content == PNG
    assert client.get("/c/featured/nope").status_code == 404


def test_an_analyst_reads_but_cannot_review_or_record_outcomes(
    client: TestClient, engine: Engine, invited: tuple[str, list[int]]
) -> None:
    token, ids = invited
    submit(client, token, "故事")
    [entry] = entries(engine)
    with unit_of_work(engine) as session:
        task = tasks.create_task(session, customer_id=ids[1], kind="ambassador_invite",
                                 title="邀请张1号", due_at=T0 - timedelta(hours=1),
                                 cause_key="t1")  # fmt: skip
    sign_in(client, engine, "analyst")
    page = client.get("/challenges/story")
    assert page.status_code == 200 and "故事" in page.text and 'value="approve"' not in page.text
    csrf = csrf_of(page.text)
    refused = client.post(f"/challenges/story/entries/{entry.id}/review",
                          data={"csrf": csrf, "action": "approve"})  # fmt: skip
    assert refused.status_code == 403 and "analyst" in refused.text
    detail = client.get(f"/tasks/{task.id}")
    assert detail.status_code == 200 and 'name="outcome"' not in detail.text
    refused = client.post(f"/tasks/{task.id}/outcome", data={"csrf": csrf, "outcome": "accepted"})
    assert refused.status_code == 403
    with read_only(engine) as session:
        assert session.get(ChallengeEntry, entry.id).status == "pending"  # type: ignore[union-attr]
        assert session.get(Task, task.id).done is False  # type: ignore[union-attr]


def test_task_list_detail_and_outcome_in_the_console(
    client: TestClient, engine: Engine, invited: tuple[str, list[int]]
) -> None:
    _, ids = invited
    with unit_of_work(engine) as session:
        late = tasks.create_task(session, customer_id=ids[1], kind="ambassador_invite",
                                 title="邀请张1号", due_at=T0 - timedelta(hours=3),
                                 cause_key="late")  # fmt: skip
        tasks.create_task(session, customer_id=ids[2], kind="detractor_follow_up",
                          title="回访张2号", due_at=T0 + timedelta(days=1),
                          cause_key="later")  # fmt: skip
    email = sign_in(client, engine, "community")
    listing = client.get("/tasks?lang=zh-CN")
    assert listing.text.index("邀请张1号") < listing.text.index("回访张2号")
    assert "2 个未完成，1 个已逾期" in listing.text
    overdue = client.get("/tasks?status=overdue")
    assert "邀请张1号" in overdue.text and "回访张2号" not in overdue.text
    by_kind = client.get("/tasks?kind=detractor_follow_up")
    assert "回访张2号" in by_kind.text and "邀请张1号" not in by_kind.text
    detail = client.get(f"/tasks/{late.id}")
    taken = client.post(f"/tasks/{late.id}/assign", data={"csrf": csrf_of(detail.text), "to": "me"})
    assert f'data-testid="assignee">{email}<' in taken.text
    mine = client.get("/tasks?status=mine")
    assert "邀请张1号" in mine.text and "回访张2号" in mine.text  # mine, and my role's unassigned
    detail = client.get(f"/tasks/{late.id}")
    assert "研发师（KOE）" in detail.text and "<mark>" in detail.text  # evidence highlighted
    response = client.post(f"/tasks/{late.id}/outcome",
                           data={"csrf": csrf_of(detail.text), "outcome": "accepted",
                                 "note": "已拉进大使群"}, follow_redirects=False)  # fmt: skip
    assert response.status_code == 303
    done = client.get(f"/tasks/{late.id}")
    assert f"由 {email} 于" in done.text and "已拉进大使群" in done.text


# --- API ------------------------------------------------------------------------------------


def bearer(engine: Engine, scopes: list[str]) -> dict[str, str]:
    with unit_of_work(engine) as session:
        _, token = create_api_key(session, name="crm", scopes=scopes)
    return {"Authorization": f"Bearer {token}"}


def test_api_tasks_and_challenges(
    client: TestClient, engine: Engine, invited: tuple[str, list[int]]
) -> None:
    token, ids = invited
    submit(client, token, "API 故事")
    with unit_of_work(engine) as session:
        task = tasks.create_task(session, customer_id=ids[1], kind="ambassador_invite",
                                 title="invite", due_at=T0 - timedelta(hours=1),
                                 cause_key="api")  # fmt: skip
    read, write = bearer(engine, ["read"]), bearer(engine, ["read", "write"])
    listed = client.get("/api/v1/tasks?status=overdue", headers=read).json()
    assert [t["id"] for t in listed["items"]] == [task.id] and listed["items"][0]["overdue"]
    one = client.get(f"/api/v1/tasks/{task.id}", headers=read).json()
    assert one["customer"]["latest_response"]["score"] == 10 and "KOE" in one["script"]
    body = {"outcome": "no_answer", "note": "rang twice"}
    assert client.patch(f"/api/v1/tasks/{task.id}", json=body, headers=read).status_code == 403
    saved = client.patch(f"/api/v1/tasks/{task.id}", json=body, headers=write)
    assert saved.status_code == 200 and saved.json()["outcome_by"] == "api:crm"
    again = client.patch(f"/api/v1/tasks/{task.id}", json={"outcome": "accepted"}, headers=write)
    assert (
        again.status_code == 409 and "no_answer by api:crm" in again.json()["detail"][0]["reason"]
    )
    bad = client.patch(f"/api/v1/tasks/{task.id}", json={"outcome": "maybe"}, headers=write)
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "outcome"

    items = client.get("/api/v1/challenges", headers=read).json()["items"]
    assert items[0]["slug"] == "story" and items[0]["entries"]["pending"] == 1
    [entry] = client.get("/api/v1/challenges/story/entries", headers=read).json()["items"]
    assert client.get(f"/api/v1/entries/{entry['id']}/image", headers=read).content == PNG
    reject = client.patch(f"/api/v1/entries/{entry['id']}", json={"action": "reject"},
                          headers=write)  # fmt: skip
    assert reject.status_code == 422 and reject.json()["detail"][0]["field"] == "reason"
    for action in ("approve", "feature"):
        response = client.patch(f"/api/v1/entries/{entry['id']}", json={"action": action},
                                headers=write)  # fmt: skip
        assert response.status_code == 200
    featured = client.get("/api/v1/challenges/story/featured", headers=read).json()["items"]
    assert [e["text"] for e in featured] == ["API 故事"]

    new = {
        "slug": "spring",
        "hashtag": "春日手冲",
        "starts_at": "2026-12-01",
        "ends_at": "2027-03-01",
        "title": "Spring",
        "prompt": "Tell us",
        "prize": "A kettle",
    }
    created = client.post("/api/v1/challenges", json=new, headers=write)
    assert created.status_code == 201 and created.json()["hashtag"] == "#春日手冲#"
    broken = client.post("/api/v1/challenges", json={**new, "ends_at": "2020-01-01"},
                         headers=write)  # fmt: skip
    assert broken.status_code == 422 and broken.json()["detail"][0]["field"] == "ends_at"
    invitation = {"customer_external_id": "c2", "cause_key": "crm:42"}
    first = client.post("/api/v1/challenges/spring/invitations", json=invitation, headers=write)
    second = client.post("/api/v1/challenges/spring/invitations", json=invitation, headers=write)
    assert first.status_code == 200 and first.json() == second.json()
    assert first.json()["url_path"].startswith("/c/")
    with read_only(engine) as session:
        assert session.scalar(select(func.count()).select_from(ChallengeEntry)) == 1
