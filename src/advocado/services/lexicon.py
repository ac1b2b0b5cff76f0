"""A brand's own words for the persona classifier: kept in `lexicon_terms`, added from a file
(`advocado voc lexicon import`), the API (/api/v1/lexicon), or a file named by the
ADVOCADO_LEXICON environment variable (read on use, never written to the database)."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from advocado import clock
from advocado.services import audit
from advocado.store.models import LexiconTerm
from advocado.text.lexicon import BRAND_KINDS, BrandTerm, Lexicon, lexicon_for

ENV_FILE = "ADVOCADO_LEXICON"
MAX_TERM = 100
MAX_WEIGHT = 5.0


class LexiconError(ValueError):
    """A term or a lexicon file that cannot be used; the message says which and why."""


@dataclass(frozen=True)
class TermRecord:
    term: str
    persona: str
    weight: float

    def as_dict(self) -> dict[str, object]:
        return {"term": self.term, "persona": self.persona, "weight": self.weight}


def validate_term(term: str, persona: str, weight: float = 1.0) -> BrandTerm:
    term = (term or "").strip()
    if not term:
        raise LexiconError("term is empty")
    if len(term) > MAX_TERM:
        raise LexiconError(f"term longer than {MAX_TERM} characters")
    if persona not in BRAND_KINDS:
        raise LexiconError(f"persona {persona!r}: use one of {', '.join(BRAND_KINDS)}")
    if not 0 < weight <= MAX_WEIGHT:
        raise LexiconError(f"weight {weight}: must be above 0 and at most {MAX_WEIGHT:g}")
    return BrandTerm(term, persona, float(weight))


def parse_terms(text: str, *, source: str = "lexicon") -> list[BrandTerm]:
    """CSV or tab-separated text with a header naming `term`, `persona` and optionally
    `weight`; lines starting with # are comments. Raises LexiconError naming the line."""
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1)
             if line.strip() and not line.lstrip().startswith("#")]  # fmt: skip
    if not lines:
        return []
    delimiter = "\t" if "\t" in lines[0][1] else ","
    rows = list(csv.reader(io.StringIO("\n".join(line for _, line in lines)), delimiter=delimiter))
    header = [cell.strip().lower().lstrip("\ufeff") for cell in rows[0]]
    if "term" not in header or "persona" not in header:
        raise LexiconError(f"{source} line {lines[0][0]}: header must name term and persona")
    at = {name: header.index(name) for name in ("term", "persona", "weight") if name in header}
    terms = []
    for (number, _), row in zip(lines[1:], rows[1:], strict=True):
        try:
            cells = {name: row[index].strip() for name, index in at.items() if index < len(row)}
            weight = float(cells.get("weight") or 1.0)
            terms.append(validate_term(cells.get("term", ""), cells.get("persona", ""), weight))
        except (LexiconError, ValueError) as error:
            raise LexiconError(f"{source} line {number}: {error}") from None
    return terms


@lru_cache(maxsize=4)
def _file_terms(path: str, mtime: float) -> tuple[BrandTerm, ...]:
    return tuple(parse_terms(Path(path).read_text("utf-8-sig"), source=path))


def env_terms() -> tuple[BrandTerm, ...]:
    """The terms of the ADVOCADO_LEXICON file, re-read when the file changes."""
    path = os.environ.get(ENV_FILE)
    if not path:
        return ()
    try:
        return _file_terms(path, Path(path).stat().st_mtime)
    except OSError as error:
        raise LexiconError(f"{ENV_FILE}={path}: {error.strerror or error}") from None


def list_terms(session: Session) -> list[TermRecord]:
    rows = session.execute(
        select(LexiconTerm.term, LexiconTerm.persona, LexiconTerm.weight).order_by(
            LexiconTerm.persona, LexiconTerm.term
        )
    )
    return [TermRecord(term, persona, weight) for term, persona, weight in rows]


def brand_terms(session: Session) -> tuple[BrandTerm, ...]:
    """The environment file's terms, then the database's (which win on the same word)."""
    stored = tuple(BrandTerm(t.term, t.persona, t.weight) for t in list_terms(session))
    return env_terms() + stored


def brand_lexicon(session: Session) -> Lexicon:
    return lexicon_for(brand_terms(session))


def add_terms(session: Session, terms: Sequence[BrandTerm], *, actor: str = audit.SYSTEM) -> int:
    """Adds or re-weights terms. A term has one meaning: adding it to one side takes it off
    the other. The stored comments that contain a term are re-classified in the same
    transaction. Returns how many terms were written."""
    now = clock.now()
    for brand in terms:
        old = session.scalar(select(LexiconTerm).where(LexiconTerm.term == brand.term))
        before = None if old is None else {"persona": old.persona, "weight": old.weight}
        after = {"persona": brand.persona, "weight": brand.weight}
        if before != after:
            audit.record(
                session,
                actor=actor,
                entity="lexicon_term",
                entity_id=brand.term,
                action="create" if old is None else "update",
                before=before,
                after=after,
            )
        session.execute(delete(LexiconTerm).where(LexiconTerm.term == brand.term))
        session.add(LexiconTerm(term=brand.term, persona=brand.persona, weight=brand.weight,
                                created_at=now))  # fmt: skip
        session.flush()
    _reclassify(session, [brand.term for brand in terms])
    return len(terms)


def remove_term(session: Session, *, term: str, actor: str = audit.SYSTEM) -> bool:
    """True if the term was there. The stored comments that contain it are re-classified in
    the same transaction (the built-in meaning, if any, applies again)."""
    old = session.scalars(select(LexiconTerm).where(LexiconTerm.term == term.strip())).all()
    for row in old:
        audit.record(
            session,
            actor=actor,
            entity="lexicon_term",
            entity_id=row.term,
            action="delete",
            before={"persona": row.persona, "weight": row.weight},
        )
    result = session.execute(delete(LexiconTerm).where(LexiconTerm.term == term.strip()))
    found = bool(result.rowcount)  # type: ignore[attr-defined]
    if found:
        _reclassify(session, [term])
    return found


def _reclassify(session: Session, terms: list[str]) -> int:
    from advocado.services.voc import reclassify_containing

    return reclassify_containing(session, terms=terms)


def import_file(session: Session, path: Path, *, actor: str = audit.SYSTEM) -> int:
    try:
        text = path.read_text("utf-8-sig")
    except OSError as error:
        raise LexiconError(f"{path}: {error.strerror or error}") from None
    return add_terms(session, parse_terms(text, source=str(path)), actor=actor)
