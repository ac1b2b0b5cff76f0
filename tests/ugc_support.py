"""Shared set-up of the UGC challenge and task tests: a challenge, customers, users."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine

from advocado.domain.records import CustomerRecord, ResponseRecord
from advocado.services.challenges import apply_challenge
from advocado.services.records import save_customers, save_responses
from advocado.services.users import create_user
from advocado.store.db import unit_of_work
from advocado.store.models import Customer

T0 = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
PASSWORD = "a long enough password"


def challenge_data(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "slug": "story",
        "hashtag": "#我和壶匠的故事#",
        "starts_at": "2026-12-01",
        "ends_at": "2027-01-01",
        "max_image_mb": 1,
        "texts": {
            "zh-CN": {"title": "我和壶匠的故事", "prompt": "分享你和壶匠的一杯咖啡",
                      "prize": "全套新品"},
            "zh-TW": {"title": "我和壺匠的故事", "prompt": "分享你和壺匠的一杯咖啡",
                      "prize": "全套新品"},
            "en": {"title": "My Kettlecraft story", "prompt": "Share a cup you made",
                   "prize": "The full new range"},
        },
    }  # fmt: skip
    data.update(changes)
    return data


def seed(engine: Engine, *, customers: int = 3, locale: str = "zh-CN") -> list[int]:
    """The story challenge and `customers` customers with a promoter answer; their ids."""
    with unit_of_work(engine) as session:
        apply_challenge(session, challenge_data())
        save_customers(
            session,
            [CustomerRecord(external_id=f"c{i}", name=f"张{i}号", email=f"c{i}@example.com",
                            locale=locale) for i in range(customers)],
        )  # fmt: skip
        save_responses(
            session,
            [ResponseRecord(external_id=f"r{i}", customer_external_id=f"c{i}", score=10,
                            comment="超级喜欢这个手冲壶，颜值太高了",
                            submitted_at=T0 - timedelta(days=1)) for i in range(customers)],
        )  # fmt: skip
    with unit_of_work(engine) as session:
        ids = session.query(Customer.id).order_by(Customer.id).all()
    return [row[0] for row in ids]


def add_user(engine: Engine, email: str, role: str) -> None:
    with unit_of_work(engine) as session:
        create_user(session, email=email, password=PASSWORD, role=role)
