"""CSV import of customers, orders, NPS responses and social profiles.

One file is one transaction: a crash or a --strict abort leaves the database as it was, and
re-running the same file creates nothing twice (rows are matched on their external ids).
Bad rows are reported with line, field and reason, and written to a rejects CSV.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from advocado.domain import influence
from advocado.domain import records as rules
from advocado.domain.records import Kind
from advocado.services.insights import save_social_profiles
from advocado.services.records import (
    Outcome,
    Saved,
    UnknownCustomer,
    customer_ids,
    save_customers,
    save_orders,
    save_responses,
)
from advocado.store.db import unit_of_work

BATCH_ROWS = 2000
SAMPLE_BYTES = 1 << 20


# The canonical column names; scripts rely on them. The first ones listed per kind are required.
FIELDS: dict[Kind, tuple[str, ...]] = {
    Kind.CUSTOMERS: ("external_id", "name", "email", "phone", "locale", "timezone",
                     "marketing_consent", "consent_at", "consent_source", "tags"),
    Kind.ORDERS: ("external_id", "customer_external_id", "amount", "currency", "status",
                  "placed_at"),
    Kind.RESPONSES: ("external_id", "customer_external_id", "score", "comment", "survey",
                     "channel", "submitted_at"),
    Kind.SOCIAL: ("customer_external_id", "platform", "handle", "followers", "engagement_rate",
                  "brand_mentions", "vertical"),
}  # fmt: skip
REQUIRED: dict[Kind, tuple[str, ...]] = {
    Kind.CUSTOMERS: ("external_id",),
    Kind.ORDERS: ("external_id", "customer_external_id", "amount", "currency", "placed_at"),
    Kind.RESPONSES: ("score", "submitted_at"),
    Kind.SOCIAL: ("customer_external_id", "platform", "handle"),
}


class ImportError_(ValueError):
    """The file cannot be imported at all (unreadable, a required column missing, bad --map)."""


class _StrictAbort(Exception):
    """Raised inside the transaction to roll it back when --strict meets a bad row."""


@dataclass(frozen=True)
class ImportOptions:
    mapping: dict[str, str] = field(default_factory=dict)  # canonical field -> file column
    date_format: str | None = None
    timezone: str = "UTC"  # for timestamps without an offset
    amount_unit: str = "major"  # "major": 199.00 ; "minor": 19900
    strict: bool = False
    encoding: str | None = None  # None: detect


@dataclass(frozen=True)
class Reject:
    line: int
    field: str
    reason: str
    row: list[str]


@dataclass
class ImportSummary:
    kind: Kind
    path: Path
    encoding: str
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    first_rejects: list[Reject] = field(default_factory=list)
    rejects_path: Path | None = None
    aborted: bool = False  # --strict and at least one bad row: nothing was written

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": str(self.kind),
            "file": str(self.path),
            "encoding": self.encoding,
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "rejected": self.rejected,
            "rejects_file": str(self.rejects_path) if self.rejects_path else None,
            "aborted": self.aborted,
        }


def detect_encoding(sample: bytes) -> str:
    """UTF-8 (with or without BOM) or GB18030. A mostly-UTF-8 file with a few bad bytes stays
    UTF-8: the bad bytes become U+FFFD rather than the whole file turning into mojibake."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    try:
        decoder.decode(sample, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    bad = sample.decode("utf-8", "replace").count("\ufffd")
    non_ascii = sum(1 for byte in sample if byte > 0x7F)
    if bad * 20 < non_ascii:  # under 5% of the non-ASCII bytes are invalid: UTF-8 with damage
        return "utf-8"
    try:
        codecs.getincrementaldecoder("gb18030")("strict").decode(sample, final=False)
        return "gb18030"
    except UnicodeDecodeError:
        return "utf-8"


class _CountingReader(io.RawIOBase):
    """Reports bytes read, for the progress bar."""

    def __init__(self, raw: IO[bytes], on_bytes: Callable[[int], None] | None) -> None:
        self._raw = raw
        self._on_bytes = on_bytes

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = self._raw.readinto(buffer)  # type: ignore[attr-defined]
        if count and self._on_bytes:
            self._on_bytes(count)
        return count or 0


def _resolve_columns(kind: Kind, header: list[str], mapping: dict[str, str]) -> dict[str, int]:
    """canonical field -> column index. Raises ImportError_ naming what is wrong."""
    unknown = sorted(set(mapping) - set(FIELDS[kind]))
    if unknown:
        raise ImportError_(
            f"--map names unknown field(s) {', '.join(unknown)}; "
            f"{kind} fields are: {', '.join(FIELDS[kind])}"
        )
    by_name = {name.strip().lower(): index for index, name in enumerate(header)}
    columns: dict[str, int] = {}
    for name in FIELDS[kind]:
        wanted = mapping.get(name, name)
        index = by_name.get(wanted.strip().lower())
        if index is None and name in mapping:
            raise ImportError_(
                f"--map {name}={wanted}: the file has no column {wanted!r} "
                f"(its columns: {', '.join(header)})"
            )
        if index is not None:
            columns[name] = index
    missing = [name for name in REQUIRED[kind] if name not in columns]
    if missing:
        raise ImportError_(
            f"required column(s) missing: {', '.join(missing)} "
            f"(the file has: {', '.join(header)}; use --map field=COLUMN)"
        )
    return columns


def _parse(
    kind: Kind, values: dict[str, str], extra: dict[str, str], line: int, options: ImportOptions
) -> Any:
    """One row to a record, or FieldError."""
    zone = options.timezone
    fmt = options.date_format
    get = values.get
    if kind is Kind.SOCIAL:
        return influence.social_record(
            customer_external_id=get("customer_external_id"), platform_name=get("platform"),
            handle=get("handle"), followers=get("followers"), rate=get("engagement_rate"),
            brand_mentions=get("brand_mentions"), vertical=get("vertical"),
        )  # fmt: skip
    if kind is Kind.CUSTOMERS:
        consent = rules.boolean("marketing_consent", get("marketing_consent"))
        consent_at = None
        if consent:
            raw_at = get("consent_at")
            consent_at = rules.moment("consent_at", raw_at, fmt, zone) if raw_at else None
        return rules.CustomerRecord(
            external_id=rules.required_text("external_id", get("external_id")),
            name=rules.optional_text("name", get("name")),
            email=rules.email(get("email")),
            phone=rules.phone(get("phone")),
            locale=rules.locale(get("locale")),
            timezone=rules.timezone(get("timezone")),
            marketing_consent=consent,
            consent_at=consent_at,
            consent_source=(
                rules.optional_text("consent_source", get("consent_source")) or "import"
            )
            if consent
            else None,
            tags=rules.tags(get("tags")),
            attributes={k: v for k, v in extra.items() if k and v != ""},
        )
    if kind is Kind.ORDERS:
        currency = rules.currency(get("currency"))
        raw_amount = get("amount")
        if options.amount_unit == "minor":
            try:
                amount = rules.minor_amount(int((raw_amount or "").strip()))
            except ValueError as error:
                if isinstance(error, rules.FieldError):
                    raise
                raise rules.FieldError(
                    "amount", f"{raw_amount!r} is not whole minor units"
                ) from None
        else:
            amount = rules.amount_from_major(raw_amount, currency)
        return rules.OrderRecord(
            external_id=rules.required_text("external_id", get("external_id")),
            customer_external_id=rules.required_text(
                "customer_external_id", get("customer_external_id")
            ),
            amount=amount,
            currency=currency,
            status=rules.order_status(get("status")),
            placed_at=rules.moment("placed_at", get("placed_at"), fmt, zone),
        )
    score = rules.score(get("score"))
    submitted_at = rules.moment("submitted_at", get("submitted_at"), fmt, zone)
    customer = rules.optional_text("customer_external_id", get("customer_external_id"))
    survey = rules.optional_text("survey", get("survey"))
    channel = rules.optional_text("channel", get("channel"), 100)
    comment = (get("comment") or "").strip() or None
    external_id = rules.optional_text("external_id", get("external_id"))
    if external_id is None:
        external_id = rules.derived_response_key(
            customer_external_id=customer, survey=survey, channel=channel,
            submitted_at=submitted_at, score=score, comment=comment, line=line,
        )  # fmt: skip
    return rules.ResponseRecord(
        external_id=external_id,
        customer_external_id=customer,
        score=score,
        comment=comment,
        survey=survey,
        channel=channel,
        submitted_at=submitted_at,
    )


# (line, canonical values, other columns, the row as read)
_Row = tuple[int, dict[str, str], dict[str, str], list[str]]

_SAVERS: dict[Kind, Callable[..., list[Saved]]] = {
    Kind.CUSTOMERS: save_customers,
    Kind.ORDERS: save_orders,
    Kind.RESPONSES: save_responses,
    Kind.SOCIAL: save_social_profiles,  # upserts on (customer, platform), re-scores influence
}


def default_rejects_path(path: Path) -> Path:
    """Beside the summary: in the working directory, since the input may be read-only."""
    return Path.cwd() / f"{path.stem}.rejects.csv"


def import_file(
    engine: Engine,
    kind: Kind,
    path: Path,
    options: ImportOptions | None = None,
    *,
    rejects_path: Path | None = None,
    on_bytes: Callable[[int], None] | None = None,
    keep_rejects: int = 20,
) -> ImportSummary:
    options = options or ImportOptions()
    rejects_path = rejects_path or default_rejects_path(path)
    with open(path, "rb") as raw:
        encoding = options.encoding or detect_encoding(raw.read(SAMPLE_BYTES))
        raw.seek(0)
        text = io.TextIOWrapper(
            io.BufferedReader(_CountingReader(raw, on_bytes), 1 << 16),
            encoding=encoding,
            errors="replace",
            newline="",
        )
        reader = csv.reader(text)
        try:
            header = next(reader)
        except StopIteration:
            raise ImportError_(f"{path}: the file is empty (no header row)") from None
        columns = _resolve_columns(kind, header, options.mapping)
        summary = ImportSummary(kind=kind, path=path, encoding=encoding)
        with _RejectsWriter(rejects_path, header) as rejects:
            try:
                run = _Run(kind, options, rejects, summary, keep_rejects)
                run.import_rows(engine, _batches(reader, header, columns))
            except _StrictAbort:
                summary.aborted = True
                summary.created = summary.updated = summary.unchanged = 0
        summary.rejects_path = rejects_path if summary.rejected else None
    return summary


@dataclass
class _Run:
    """One import: validates rows batch by batch, reports rejects, writes the good rows."""

    kind: Kind
    options: ImportOptions
    rejects: _RejectsWriter
    summary: ImportSummary
    keep_rejects: int

    def import_rows(self, engine: Engine, batches: Iterator[list[_Row]]) -> None:
        with unit_of_work(engine) as session:
            for batch in batches:
                parsed = self._parse(batch)
                known = self._drop_unknown_customers(session, parsed, batch)
                if self.summary.rejected and self.options.strict:
                    continue  # keep validating to report every bad row, but write nothing
                if parsed:
                    records = [record for _, record in parsed]
                    saved = (
                        save_customers(session, records)
                        if self.kind is Kind.CUSTOMERS
                        else _SAVERS[self.kind](session, records, known_customers=known)
                    )
                    for outcome in saved:
                        _count(self.summary, outcome.outcome)
            if self.summary.rejected and self.options.strict:
                raise _StrictAbort

    def _parse(self, batch: list[_Row]) -> list[tuple[int, Any]]:
        parsed = []
        for line, values, extra, row in batch:
            self.summary.rows += 1
            try:
                parsed.append((line, _parse(self.kind, values, extra, line, self.options)))
            except rules.FieldError as error:
                self._reject(line, error, row)
        return parsed

    def _drop_unknown_customers(
        self, session: Session, parsed: list[tuple[int, Any]], batch: list[_Row]
    ) -> dict[str, int]:
        """Rejects (in place) rows naming a customer that does not exist; returns the lookup."""
        if self.kind is Kind.CUSTOMERS:
            return {}
        wanted = [r.customer_external_id for _, r in parsed if r.customer_external_id]
        known = customer_ids(session, wanted) if wanted else {}
        rows_by_line = {line: row for line, _values, _extra, row in batch}
        kept = []
        for line, record in parsed:
            if record.customer_external_id and record.customer_external_id not in known:
                self._reject(line, UnknownCustomer(record.customer_external_id), rows_by_line[line])
            else:
                kept.append((line, record))
        parsed[:] = kept
        return known

    def _reject(self, line: int, error: rules.FieldError, row: list[str]) -> None:
        reject = Reject(line, error.field, error.reason, row)
        self.rejects.add(reject)
        self.summary.rejected += 1
        if len(self.summary.first_rejects) < self.keep_rejects:
            self.summary.first_rejects.append(reject)


def _count(summary: ImportSummary, outcome: Outcome) -> None:
    if outcome is Outcome.CREATED:
        summary.created += 1
    elif outcome is Outcome.UPDATED:
        summary.updated += 1
    else:
        summary.unchanged += 1


def _batches(reader: Any, header: list[str], columns: dict[str, int]) -> Iterator[list[_Row]]:
    mapped = set(columns.values())
    extra_columns = [(i, name.strip()) for i, name in enumerate(header) if i not in mapped]
    width = len(header)
    batch = []
    line = reader.line_num
    for row in reader:
        start, line = line + 1, reader.line_num
        if not "".join(row).strip():
            continue  # blank line
        if len(row) < width:
            row = row + [""] * (width - len(row))
        values = {name: row[index] for name, index in columns.items()}
        extra = {name: row[index] for index, name in extra_columns}
        batch.append((start, values, extra, row))
        if len(batch) >= BATCH_ROWS:
            yield batch
            batch = []
    if batch:
        yield batch


class _RejectsWriter:
    """Writes rejected rows (line, field, reason, then the row as it was) as they are found."""

    def __init__(self, path: Path, header: list[str]) -> None:
        self._path = path
        self._header = header
        self._file: IO[str] | None = None
        self._writer: Any = None

    def __enter__(self) -> _RejectsWriter:
        return self

    def add(self, reject: Reject) -> None:
        if self._writer is None:
            self._file = open(self._path, "w", encoding="utf-8-sig", newline="")  # noqa: SIM115
            self._writer = csv.writer(self._file)
            self._writer.writerow(["line", "field", "reason", *self._header])
        self._writer.writerow([reject.line, reject.field, reject.reason, *reject.row])

    def __exit__(self, *_exc: object) -> None:
        if self._file:
            self._file.close()
        elif self._path.exists():
            self._path.unlink()  # a clean run leaves no stale rejects from an earlier one
