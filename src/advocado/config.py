"""Settings read from the environment, in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    database_url: str
    secret_key: str | None

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            database_url=os.environ.get("ADVOCADO_DATABASE_URL", "sqlite:///advocado.db"),
            secret_key=os.environ.get("ADVOCADO_SECRET_KEY") or None,
        )


def settings() -> Settings:
    return Settings.from_env()
