"""Idempotency-Key: a retried write answers like the first one and is done once, even when
the retries race each other through a real server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from advocado.services import idempotency
from advocado.services.apikeys import create_api_key
from advocado.store.db import unit_of_work
from advocado.store.models import ApiKey, Customer, IdempotentRequest, Response

API = "/api/v1"


@pytest.fixture
def token(engine: Engine) -> str:
    with unit_of_work(engine) as session:
        return create_api_key(session, name="shop", scopes=["read", "write"])[1]


def count(engine: Engine, model: Any) -> int:
    with unit_of_work(engine) as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_retry_replays_the_first_answer(client: TestClient, token: str, engine: Engine) -> None:
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "order-42-attempt"}
    body = {"external_id": "c1", "name": "Ming"}
    first = client.post(f"{API}/customers", json=body, headers=headers)
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    # Meanwhile someone else changes the customer; the retry must not undo that.
    plain = {"Authorization": f"Bearer {token}"}
    client.post(f"{API}/customers", json={"external_id": "c1", "name": "Li"}, headers=plain)

    retry = client.post(f"{API}/customers", json=body, headers=headers)
    assert retry.status_code == 201 and retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json() == first.json()
    assert client.get(f"{API}/customers/c1", headers=plain).json()["name"] == "Li"
    assert count(engine, Customer) == 1


def test_same_key_with_another_body_is_refused(client: TestClient, token: str) -> None:
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "k1"}
    client.post(f"{API}/customers", json={"external_id": "c1"}, headers=headers)
    other = client.post(f"{API}/customers", json={"external_id": "c2"}, headers=headers)
    assert other.status_code == 422
    assert other.json()["detail"][0]["field"] == "Idempotency-Key"
    elsewhere = client.put(f"{API}/customers/c1", json={}, headers=headers)
    assert elsewhere.status_code == 422
    plain = {"Authorization": f"Bearer {token}"}
    assert client.get(f"{API}/customers/c2", headers=plain).status_code == 404


def test_a_failed_request_is_not_remembered(client: TestClient, token: str, engine: Engine) -> None:
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "k-order"}
    order = {"external_id": "o1", "customer_external_id": "c1", "amount": 500,
             "currency": "CNY", "placed_at": "2026-03-01T10:00:00+08:00"}  # fmt: skip
    assert client.post(f"{API}/orders", json=order, headers=headers).status_code == 422
    plain = {"Authorization": f"Bearer {token}"}
    client.post(f"{API}/customers", json={"external_id": "c1"}, headers=plain)
    # Nothing was written the first time, so the retry runs and succeeds.
    assert client.post(f"{API}/orders", json=order, headers=headers).status_code == 201
    assert count(engine, IdempotentRequest) == 1


def test_keys_belong_to_one_api_key(client: TestClient, token: str, engine: Engine) -> None:
    with unit_of_work(engine) as session:
        other = create_api_key(session, name="crm", scopes=["write"])[1]
    body = {"external_id": "c1"}
    one = client.post(
        f"{API}/customers",
        json=body,
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": "same"},
    )
    two = client.post(
        f"{API}/customers",
        json=body,
        headers={"Authorization": f"Bearer {other}", "Idempotency-Key": "same"},
    )
    assert one.status_code == 201
    assert two.status_code == 200 and "Idempotent-Replayed" not in two.headers


def test_loser_of_a_race_replays_the_winner(engine: Engine, token: str) -> None:
    """The moment both requests have looked and found no answer yet: the unique constraint
    stops the second, which then replays the first's answer instead of writing."""
    calls: list[str] = []

    def action(label: str) -> Any:
        def run(session: Session) -> tuple[int, str]:
            calls.append(label)
            return 201, f'{{"by": "{label}"}}'

        return run

    with unit_of_work(engine) as session:
        key_id = session.scalar(select(ApiKey.id))
    assert key_id is not None
    first = idempotency.run_once(engine, api_key_id=key_id, key="k", request_hash="h",
                                 action=action("first"))  # fmt: skip
    real_find = idempotency._find
    blind = iter([True])

    def find_nothing_once(session: Session, api_key_id: int, key: str) -> Any:
        return None if next(blind, False) else real_find(session, api_key_id, key)

    try:
        idempotency._find = find_nothing_once  # type: ignore[assignment]
        second = idempotency.run_once(engine, api_key_id=key_id, key="k", request_hash="h",
                                      action=action("second"))  # fmt: skip
    finally:
        idempotency._find = real_find  # type: ignore[assignment]
    assert calls == ["first"]
    assert (second.status_code, second.body, second.replayed) == (201, first.body, True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server(database_url: str) -> Iterator[str]:
    """The app under granian with two worker processes, as `advocado serve` runs it."""
    port = _free_port()
    env = {**os.environ, "ADVOCADO_DATABASE_URL": database_url}
    process = subprocess.Popen(
        [sys.executable, "-m", "granian", "--interface", "asgi", "--factory", "--workers", "2",
         "--host", "127.0.0.1", "--port", str(port), "advocado.web.app:create_app"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"granian did not start: {process.stderr.read()!r}")  # type: ignore[union-attr]
            time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_racing_retries_write_once_and_answer_alike(
    server: str, token: str, engine: Engine
) -> None:
    threads = 8
    items = [{"external_id": f"r{i}", "score": i % 11,
              "submitted_at": "2026-03-01T10:00:00+08:00"} for i in range(200)]  # fmt: skip
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": "sync-2026-03-01"}
    start = threading.Barrier(threads)
    answers: list[httpx.Response] = []
    lock = threading.Lock()

    def post() -> None:
        with httpx.Client(base_url=server, timeout=60) as http:
            start.wait()
            answer = http.post(f"{API}/responses/batch", json={"items": items}, headers=headers)
        with lock:
            answers.append(answer)

    workers = [threading.Thread(target=post) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert [a.status_code for a in answers] == [200] * threads
    # Had the batch run more than once, later runs would report 200 unchanged, not created.
    assert {a.json()["created"] for a in answers} == {200}
    assert len({a.text for a in answers}) == 1
    replayed = [a.headers.get("Idempotent-Replayed") for a in answers]
    assert replayed.count("true") == threads - 1 and replayed.count(None) == 1
    assert count(engine, Response) == 200
    assert count(engine, IdempotentRequest) == 1
