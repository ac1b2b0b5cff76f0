"""REST API v1: customers, orders, NPS responses and NPS figures, for integrators with API keys.

Handlers parse, call one service, render. Every 422 has one shape:
`{"detail": [{"field": "items[3].score", "reason": "...", "loc": [...], "msg": "...",
"type": "..."}]}`. Writes accept an `Idempotency-Key` header (see services/idempotency).
"""

# No `from __future__ import annotations`: FastAPI reads the handlers' annotations, and the
# handlers made in _register refer to local names.

import json
from collections.abc import Callable, Coroutine, Sequence
from datetime import date, datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import HTTPException, RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from sqlalchemy.orm import Session

from advocado.domain import records as rules
from advocado.domain.nps import category
from advocado.domain.records import FieldError
from advocado.services import apikeys, idempotency, upserts
from advocado.services.nps import day_bounds, nps_figures
from advocado.services.records import Outcome
from advocado.services.upserts import Kind, Mode
from advocado.store.db import read_only, unit_of_work
from advocado.store.models import ApiKey
from advocado.web.api import schemas

PREFIX = "/api/v1"
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
REPLAYED_HEADER = "Idempotent-Replayed"


def _problem(error: dict[str, Any]) -> dict[str, Any]:
    """A pydantic error in the API's shape: `field` as a path, `reason` in words."""
    loc = list(error.get("loc", ()))
    kind = error.get("type", "")
    parts = loc[1:] if loc and loc[0] in ("body", "query", "path", "header") else loc
    field = ""
    for part in parts:
        field += f"[{part}]" if isinstance(part, int) else (f".{part}" if field else str(part))
    cause = (error.get("ctx") or {}).get("error")
    if kind == "json_invalid":
        field, reason = "body", f"invalid JSON: {cause or error.get('msg')}"
    elif isinstance(cause, FieldError):
        reason = cause.reason
    elif kind == "missing":
        reason = "missing"
    elif kind == "extra_forbidden":
        reason = "unknown field"
    elif kind == "timezone_aware":
        reason = "has no UTC offset: add one, e.g. 2026-05-01T09:30:00+08:00"
    else:
        reason = str(error.get("msg", "invalid"))
    return {"field": field or "body", "reason": reason, "loc": loc, "msg": error.get("msg", ""),
            "type": kind}  # fmt: skip


def unprocessable(problems: Sequence[dict[str, Any]]) -> JSONResponse:
    return JSONResponse({"detail": list(problems)}, status_code=422)


class _ApiRoute(APIRoute):
    """Turns validation errors of every kind into the one 422 shape. (The router cannot install
    app-wide exception handlers, and the console keeps FastAPI's own.)"""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as error:
                return unprocessable([_problem(dict(e)) for e in error.errors()])
            except FieldError as error:
                problem = {"field": error.field, "reason": error.reason, "loc": [error.field]}
                return unprocessable([{**problem, "msg": str(error), "type": "value_error"}])
            except upserts.NotFound as error:
                return JSONResponse({"detail": str(error)}, status_code=404)

        return guarded


_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="`Authorization: Bearer adv_…` (create one with `advocado apikey create`). "
    "GET needs the read scope; POST, PUT and PATCH need write.",
)


def api_key(
    request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(_bearer)
) -> ApiKey:
    """The caller's key: 401 without a valid one, 403 without the scope the method needs."""
    if credentials is None:
        raise HTTPException(
            401,
            "Send an API key: Authorization: Bearer <key>.",
            headers={"WWW-Authenticate": 'Bearer realm="advocado"'},
        )
    with unit_of_work(request.app.state.engine) as session:
        key = apikeys.authenticate(session, credentials.credentials)
    if key is None:
        raise HTTPException(
            401,
            "This API key is not valid (unknown, mistyped or revoked).",
            headers={"WWW-Authenticate": 'Bearer realm="advocado", error="invalid_token"'},
        )
    scope = "read" if request.method in READ_METHODS else "write"
    if scope not in key.scopes:
        raise HTTPException(403, f"This API key lacks the {scope!r} scope.")
    return key


router = APIRouter(
    prefix=PREFIX,
    tags=["API v1"],
    route_class=_ApiRoute,
    dependencies=[Depends(api_key)],
    responses={
        401: {"description": "No valid API key."},
        403: {"description": "The key lacks the scope."},
        422: {"model": schemas.ValidationProblem, "description": "Invalid input; nothing saved."},
    },
)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot render {type(value).__name__}")


def _encode(payload: Any) -> str:
    return json.dumps(payload, ensure_ascii=False, default=_json_default)


def _render(kind: Kind, row: dict[str, Any]) -> dict[str, Any]:
    if kind is Kind.RESPONSES:
        return {**row, "category": str(category(row["score"]))}
    return row


def _json(status_code: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(_encode(payload), status_code, headers, media_type="application/json")


def _write(
    request: Request, key: ApiKey, payload: Any, action: Callable[[Session], tuple[int, Any]]
) -> Response:
    """Run a write in one transaction, at most once per Idempotency-Key."""

    def encoded(session: Session) -> tuple[int, str]:
        status_code, body = action(session)
        return status_code, _encode(body)

    answer = idempotency.run_once(
        request.app.state.engine,
        api_key_id=key.id,
        key=request.headers.get(idempotency.HEADER),
        request_hash=idempotency.fingerprint(request.method, request.url.path, payload),
        action=encoded,
    )
    headers = {REPLAYED_HEADER: "true"} if answer.replayed else None
    return Response(answer.body, answer.status_code, headers, media_type="application/json")


def _save(
    session: Session, kind: Kind, items: list[dict[str, Any]], mode: Mode, *, batch: bool
) -> list[upserts.Stored]:
    try:
        return upserts.upsert(session, kind, items, mode=mode)
    except upserts.ItemError as error:
        field = f"items[{error.index}].{error.field}" if batch else error.field
        raise FieldError(field, error.reason) from None


def _path_id(external_id: str, body: BaseModel) -> dict[str, Any]:
    """The body's fields, named by the path's external_id."""
    external_id = rules.required_text("external_id", external_id)
    fields = body.model_dump(exclude_unset=True)
    if fields.get("external_id", external_id) != external_id:
        raise FieldError("external_id", f"differs from the path ({external_id!r})")
    return {**fields, "external_id": external_id}


def _cursor(after: str | None) -> int | None:
    if after is None or after == "":
        return None
    if not after.isdigit():
        raise FieldError("after", "not a cursor: pass the `next` of the previous page")
    return int(after)


def _register(
    kind: Kind,
    item_in: type[BaseModel],
    fields_in: type[BaseModel],
    batch_in: type[BaseModel],
    item_out: type[BaseModel],
    page_out: type[BaseModel],
) -> None:
    noun = kind.removesuffix("s")

    @router.get(f"/{kind}", response_model=page_out, name=f"list_{kind}",
                summary=f"List {kind}, oldest first")  # fmt: skip
    def list_rows(
        request: Request,
        limit: int = Query(100, ge=1, le=1000),
        after: str | None = Query(None, description="The `next` of the previous page."),
    ) -> Response:
        with read_only(request.app.state.engine) as session:
            rows, following = upserts.list_page(session, kind, limit=limit, after=_cursor(after))
        items = [_render(kind, row) for row in rows]
        return _json(200, {"items": items, "next": None if following is None else str(following)})

    @router.get(f"/{kind}/{{external_id}}", response_model=item_out, name=f"get_{noun}",
                summary=f"One {noun} by its external id",
                responses={404: {"description": "No such external_id."}})  # fmt: skip
    def get_row(request: Request, external_id: str) -> Response:
        with read_only(request.app.state.engine) as session:
            row = upserts.get_one(session, kind, external_id)
        return _json(200, _render(kind, row))

    def single(
        request: Request, key: ApiKey, item: dict[str, Any], mode: Mode, payload: Any
    ) -> Response:
        def action(session: Session) -> tuple[int, Any]:
            (stored,) = _save(session, kind, [item], mode, batch=False)
            status_code = 201 if stored.outcome is Outcome.CREATED else 200
            return status_code, _render(kind, stored.row)

        return _write(request, key, payload, action)

    @router.post(f"/{kind}", response_model=item_out, name=f"upsert_{noun}",
                 summary=f"Create or update one {noun} by external_id",
                 description="201 when created, 200 when updated or unchanged. Fields left "
                 "out keep their stored values (or take their defaults on create).",
                 responses={201: {"model": item_out, "description": "Created."}})  # fmt: skip
    def post_row(request: Request, body: item_in, key: ApiKey = Depends(api_key)) -> Response:  # type: ignore[valid-type]
        item = body.model_dump(exclude_unset=True)
        return single(request, key, item, Mode.MERGE, item)

    @router.put(f"/{kind}/{{external_id}}", response_model=item_out, name=f"replace_{noun}",
                summary=f"Create or replace one {noun}",
                description="Fields left out take their defaults. 201 when created.",
                responses={201: {"model": item_out, "description": "Created."}})  # fmt: skip
    def put_row(
        request: Request,
        external_id: str,
        body: fields_in,  # type: ignore[valid-type]
        key: ApiKey = Depends(api_key),
    ) -> Response:
        item = _path_id(external_id, body)
        return single(request, key, item, Mode.REPLACE, item)

    @router.post(f"/{kind}/batch", response_model=schemas.BatchResult, name=f"batch_{kind}",
                 summary=f"Create or update up to {schemas.MAX_BATCH} {kind} at once",
                 description="All or nothing: one invalid item and nothing is saved; the "
                 "error names it, e.g. items[3].score.")  # fmt: skip
    def post_batch(request: Request, body: batch_in, key: ApiKey = Depends(api_key)) -> Response:  # type: ignore[valid-type]
        items = [item.model_dump(exclude_unset=True) for item in body.items]  # type: ignore[attr-defined]

        def action(session: Session) -> tuple[int, Any]:
            stored = _save(session, kind, items, Mode.MERGE, batch=True)
            counts = {outcome: 0 for outcome in Outcome}
            for result in stored:
                counts[result.outcome] += 1
            rendered = [{**_render(kind, s.row), "outcome": str(s.outcome)} for s in stored]
            return 200, {"items": rendered, **{str(o): n for o, n in counts.items()}}

        return _write(request, key, {"items": items}, action)

    if kind is Kind.RESPONSES:

        @router.patch(f"/{kind}/{{external_id}}", response_model=item_out,
                      name=f"patch_{noun}", summary="Change some fields of a response",
                      description="Only the fields sent change, e.g. a comment that arrives "
                      "after the score updates the response; it never adds a second one.",
                      responses={404: {"description": "No such external_id."}})  # fmt: skip
        def patch_row(
            request: Request,
            external_id: str,
            body: schemas.ResponsePatch,
            key: ApiKey = Depends(api_key),
        ) -> Response:
            item = _path_id(external_id, body)
            return single(request, key, item, Mode.PATCH, item)


_register(Kind.CUSTOMERS, schemas.CustomerIn, schemas.CustomerFields, schemas.CustomerBatch,
          schemas.CustomerOut, schemas.CustomerPage)  # fmt: skip
_register(Kind.ORDERS, schemas.OrderIn, schemas.OrderFields, schemas.OrderBatch,
          schemas.OrderOut, schemas.OrderPage)  # fmt: skip
_register(Kind.RESPONSES, schemas.ResponseIn, schemas.ResponseFields, schemas.ResponseBatch,
          schemas.ResponseOut, schemas.ResponsePage)  # fmt: skip


@router.get("/nps", response_model=schemas.NpsOut, summary="NPS over whole UTC days",
            description="The same figures as `advocado nps --json`. `from` and `to` are "
            "YYYY-MM-DD; `to` is included.")  # fmt: skip
def nps(
    request: Request,
    from_: date | None = Query(None, alias="from", description="First day (UTC)."),
    to: date | None = Query(None, description="Last day, included (UTC)."),
    survey: str | None = Query(None, description="Only this survey."),
) -> Response:
    if from_ and to and from_ > to:
        raise FieldError("from", f"{from_} is after to ({to})")
    start, end = day_bounds(from_, to)
    with read_only(request.app.state.engine) as session:
        figures = nps_figures(session, start=start, end=end, survey=survey)
    return _json(200, figures.as_dict())
