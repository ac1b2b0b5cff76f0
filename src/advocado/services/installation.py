"""Installation-wide values kept in the `settings` table."""

from __future__ import annotations

import secrets

from sqlalchemy import Engine, select
from sqlalchemy.dialects import postgresql, sqlite

from advocado.config import settings
from advocado.store.db import unit_of_work
from advocado.store.models import Setting

SESSION_KEY_SETTING = "session_secret_key"


def session_secret_key(engine: Engine) -> str:
    """The key that signs console sessions: ADVOCADO_SECRET_KEY if set, else one generated on
    first use and stored, so it survives restarts and every worker signs with the same key."""
    configured = settings().secret_key
    if configured:
        return configured
    with unit_of_work(engine) as session:
        insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
        # Two workers starting together: the first insert wins, both read the winner.
        session.execute(
            insert(Setting)
            .values(key=SESSION_KEY_SETTING, value=secrets.token_urlsafe(48))
            .on_conflict_do_nothing(index_elements=[Setting.key])
        )
        return session.scalar(select(Setting.value).where(Setting.key == SESSION_KEY_SETTING))
