"""A real SMTP server's handler for tests (aiosmtpd), and a free local port. Imported by
tests/conftest.py (the smtp_server fixture) and by tests that start a server of their own."""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import threading
from typing import Any


class SmtpSink:
    """What a local aiosmtpd server received. `refuse` maps a recipient to an SMTP reply
    (e.g. "550 5.1.1 no such user"); `delay` holds each DATA for that many seconds."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.refuse: dict[str, str] = {}
        self.delay = 0.0
        self.started = 0  # DATA commands begun (counted before the delay)
        self.lock = threading.Lock()
        self.port = 0
        self.url = ""

    async def handle_RCPT(self, server, session, envelope, address, options):  # noqa: N802
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        with self.lock:
            self.started += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append(parsed)
        return "250 OK queued"

    def to(self, address: str) -> list[Any]:
        with self.lock:
            return [m for m in self.messages if address in str(m["To"])]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
