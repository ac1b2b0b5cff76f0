"""What the REST API accepts and returns. Every value is checked by the same rule as on CSV import
(advocado.domain.records); these models only say where each rule applies."""

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

from advocado.domain import records as rules

MAX_BATCH = 1000
MAX_MINOR_AMOUNT = 2**63 - 1  # BIGINT
TIME_NOTE = (
    "ISO 8601 with a UTC offset, e.g. 2026-05-01T09:30:00+08:00. A time without an offset is "
    "rejected (422), never guessed; times are returned in UTC."
)


def _text(name: str, max_length: int = 200) -> AfterValidator:
    return AfterValidator(lambda value: rules.optional_text(name, value, max_length))


def _required(name: str) -> AfterValidator:
    return AfterValidator(lambda value: rules.required_text(name, value))


def _minor_units(value: Any) -> Any:
    # JSON 199.00 arrives as a float: refusing it stops a major-unit amount being read as fen.
    if isinstance(value, bool) or not isinstance(value, int):
        raise rules.FieldError(
            "amount", f"{value!r} is not an integer: amounts are minor units (19900 for 199.00)"
        )
    if value > MAX_MINOR_AMOUNT:
        raise rules.FieldError("amount", f"{value} is too large")
    return rules.minor_amount(value)


ExternalId = Annotated[str, _required("external_id")]
Moment = Annotated[AwareDatetime, AfterValidator(lambda value: rules.moment("time", value))]
Score = Annotated[int, AfterValidator(rules.score)]
Comment = Annotated[str | None, AfterValidator(lambda value: (value or "").strip() or None)]


class _In(BaseModel):
    # A misspelt field would otherwise be dropped without a word.
    model_config = ConfigDict(extra="forbid")


class CustomerFields(_In):
    external_id: ExternalId | None = Field(None, description="Optional here: the path names it.")
    name: Annotated[str | None, _text("name")] = None
    email: Annotated[str | None, AfterValidator(rules.email)] = None
    phone: Annotated[str | None, AfterValidator(rules.phone)] = None
    locale: Annotated[str | None, AfterValidator(rules.locale)] = Field(
        "en", description="zh-CN, zh-TW or en (aliases such as zh-Hant are accepted)."
    )
    timezone: Annotated[str | None, AfterValidator(rules.timezone)] = Field(
        "UTC", description="IANA time zone, e.g. Asia/Shanghai."
    )
    marketing_consent: bool = Field(
        False,
        description="True records consent_at (now unless given) and consent_source ('api' "
        "unless given); re-sending true keeps the original time. False clears both.",
    )
    consent_at: Moment | None = Field(None, description=TIME_NOTE)
    consent_source: Annotated[str | None, _text("consent_source")] = None
    tags: Annotated[list[str] | None, AfterValidator(lambda value: list(rules.tags(value)))] = (
        Field(default_factory=list)
    )
    attributes: Annotated[dict[str, Any] | None, AfterValidator(lambda value: value or {})] = Field(
        default_factory=dict, description="Free JSON attributes."
    )


class CustomerIn(CustomerFields):
    external_id: ExternalId


class OrderFields(_In):
    external_id: ExternalId | None = Field(None, description="Optional here: the path names it.")
    customer_external_id: Annotated[str, _required("customer_external_id")]
    amount: Annotated[int, BeforeValidator(_minor_units)] = Field(
        description="Integer minor units (fen, cents): 19900 is 199.00 CNY."
    )
    currency: Annotated[str, AfterValidator(rules.currency)] = Field(
        description="ISO 4217, e.g. CNY."
    )
    status: Annotated[str | None, AfterValidator(rules.order_status)] = Field(
        "paid", description=", ".join(rules.ORDER_STATUSES)
    )
    placed_at: Moment = Field(description=TIME_NOTE)


class OrderIn(OrderFields):
    external_id: ExternalId


class ResponseFields(_In):
    external_id: ExternalId | None = Field(None, description="Optional here: the path names it.")
    customer_external_id: Annotated[str | None, _text("customer_external_id")] = None
    score: Score = Field(description="0-10.")
    comment: Comment = None
    survey: Annotated[str | None, _text("survey")] = None
    channel: Annotated[str | None, _text("channel", 100)] = None
    submitted_at: Moment = Field(description=TIME_NOTE)


class ResponseIn(ResponseFields):
    external_id: ExternalId


class ResponsePatch(_In):
    """Only the fields sent change (e.g. the comment arriving after the score)."""

    external_id: ExternalId | None = Field(None, description="Optional: the path names it.")
    customer_external_id: Annotated[str | None, _text("customer_external_id")] = None
    score: Score = Field(None, description="0-10.")  # type: ignore[assignment]
    comment: Comment = None
    survey: Annotated[str | None, _text("survey")] = None
    channel: Annotated[str | None, _text("channel", 100)] = None
    submitted_at: Moment = Field(None, description=TIME_NOTE)  # type: ignore[assignment]


class CustomerBatch(_In):
    items: list[CustomerIn] = Field(max_length=MAX_BATCH)


class OrderBatch(_In):
    items: list[OrderIn] = Field(max_length=MAX_BATCH)


class ResponseBatch(_In):
    items: list[ResponseIn] = Field(max_length=MAX_BATCH)


# Outputs: for the OpenAPI document; the handlers render the stored rows directly.


class CustomerOut(BaseModel):
    external_id: str
    name: str | None
    email: str | None
    phone: str | None
    locale: str
    timezone: str
    marketing_consent: bool
    consent_at: datetime | None
    consent_source: str | None
    tags: list[str]
    attributes: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class OrderOut(BaseModel):
    external_id: str
    customer_external_id: str
    amount: int
    currency: str
    status: str
    placed_at: datetime
    created_at: datetime
    updated_at: datetime


class ResponseOut(BaseModel):
    external_id: str
    customer_external_id: str | None
    score: int
    category: str = Field(description="promoter (9-10), passive (7-8) or detractor (0-6).")
    comment: str | None
    survey: str | None
    channel: str | None
    submitted_at: datetime
    created_at: datetime
    updated_at: datetime


class CustomerPage(BaseModel):
    items: list[CustomerOut]
    next: str | None = Field(description="Pass as `after` for the next page; null at the end.")


class OrderPage(BaseModel):
    items: list[OrderOut]
    next: str | None


class ResponsePage(BaseModel):
    items: list[ResponseOut]
    next: str | None


class BatchResult(BaseModel):
    items: list[dict[str, Any]] = Field(description="Each stored row plus its `outcome`.")
    created: int
    updated: int
    unchanged: int


class NpsOut(BaseModel):
    nps: float | None = Field(description="% promoters - % detractors; null with no responses.")
    promoters: int
    passives: int
    detractors: int
    responses: int


class Problem(BaseModel):
    field: str = Field(description="Where, e.g. items[3].score.")
    reason: str
    loc: list[str | int] = []
    msg: str = ""
    type: str = ""


class ValidationProblem(BaseModel):
    detail: list[Problem]
