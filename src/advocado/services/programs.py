"""Referral programs (create or update from YAML/JSON) and advocates' codes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from advocado import clock
from advocado.domain import codes
from advocado.domain.programs import (
    SECOND_LEVEL_WARNING,
    ProgramConfig,
    ProgramError,
    parse_program,
)
from advocado.services import activation_aggregates, audit, customer_value, referral_aggregates
from advocado.services.upserts import Kind, Mode, upsert
from advocado.store.models import Customer, Program, ReferralCode, ReferralCounter


@dataclass(frozen=True)
class Applied:
    slug: str
    created: bool
    warnings: list[str]


def read_program_file(path: Path) -> dict[str, Any]:
    """The parsed file (YAML, or JSON which YAML reads too); ProgramError if unreadable."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ProgramError("file", f"{path}: {error}") from None
    if not isinstance(data, dict):
        raise ProgramError("file", f"{path}: expected a mapping at the top")
    return data


def _plain(data: Any) -> Any:
    """The file's data as JSON can store it (YAML gives dates as date objects)."""
    return json.loads(json.dumps(data, default=str, ensure_ascii=False))


def apply_program(session: Session, data: dict[str, Any], *, actor: str = audit.SYSTEM) -> Applied:
    """Create or update (by slug). ProgramError naming the field if the file is wrong."""
    config = parse_program(data)
    now = clock.now()
    row = session.scalar(select(Program).where(Program.slug == config.slug).with_for_update())
    created = row is None
    before = None if row is None else dict(row.config or {})
    if row is None:
        row = Program(slug=config.slug, created_at=now)
        session.add(row)
    row.name = config.name
    row.currency = config.currency
    row.starts_at = config.starts_at
    row.ends_at = config.ends_at
    row.config = _plain(data)
    row.updated_at = now
    session.flush()
    _configs.pop(row.id, None)
    if before != row.config:
        audit.record(
            session,
            actor=actor,
            entity="program",
            entity_id=config.slug,
            action="create" if created else "update",
            before=before,
            after=row.config,
        )
    if not created:  # counters follow the rules: made again from the history when next needed
        session.execute(delete(ReferralCounter).where(ReferralCounter.program_id == row.id))
    warnings = [SECOND_LEVEL_WARNING] if config.second_level else []
    return Applied(config.slug, created, warnings)


_configs: dict[int, tuple[datetime, ProgramConfig]] = {}


def config_of(program: Program) -> ProgramConfig:
    """The parsed config, cached per program version (parsing on every event is waste)."""
    cached = _configs.get(program.id)
    if cached is not None and cached[0] == program.updated_at:
        return cached[1]
    config = parse_program(program.config)
    _configs[program.id] = (program.updated_at, config)
    return config


class UnknownProgram(LookupError):
    pass


def program_by_slug(session: Session, slug: str) -> Program:
    program = session.scalar(select(Program).where(Program.slug == slug))
    if program is None:
        raise UnknownProgram(
            f"no program {slug!r} (create it with `advocado referral program apply`)"
        )
    return program


def code_for(
    session: Session,
    *,
    program_slug: str,
    customer_external_id: str,
    vanity: str | None = None,
) -> ReferralCode:
    """The advocate's code in the program, created if needed (the customer too). Two racing
    calls get the same code: the unique (program, customer) decides, the loser reads it."""
    program = program_by_slug(session, program_slug)
    (stored,) = upsert(
        session, Kind.CUSTOMERS, [{"external_id": customer_external_id}], mode=Mode.MERGE
    )
    customer_id = session.scalar(
        select(Customer.id).where(Customer.external_id == customer_external_id)
    )
    assert customer_id is not None
    existing = session.scalar(
        select(ReferralCode).where(
            ReferralCode.program_id == program.id, ReferralCode.customer_id == customer_id
        )
    )
    if existing is not None:
        return existing
    wanted = codes.check_vanity(vanity) if vanity else None
    # A code makes the customer one of the program's people: their activation counts join
    # the program's (activation_aggregates), in this transaction.
    with activation_aggregates.joining(session, [customer_id]):
        return _insert_code(session, program, customer_id, wanted)


def _insert_code(
    session: Session, program: Program, customer_id: int, wanted: str | None
) -> ReferralCode:
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    for _attempt in range(5):
        value = wanted or codes.new_code()
        statement = (
            dialect.insert(ReferralCode)
            .values(
                code=value,
                program_id=program.id,
                customer_id=customer_id,
                vanity=wanted is not None,
                created_at=clock.now(),
            )
            .on_conflict_do_nothing()
        )
        with customer_value.groups_changing(session, [customer_id]):  # joins the program
            session.execute(statement)
        found = session.scalar(
            select(ReferralCode).where(
                ReferralCode.program_id == program.id, ReferralCode.customer_id == customer_id
            )
        )
        if found is not None:
            from advocado.services import cohorts

            cohorts.joined_program(session, program.id, customer_id)  # same transaction
            # the dashboard's advocate_firsts (K-factor), same transaction
            referral_aggregates.code_made(
                session, program_id=program.id, customer_id=customer_id, created_at=found.created_at
            )
            return found
        if wanted:
            raise ValueError(f"code {wanted!r} is taken / 推荐码 {wanted} 已被占用")
    raise RuntimeError("could not draw a free code in 5 tries")
