"""A generic signed webhook for SMS, WeCom and WeChat gateways: `ADVOCADO_MESSAGE_WEBHOOK_URL`
receives a JSON POST per message, signed like Advocado's incoming webhooks
(`X-Advocado-Timestamp`, `X-Advocado-Signature: sha256=HMAC(secret, timestamp + "." + body)`)
and carrying `Idempotency-Key` (the message's cause key), so a gateway can drop a repeat.

2xx = sent; 408, 429 and 5xx = retry; other 4xx = bounced (the gateway refused it); a failure
to connect = retry; a connection lost after the request went = uncertain."""

from __future__ import annotations

import http.client
import json
import time
from urllib.parse import urlsplit

from advocado.channels import Outcome, Outgoing
from advocado.domain.signing import sign

SIGNATURE_HEADER = "X-Advocado-Signature"
TIMESTAMP_HEADER = "X-Advocado-Timestamp"


def payload(outgoing: Outgoing) -> bytes:
    return json.dumps(
        {
            "message_id": outgoing.message_id,
            "cause_key": outgoing.cause_key,
            "channel": outgoing.channel,
            "to": outgoing.to,
            "to_name": outgoing.to_name,
            "customer_external_id": outgoing.customer_external_id,
            "locale": outgoing.locale,
            "template": outgoing.template,
            "subject": outgoing.subject,
            "text": outgoing.text,
            "unsubscribe_url": outgoing.unsubscribe_url,
        },
        ensure_ascii=False,
    ).encode()


class WebhookChannel:
    def __init__(self, url: str, *, secret: str, timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"ADVOCADO_MESSAGE_WEBHOOK_URL={url!r}: expected http(s)://host/path")
        self.parts = parts
        self.secret = secret
        self.timeout = timeout

    def close(self) -> None:
        pass

    def send(self, outgoing: Outgoing) -> Outcome:
        raw = payload(outgoing)
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(self.secret, timestamp, raw),
            "Idempotency-Key": outgoing.cause_key,
            "User-Agent": "Advocado-messages/1",
        }
        parts = self.parts
        kind = (
            http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        )
        connection = kind(parts.hostname or "", parts.port, timeout=self.timeout)
        try:
            try:
                connection.connect()
            except OSError as error:
                return Outcome("retry", f"connect: {error!r}")
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            try:
                connection.request("POST", path, body=raw, headers=headers)
                response = connection.getresponse()
                body = response.read(500).decode("utf-8", "replace")
            except (OSError, http.client.HTTPException) as error:
                return Outcome("uncertain", f"connection lost after the request: {error!r}")
        finally:
            connection.close()
        status = response.status
        detail = f"HTTP {status} {body}"[:500]
        provider = response.getheader("X-Message-Id") or response.getheader("Location")
        if 200 <= status < 300:
            return Outcome("sent", detail, provider)
        if status in (408, 429) or status >= 500:
            return Outcome("retry", detail)
        return Outcome("bounced", detail)
