"""Messaging benchmark (issue 5): messages/s delivered to a local SMTP server, as a ratio to a
bare smtplib loop sending the same number of similar messages to the same server in the same
run.

    .venv/bin/python bench/messaging.py [--messages 2000] [--database sqlite|postgresql]

- enqueue: N review_ask messages queued (consent, suppression and cap checks, quiet hours),
  one transaction each, as a playbook step would.
- deliver: deliver_due until nothing is due: claim with a lease, per message render the
  Jinja template (en/zh-CN/zh-TW), record its tracked links, commit `sending`, SMTP
  MAIL/RCPT/DATA over one reused connection, commit `sent` with its history row.
- reference: N similar multipart mails built with EmailMessage and sent through one smtplib
  connection with `send_message`, nothing else (no database, no template).
The SMTP server is aiosmtpd's Sink in a separate process (it discards what it gets).
"""

from __future__ import annotations

import argparse
import os
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from email.message import EmailMessage
from pathlib import Path

from sqlalchemy import create_engine, text

POSTGRES = os.environ.get(
    "ADVOCADO_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_smtp(port: int) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}",
         "-c", "aiosmtpd.handlers.Sink"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server
        except OSError:
            time.sleep(0.05)
    server.kill()
    raise SystemExit("the SMTP server did not start")


def reference(port: int, n: int) -> float:
    """Build each multipart mail and send it through one smtplib connection: the least any
    sender does."""
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for i in range(n):
            mail = EmailMessage()
            mail["From"] = "Bench <bench@example.com>"
            mail["To"] = f"Customer {i} <c{i}@example.com>"
            mail["Subject"] = f"Thank you, Customer {i}! Would you share it in a review?"
            mail.set_content(f"Hi Customer {i},\n\nThank you...\n", cte="quoted-printable")
            mail.add_alternative(f"<p>Hi Customer {i}</p>", subtype="html",
                                 cte="quoted-printable")  # fmt: skip
            smtp.send_message(mail)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args()
    n = args.messages
    port = free_port()
    os.environ.update({
        "ADVOCADO_SMTP_URL": f"smtp://127.0.0.1:{port}",
        "ADVOCADO_MAIL_FROM": "Bench Brand <bench@example.com>",
        "ADVOCADO_QUIET_HOURS": "off",
        "ADVOCADO_ASK_CAP": "1000000",
    })  # fmt: skip
    from advocado import clock
    from advocado.services.messaging import deliver_due, enqueue_message
    from advocado.store.db import ensure_schema, make_engine, unit_of_work
    from advocado.store.models import Customer

    schema = None
    if args.database == "sqlite":
        folder = tempfile.mkdtemp(prefix="advocado-bench-")
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
    else:
        schema = f"bench_{uuid.uuid4().hex[:10]}"
        admin = create_engine(POSTGRES)
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = f"{POSTGRES}?options=-csearch_path%3D{schema}"
    engine = make_engine(url)
    ensure_schema(engine)
    server = start_smtp(port)
    try:
        now = clock.now()
        locales = ("en", "zh-CN", "zh-TW")
        with unit_of_work(engine) as session:
            session.add_all(
                Customer(external_id=f"c{i}", name=f"Customer {i}", email=f"c{i}@example.com",
                         locale=locales[i % 3], timezone="Asia/Shanghai",
                         marketing_consent=True, tags=[], attributes={}, created_at=now,
                         updated_at=now)
                for i in range(n)
            )  # fmt: skip
        started = time.perf_counter()
        for i in range(n):
            with unit_of_work(engine) as session:
                enqueue_message(session, customer_id=i + 1, template="review_ask",
                                cause_key=f"bench:{i}", context={})  # fmt: skip
        enqueue_seconds = time.perf_counter() - started
        started = time.perf_counter()
        sent = 0
        while True:
            report = deliver_due(engine, limit=500, worker_id="bench")
            sent += report.sent
            if report.claimed == 0:
                break
        deliver_seconds = time.perf_counter() - started
        assert sent == n, f"sent {sent} of {n}"
        bare_seconds = reference(port, n)
    finally:
        server.terminate()
        server.wait(10)
        engine.dispose()
        if schema:
            with admin.begin() as connection:
                connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    print(f"database: {args.database}, messages: {n}")
    print(f"enqueue:   {n / enqueue_seconds:8.0f} messages/s (one transaction each)")
    print(f"deliver:   {n / deliver_seconds:8.0f} messages/s (render, links, 2 commits, SMTP)")
    print(f"reference: {n / bare_seconds:8.0f} messages/s (bare EmailMessage + smtplib loop)")
    print(f"ratio deliver/reference: {bare_seconds / deliver_seconds:.2f}")


if __name__ == "__main__":
    main()
