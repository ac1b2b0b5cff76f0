"""The one table of who may do what (domain.roles), and the dashboard's pure rules."""

from datetime import date

import pytest

from advocado.domain.dashboard import (
    Filters,
    acquisition,
    bucket_start,
    clv,
    days_between_summary,
    k_factor,
    k_reason,
    parse_filters,
)
from advocado.domain.records import FieldError
from advocado.domain.roles import PERMISSIONS, Action, Role, may, refusal


def test_admin_may_do_everything() -> None:
    assert all(may("admin", action) for action in Action)


def test_analyst_changes_nothing_but_reads_the_audit_log() -> None:
    assert [a for a in Action if may("analyst", a)] == [Action.READ_AUDIT]


@pytest.mark.parametrize(
    "action",
    [
        Action.EDIT_PROGRAMS,
        Action.EDIT_SEGMENTS,
        Action.EDIT_PLAYBOOKS,
        Action.MANAGE_USERS,
        Action.MANAGE_SETTINGS,
        Action.READ_AUDIT,
    ],
)
def test_community_manager_may_not_edit_programs_and_the_rest(action: Action) -> None:
    assert not may("community", action)


def test_community_manager_runs_tasks_challenges_ambassadors() -> None:
    for action in (Action.EDIT_TASKS, Action.EDIT_CHALLENGES, Action.EDIT_AMBASSADORS):
        assert may(Role.COMMUNITY, action)


def test_marketer_runs_programs_playbooks_templates_segments_not_users() -> None:
    for action in (
        Action.EDIT_PROGRAMS,
        Action.EDIT_PLAYBOOKS,
        Action.EDIT_TEMPLATES,
        Action.EDIT_SEGMENTS,
        Action.SET_MARKETING_FIGURES,
    ):
        assert may("marketer", action)
    for action in (Action.MANAGE_USERS, Action.MANAGE_SETTINGS, Action.CORRECT_LEDGER):
        assert not may("marketer", action)


def test_unknown_role_may_do_nothing() -> None:
    assert not any(may("owner", action) for action in Action)
    assert not any(may("", action) for action in Action)


def test_every_role_is_in_the_table() -> None:
    assert set(PERMISSIONS) == set(Role)


def test_refusal_says_who_may_in_both_languages() -> None:
    text = refusal("community", Action.EDIT_PROGRAMS)
    assert "admin, marketer" in text and "管理员、市场人员" in text and "programs.edit" in text


def test_filters_parse_and_name_the_bad_field() -> None:
    f = parse_filters({"from": "2026-01-01", "to": "2026-01-31", "program": "p", "bucket": "month"})
    assert f == Filters(date(2026, 1, 1), date(2026, 1, 31), None, "p", "month")
    assert parse_filters(f.as_params()) == f
    with pytest.raises(FieldError) as bad:
        parse_filters({"from": "01/02/2026"})
    assert bad.value.field == "from"
    with pytest.raises(FieldError) as bad:
        parse_filters({"from": "2026-02-01", "to": "2026-01-01"})
    assert bad.value.field == "to"
    with pytest.raises(FieldError) as bad:
        parse_filters({"bucket": "day"})
    assert bad.value.field == "bucket"


def test_bucket_start() -> None:
    assert bucket_start(date(2026, 3, 4), "week") == date(2026, 3, 2)  # Wednesday -> Monday
    assert bucket_start(date(2026, 3, 2), "week") == date(2026, 3, 2)
    assert bucket_start(date(2026, 3, 31), "month") == date(2026, 3, 1)


def test_k_factor_is_invitations_per_advocate_times_conversion() -> None:
    found = k_factor(advocates=4, invitations=20, signups=6)
    assert found == {"invitations_per_advocate": 5.0, "conversion": 0.3, "k_factor": 1.5}
    assert k_factor(advocates=0, invitations=0, signups=0)["k_factor"] is None
    assert "≥ 1" in k_reason(1.5) and "< 1" in k_reason(0.2) and "没有" in k_reason(None)


def test_acquisition_cost_roi_and_comparison() -> None:
    found = acquisition(revenue=30000, cost=3000, acquired=2, paid_cac=5000)
    assert found["cost_per_acquired"] == 1500 and found["roi"] == 9.0
    assert found["saving_vs_paid"] == 7000 and "less" in str(found["reason"])
    none = acquisition(revenue=0, cost=0, acquired=0, paid_cac=None)
    assert none["cost_per_acquired"] is None and none["roi"] is None


def test_clv_and_timing_summaries() -> None:
    assert clv(customers=4, orders=6, revenue=60000) == {
        "customers": 4,
        "orders": 6,
        "revenue": 60000,
        "average_order_value": 10000,
        "frequency": 1.5,
        "value_12m": 15000,
    }
    assert clv(customers=0, orders=0, revenue=0)["value_12m"] is None
    assert days_between_summary([2.0, 19.0]) == {
        "median_days": 10.5,
        "mean_days": 10.5,
        "advocates": 2,
    }
