"""Batch use of the comment classifier: read comments from CSV (`id,text`) or JSONL
(`{"id": …, "text": …}`), classify them in input order, and score a labelled file."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from advocado.text.analyze import analyze
from advocado.text.lexicon import Lexicon
from advocado.text.metrics import LABELS, Evaluation, evaluate


@dataclass(frozen=True)
class Comment:
    line: int
    id: Any
    text: str
    fields: dict[str, Any]  # the whole input row (evaluate reads `persona` from it)


@dataclass(frozen=True)
class BadLine:
    line: int
    id: Any
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


class BadFile(ValueError):
    """The file cannot be read at all (missing, or a CSV without id and text columns)."""


def _is_jsonl(path: Path) -> bool:
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        return True
    if path.suffix.lower() in (".csv", ".tsv"):
        return False
    with path.open(encoding="utf-8-sig", errors="replace") as file:
        for line in file:
            if line.strip():
                return line.lstrip().startswith("{")
    return False


def read_comments(path: Path) -> Iterator[Comment | BadLine]:
    """Every data line of the file, in order, as a Comment or a BadLine saying what is wrong."""
    if not path.is_file():
        raise BadFile(f"{path}: no such file")
    yield from (_read_jsonl if _is_jsonl(path) else _read_csv)(path)


def _read_jsonl(path: Path) -> Iterator[Comment | BadLine]:
    with path.open(encoding="utf-8-sig", errors="replace") as file:
        for number, line in enumerate(file, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                yield BadLine(number, None, f"not valid JSON ({error.msg})")
                continue
            if not isinstance(row, dict):
                yield BadLine(number, None, "expected a JSON object with id and text")
                continue
            yield _checked(number, row)


def _read_csv(path: Path) -> Iterator[Comment | BadLine]:
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as file:
        reader = csv.reader(file)
        header = [cell.strip().lower() for cell in next(reader, [])]
        if "id" not in header or "text" not in header:
            raise BadFile(f"{path}: the CSV header must have id and text columns")
        start = reader.line_num
        for row in reader:
            number = start + 1 if start else reader.line_num
            start = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                yield BadLine(number, row[0] if row else None,
                              f"{len(row)} fields where the header has {len(header)}")  # fmt: skip
                continue
            yield _checked(number, dict(zip(header, row, strict=True)))


def _checked(number: int, row: dict[str, Any]) -> Comment | BadLine:
    if "id" not in row or row["id"] in (None, ""):
        return BadLine(number, None, "no id")
    if "text" not in row:
        return BadLine(number, row["id"], "no text")
    text = row["text"]
    if text is None:
        text = ""
    if not isinstance(text, str):
        return BadLine(number, row["id"], "text is not a string")
    return Comment(number, row["id"], text, row)


def classify_line(comment: Comment, lexicon: Lexicon | None = None) -> dict[str, Any]:
    """The contract's object: id, language, sentiment, persona, confidence, evidence."""
    return {"id": comment.id, **analyze(comment.text, lexicon).as_dict()}


def evaluate_file(
    path: Path, lexicon: Lexicon | None = None
) -> tuple[Evaluation, list[BadLine], list[dict[str, Any]]]:
    """Scores a file with a `persona` column. Returns the figures, the bad lines, and the
    misclassified comments (expected, predicted, text, evidence)."""
    expected: list[str] = []
    predicted: list[str] = []
    bad: list[BadLine] = []
    wrong: list[dict[str, Any]] = []
    for item in read_comments(path):
        if isinstance(item, BadLine):
            bad.append(item)
            continue
        gold = str(item.fields.get("persona") or "").strip()
        if gold not in LABELS:
            bad.append(BadLine(item.line, item.id, f"persona {gold!r}: use {', '.join(LABELS)}"))
            continue
        analysis = analyze(item.text, lexicon)
        expected.append(gold)
        predicted.append(analysis.persona)
        if gold != analysis.persona:
            wrong.append({"id": item.id, "expected": gold, "predicted": analysis.persona,
                          "text": item.text, "evidence": analysis.evidence})  # fmt: skip
    return evaluate(expected, predicted), bad, wrong


@dataclass(frozen=True)
class Reclassified:
    examined: int  # stored comments analysed again
    changed: int  # whose analysis differed and was written
    batches: int


RECLASSIFY_BATCH = 1000


def reclassify_responses(
    engine: Any, *, batch_size: int = RECLASSIFY_BATCH, only_unanalysed: bool = False
) -> Reclassified:
    """Analyses the stored comments again with today's lexicon (built-in words and the brand's
    words), so words added later apply to comments already stored. Walks the responses by id
    in batches, one transaction per batch (a failure keeps the batches already done), and
    writes only the rows whose analysis changed. `only_unanalysed`: just the comments that were
    never analysed."""
    from sqlalchemy import select, update

    from advocado import clock
    from advocado.services.lexicon import brand_lexicon
    from advocado.services.records import ANALYSIS_FIELDS, _analysis_fields
    from advocado.store.db import unit_of_work
    from advocado.store.models import Response
    from advocado.text.analyze import analyze_cached

    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    columns = [getattr(Response, name) for name in ANALYSIS_FIELDS]
    last_id, examined, changed, batches = 0, 0, 0, 0
    lexicon = None
    while True:
        with unit_of_work(engine) as session:
            if lexicon is None:
                lexicon = brand_lexicon(session)
            query = select(Response.id, Response.comment, Response.analyzed_at, *columns).where(
                Response.id > last_id, Response.comment.is_not(None)
            )
            if only_unanalysed:
                query = query.where(Response.analyzed_at.is_(None))
            rows = session.execute(query.order_by(Response.id).limit(batch_size)).all()
            if not rows:
                break
            batches += 1
            now = clock.now()
            moved: list[int] = []
            for row in rows:
                last_id = row.id
                if not row.comment.strip():
                    continue
                examined += 1
                fields = _analysis_fields(analyze_cached(row.comment, lexicon))
                stored = {name: getattr(row, name) for name in ANALYSIS_FIELDS}
                if stored == fields and row.analyzed_at is not None:
                    continue
                changed += 1
                moved.append(row.id)
                session.execute(
                    update(Response).where(Response.id == row.id).values(**fields, analyzed_at=now)
                )
            _personas_changed(session, moved)
    return Reclassified(examined, changed, batches)


def _personas_changed(session: Any, response_ids: list[int]) -> None:
    """A persona may be what a customer's latest response says: the dashboard's aggregates."""
    from sqlalchemy import select

    from advocado.services import customer_aggregates
    from advocado.store.models import Response

    customers: set[int] = set()
    for start in range(0, len(response_ids), 900):
        chunk = response_ids[start : start + 900]
        customers.update(
            session.scalars(select(Response.customer_id).where(Response.id.in_(chunk)))
        )
    customer_aggregates.responses_changed(session, customers)


def reclassify_containing(session: Any, *, terms: Sequence[str]) -> int:
    """Re-analyses, in the caller's transaction, the stored comments that contain one of
    `terms` (compared as the classifier sees text: simplified script, lower case, half-width),
    with the brand's lexicon as it now stands. Called when brand words are added or removed, so
    the change and its effect on stored comments commit together. Returns how many changed.
    Costs one pass over the stored comments (streamed); `advocado voc reclassify` does the
    same for every comment in batches."""
    from sqlalchemy import select, update

    from advocado import clock
    from advocado.services.lexicon import brand_lexicon
    from advocado.services.records import ANALYSIS_FIELDS, _analysis_fields
    from advocado.store.models import Response
    from advocado.text.analyze import analyze_cached
    from advocado.text.lexicon import normalise

    wanted = {normalise(term.strip()) for term in terms if term.strip()}
    if not wanted:
        return 0
    session.flush()
    lexicon = brand_lexicon(session)
    columns = [getattr(Response, name) for name in ANALYSIS_FIELDS]
    query = select(Response.id, Response.comment, *columns).where(Response.comment.is_not(None))
    changes: list[tuple[int, dict[str, Any]]] = []
    for row in session.execute(query.order_by(Response.id).execution_options(yield_per=2000)):
        normal = normalise(row.comment)
        if not any(term in normal for term in wanted):
            continue
        fields = _analysis_fields(analyze_cached(row.comment, lexicon))
        if fields != {name: getattr(row, name) for name in ANALYSIS_FIELDS}:
            changes.append((row.id, fields))
    now = clock.now()
    for response_id, fields in changes:
        session.execute(
            update(Response).where(Response.id == response_id).values(**fields, analyzed_at=now)
        )
    _personas_changed(session, [response_id for response_id, _ in changes])
    return len(changes)
