"""The audit log: who changed what, when, with a summary of before and after.

`record` is called by the service that makes the change, inside its transaction, so the
change and its record commit (or roll back) together. A new kind of change (playbooks,
templates) audits itself with one call:

    audit.record(session, actor=actor, entity="playbook", entity_id=slug, action="update",
                 before=old_summary, after=new_summary)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from advocado import clock
from advocado.store.models import AuditEntry

SYSTEM = "system"
CLI = "cli"
MAX_VALUE = 2000  # characters of one summarised value; the rest is cut with "…"


def user_actor(email: str) -> str:
    return f"user:{email}"


def api_actor(prefix: str) -> str:
    return f"api:{prefix}"


def summary(value: Any) -> Any:
    """A JSON-safe copy of `value` with long strings cut, for before/after."""
    plain = json.loads(json.dumps(value, default=str, ensure_ascii=False))
    return _cut(plain)


def _cut(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_VALUE:
        return value[:MAX_VALUE] + "…"
    if isinstance(value, dict):
        return {str(k): _cut(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_cut(v) for v in value]
    return value


def record(
    session: Session,
    *,
    actor: str,
    entity: str,
    entity_id: str | int,
    action: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEntry:
    """Add one audit row to the caller's transaction."""
    entry = AuditEntry(
        at=clock.now(),
        actor=(actor or SYSTEM)[:400],
        entity=entity,
        entity_id=str(entity_id)[:200],
        action=action,
        before=None if before is None else summary(before),
        after=None if after is None else summary(after),
    )
    session.add(entry)
    return entry


@dataclass(frozen=True)
class AuditView:
    id: int
    at: datetime
    actor: str
    entity: str
    entity_id: str
    action: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None

    @property
    def changed(self) -> list[str]:
        """The fields that differ between before and after (all of them on create/delete)."""
        old, new = self.before or {}, self.after or {}
        return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "at": self.at.isoformat(), "actor": self.actor,
                "entity": self.entity, "entity_id": self.entity_id, "action": self.action,
                "changed": self.changed, "before": self.before, "after": self.after}  # fmt: skip


def entries(
    session: Session,
    *,
    entity: str | None = None,
    actor: str | None = None,
    limit: int = 100,
    before_id: int | None = None,
) -> list[AuditView]:
    """Newest first; `before_id` pages on."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if entity:
        query = query.where(AuditEntry.entity == entity)
    if actor:
        query = query.where(AuditEntry.actor == actor)
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    return [
        AuditView(e.id, e.at, e.actor, e.entity, e.entity_id, e.action, e.before, e.after)
        for e in session.scalars(query)
    ]
