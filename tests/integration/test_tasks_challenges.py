"""The task queue and UGC challenges on the database: the interface the playbook engine calls
(create_task, invite, active_challenge) exactly once under retries and thread races; entries,
review and the featured list; task outcomes."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from ugc_support import T0, challenge_data, seed

from advocado import clock
from advocado.domain.challenges import ChallengeError, EntryProblem, EntryRefused, ReviewError
from advocado.domain.tasks import TaskError, queue_order
from advocado.services import challenges, tasks
from advocado.store.db import read_only, unit_of_work
from advocado.store.models import ChallengeEntry, ChallengeInvitation, Task

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 100


def race(n: int, action: Callable[[], Any]) -> list[Any]:
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = action()
        except Exception as error:  # noqa: BLE001 - reported by the test
            results[i] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def write(engine: Engine, action: Callable[[Any], Any]) -> Any:
    with unit_of_work(engine) as session:
        return action(session)


def count(engine: Engine, model: Any) -> int:
    with read_only(engine) as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


# --- create_task -----------------------------------------------------------------------------


def test_create_task_uses_the_shipped_script_in_the_customers_language(engine: Engine) -> None:
    clock.set_now(T0)
    [customer, *_] = seed(engine)
    with unit_of_work(engine) as session:
        task = tasks.create_task(
            session,
            customer_id=customer,
            kind="ambassador_invite",
            title="邀请加入品牌大使",
            due_at=T0 + timedelta(days=2),
            cause_key="playbook:1:step:4",
            context={"playbook": "default"},
        )
        assert task.id and task.assignee_role == "community" and not task.done
        assert "张0号" in task.script and "研发师（KOE）" in task.script
    with unit_of_work(engine) as session:
        again = tasks.create_task(
            session,
            customer_id=customer,
            kind="detractor_follow_up",
            title="other",
            due_at=T0,
            cause_key="playbook:1:step:4",
        )
        assert again.id == task.id and again.kind == "ambassador_invite"
    assert count(engine, Task) == 1


def test_create_task_rejects_bad_input_naming_the_field(engine: Engine) -> None:
    [customer, *_] = seed(engine, customers=1)
    with unit_of_work(engine) as session:
        cases = [
            ({"assignee_role": "boss"}, "assignee_role"),
            ({"cause_key": ""}, "cause_key"),
            ({"title": " "}, "title"),
            ({"customer_id": 999_999}, "customer_id"),
        ]
        for change, field in cases:
            args: dict[str, Any] = {
                "customer_id": customer,
                "kind": "other",
                "title": "t",
                "due_at": T0,
                "cause_key": f"k-{field}",
                **change,
            }
            with pytest.raises(TaskError) as caught:
                tasks.create_task(session, **args)
            assert caught.value.field == field
    assert count(engine, Task) == 0


def test_create_task_racing_in_eight_threads_makes_one_task(engine: Engine) -> None:
    [customer, *_] = seed(engine, customers=1)

    def attempt() -> int:
        with unit_of_work(engine) as session:
            return tasks.create_task(
                session,
                customer_id=customer,
                kind="ambassador_invite",
                title="invite",
                due_at=T0,
                cause_key="race:1",
            ).id

    results = race(8, attempt)
    assert all(isinstance(r, int) for r in results), results
    assert len(set(results)) == 1
    assert count(engine, Task) == 1


def test_task_outcome_is_recorded_once_and_overdue_tasks_come_first(engine: Engine) -> None:
    clock.set_now(T0)
    a, b, c = seed(engine)
    with unit_of_work(engine) as session:
        for customer, hours in ((a, 48), (b, -5), (c, -30)):
            tasks.create_task(
                session,
                customer_id=customer,
                kind="ambassador_invite",
                title=f"t{customer}",
                due_at=T0 + timedelta(hours=hours),
                cause_key=f"k{customer}",
            )
    with read_only(engine) as session:
        rows = tasks.list_tasks(session, status="open")
        assert [r.customer_id for r in rows] == [c, b, a]
        by_rule = sorted(rows, key=lambda r: queue_order(r.due_at, r.done, T0))
        assert by_rule == rows  # the SQL order is the domain rule
        assert [r.overdue for r in rows] == [True, True, False]
        assert [r.customer_id for r in tasks.list_tasks(session, status="overdue")] == [c, b]
        detail = tasks.task_detail(session, task_id=rows[0].id)
        latest = detail["customer"]["latest_response"]
        assert latest["score"] == 10 and latest["category"] == "promoter"
        assert latest["evidence"], "the persona evidence travels with the task"
    task_id = rows[0].id
    with unit_of_work(engine) as session:
        done = tasks.record_outcome(
            session, task_id=task_id, outcome="accepted", note="加了企微群", by="cm@example.com"
        )
        assert done.done and done.outcome_by == "cm@example.com" and done.outcome_at == T0
    with unit_of_work(engine) as session:  # a retried save of the same outcome is fine
        tasks.record_outcome(session, task_id=task_id, outcome="accepted", note=None, by="x")
    with pytest.raises(tasks.OutcomeAlreadyRecorded, match="accepted by cm@example.com"):
        write(
            engine,
            lambda session: tasks.record_outcome(
                session, task_id=task_id, outcome="declined", note=None, by="y"
            ),
        )
    with pytest.raises(TaskError, match="outcome: 'maybe' is not one of"):
        write(
            engine,
            lambda session: tasks.record_outcome(
                session, task_id=rows[1].id, outcome="maybe", note=None, by="y"
            ),
        )
    with read_only(engine) as session:
        assert [r.customer_id for r in tasks.list_tasks(session, status="done")] == [c]
        assert tasks.count_tasks(session) == {"open": 2, "overdue": 1}


def test_two_people_saving_different_outcomes_at_once_one_wins(engine: Engine) -> None:
    [customer, *_] = seed(engine, customers=1)
    with unit_of_work(engine) as session:
        task_id = tasks.create_task(
            session, customer_id=customer, kind="other", title="t", due_at=T0, cause_key="k"
        ).id
    outcomes = ["accepted", "declined", "no_answer", "accepted", "declined", "no_answer"]
    picks = iter(outcomes)
    lock = threading.Lock()

    def attempt() -> str:
        with lock:
            choice = next(picks)
        with unit_of_work(engine) as session:
            return (
                tasks.record_outcome(
                    session, task_id=task_id, outcome=choice, note=None, by=choice
                ).outcome
                or ""
            )

    results = race(len(outcomes), attempt)
    winners = {r for r in results if isinstance(r, str)}
    assert len(winners) == 1, results
    with read_only(engine) as session:
        task = session.get(Task, task_id)
        assert task is not None and task.outcome in winners and task.outcome_by == task.outcome


# --- invite ----------------------------------------------------------------------------------


def test_invite_is_once_per_challenge_and_customer(engine: Engine) -> None:
    clock.set_now(T0)
    [customer, other, _] = seed(engine)
    with unit_of_work(engine) as session:
        first = challenges.invite(
            session, challenge="story", customer_id=customer, cause_key="enrolment:1:step:3"
        )
        assert first.url_path == f"/c/{first.token}" and len(first.token) >= 20
        retry = challenges.invite(
            session, challenge="story", customer_id=customer, cause_key="enrolment:1:step:3"
        )
        other_cause = challenges.invite(
            session, challenge="story", customer_id=customer, cause_key="manual:7"
        )
        second = challenges.invite(
            session, challenge="story", customer_id=other, cause_key="enrolment:2:step:3"
        )
    assert retry == first == other_cause
    assert second.token != first.token
    assert count(engine, ChallengeInvitation) == 2


def test_invite_racing_in_eight_threads_makes_one_invitation(engine: Engine) -> None:
    clock.set_now(T0)
    [customer, *_] = seed(engine, customers=1)

    def attempt() -> str:
        with unit_of_work(engine) as session:
            return challenges.invite(
                session, challenge="story", customer_id=customer, cause_key="race"
            ).token

    results = race(8, attempt)
    assert all(isinstance(r, str) for r in results), results
    assert len(set(results)) == 1
    assert count(engine, ChallengeInvitation) == 1


def test_invite_names_an_unknown_or_closed_challenge(engine: Engine) -> None:
    [customer, *_] = seed(engine, customers=1)
    clock.set_now(T0)
    with pytest.raises(challenges.UnknownChallenge, match="no challenge 'nope'"):
        write(
            engine,
            lambda session: challenges.invite(
                session, challenge="nope", customer_id=customer, cause_key="k"
            ),
        )
    clock.set_now(T0 + timedelta(days=60))
    with pytest.raises(challenges.ChallengeNotRunning, match="not running"):
        write(
            engine,
            lambda session: challenges.invite(
                session, challenge="story", customer_id=customer, cause_key="k"
            ),
        )
    assert count(engine, ChallengeInvitation) == 0


def test_active_challenge_is_the_running_one_ending_soonest(engine: Engine) -> None:
    seed(engine, customers=1)
    with unit_of_work(engine) as session:
        challenges.apply_challenge(session, challenge_data(slug="later", ends_at="2027-02-01"))
        challenges.apply_challenge(
            session, challenge_data(slug="past", starts_at="2026-01-01", ends_at="2026-02-01")
        )
    with read_only(engine) as session:
        running = challenges.active_challenge(session, now=T0)
        assert running is not None and running.slug == "story"
        assert challenges.active_challenge(session, now=T0 + timedelta(days=40)).slug == "later"
        assert challenges.active_challenge(session, now=T0 + timedelta(days=400)) is None


# --- challenges from files, entries, review ---------------------------------------------------


def test_apply_updates_by_slug_and_rejects_a_bad_field(engine: Engine) -> None:
    with unit_of_work(engine) as session:
        assert challenges.apply_challenge(session, challenge_data()).created
        assert not challenges.apply_challenge(session, challenge_data(hashtag="壶匠故事")).created
    with read_only(engine) as session:
        assert challenges.challenge_by_slug(session, "story").hashtag == "#壶匠故事#"
    with pytest.raises(ChallengeError) as caught, unit_of_work(engine) as session:
        challenges.apply_challenge(session, challenge_data(ends_at="2026-11-01"))
    assert caught.value.field == "ends_at"


def test_entry_submit_replace_review_and_feature(engine: Engine) -> None:
    clock.set_now(T0)
    [customer, *_] = seed(engine, customers=1)
    with unit_of_work(engine) as session:
        token = challenges.invite(
            session, challenge="story", customer_id=customer, cause_key="k"
        ).token
    with unit_of_work(engine) as session:
        challenges.submit_entry(
            session, token=token, link="https://weibo.com/1/abc", text="第一版", image=None
        )
    with unit_of_work(engine) as session:  # sent again before review: replaced, still one
        entry = challenges.submit_entry(session, token=token, link=None, text="第二版", image=PNG)
        assert entry.text == "第二版" and entry.image_type == "image/png" and entry.link is None
    assert count(engine, ChallengeEntry) == 1
    with pytest.raises(ReviewError, match="approve the entry before featuring"):
        write(
            engine,
            lambda session: challenges.review_entry(
                session, entry_id=entry.id, action="feature", reason=None, reviewer="cm"
            ),
        )
    with pytest.raises(ReviewError, match="reason"), unit_of_work(engine) as session:
        challenges.review_entry(
            session, entry_id=entry.id, action="reject", reason="", reviewer="cm@example.com"
        )
    with unit_of_work(engine) as session:
        challenges.review_entry(
            session, entry_id=entry.id, action="approve", reason=None, reviewer="cm@example.com"
        )
        done = challenges.review_entry(
            session, entry_id=entry.id, action="feature", reason=None, reviewer="lead@example.com"
        )
        assert done.featured and done.reviewed_by == "lead@example.com"
    with read_only(engine) as session:
        public = challenges.featured_entries(session, slug="story")
        assert [e["text"] for e in public["entries"]] == ["第二版"]
        assert public["entries"][0]["author"] == "张**"
        assert challenges.entry_image(session, entry_id=entry.id, public=True) == (PNG, "image/png")
    with pytest.raises(EntryRefused) as caught, unit_of_work(engine) as session:
        challenges.submit_entry(session, token=token, link=None, text="第三版", image=None)
    assert caught.value.problem is EntryProblem.ALREADY_REVIEWED


def test_entry_submissions_racing_keep_one_entry(engine: Engine) -> None:
    clock.set_now(T0)
    [customer, *_] = seed(engine, customers=1)
    with unit_of_work(engine) as session:
        token = challenges.invite(
            session, challenge="story", customer_id=customer, cause_key="k"
        ).token

    def attempt() -> int:
        with unit_of_work(engine) as session:
            return challenges.submit_entry(
                session, token=token, link=None, text="故事", image=None
            ).id

    results = race(6, attempt)
    assert all(isinstance(r, int) for r in results), results
    assert count(engine, ChallengeEntry) == 1


def test_the_demo_has_a_running_challenge_with_entries_and_open_tasks(engine: Engine) -> None:
    from advocado.services.demo import load_demo

    summary = load_demo(engine, customers=300, seed=7)
    assert summary.challenge_entries >= 3 and summary.open_tasks >= 3
    with read_only(engine) as session:
        [story] = challenges.list_challenges(session)
        assert story["running"] and story["entries"]["featured"] >= 1
        assert story["entries"]["pending"] >= 1 and story["entries"]["rejected"] == 1
        kinds = {row.kind for row in tasks.list_tasks(session, status="open")}
        assert kinds == {"ambassador_invite", "detractor_follow_up"}
        assert any(row.overdue for row in tasks.list_tasks(session, status="open"))
