import re
from collections import Counter
from datetime import UTC, datetime, timedelta

from advocado.domain.nps import NpsFigures
from advocado.services.demo import generate

TODAY = datetime(2026, 6, 1, tzinfo=UTC)
CJK = re.compile(r"[\u4e00-\u9fff]")
CURRENCY = {"zh-CN": "CNY", "zh-TW": "TWD", "en": "USD"}


def test_same_seed_same_data_other_seed_other_data() -> None:
    first = generate(customers=300, seed=7, today=TODAY)
    assert generate(customers=300, seed=7, today=TODAY) == first
    assert generate(customers=300, seed=8, today=TODAY) != first


def test_customers_orders_and_responses_look_like_a_real_brand() -> None:
    data = generate(customers=1500, seed=7, today=TODAY)
    customers = {c.external_id: c for c in data.customers}
    locales = Counter(c.locale for c in data.customers)
    assert set(locales) == {"zh-CN", "zh-TW", "en"}
    assert {c.timezone for c in data.customers} >= {
        "Asia/Shanghai", "Asia/Taipei", "Europe/London", "America/New_York"
    }  # fmt: skip
    consenting = [c for c in data.customers if c.marketing_consent]
    assert 0.7 < len(consenting) / len(data.customers) < 0.95
    assert all(c.consent_at and c.consent_source for c in consenting)
    assert len({c.email for c in data.customers}) == len(data.customers)

    year_ago = TODAY - timedelta(days=365)
    for order in data.orders:
        assert order.currency == CURRENCY[customers[order.customer_external_id].locale]
        assert isinstance(order.amount, int) and order.amount > 0
        assert year_ago <= order.placed_at < TODAY

    figures = NpsFigures.from_score_counts(dict(Counter(r.score for r in data.responses)))
    assert figures.nps is not None and 10 < figures.nps < 60
    assert min(figures.promoters, figures.passives, figures.detractors) > 50
    assert all(year_ago <= r.submitted_at < TODAY for r in data.responses)
    assert any(r.customer_external_id is None for r in data.responses)
    assert any(r.comment is None for r in data.responses)


def test_comments_are_in_the_customers_language() -> None:
    data = generate(customers=800, seed=3, today=TODAY)
    customers = {c.external_id: c for c in data.customers}
    seen = Counter()
    for response in data.responses:
        if response.comment is None or response.customer_external_id is None:
            continue
        locale = customers[response.customer_external_id].locale
        seen[locale] += 1
        assert bool(CJK.search(response.comment)) == (locale != "en"), response.comment
    assert min(seen.values()) > 20
    comments = {r.comment for r in data.responses if r.comment}
    for phrase in ("爱了", "惊喜", "yyds", "太感動了", "Love it", "系统稳定", "出貨快", "Reliable"):
        assert any(phrase in c for c in comments), phrase
