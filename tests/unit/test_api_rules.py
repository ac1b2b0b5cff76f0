"""Pure parts of the API: scopes, error paths, request fingerprints, NPS days."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from advocado.services.apikeys import parse_scopes
from advocado.services.idempotency import fingerprint
from advocado.web.api.routes import _problem, day_bounds


def test_scopes_are_normalised_and_ordered() -> None:
    assert parse_scopes(["write", " READ ", "read"]) == ["read", "write"]
    with pytest.raises(ValueError, match="'admin'"):
        parse_scopes(["read", "admin"])
    with pytest.raises(ValueError, match="at least one"):
        parse_scopes(["", " "])


@pytest.mark.parametrize(
    ("loc", "expected"),
    [(("body", "items", 3, "score"), "items[3].score"), (("body", "email"), "email"),
     (("query", "limit"), "limit"), (("body",), "body")],
)  # fmt: skip
def test_error_paths_read_like_the_json(loc: tuple[object, ...], expected: str) -> None:
    problem = _problem({"loc": loc, "msg": "Field required", "type": "missing"})
    assert problem["field"] == expected and problem["reason"] == "missing"


def test_fingerprint_ignores_key_order_but_not_content_or_target() -> None:
    one = fingerprint("post", "/api/v1/customers", {"a": 1, "b": [1, 2]})
    assert one == fingerprint("POST", "/api/v1/customers", {"b": [1, 2], "a": 1})
    assert one != fingerprint("POST", "/api/v1/customers", {"a": 1, "b": [2, 1]})
    assert one != fingerprint("PUT", "/api/v1/customers", {"a": 1, "b": [1, 2]})
    assert one != fingerprint("POST", "/api/v1/orders", {"a": 1, "b": [1, 2]})


def test_day_bounds_include_the_last_day() -> None:
    assert day_bounds(date(2026, 3, 1), date(2026, 3, 31)) == (
        datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC),
    )  # fmt: skip
    assert day_bounds(None, None) == (None, None)
