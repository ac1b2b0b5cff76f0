"""Over HTTP against a real server process."""

import re
from typing import Any

import httpx
from sqlalchemy import Engine

from advocado.services.demo import ADMIN_EMAIL, ADMIN_PASSWORD, load_demo


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found
    return found.group(1)


def test_console_over_http(live_server: Any, engine: Engine) -> None:
    load_demo(engine, customers=60)
    with httpx.Client(base_url=live_server.url, follow_redirects=False, timeout=10) as http:
        health = http.get("/healthz")
        assert (health.status_code, health.json()["database"]) == (200, "ok")

        home = http.get("/")
        assert (home.status_code, home.headers["location"]) == (303, "/login")
        for path in ("/docs", "/openapi.json"):
            hidden = http.get(path)
            assert hidden.status_code == 303, path
            assert hidden.headers["location"].startswith("/login"), path
            assert "openapi" not in hidden.text and "swagger" not in hidden.text.lower()

        form = http.get("/login")
        wrong = http.post("/login", data={"email": ADMIN_EMAIL, "password": "not the password",
                                          "csrf": _csrf(form.text)})  # fmt: skip
        assert wrong.status_code == 400
        assert "Wrong email or password." in wrong.text
        assert http.get("/").status_code == 303

        ok = http.post("/login", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD,
                                       "csrf": _csrf(wrong.text)})  # fmt: skip
        assert (ok.status_code, ok.headers["location"]) == (303, "/")
        page = http.get("/")
        assert page.status_code == 200
        assert "NPS, all time" in page.text
        assert re.search(r'class="score[^"]*">\s*[+-]\d+\.\d', page.text), "no NPS figure shown"
        assert http.get("/openapi.json").json()["openapi"].startswith("3.")
