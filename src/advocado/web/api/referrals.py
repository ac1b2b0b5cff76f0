"""REST API v1 of the referral engine: events in (with an API key, or signed webhooks),
programs and codes, coupons at checkout, advocate progress, balances, the review queue.

Handlers parse, call one service, render; the services own the transactions.
"""

# No `from __future__ import annotations`: FastAPI reads the handlers' annotations.

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import HTTPException
from fastapi.responses import Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from advocado import clock
from advocado.domain.programs import ProgramError
from advocado.domain.records import FieldError
from advocado.domain.signing import sign
from advocado.services import audit, coupons, gifts, ledger, programs, referrals
from advocado.services.clicks import stored_secret
from advocado.services.ledger import balances
from advocado.store.db import unit_of_work
from advocado.store.models import ApiKey, Customer
from advocado.web.api.routes import PREFIX, _ApiRoute, _encode, _problem, api_key, unprocessable

WEBHOOK_SECRET = "webhook_secret"
SIGNATURE_HEADER = "X-Advocado-Signature"
TIMESTAMP_HEADER = "X-Advocado-Timestamp"
REPLAY_WINDOW_SECONDS = 300

router = APIRouter(
    prefix=PREFIX, tags=["Referrals"], route_class=_ApiRoute, dependencies=[Depends(api_key)]
)
# Signed webhooks carry no API key: the HMAC is the credential.
webhooks = APIRouter(prefix=PREFIX, tags=["Referrals"], route_class=_ApiRoute)

Text200 = Annotated[str, Field(min_length=1, max_length=200)]


class EventBody(BaseModel):
    """A shop event. Fields not listed here are kept with the event, not rejected."""

    model_config = ConfigDict(extra="allow")

    event_id: Text200 = Field(description="The sender's id: the same id twice is one event.")
    type: str = Field(description="signup | order | refund")
    occurred_at: AwareDatetime | None = Field(None, description="Default: when received.")
    customer_external_id: Text200
    email: str | None = None
    phone: str | None = None
    name: str | None = None
    referral_code: str | None = None
    visitor_id: str | None = Field(None, description="The adv_vid passed to the landing page.")
    ip: str | None = None
    user_agent: str | None = None
    order_external_id: str | None = None
    amount: int | None = Field(None, ge=0, description="Minor units (19900 for 199.00).")
    currency: str | None = None
    payment_fingerprint: str | None = None


def _event_in(body: EventBody) -> referrals.EventIn:
    extra = dict(body.model_extra or {})
    fields = body.model_dump(exclude=set(extra))
    fields["occurred_at"] = fields["occurred_at"] or clock.now()
    return referrals.EventIn(**fields, extra=extra)


def _json(status_code: int, payload: Any) -> Response:
    return Response(_encode(payload), status_code, media_type="application/json")


def _ingest(request: Request, body: EventBody) -> Response:
    try:
        outcome = referrals.ingest_event(request.app.state.engine, _event_in(body))
    except referrals.EventError as error:
        raise FieldError(error.field, error.reason) from None
    return _json(200 if outcome.get("duplicate") else 201, outcome)


@router.post(
    "/events",
    summary="Send a signup, order or refund event",
    description="201 when processed, 200 (with `duplicate: true` and the first "
    "outcome) when this event_id was seen before.",
)
def post_event(request: Request, body: EventBody) -> Response:
    return _ingest(request, body)


@webhooks.post(
    "/webhooks/events",
    summary="The same, as a signed webhook",
    description=f"`{TIMESTAMP_HEADER}`: unix seconds; `{SIGNATURE_HEADER}`: "
    "`sha256=` + hex HMAC-SHA256 of `timestamp + '.' + raw body` with the webhook "
    "secret (`advocado referral webhook-secret`). Older than 5 minutes: 401.",
)
async def post_webhook(request: Request) -> Response:
    raw = await request.body()
    secret = getattr(request.app.state, "webhook_secret", None)
    if secret is None:  # read once per app: a settings write per webhook would be waste
        secret = request.app.state.webhook_secret = stored_secret(
            request.app.state.engine, WEBHOOK_SECRET
        )
    check_signature(
        secret, request.headers.get(TIMESTAMP_HEADER), request.headers.get(SIGNATURE_HEADER), raw
    )
    try:
        body = EventBody.model_validate_json(raw)
    except ValidationError as error:
        return unprocessable([_problem(dict(e)) for e in error.errors()])
    return await run_in_threadpool(_ingest, request, body)


def check_signature(secret: str, timestamp: str | None, signature: str | None, raw: bytes) -> None:
    if not timestamp or not signature:
        raise HTTPException(401, f"Send {TIMESTAMP_HEADER} and {SIGNATURE_HEADER}. / 缺少签名头。")
    try:
        sent = int(timestamp)
    except ValueError:
        raise HTTPException(401, "Bad timestamp. / 时间戳无效。") from None
    if abs(clock.now().timestamp() - sent) > REPLAY_WINDOW_SECONDS:
        raise HTTPException(
            401,
            "Timestamp outside the 5-minute window (replay?). / "
            "时间戳超出5分钟有效期（疑似重放）。",
        )
    if not hmac.compare_digest(sign(secret, timestamp, raw), signature.strip()):
        raise HTTPException(401, "Signature does not match. / 签名不匹配。")


@router.put("/programs", summary="Create or update a program (the YAML file, as JSON)")
def put_program(request: Request, body: dict[str, Any], key: ApiKey = Depends(api_key)) -> Response:
    try:
        with unit_of_work(request.app.state.engine) as session:
            applied = programs.apply_program(session, body, actor=audit.api_actor(key.prefix))
    except ProgramError as error:
        raise FieldError(error.field, error.reason) from None
    return _json(
        201 if applied.created else 200,
        {"slug": applied.slug, "created": applied.created, "warnings": applied.warnings},
    )


@router.get("/programs/stats", summary="Clicks, signups, qualified, rewards per program")
def get_stats(request: Request, program: str | None = None) -> Response:
    with unit_of_work(request.app.state.engine) as session:
        return _json(200, referrals.program_stats(session, program))


class CodeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer_external_id: Text200
    vanity: str | None = Field(None, description="A chosen code, e.g. ZHANGSAN-2026.")


@router.post(
    "/programs/{slug}/codes",
    summary="An advocate's code and short link",
    description="Created if needed; the same advocate always gets the same code.",
)
def post_code(request: Request, slug: str, body: CodeIn) -> Response:
    try:
        with unit_of_work(request.app.state.engine) as session:
            code = programs.code_for(
                session,
                program_slug=slug,
                customer_external_id=body.customer_external_id,
                vanity=body.vanity,
            )
    except programs.UnknownProgram as error:
        return _json(404, {"detail": str(error)})
    except ValueError as error:
        raise FieldError("vanity", str(error)) from None
    return _json(
        200,
        {
            "code": code.code,
            "link": f"/r/{code.code}",
            "url": str(request.base_url).rstrip("/") + f"/r/{code.code}",
        },
    )


class CouponCheckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: Text200
    customer_external_id: Text200
    cart_amount: int = Field(ge=0, description="Minor units.")
    currency: str | None = None


class CouponRedeemIn(CouponCheckIn):
    order_external_id: Text200


@router.post("/coupons/validate", summary="Would this coupon apply? The discount or why not")
def validate_coupon(request: Request, body: CouponCheckIn) -> Response:
    check = coupons.validate(
        request.app.state.engine,
        code=body.code,
        customer_external_id=body.customer_external_id,
        cart_amount=body.cart_amount,
        currency=body.currency,
    )
    return _json(200, check.as_dict())


@router.post(
    "/coupons/redeem",
    summary="Use a coupon on an order (atomic, single use)",
    description="200 with the discount; 409 with the reason if it cannot be used "
    "(of two racing redemptions exactly one succeeds). Retrying the same order "
    "answers 200 again.",
)
def redeem_coupon(request: Request, body: CouponRedeemIn) -> Response:
    check = coupons.redeem(
        request.app.state.engine,
        code=body.code,
        customer_external_id=body.customer_external_id,
        cart_amount=body.cart_amount,
        currency=body.currency,
        order_external_id=body.order_external_id,
    )
    return _json(200 if check.ok else 409, check.as_dict())


@router.get("/advocates/{external_id}/progress", summary="What the advocate sees")
def get_progress(request: Request, external_id: str) -> Response:
    try:
        with unit_of_work(request.app.state.engine) as session:
            return _json(200, referrals.advocate_progress(session, external_id))
    except LookupError as error:
        return _json(404, {"detail": str(error)})


@router.get("/ledger/{external_id}", summary="Points and store-credit balances")
def get_balance(request: Request, external_id: str) -> Response:

    with unit_of_work(request.app.state.engine) as session:
        customer_id = session.scalar(select(Customer.id).where(Customer.external_id == external_id))
        if customer_id is None:
            return _json(404, {"detail": f"no customer {external_id!r}"})
        found = {asset: b.as_dict() for asset, b in balances(session, customer_id).items()}
    return _json(200, {"customer": external_id, "balances": found})


@router.get("/referrals/review", summary="Referrals held for review, with the findings")
def get_review(request: Request) -> Response:
    with unit_of_work(request.app.state.engine) as session:
        return _json(200, {"items": referrals.review_queue(session)})


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = ""


def _decide(request: Request, key: ApiKey, referral_id: int, approve: bool, note: str) -> Response:
    try:
        view = referrals.decide(
            request.app.state.engine,
            referral_id=referral_id,
            approve=approve,
            note=note,
            actor=audit.api_actor(key.prefix),
        )
    except referrals.NotInReview as error:
        return _json(409, {"detail": str(error)})
    return _json(200, view)


@router.post("/referrals/{referral_id}/approve", summary="Approve a held referral")
def approve(
    request: Request, referral_id: int, body: DecisionIn, key: ApiKey = Depends(api_key)
) -> Response:
    return _decide(request, key, referral_id, True, body.note)


@router.post("/referrals/{referral_id}/reject", summary="Reject a held referral")
def reject(
    request: Request, referral_id: int, body: DecisionIn, key: ApiKey = Depends(api_key)
) -> Response:
    return _decide(request, key, referral_id, False, body.note)


class SpendIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    asset: str = Field("points", description='"points", or a currency code for store credit')
    amount: int = Field(gt=0, description="Points, or minor units of credit.")
    key: Text200 = Field(description="Your idempotency key: a retry with it spends nothing more.")
    memo: str = Field("", max_length=500)


@router.post(
    "/advocates/{external_id}/spend",
    summary="Spend points or store credit (idempotent by your key)",
    description="201 with the entry and the balance after it; 200 with `duplicate: true` "
    "when this key was used for this spend before; 409 when the available balance is "
    "short (nothing is written); 422 naming the field otherwise.",
)
def spend(request: Request, external_id: str, body: SpendIn) -> Response:
    try:
        spent = ledger.spend_balance(
            request.app.state.engine,
            customer_external_id=external_id,
            asset=body.asset,
            amount=body.amount,
            client_key=body.key,
            memo=body.memo,
        )
    except ledger.InsufficientBalance as error:
        return _json(
            409,
            {
                "detail": str(error),
                "field": "amount",
                "available": error.available,
                "wanted": error.wanted,
            },
        )
    except ledger.SpendError as error:
        if error.field == "customer":
            return _json(404, {"detail": error.reason})
        raise FieldError(error.field, error.reason) from None
    return _json(200 if spent.duplicate else 201, spent.as_dict())


class CorrectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: int = Field(
        description="+ adds to the balance, - takes from it (points or minor units)."
    )
    unit: str = Field("points", description='"points" or "credit" (store credit)')
    currency: str | None = Field(None, description="For credit: the currency (default: the "
                                 "customer's only one).")  # fmt: skip
    reason: str = Field(min_length=1, max_length=500)
    key: str | None = Field(None, max_length=150, description="Or the Idempotency-Key header.")


@router.post(
    "/advocates/{external_id}/corrections",
    summary="Correct a balance by hand (idempotent by your key; audited)",
    description="A new adjusting entry (never an edit). 201 with the entry and the balance "
    "before and after; 200 with `duplicate: true` when this key was used for this correction "
    "before; 409 when it would take the available balance below zero (nothing is written); "
    "404 no such customer; 422 naming the field otherwise. The key comes in the body (`key`) "
    "or the Idempotency-Key header.",
)
def correct(
    request: Request, external_id: str, body: CorrectionIn, key: ApiKey = Depends(api_key)
) -> Response:
    client_key = body.key or request.headers.get("Idempotency-Key")
    if not client_key:
        raise FieldError("key", "send `key` or an Idempotency-Key header / 请提供幂等键")
    try:
        done = ledger.correct_balance(
            request.app.state.engine,
            customer=external_id,
            amount=body.amount,
            unit=body.unit,
            currency=body.currency,
            reason=body.reason,
            actor=audit.api_actor(key.prefix),
            key=client_key,
        )
    except ledger.InsufficientBalance as error:
        payload = {"detail": str(error), "field": "amount", "available": error.available,
                   "wanted": error.wanted}  # fmt: skip
        return _json(409, payload)
    except ledger.SpendError as error:
        if error.field == "customer":
            return _json(404, {"detail": error.reason})
        raise FieldError(error.field, error.reason) from None
    return _json(200 if done.duplicate else 201, done.as_dict())


@router.get("/gifts/pending", summary="The gift fulfilment queue (won, not yet shipped)")
def get_pending_gifts(request: Request, program: str | None = None) -> Response:
    items = gifts.pending_gifts(request.app.state.engine, program_slug=program)
    return _json(200, {"items": items})


class ShipIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tracking: str = Field(min_length=1, max_length=500, description="Carrier and number, or a note")
    shipped_by: str | None = Field(None, max_length=200)


@router.post(
    "/gifts/{reward_id}/ship",
    summary="Mark a gift shipped, with its tracking note (once)",
    description="201 when recorded; 200 with `duplicate: true` for the same note again; "
    "404 no such gift; 409 still in the refund hold, clawed back, or shipped with "
    "another note.",
)
def ship_gift(request: Request, reward_id: int, body: ShipIn) -> Response:
    try:
        view = gifts.mark_shipped(
            request.app.state.engine,
            reward_id=reward_id,
            tracking=body.tracking,
            shipped_by=body.shipped_by,
        )
    except gifts.GiftError as error:
        if error.status == 422:
            raise FieldError(error.field, error.reason) from None
        return _json(error.status, {"detail": error.reason, "field": error.field})
    return _json(200 if view["duplicate"] else 201, view)
