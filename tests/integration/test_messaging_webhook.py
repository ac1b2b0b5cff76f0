"""The signed webhook channel (SMS / WeCom / WeChat gateways) against a real local HTTP
receiver: signature, idempotency key, and what each answer means."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import Engine
from test_messaging import T0, ask, customer  # noqa: F401 - T0 pins the clock via autouse

from advocado.domain.signing import sign
from advocado.services import messaging

SECRET = "gateway-secret"


class Receiver:
    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.answers: list[int] = []


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            raw = self.rfile.read(int(self.headers["Content-Length"]))
            state.requests.append((dict(self.headers), raw))
            code = state.answers.pop(0) if state.answers else 202
            self.send_response(code)
            self.send_header("X-Message-Id", f"gw-{len(state.requests)}")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("ADVOCADO_MESSAGE_WEBHOOK_URL",
                       f"http://127.0.0.1:{server.server_port}/sms?via=test")  # fmt: skip
    monkeypatch.setenv("ADVOCADO_MESSAGE_WEBHOOK_SECRET", SECRET)
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture(autouse=True)
def _clock() -> None:
    from advocado import clock

    clock.set_now(T0)


def test_signed_webhook_delivery(engine: Engine, receiver: Receiver) -> None:
    li = customer(engine, "li", phone="+86 138-0000-0000", locale="zh-CN", name="李雷")
    queued = ask(engine, li, "sms:1", channel="sms")
    report = messaging.deliver_due(engine)
    assert report.sent == 1
    [(headers, raw)] = receiver.requests
    assert headers["X-Advocado-Signature"] == sign(SECRET, headers["X-Advocado-Timestamp"], raw)
    assert headers["Idempotency-Key"] == "sms:1"
    body = json.loads(raw)
    assert body["to"] == "+8613800000000" and body["channel"] == "sms"
    assert body["locale"] == "zh-CN" and "李雷" in body["text"]
    assert body["unsubscribe_url"].startswith("http://127.0.0.1:8000/u/")
    assert body["unsubscribe_url"] in body["text"]
    detail = messaging.message_detail(engine, message_id=queued.message_id)
    assert detail["status"] == "sent"


def test_webhook_answers(engine: Engine, receiver: Receiver) -> None:
    a = customer(engine, "a", phone="13800000001")
    b = customer(engine, "b", phone="13800000002")
    receiver.answers = [503, 400]
    first = ask(engine, a, "x", channel="wecom")
    second = ask(engine, b, "y", channel="wecom")
    report = messaging.deliver_due(engine)
    assert (report.retried, report.bounced) == (1, 1)
    assert messaging.message_detail(engine, message_id=first.message_id)["status"] == "queued"
    bounced = messaging.message_detail(engine, message_id=second.message_id)
    assert bounced["status"] == "bounced" and "HTTP 400" in bounced["reason"]


def test_no_phone_is_a_skip(engine: Engine, receiver: Receiver) -> None:
    a = customer(engine, "a")
    result = ask(engine, a, "x", channel="sms")
    assert result.status == "skipped" and result.reason.startswith("no_address")
