"""The referral engine against a real `advocado serve` process: no click lost across a clean
shutdown, and 50 racing deliveries of one order over HTTP pay once."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, func, select

from advocado.services import programs
from advocado.services.apikeys import create_api_key
from advocado.store.db import unit_of_work
from advocado.store.models import Click, LedgerEntry, Reward

PROGRAM = {
    "slug": "friends",
    "currency": "CNY",
    "starts_at": "2026-01-01",
    "landing_url": "https://shop.example.com/",
    "qualify": {"event": "first_order"},
    "rewards": [{"id": "pts", "to": "referrer", "type": "points", "amount": 50}],
}


class Server:
    def __init__(self, database_url: str, log: Path) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "ADVOCADO_DATABASE_URL": database_url}
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [str(Path(sys.executable).parent / "advocado"), "serve", "--port", str(self.port)],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.log = log
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"server did not start:\n{log.read_text()}")
            time.sleep(0.1)

    def stop(self) -> int:
        """A clean shutdown (SIGTERM), as a service manager does it."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode


@pytest.fixture
def server(database_url: str, engine: Engine, tmp_path: Path) -> Iterator[Server]:
    with unit_of_work(engine) as session:
        programs.apply_program(session, PROGRAM)
    running = Server(database_url, tmp_path / "server.log")
    yield running
    running.stop()


def count(engine: Engine, model: object) -> int:
    with unit_of_work(engine) as session:
        return session.scalar(select(func.count()).select_from(model)) or 0  # type: ignore[arg-type]


def test_every_redirect_served_has_its_click_after_a_clean_shutdown(
    server: Server, engine: Engine
) -> None:
    with unit_of_work(engine) as session:
        code = programs.code_for(session, program_slug="friends", customer_external_id="a").code

    def hit(n: int) -> int:
        with httpx.Client(base_url=server.url, follow_redirects=False, timeout=10) as http:
            return sum(
                http.get(f"/r/{code}", headers={"user-agent": f"Mozilla/5.0 n{n}"}).status_code
                == 302
                for _ in range(50)
            )

    with ThreadPoolExecutor(8) as pool:
        served = sum(pool.map(hit, range(8)))
    server.stop()  # clicks still in the batch must be written before the process exits
    assert served == 400
    assert count(engine, Click) == served


def test_fifty_racing_deliveries_of_one_order_over_http_pay_once(
    server: Server, engine: Engine
) -> None:
    with unit_of_work(engine) as session:
        code = programs.code_for(session, program_slug="friends", customer_external_id="a").code
        token = create_api_key(session, name="shop", scopes=["read", "write"])[1]
    headers = {"Authorization": f"Bearer {token}"}
    signup = {"event_id": "s", "type": "signup", "customer_external_id": "f", "referral_code": code}
    assert (
        httpx.post(f"{server.url}/api/v1/events", json=signup, headers=headers).status_code == 201
    )
    order = {
        "event_id": "o",
        "type": "order",
        "customer_external_id": "f",
        "order_external_id": "A-1",
        "amount": 9900,
        "currency": "CNY",
    }

    def deliver(_: int) -> int:
        return httpx.post(
            f"{server.url}/api/v1/events", json=order, headers=headers, timeout=60
        ).status_code

    with ThreadPoolExecutor(50) as pool:
        codes = sorted(pool.map(deliver, range(50)))
    assert codes == [200] * 49 + [201]
    assert count(engine, Reward) == 1
    assert count(engine, LedgerEntry) == 1


SERVED: list[int] = []


def redirect(server: Server, code: str) -> httpx.Response:
    answer = httpx.get(
        f"{server.url}/r/{code}", headers={"user-agent": "Mozilla/5.0"}, follow_redirects=False
    )
    SERVED.append(answer.status_code == 302)
    return answer


def eventually(check: Any, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_the_link_cache_sees_changes_made_by_another_process(
    server: Server, engine: Engine
) -> None:
    """The server caches code -> landing URL; a change from elsewhere (here: this test process,
    as the CLI would) is seen within a couple of seconds: an edited landing URL, a vanity code
    made after it was asked for (a cached 404), and a program that ended."""
    SERVED.clear()
    with unit_of_work(engine) as session:
        code = programs.code_for(session, program_slug="friends", customer_external_id="a").code
    assert redirect(server, code).headers["location"].startswith("https://shop.example.com/?")
    assert redirect(server, "LATERVANITY").status_code == 404  # now cached as unknown
    with unit_of_work(engine) as session:
        programs.apply_program(session, {**PROGRAM, "landing_url": "https://new.example.com/"})
        programs.code_for(
            session, program_slug="friends", customer_external_id="b", vanity="LATERVANITY"
        )
    assert eventually(
        lambda: redirect(server, code).headers["location"].startswith("https://new.example.com/")
    )
    assert eventually(lambda: redirect(server, "LATERVANITY").status_code == 302)
    with unit_of_work(engine) as session:
        programs.apply_program(session, {**PROGRAM, "ends_at": "2026-02-01"})
    assert eventually(lambda: redirect(server, code).status_code == 404)
    server.stop()
    assert count(engine, Click) == sum(SERVED)  # the 302s served, and only those
