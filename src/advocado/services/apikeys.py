"""API keys for integrators: create (the secret is shown once), list, revoke, authenticate.

A token is `adv_<prefix>_<secret>`. The prefix finds the row and is safe to show; only a SHA-256
of the whole token is stored, so a copy of the database does not hand out working keys.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from advocado import clock
from advocado.store.models import ApiKey

SCOPES = ("read", "write")
TOKEN_PREFIX = "adv"
# Writing last_used_at on every request would turn every read into a write; once a minute is
# precise enough to tell "in use" from "forgotten".
LAST_USED_RESOLUTION = timedelta(minutes=1)


def parse_scopes(scopes: list[str]) -> list[str]:
    """Normalised scopes in canonical order. ValueError naming a bad scope, or if none."""
    wanted: set[str] = set()
    for raw in scopes:
        scope = raw.strip().lower()
        if not scope:
            continue
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {raw.strip()!r}: scopes are {', '.join(SCOPES)}")
        wanted.add(scope)
    if not wanted:
        raise ValueError(f"at least one scope is needed ({', '.join(SCOPES)})")
    return [scope for scope in SCOPES if scope in wanted]


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_api_key(session: Session, *, name: str, scopes: list[str]) -> tuple[ApiKey, str]:
    """A new key and its token. The token is not stored: show it to the user now."""
    name = name.strip()
    if not name:
        raise ValueError("a key needs a name (who or what uses it)")
    if len(name) > 200:
        raise ValueError("name: longer than 200 characters")
    normalised = parse_scopes(scopes)
    prefix = secrets.token_hex(6)
    token = f"{TOKEN_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey(
        name=name,
        prefix=prefix,
        secret_hash=hash_token(token),
        scopes=normalised,
        created_at=clock.now(),
    )
    session.add(key)
    session.flush()
    return key, token


def list_api_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)))


def revoke_api_key(session: Session, *, prefix: str) -> ApiKey:
    """Revoke at once. Revoking twice keeps the first time. LookupError if no such key."""
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix.strip()))
    if key is None:
        raise LookupError(f"no API key with prefix {prefix!r} (see `advocado apikey list`)")
    if key.revoked_at is None:
        key.revoked_at = clock.now()
        session.flush()
    return key


def authenticate(session: Session, token: str) -> ApiKey | None:
    """The active key this token belongs to, or None."""
    parts = token.strip().split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX or not parts[1] or not parts[2]:
        return None
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == parts[1]))
    if key is None:
        return None
    if not hmac.compare_digest(hash_token(token.strip()), key.secret_hash):
        return None
    if key.revoked_at is not None:
        return None
    now = clock.now()
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        key.last_used_at = now
        session.flush()
    return key
