"""Social import, influence, and the bulk recompute of value tiers and lifecycle stages."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from advocado import clock
from advocado.domain.influence import profile_score
from advocado.domain.records import CustomerRecord, OrderRecord
from advocado.domain.tiers import TierRules, lifecycle, percent_ranks, score, value_tier
from advocado.services.importing import ImportOptions, Kind, import_file
from advocado.services.insights import InsightRules, load_rules, recompute_insights
from advocado.services.records import save_customers, save_orders
from advocado.store.db import unit_of_work
from advocado.store.models import CustomerInsight, SocialProfile

NOW = datetime(2026, 6, 1, tzinfo=UTC)
SOCIAL = """customer_external_id,platform,handle,followers,engagement_rate,brand_mentions,vertical
c1,Weibo,@lin,"12,400",4.1%,6,beauty
c1,小红书,lin_x,3000,0.02,1,
c2,douyin,bob,800,0.01,0,
c9,douyin,ghost,100,0.5,1,
c3,x,cc,-5,2%,1,
c3,x,cc,500,3.5,1,
"""


def customers(engine: Engine, *ids: str) -> None:
    with unit_of_work(engine) as session:
        save_customers(session, [CustomerRecord(external_id=i, name=i.upper()) for i in ids])


def orders(engine: Engine, rows: list[tuple[str, int, int, str]]) -> None:
    """(customer, days ago, amount in minor units, status)."""
    with unit_of_work(engine) as session:
        save_orders(session, [
            OrderRecord(external_id=f"o{n}", customer_external_id=customer, amount=amount,
                        currency="CNY", placed_at=NOW - timedelta(days=days), status=status)
            for n, (customer, days, amount, status) in enumerate(rows)
        ])  # fmt: skip


def insights(engine: Engine) -> dict[str, CustomerInsight]:
    from advocado.store.models import Customer

    with unit_of_work(engine) as session:
        rows = session.execute(
            select(Customer.external_id, CustomerInsight).join(
                CustomerInsight, CustomerInsight.customer_id == Customer.id
            )
        )
        return {external_id: insight for external_id, insight in rows}


def test_social_import_scores_influence_and_reports_rejects(engine: Engine, tmp_path: Path) -> None:
    clock.set_now(NOW)
    customers(engine, "c1", "c2", "c3")
    path = tmp_path / "social.csv"
    path.write_text(SOCIAL, encoding="utf-8")
    rejects = tmp_path / "rejects.csv"
    summary = import_file(engine, Kind.SOCIAL, path, rejects_path=rejects)
    assert (summary.rows, summary.created, summary.rejected) == (6, 3, 3)
    reasons = {(r.line, r.field) for r in summary.first_rejects}
    assert reasons == {(5, "customer_external_id"), (6, "followers"), (7, "engagement_rate")}
    assert "c9" in rejects.read_text(encoding="utf-8-sig")
    found = insights(engine)
    assert set(found) == {"c1", "c2"}
    assert found["c1"].high_influence and not found["c2"].high_influence
    assert found["c1"].influence_score == pytest.approx(profile_score(12_400, 0.041, 6))
    assert "12,400 followers × 4.1% engagement, 6 brand posts" in found["c1"].influence_explanation
    assert "best of 2 platforms" in found["c1"].influence_explanation
    # Re-import: nothing new; a changed row updates that profile (upsert on customer+platform).
    again = import_file(engine, Kind.SOCIAL, path, rejects_path=rejects)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)
    path.write_text(SOCIAL.replace("c2,douyin,bob,800,0.01,0", "c2,douyin,bob,900k,8%,12"),
                    encoding="utf-8")  # fmt: skip
    changed = import_file(engine, Kind.SOCIAL, path, rejects_path=rejects)
    assert (changed.created, changed.updated, changed.unchanged) == (0, 1, 2)
    assert insights(engine)["c2"].high_influence
    with unit_of_work(engine) as session:
        assert len(session.scalars(select(SocialProfile)).all()) == 3


def test_social_import_with_map_and_strict(engine: Engine, tmp_path: Path) -> None:
    customers(engine, "c1")
    path = tmp_path / "s.csv"
    path.write_text("会员,平台,账号,粉丝,互动率\nc1,抖音,@x,1.2万,3%\nc2,抖音,@y,1,1%\n",
                    encoding="utf-8")  # fmt: skip
    mapping = {"customer_external_id": "会员", "platform": "平台", "handle": "账号",
               "followers": "粉丝", "engagement_rate": "互动率"}  # fmt: skip
    strict = import_file(engine, Kind.SOCIAL, path, ImportOptions(mapping=mapping, strict=True),
                         rejects_path=tmp_path / "r.csv")  # fmt: skip
    assert strict.aborted and strict.rejected == 1
    with unit_of_work(engine) as session:
        assert session.scalars(select(SocialProfile)).all() == []
    loose = import_file(engine, Kind.SOCIAL, path, ImportOptions(mapping=mapping),
                        rejects_path=tmp_path / "r.csv")  # fmt: skip
    assert loose.created == 1
    with unit_of_work(engine) as session:
        profile = session.scalars(select(SocialProfile)).one()
    assert (profile.platform, profile.followers, profile.engagement_rate) == ("douyin", 12000, 0.03)


KNOWN = [
    ("c1", 5, 10000, "paid"), ("c1", 35, 10000, "paid"), ("c1", 65, 10000, "fulfilled"),
    ("c1", 200, 10000, "paid"),
    ("c2", 30, 50000, "paid"),
    ("c3", 160, 1000, "paid"), ("c3", 150, 1000, "paid"), ("c3", 140, 1000, "paid"),
    ("c4", 200, 2000, "paid"),
    ("c5", 500, 100000, "paid"), ("c5", 3, 90000, "refunded"), ("c5", 2, 90000, "pending"),
    ("c6", 1, 5000, "cancelled"),
]  # fmt: skip


def test_recompute_on_known_orders(engine: Engine) -> None:
    clock.set_now(NOW)
    customers(engine, "c1", "c2", "c3", "c4", "c5", "c6")
    orders(engine, KNOWN)
    with unit_of_work(engine) as session:
        summary = recompute_insights(session, rules=InsightRules())
    found = insights(engine)
    labels = {c: (i.value_tier, i.lifecycle_stage) for c, i in found.items()}
    assert labels == {
        "c1": ("high", "steady"),  # R5 F5 M3
        "c2": ("mid", "new"),  # R4 F1 M4, first order 30 days ago
        "c3": ("mid", "declining"),  # R3 F4 M2; every 10 days, silent for 140
        "c4": ("low", "declining"),  # R2 F1 M1; silent for 200 days
        "c5": ("low", "lapsed"),  # R1 F1 M5; refunded and pending orders do not count
        "c6": (None, None),  # only a cancelled order
    }
    assert (found["c1"].recency_days, found["c1"].frequency, found["c1"].monetary) == (5, 4, 40000)
    assert found["c5"].monetary == 100000
    assert found["c1"].value_explanation.startswith(
        "last order 5 days ago → R5 (ahead of 100% of customers); 4 orders → F5 (ahead of 100%); "
        "spent 400.00 → M3 (ahead of 50%); R+F+M 13 → high"
    )
    assert "over 2 × the usual gap of 10 days → declining" in found["c3"].value_explanation
    assert "No order for 500 days (lapsed after 365) → lapsed" in found["c5"].value_explanation
    assert found["c6"].value_explanation == "no paid or fulfilled order"
    assert summary.value_tiers == {"high": 1, "mid": 2, "low": 2}
    assert summary.lifecycle_stages == {"new": 1, "steady": 1, "declining": 2, "lapsed": 1}


def test_recompute_is_idempotent_and_follows_changes(engine: Engine) -> None:
    clock.set_now(NOW)
    customers(engine, "c1", "c2", "c3", "c4", "c5", "c6")
    orders(engine, KNOWN)
    for _ in range(2):
        with unit_of_work(engine) as session:
            first = recompute_insights(session, rules=InsightRules())
    assert first.customers == 6
    # The clock moves on a year: everyone but c6 has lapsed; settings move the lines.
    clock.set_now(NOW + timedelta(days=400))
    with unit_of_work(engine) as session:
        later = recompute_insights(session, rules=InsightRules())
    assert later.lifecycle_stages["lapsed"] == 5
    clock.set_now(NOW)
    rules = InsightRules(tiers=TierRules(high_min_rfm=14, mid_min_rfm=13))
    with unit_of_work(engine) as session:
        strict = recompute_insights(session, rules=rules)
    assert strict.value_tiers == {"high": 0, "mid": 1, "low": 4}


def test_sql_and_domain_rules_agree(engine: Engine) -> None:
    """The recompute in SQL gives, customer by customer, what domain/tiers says."""
    clock.set_now(NOW)
    rng = random.Random(5)
    ids = [f"c{i}" for i in range(80)]
    customers(engine, *ids)
    rows = []
    for customer in ids:
        for _ in range(rng.choice([1, 1, 1, 2, 3, 5, 8])):
            rows.append((customer, rng.randrange(0, 700), rng.choice([990, 5000, 12000]), "paid"))
    orders(engine, rows)
    with unit_of_work(engine) as session:
        recompute_insights(session, rules=InsightRules())
    per: dict[str, list[tuple[int, int]]] = {}
    for customer, days, amount, _ in rows:
        per.setdefault(customer, []).append((days, amount))
    names = sorted(per)
    recency = [min(d for d, _ in per[c]) for c in names]
    frequency = [len(per[c]) for c in names]
    monetary = [sum(a for _, a in per[c]) for c in names]
    r_rank = percent_ranks([-d for d in recency])
    f_rank, m_rank = percent_ranks(frequency), percent_ranks(monetary)
    found = insights(engine)
    for i, customer in enumerate(names):
        tier = value_tier(score(r_rank[i]), score(f_rank[i]), score(m_rank[i]))
        first = max(d for d, _ in per[customer])
        stage = lifecycle(recency_days=recency[i], first_order_days=first, orders=frequency[i])
        assert (found[customer].value_tier, found[customer].lifecycle_stage) == (tier, stage), (
            customer
        )


def test_settings_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "insights.toml"
    path.write_text("[tiers]\nlapsed_after_days = 400\n[influence]\nhigh_influence_min = 70\n")
    rules = load_rules(path)
    assert rules.tiers.lapsed_after_days == 400 and rules.high_influence_min == 70
    monkeypatch.setenv("ADVOCADO_INSIGHTS_FILE", str(path))
    monkeypatch.setenv("ADVOCADO_HIGH_INFLUENCE_MIN", "55")
    assert load_rules().high_influence_min == 55
    path.write_text("[tiers]\nlapsed_after = 400\n")
    with pytest.raises(ValueError, match="lapsed_after"):
        load_rules(path)


def test_cli_import_social_recompute_and_show(
    advocado: Any, engine: Engine, database_url: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    customers(engine, "c1", "c2", "c3")
    orders(engine, KNOWN[:5])
    (tmp_path / "social.csv").write_text(SOCIAL, encoding="utf-8")
    imported = advocado("import", "social", "social.csv", "--json", cwd=tmp_path,
                        database_url=database_url)  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout)["created"] == 3
    assert (tmp_path / "social.rejects.csv").exists()
    settings = tmp_path / "insights.toml"
    settings.write_text("[influence]\nhigh_influence_min = 90\n")
    monkeypatch.setenv("ADVOCADO_NOW", NOW.isoformat())
    recomputed = advocado("insights", "recompute", "--config", str(settings), "--json",
                          cwd=tmp_path, database_url=database_url)  # fmt: skip
    assert recomputed.returncode == 0, recomputed.stderr
    result = json.loads(recomputed.stdout)
    assert result["customers"] == 3 and result["high_influence"] == 0
    assert result["value_tiers"] == {"high": 0, "mid": 1, "low": 1}  # c1 R5 F5 M1, c2 R1 F1 M5
    shown = advocado("insights", "show", "c1", cwd=tmp_path, database_url=database_url)
    assert "value mid, lifecycle steady" in shown.stdout
    assert "12,400 followers" in shown.stdout
    bad = advocado("insights", "recompute", "--config", str(tmp_path / "none.toml"),
                   cwd=tmp_path, database_url=database_url)  # fmt: skip
    assert bad.returncode == 2
