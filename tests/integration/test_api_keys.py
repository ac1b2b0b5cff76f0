"""API keys: made by `advocado apikey create`, stored only as a hash, revocable at once."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from advocado import clock
from advocado.services.apikeys import (
    authenticate,
    create_api_key,
    list_api_keys,
    revoke_api_key,
)
from advocado.store.db import unit_of_work
from advocado.store.models import ApiKey
from advocado.web.app import create_app


def test_cli_key_works_against_the_api_until_revoked(
    advocado, tmp_path: Path, database_url: str
) -> None:
    made = advocado("apikey", "create", "--name", "x", "--scopes", "read,write",
                    cwd=tmp_path, database_url=database_url)  # fmt: skip
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip().splitlines()[-1]
    app = create_app(database_url)
    try:
        client = TestClient(app)
        auth = {"Authorization": f"Bearer {token}"}
        assert client.post("/api/v1/customers", json={"external_id": "c1"},
                           headers=auth).status_code == 201  # fmt: skip
        assert client.get("/api/v1/customers/c1", headers=auth).status_code == 200

        listed = advocado("apikey", "list", cwd=tmp_path, database_url=database_url)
        prefix = token.split("_")[1]
        assert prefix in listed.stdout and "read,write" in listed.stdout
        assert token not in listed.stdout
        revoked = advocado("apikey", "revoke", prefix, cwd=tmp_path, database_url=database_url)
        assert revoked.returncode == 0
        assert client.get("/api/v1/customers/c1", headers=auth).status_code == 401
    finally:
        app.state.engine.dispose()


def test_cli_refuses_an_unknown_scope(advocado, tmp_path: Path, database_url: str) -> None:
    made = advocado("apikey", "create", "--name", "x", "--scopes", "read,admin",
                    cwd=tmp_path, database_url=database_url)  # fmt: skip
    assert made.returncode == 2 and "admin" in made.stderr
    assert made.stdout.strip() == ""


def test_only_the_hash_is_stored(engine: Engine) -> None:
    with unit_of_work(engine) as session:
        key, token = create_api_key(session, name=" shop ", scopes=[" Write", "READ", "read"])
    with unit_of_work(engine) as session:
        stored = session.scalars(select(ApiKey)).one()
    assert stored.name == "shop" and stored.scopes == ["read", "write"]
    assert token.startswith(f"adv_{stored.prefix}_")
    assert stored.secret_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in (stored.secret_hash, stored.prefix, stored.name)


@pytest.mark.parametrize("scopes", [[], [" ", ""], ["read", "delete"]])
def test_bad_scopes_are_refused(engine: Engine, scopes: list[str]) -> None:
    with unit_of_work(engine) as session, pytest.raises(ValueError, match="scope"):
        create_api_key(session, name="x", scopes=scopes)


def test_authenticate_checks_the_whole_token(engine: Engine) -> None:
    with unit_of_work(engine) as session:
        _, token = create_api_key(session, name="x", scopes=["read"])
    prefix = token.split("_")[1]
    with unit_of_work(engine) as session:
        assert authenticate(session, token) is not None
        assert authenticate(session, token[:-1] + ("A" if token[-1] != "A" else "B")) is None
        assert authenticate(session, f"adv_{prefix}_guess") is None
        assert authenticate(session, "garbage") is None
        assert authenticate(session, "") is None
    with unit_of_work(engine) as session:
        revoke_api_key(session, prefix=prefix)
        assert authenticate(session, token) is None
    with unit_of_work(engine) as session, pytest.raises(LookupError):
        revoke_api_key(session, prefix="nope")


def test_last_used_is_written_at_most_once_a_minute(engine: Engine) -> None:
    start = datetime(2026, 5, 1, 9, 0, tzinfo=UTC)
    clock.set_now(start)
    with unit_of_work(engine) as session:
        _, token = create_api_key(session, name="x", scopes=["read"])

    def use_at(moment: datetime) -> datetime | None:
        clock.set_now(moment)
        with unit_of_work(engine) as session:
            authenticate(session, token)
        with unit_of_work(engine) as session:
            return list_api_keys(session)[0].last_used_at

    assert use_at(start) == start
    assert use_at(start + timedelta(seconds=59)) == start
    assert use_at(start + timedelta(seconds=61)) == start + timedelta(seconds=61)
