"""Idempotency-Key: a retried write is answered from the first answer, never done twice.

The key is claimed (a row in idempotent_requests) at the start of the same transaction that does
the writes, and the answer is filled in before it commits. So either both the writes and the
stored answer exist, or neither does. Two requests racing with one key meet at the unique
constraint on (api_key_id, key): the loser waits for the winner's commit, fails its insert,
rolls back and replays the winner's answer. Only successful answers are kept: a request that
failed wrote nothing, so retrying it under the same key simply runs it again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from advocado import clock
from advocado.domain.records import FieldError
from advocado.store.db import unit_of_work
from advocado.store.models import IdempotentRequest

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 200


class KeyReused(FieldError):
    def __init__(self) -> None:
        super().__init__(
            HEADER,
            "this key was already used for a different request (method, path or body); "
            "use a new key for a new request",
        )


@dataclass(frozen=True)
class Answer:
    status_code: int
    body: str
    replayed: bool = False


class _KeyTaken(Exception):
    """Another request holds (or held) the key: abandon this transaction and replay."""


def fingerprint(method: str, path: str, payload: Any) -> str:
    """What makes two requests "the same": method, path and the body's content (key order and
    spacing do not matter)."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{method.upper()} {path}\n{canonical}".encode()).hexdigest()


def check_key(key: str) -> str:
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH:
        raise FieldError(HEADER, f"must be 1-{MAX_KEY_LENGTH} characters (e.g. a UUID)")
    return key


def run_once(
    engine: Engine,
    *,
    api_key_id: int,
    key: str | None,
    request_hash: str,
    action: Callable[[Session], tuple[int, str]],
) -> Answer:
    """Run `action` (status code, JSON body) in one transaction, at most once per key.

    Without a key it just runs. With a key seen before: the stored answer (replayed=True), or
    KeyReused if that key came with a different request. Errors raised by `action` propagate
    and nothing is kept.
    """
    if key is None:
        with unit_of_work(engine) as session:
            status_code, body = action(session)
        return Answer(status_code, body)
    key = check_key(key)
    # A racing holder of the key that then failed leaves nothing to replay: claim again.
    for _attempt in range(3):
        try:
            return _claim_and_run(engine, api_key_id, key, request_hash, action)
        except _KeyTaken:
            pass
        with unit_of_work(engine) as session:
            stored = _find(session, api_key_id, key)
            if stored is not None:
                return _replay(stored, request_hash)
    raise RuntimeError(f"{HEADER} {key!r} is contended by failing requests; retry later")


def _claim_and_run(
    engine: Engine,
    api_key_id: int,
    key: str,
    request_hash: str,
    action: Callable[[Session], tuple[int, str]],
) -> Answer:
    with unit_of_work(engine) as session:
        stored = _find(session, api_key_id, key)
        if stored is not None:
            return _replay(stored, request_hash)
        claim = IdempotentRequest(
            api_key_id=api_key_id,
            key=key,
            request_hash=request_hash,
            status_code=0,
            body="",
            created_at=clock.now(),
        )
        session.add(claim)
        try:
            session.flush()
        except IntegrityError:
            raise _KeyTaken from None
        status_code, body = action(session)
        claim.status_code, claim.body = status_code, body
    return Answer(status_code, body)


def _find(session: Session, api_key_id: int, key: str) -> IdempotentRequest | None:
    return session.scalar(
        select(IdempotentRequest).where(
            IdempotentRequest.api_key_id == api_key_id, IdempotentRequest.key == key
        )
    )


def _replay(stored: IdempotentRequest, request_hash: str) -> Answer:
    if stored.request_hash != request_hash:
        raise KeyReused()
    return Answer(stored.status_code, stored.body, replayed=True)
