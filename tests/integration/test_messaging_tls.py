"""The email channel over TLS against a real local SMTP server: STARTTLS and implicit TLS
(smtps://), with a certificate from a private CA given by `cafile=`; an untrusted certificate
is refused (nothing sent, retried later)."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from smtp_sink import SmtpSink, free_port
from sqlalchemy import Engine
from test_messaging import ask, customer

from advocado.services import messaging


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return key, cert


def _server_context(key: Path, cert: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


@pytest.mark.parametrize("mode", ["starttls", "smtps"])
def test_tls(engine: Engine, monkeypatch, certificate, mode: str) -> None:
    monkeypatch.setenv("ADVOCADO_QUIET_HOURS", "off")
    key, cert = certificate
    sink = SmtpSink()
    port = free_port()
    server = _server_context(key, cert)
    if mode == "starttls":
        controller = Controller(sink, hostname="127.0.0.1", port=port, tls_context=server,
                                require_starttls=True)  # fmt: skip
        url = f"smtp://127.0.0.1:{port}?starttls=1&cafile={cert}"
    else:
        controller = Controller(sink, hostname="127.0.0.1", port=port, ssl_context=server)
        url = f"smtps://127.0.0.1:{port}?cafile={cert}"
    controller.start()
    try:
        monkeypatch.setenv("ADVOCADO_SMTP_URL", url)
        alice = customer(engine, "alice")
        ask(engine, alice, "x")
        assert messaging.deliver_due(engine).sent == 1
        assert len(sink.messages) == 1
        # without the private CA the certificate is not trusted: nothing goes, retried later
        monkeypatch.setenv("ADVOCADO_SMTP_URL", url.split("cafile=")[0].rstrip("?&"))
        bob = customer(engine, "bob")
        ask(engine, bob, "y")
        report = messaging.deliver_due(engine)
        assert report.retried == 1 and len(sink.messages) == 1
        [failed] = messaging.list_messages(engine, customer_id=bob)
        assert "CERTIFICATE_VERIFY_FAILED" in failed["reason"]
    finally:
        controller.stop()
