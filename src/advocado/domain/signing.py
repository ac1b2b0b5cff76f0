"""The signature of Advocado's webhooks, both ways: `sha256=` + hex HMAC-SHA256 of
`timestamp + '.' + raw body` with the shared secret."""

from __future__ import annotations

import hashlib
import hmac


def sign(secret: str, timestamp: str, raw: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + raw, hashlib.sha256)
    return "sha256=" + digest.hexdigest()
