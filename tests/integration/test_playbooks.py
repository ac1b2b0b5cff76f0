"""The playbook engine on a real database: outbox in the response's transaction, enrolment,
waits, branches, versions, leases, retries and races. (Messages: tests/integration/
test_playbook_e2e.py, with a real SMTP server.)"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from sqlalchemy import Engine, func, select

from advocado import clock
from advocado.domain.playbooks import PlaybookError
from advocado.domain.records import CustomerRecord, ResponseRecord
from advocado.services import playbooks
from advocado.services.records import save_customers, save_responses
from advocado.store.db import read_only, unit_of_work
from advocado.store.models import (
    Customer,
    Enrolment,
    EnrolmentStep,
    PlaybookEvent,
    Task,
)

T0 = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)

FLOW = """\
name: thanks
triggers:
  - type: response_submitted
steps:
  - id: route
    branch:
      - if: {nps_category: [detractor]}
        goto: call-them
  - id: later
    wait: 24h
  - id: thank
    add_tag: thanked
    next: done
  - id: call-them
    create_task: {kind: detractor_follow_up, title: Call them, due_in: 24h}
  - id: done
    exit: finished
"""


@pytest.fixture
def ready(engine: Engine) -> Iterator[Engine]:
    """The default playbook installed and disabled, our FLOW applied, three customers."""
    clock.set_now(T0)
    with unit_of_work(engine) as session:
        playbooks.install_default(session)
        playbooks.set_enabled(session, name="activation-funnel", enabled=False)
        playbooks.apply_source(session, source=FLOW, file="flow.yaml")
        save_customers(
            session,
            [
                CustomerRecord(external_id=f"c{i}", name=f"C{i}", email=f"c{i}@example.com")
                for i in range(3)
            ],
        )
    yield engine


def answer(engine: Engine, scores: list[int], *, ago: timedelta = timedelta(hours=1)) -> None:
    with unit_of_work(engine) as session:
        save_responses(session, [
            ResponseRecord(external_id=f"r{i}", customer_external_id=f"c{i}", score=score,
                           submitted_at=T0 - ago)
            for i, score in enumerate(scores)])  # fmt: skip


def tags(engine: Engine) -> dict[str, list[str]]:
    with read_only(engine) as session:
        return dict(list(session.execute(select(Customer.external_id, Customer.tags))))


def count(engine: Engine, model: type) -> int:
    with read_only(engine) as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_a_response_write_and_its_event_commit_or_roll_back_together(ready: Engine) -> None:
    with pytest.raises(RuntimeError), unit_of_work(ready) as session:
        save_responses(session, [ResponseRecord(external_id="r0", customer_external_id="c0",
                                                score=10, submitted_at=T0)])  # fmt: skip
        assert session.scalar(select(func.count()).select_from(PlaybookEvent)) == 1
        raise RuntimeError("crash before commit")
    assert count(ready, PlaybookEvent) == 0
    answer(ready, [10])
    with unit_of_work(ready) as session:  # the comment arriving later is an update
        save_responses(session, [ResponseRecord(external_id="r0", customer_external_id="c0",
                                                score=10, comment="great",
                                                submitted_at=T0 - timedelta(hours=1))])  # fmt: skip
    with read_only(ready) as session:
        kinds = list(session.scalars(select(PlaybookEvent.kind).order_by(PlaybookEvent.id)))
    assert kinds == ["response_submitted", "response_updated"]


def test_waits_then_acts_once_and_hands_detractors_to_a_person(ready: Engine) -> None:
    answer(ready, [10, 9, 3])
    report = playbooks.run_once(ready, now=T0 + timedelta(hours=1))
    assert report.enrolled == 3
    assert tags(ready) == {"c0": [], "c1": [], "c2": []}  # promoters wait 24 h
    with read_only(ready) as session:
        task = session.scalars(select(Task)).one()
        assert (task.kind, task.cause_key.endswith(":call-them")) == ("detractor_follow_up", True)
        ended = session.scalar(select(Enrolment).where(Enrolment.status == "handed_off"))
        assert ended is not None and "automation ends" in (ended.end_reason or "")
    assert playbooks.run_once(ready, now=T0 + timedelta(hours=2)).steps == 0
    report = playbooks.run_once(ready, now=T0 + timedelta(hours=25))
    assert tags(ready) == {"c0": ["thanked"], "c1": ["thanked"], "c2": []}
    for hours in (26, 50):  # again and later: nothing more
        assert playbooks.run_once(ready, now=T0 + timedelta(hours=hours)).steps == 0
    assert count(ready, Task) == 1
    with read_only(ready) as session:
        states = playbooks.status_counts(session, name="thanks")
    assert states == {"exited": 2, "handed_off": 1}


def test_old_answers_and_disabled_playbooks_enrol_no_one(ready: Engine) -> None:
    answer(ready, [10, 10], ago=timedelta(days=30))  # an import of last month's survey
    assert playbooks.run_once(ready, now=T0).enrolled == 0
    with unit_of_work(ready) as session:
        playbooks.set_enabled(session, name="thanks", enabled=False)
    answer(ready, [10, 10, 10])  # changed scores: update events
    with unit_of_work(ready) as session:
        save_responses(session, [ResponseRecord(external_id="new", customer_external_id="c0",
                                                score=9, submitted_at=T0)])  # fmt: skip
    assert playbooks.run_once(ready, now=T0).enrolled == 0


def test_a_changed_playbook_is_a_new_version_and_running_enrolments_keep_theirs(
    ready: Engine,
) -> None:
    answer(ready, [10])
    playbooks.run_once(ready, now=T0)  # c0 waits on v1
    with unit_of_work(ready) as session:
        same = playbooks.apply_source(session, source=FLOW + "# a comment\n", file="flow.yaml")
        assert (same.version, same.changed) == (1, False)
        changed = playbooks.apply_source(
            session, source=FLOW.replace("add_tag: thanked", "add_tag: thanked-v2"), file="f"
        )
        assert (changed.version, changed.changed) == (2, True)
        playbooks.enrol_manually(session, name="thanks", customer_external_ids=["c1"], key="k")
        playbooks.enrol_manually(session, name="thanks", customer_external_ids=["c1"], key="k")
    playbooks.run_once(ready, now=T0 + timedelta(hours=1))  # c1 starts waiting (v2)
    playbooks.run_once(ready, now=T0 + timedelta(hours=25))
    assert tags(ready)["c0"] == ["thanked"]  # started on v1, finished on v1
    playbooks.run_once(ready, now=T0 + timedelta(hours=26))
    assert tags(ready)["c1"] == ["thanked-v2"]  # enrolled once on v2, though asked twice


def test_errors_name_file_line_and_field_and_store_nothing(ready: Engine) -> None:
    broken = FLOW.replace("wait: 24h", "wait: tomorrow")
    with pytest.raises(PlaybookError) as caught, unit_of_work(ready) as session:
        playbooks.apply_source(session, source=broken, file="flow.yaml")
    assert str(caught.value) == ("flow.yaml:10: steps[1].wait: 'tomorrow' is not a duration "
                                 "such as 24h, 30m or 7d")  # fmt: skip
    with read_only(ready) as session:
        assert playbooks.get_playbook(session, name="thanks").version == 1


def test_a_lapsed_lease_is_taken_over_and_a_held_one_is_not(ready: Engine) -> None:
    answer(ready, [10, 10, 10])
    assert playbooks.dispatch_events(ready, now=T0) == 3
    held = playbooks.claim_due(ready, now=T0, owner="crashed", limit=10)
    assert len(held) == 3  # then the worker dies without running them
    assert playbooks.run_due_steps(ready, now=T0 + timedelta(seconds=30), owner="b").claimed == 0
    later = T0 + playbooks.LEASE + timedelta(seconds=1)
    report = playbooks.run_due_steps(ready, now=later, owner="b")
    assert (report.claimed, report.steps) == (3, 6)  # route + wait each
    # the crashed worker comes back and tries to finish its old batch: nothing happens twice
    assert playbooks.run_claimed(ready, ids=held, owner="crashed", now=later) == (0, 0)
    assert count(ready, EnrolmentStep) == 6


def test_racing_workers_run_each_step_once(ready: Engine) -> None:
    with unit_of_work(ready) as session:
        save_customers(session, [CustomerRecord(external_id=f"d{i}") for i in range(60)])
        save_responses(
            session,
            [
                ResponseRecord(
                    external_id=f"x{i}", customer_external_id=f"d{i}", score=2, submitted_at=T0
                )
                for i in range(60)
            ],
        )
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def work(number: int) -> None:
        try:
            barrier.wait()
            playbooks.run_once(ready, now=T0, owner=f"w{number}", deliver=False)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert count(ready, Task) == 60
    assert count(ready, Enrolment) == 60
    assert count(ready, EnrolmentStep) == 120  # route + call-them, once each


class _Hook(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, str], bytes]] = []
    status = 200

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append((dict(self.headers), body))
        self.send_response(_Hook.status)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    _Hook.received, _Hook.status = [], 200
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()


def test_webhooks_are_signed_and_failures_retry_with_backoff_then_dead_letter(
    ready: Engine, hook: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ADVOCADO_WEBHOOK_SECRET", "s3cret")
    flow = (f"name: hooked\ntriggers: [manual]\nsteps:\n  - id: tell\n"
            f"    call_webhook: {{url: '{hook}', event: vip}}\n")  # fmt: skip
    with unit_of_work(ready) as session:
        playbooks.apply_source(session, source=flow)
        playbooks.enrol_manually(session, name="hooked", customer_external_ids=["c0"], key="1")
    playbooks.run_once(ready, now=T0)
    ((headers, body),) = _Hook.received
    expected = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
    assert headers["X-Advocado-Signature"] == expected
    assert headers["Idempotency-Key"].endswith(":tell")
    assert json.loads(body)["event"] == "vip"

    _Hook.status = 500
    with unit_of_work(ready) as session:
        playbooks.enrol_manually(session, name="hooked", customer_external_ids=["c1"], key="2")
    moment = T0
    for attempt in range(1, playbooks.MAX_ATTEMPTS + 1):
        assert playbooks.run_once(ready, now=moment).failed == 1
        with read_only(ready) as session:
            (row,) = playbooks.enrolments(session, name="hooked", status=None, limit=1)
        assert row.attempts == (attempt if attempt < playbooks.MAX_ATTEMPTS else attempt)
        assert "HTTP Error 500" in (row.last_error or "")
        if attempt < playbooks.MAX_ATTEMPTS:
            assert playbooks.run_once(ready, now=moment).failed == 0  # backing off
            moment = row.due_at  # type: ignore[assignment]
    with read_only(ready) as session:
        dead = playbooks.enrolments(session, name="hooked", status="failed")
    assert [d.customer for d in dead] == ["c1"]


def test_a_referral_status_change_enrols_its_advocate(ready: Engine) -> None:
    from pathlib import Path

    from advocado.services.programs import apply_program, read_program_file
    from advocado.store.models import Referral

    examples = Path(__file__).resolve().parents[2] / "examples" / "programs"
    flow = (
        "name: referral-thanks\ntriggers:\n  - {type: referral_status_changed, "
        "status: [qualified]}\nsteps:\n  - id: tag\n    add_tag: brought-a-friend\n"
    )
    with unit_of_work(ready) as session:
        playbooks.apply_source(session, source=flow)
        program = apply_program(session, read_program_file(examples / "double-sided.yaml"))
        ids = dict(list(session.execute(select(Customer.external_id, Customer.id))))
        from advocado.services.programs import program_by_slug

        program_id = program_by_slug(session, program.slug).id
        session.add(Referral(program_id=program_id, advocate_id=ids["c0"], referee_id=ids["c1"],
                             source="code", status="signed_up", findings=[], signed_up_at=T0,
                             created_at=T0, updated_at=T0))  # fmt: skip
    assert count(ready, PlaybookEvent) == 0  # created, not changed
    with unit_of_work(ready) as session:
        session.scalars(select(Referral)).one().status = "review"
    with unit_of_work(ready) as session:
        session.scalars(select(Referral)).one().status = "qualified"
    assert count(ready, PlaybookEvent) == 2
    playbooks.run_once(ready, now=T0, deliver=False)
    assert tags(ready)["c0"] == ["brought-a-friend"]  # only `qualified` triggers it
    with read_only(ready) as session:
        assert session.scalar(select(Enrolment.cause)) == "referral:1:qualified"


def test_segment_entered_and_date_triggers_enrol_once(ready: Engine) -> None:
    from advocado.services.segments import create_segment

    flow = (
        "name: vip\ntriggers:\n  - {type: segment_entered, segment: fans}\n"
        "  - {type: date, date: 2026-12-12, yearly: true}\n"
        "steps:\n  - id: tag\n    add_tag: vip\n  - id: untag\n    remove_tag: new\n"
    )
    with unit_of_work(ready) as session:
        playbooks.apply_source(session, source=flow)
        create_segment(session, name="Fans", slug="fans", filters={"nps_category": ["promoter"]})
        session.execute(Customer.__table__.update().values(tags=["new"]))
    answer(ready, [10, 5, 5], ago=timedelta(days=40))  # too old for response triggers
    assert playbooks.run_once(ready, now=T0, deliver=False).enrolled == 1
    assert tags(ready) == {"c0": ["vip"], "c1": ["new"], "c2": ["new"]}
    assert playbooks.run_once(ready, now=T0 + timedelta(days=1), deliver=False).enrolled == 0
    # 12 December (every year): everyone, once that day
    day = datetime(2027, 12, 12, 3, 0, tzinfo=UTC)
    assert playbooks.run_once(ready, now=day, deliver=False).enrolled == 3
    assert playbooks.run_once(ready, now=day + timedelta(hours=5), deliver=False).enrolled == 0
    assert tags(ready) == {"c0": ["vip"], "c1": ["vip"], "c2": ["vip"]}


def test_simulate_shows_the_next_days_and_keeps_nothing(ready: Engine, advocado, tmp_path,
                                                        database_url: str) -> None:  # fmt: skip
    answer(ready, [10, 2])
    before = count(ready, Enrolment)
    result = advocado("playbook", "simulate", "c0", "c1", "--days", "2",
                      "--now", T0.isoformat(), cwd=tmp_path, database_url=database_url)  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any("c0" in line and "thanks/later" in line and "waiting" in line for line in lines)
    assert any("+ 24.0h" in line and "thanks/thank" in line and "tagged" in line for line in lines)
    assert any("c1" in line and "call-them" in line and "handed_off" in line for line in lines)
    assert count(ready, Enrolment) == before == 0  # rolled back
    assert count(ready, Task) == 0


def test_one_failing_enrolment_does_not_hold_up_its_batch(ready: Engine) -> None:
    from smtp_sink import free_port

    closed = f"http://127.0.0.1:{free_port()}/nobody-listens"
    flow = ("name: mixed\ntriggers: [manual]\nsteps:\n  - id: route\n    branch:\n"
            "      - if: {tags_any: [bad]}\n        goto: hook\n  - id: tag\n"
            "    add_tag: fine\n    next: done\n  - id: hook\n"
            f"    call_webhook: {{url: '{closed}'}}\n  - id: done\n    exit: ok\n")  # fmt: skip
    with unit_of_work(ready) as session:
        session.scalars(select(Customer).where(Customer.external_id == "c0")).one().tags = ["bad"]
        playbooks.apply_source(session, source=flow)
        playbooks.enrol_manually(session, name="mixed", customer_external_ids=["c0", "c1", "c2"])
    report = playbooks.run_once(ready, now=T0, deliver=False)
    assert (report.steps, report.failed) == (6, 1)  # c1, c2: route, tag, done
    assert tags(ready) == {"c0": ["bad"], "c1": ["fine"], "c2": ["fine"]}
    with read_only(ready) as session:
        (row,) = playbooks.enrolments(session, name="mixed", status="active")
    assert (row.customer, row.attempts, row.step) == ("c0", 1, "route")
    assert "Connection refused" in (row.last_error or "")
