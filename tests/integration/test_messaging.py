"""Messaging on the database with a real SMTP server: enqueue rules (consent, suppression, cap,
quiet hours), delivery, statuses, bounces, retries, referral notices, exactly-once races."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from smtp_sink import free_port
from sqlalchemy import Engine, func, select, update

from advocado import clock
from advocado.services import messaging
from advocado.services.messaging import enqueue_message
from advocado.store.db import read_only, unit_of_work
from advocado.store.models import Customer, Message, MessageEvent, ReferralNotice

# 02:00 UTC = 10:00 in Shanghai, 21:00 (quiet) in New York the day before (EST, UTC-5)
T0 = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


def customer(
    engine: Engine,
    external_id: str,
    *,
    email: str | None = "",
    locale: str = "en",
    timezone: str = "Asia/Shanghai",
    consent: bool = True,
    name: str | None = None,
    phone: str | None = None,
) -> int:
    with unit_of_work(engine) as session:
        row = Customer(
            external_id=external_id,
            name=name or external_id.title(),
            email=f"{external_id}@example.com" if email == "" else email,
            phone=phone,
            locale=locale,
            timezone=timezone,
            marketing_consent=consent,
            tags=[],
            attributes={},
            created_at=clock.now(),
            updated_at=clock.now(),
        )
        session.add(row)
        session.flush()
        return row.id


def ask(engine: Engine, customer_id: int, cause: str, **changes: Any) -> messaging.Queued:
    values: dict[str, Any] = {
        "customer_id": customer_id,
        "template": "review_ask",
        "cause_key": cause,
        "context": {},
    }
    values.update(changes)
    with unit_of_work(engine) as session:
        return enqueue_message(session, **values)


def status(engine: Engine, message_id: int) -> str:
    with read_only(engine) as session:
        return session.get(Message, message_id).status


@pytest.fixture(autouse=True)
def _at_t0() -> None:
    clock.set_now(T0)


def test_queued_once_per_cause(engine: Engine) -> None:
    alice = customer(engine, "alice")
    first = ask(engine, alice, "playbook:1:review")
    again = ask(engine, alice, "playbook:1:review")
    assert first.status == "queued" and first.message_id
    assert again == messaging.Queued(first.message_id, "duplicate", None)
    with read_only(engine) as session:
        assert session.scalar(select(func.count(Message.id))) == 1


def test_skip_reasons_are_recorded(engine: Engine) -> None:
    no_consent = customer(engine, "bob", consent=False)
    no_email = customer(engine, "carol", email=None)
    suppressed = customer(engine, "dan")
    messaging.add_suppression(engine, kind="email", value="DAN@example.com", reason="asked us")
    skipped = {
        "no_consent": ask(engine, no_consent, "a"),
        "no_address": ask(engine, no_email, "b"),
        "suppressed": ask(engine, suppressed, "c"),
    }
    for code, result in skipped.items():
        assert result.status == "skipped" and result.message_id is None
        assert result.reason and result.reason.startswith(f"{code}: ")
        assert " / " in result.reason  # English / 中文
    with read_only(engine) as session:
        rows = session.scalars(select(Message).order_by(Message.id)).all()
    assert [(r.status, messaging.rules.reason_code(r.reason)) for r in rows] == [
        ("skipped", "no_consent"),
        ("skipped", "no_address"),
        ("skipped", "suppressed"),
    ]
    # a skip is unique on its cause too
    assert ask(engine, no_consent, "a").status == "duplicate"
    # transactional messages need no consent
    notice = ask(engine, no_consent, "t", template="referral_notice", marketing=False,
                 context={"text_en": "x", "text_zh": "x"})  # fmt: skip
    assert notice.status == "queued"


def test_frequency_cap_counts_asks_in_a_rolling_window(engine: Engine, monkeypatch) -> None:
    monkeypatch.setenv("ADVOCADO_ASK_CAP", "2")
    alice = customer(engine, "alice")
    assert ask(engine, alice, "1").status == "queued"
    assert ask(engine, alice, "2").status == "queued"
    third = ask(engine, alice, "3")
    assert third.status == "skipped" and third.reason.startswith("frequency_cap: already asked 2")
    # transactional messages are not asks
    assert ask(engine, alice, "n", template="referral_notice", marketing=False,
               context={"text_en": "x", "text_zh": "x"}).status == "queued"  # fmt: skip
    clock.set_now(T0 + timedelta(days=31))
    assert ask(engine, alice, "4").status == "queued"
    with read_only(engine) as session:
        assert messaging.last_asked_at(session, customer_id=alice) == T0 + timedelta(days=31)
        nobody = customer(engine, "nobody")
        assert messaging.last_asked_at(session, customer_id=nobody) is None


def test_quiet_hours_in_each_customers_timezone(engine: Engine) -> None:
    shanghai = customer(engine, "li", timezone="Asia/Shanghai")  # 10:00 local: fine
    new_york = customer(engine, "joe", timezone="America/New_York")  # 21:00 local: quiet
    taipei_late = customer(engine, "mei", timezone="Asia/Taipei")
    due = {}
    for cid, cause in ((shanghai, "s"), (new_york, "n")):
        due[cause] = ask(engine, cid, cause).message_id
    # 23:30 Taipei (15:30 UTC) -> 09:00 Taipei next day = 01:00 UTC
    late = ask(engine, taipei_late, "t", not_before=datetime(2026, 3, 2, 15, 30, tzinfo=UTC))
    with read_only(engine) as session:
        assert session.get(Message, due["s"]).due_at == T0
        # 21:00 EST on Mar 1 -> 09:00 EST on Mar 2 = 14:00 UTC
        assert session.get(Message, due["n"]).due_at == datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
        assert session.get(Message, late.message_id).due_at == datetime(
            2026, 3, 3, 1, 0, tzinfo=UTC
        )
    # transactional messages ignore quiet hours
    notice = ask(engine, new_york, "notice", template="referral_notice", marketing=False,
                 context={"text_en": "x", "text_zh": "x"})  # fmt: skip
    with read_only(engine) as session:
        assert session.get(Message, notice.message_id).due_at == T0


def test_bad_input_is_named(engine: Engine) -> None:
    alice = customer(engine, "alice")
    with pytest.raises(messaging.MessagingError, match="template 'nope'"):
        ask(engine, alice, "x", template="nope")
    with pytest.raises(messaging.MessagingError, match="channel 'fax'"):
        ask(engine, alice, "x", channel="fax")
    with pytest.raises(messaging.MessagingError, match="customer_id 999"):
        ask(engine, 999, "x")
    with read_only(engine) as session:
        assert session.scalar(select(func.count(Message.id))) == 0


def test_delivery_over_real_smtp(engine: Engine, smtp_server) -> None:
    zh = customer(engine, "wang", locale="zh-CN", name="王芳")
    tw = customer(engine, "chen", locale="zh-TW", name="陳明", timezone="Asia/Taipei")
    en = customer(engine, "amy", locale="en-GB", name="Amy <b>", timezone="Asia/Shanghai")
    ids = [ask(engine, c, f"ask:{c}").message_id for c in (zh, tw, en)]
    report = messaging.deliver_due(engine)
    assert (report.claimed, report.sent) == (3, 3), report
    assert [status(engine, i) for i in ids] == ["sent"] * 3
    [mail_zh] = smtp_server.to("wang@example.com")
    [mail_tw] = smtp_server.to("chen@example.com")
    [mail_en] = smtp_server.to("amy@example.com")
    assert "谢谢您，王芳" in mail_zh["Subject"]
    assert "謝謝您，陳明" in mail_tw["Subject"]
    assert mail_en["Subject"].startswith("Thank you, Amy <b>")
    assert mail_zh["From"] == "Avocado Coffee <hello@avocado.example>"
    for mail in (mail_zh, mail_tw, mail_en):
        assert mail["List-Unsubscribe"].startswith("<http://testserver/u/")
        assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert mail.is_multipart()
        text = mail.get_body(("plain",)).get_content()
        html = mail.get_body(("html",)).get_content()
        assert "Avocado Coffee" in text and "Avocado Coffee" in html  # the sender's identity
        assert "http://testserver/m/" in text and "http://testserver/m/" in html
        assert mail["List-Unsubscribe"][1:-1] in text
    assert "Amy &lt;b&gt;" in mail_en.get_body(("html",)).get_content()  # autoescaped
    assert mail_zh["Content-Language"] == "zh-CN"
    with read_only(engine) as session:
        history = session.scalars(
            select(MessageEvent.status).where(MessageEvent.message_id == ids[0])
            .order_by(MessageEvent.id)
        ).all()  # fmt: skip
    assert history == ["queued", "sent"]
    # nothing is due any more
    assert messaging.deliver_due(engine).claimed == 0
    assert len(smtp_server.messages) == 3


def test_not_yet_due_waits(engine: Engine, smtp_server) -> None:
    alice = customer(engine, "alice")
    queued = ask(engine, alice, "later", not_before=T0 + timedelta(hours=24))
    assert messaging.deliver_due(engine).claimed == 0
    clock.set_now(T0 + timedelta(hours=25))
    assert messaging.deliver_due(engine).sent == 1
    assert status(engine, queued.message_id) == "sent"


def test_consent_withdrawn_before_delivery_is_honoured(engine: Engine, smtp_server) -> None:
    alice = customer(engine, "alice")
    queued = ask(engine, alice, "x")
    with unit_of_work(engine) as session:
        session.get(Customer, alice).marketing_consent = False
    report = messaging.deliver_due(engine)
    assert report.skipped == 1 and smtp_server.messages == []
    with read_only(engine) as session:
        message = session.get(Message, queued.message_id)
        assert message.status == "skipped" and message.reason.startswith("no_consent")


def test_smtp_5xx_is_a_bounce_and_suppresses(engine: Engine, smtp_server) -> None:
    alice = customer(engine, "alice")
    smtp_server.refuse["alice@example.com"] = "550 5.1.1 no such mailbox"
    queued = ask(engine, alice, "x")
    assert messaging.deliver_due(engine).bounced == 1
    with read_only(engine) as session:
        message = session.get(Message, queued.message_id)
        assert message.status == "bounced" and "550 5.1.1" in message.reason
    clock.set_now(T0 + timedelta(days=40))
    assert ask(engine, alice, "y").reason.startswith("suppressed")


def test_async_bounce_report(engine: Engine, smtp_server) -> None:
    alice = customer(engine, "alice")
    queued = ask(engine, alice, "x")
    with pytest.raises(messaging.MessagingError, match="only a sent message"):
        messaging.record_bounce(engine, message_id=queued.message_id, detail="550")
    messaging.deliver_due(engine)
    assert messaging.record_bounce(engine, message_id=queued.message_id, detail="550 gone") == (
        "bounced"
    )
    assert [s["value"] for s in messaging.list_suppressions(engine)] == ["alice@example.com"]


def test_failures_back_off_then_dead_then_operator_retry(engine: Engine, monkeypatch) -> None:
    monkeypatch.setenv("ADVOCADO_SMTP_URL", f"smtp://127.0.0.1:{free_port()}")  # nobody there
    monkeypatch.setenv("ADVOCADO_MESSAGE_MAX_ATTEMPTS", "3")
    alice = customer(engine, "alice")
    queued = ask(engine, alice, "x")
    moment = T0
    waits = []
    for _ in range(3):
        report = messaging.deliver_due(engine, now=moment)
        assert report.claimed == 1
        with read_only(engine) as session:
            message = session.get(Message, queued.message_id)
        if message.status == "queued":
            waits.append(message.due_at - moment)
            assert messaging.deliver_due(engine, now=moment).claimed == 0  # not before backoff
            moment = message.due_at
            clock.set_now(moment)
    assert waits == [timedelta(minutes=1), timedelta(minutes=2)]
    assert message.status == "dead" and message.reason.startswith("max_attempts")
    dead = messaging.list_messages(engine, status="dead")
    assert [m["id"] for m in dead] == [queued.message_id]
    with pytest.raises(messaging.MessagingError, match="only dead, uncertain, bounced"):
        messaging.retry_message(
            engine, message_id=ask(engine, customer(engine, "z"), "z").message_id
        )
    assert messaging.retry_message(engine, message_id=queued.message_id) == "queued"
    detail = messaging.message_detail(engine, message_id=queued.message_id)
    assert [e["status"] for e in detail["events"]] == ["queued", "failed", "failed", "dead",
                                                       "queued"]  # fmt: skip
    assert detail["events"][-1]["detail"] == "retried by operator"


def test_referral_notices_become_messages_once(engine: Engine, smtp_server) -> None:
    from advocado.store.models import Program, Referral

    advocate = customer(engine, "ann", consent=False, locale="zh-TW")
    friend = customer(engine, "ben")
    with unit_of_work(engine) as session:
        program = Program(slug="p", name="P", currency="CNY", starts_at=T0, config={},
                          created_at=T0, updated_at=T0)  # fmt: skip
        session.add(program)
        session.flush()
        referral = Referral(program_id=program.id, advocate_id=advocate, referee_id=friend,
                            source="code", status="signed_up", signed_up_at=T0, findings=[],
                            created_at=T0, updated_at=T0)  # fmt: skip
        session.add(referral)
        session.flush()
        session.add(ReferralNotice(referral_id=referral.id, customer_id=advocate,
                                   step="signup", text_en="Ben signed up.",
                                   text_zh="本注册了。", created_at=T0))  # fmt: skip
    first = messaging.deliver_due(engine)
    second = messaging.deliver_due(engine)
    assert (first.notices_queued, first.sent, second.notices_queued, second.claimed) == (1, 1, 0, 0)
    [mail] = smtp_server.to("ann@example.com")
    assert mail["List-Unsubscribe"] is None  # transactional
    assert "本註冊了" in mail.get_body(("plain",)).get_content()  # zh-TW reader


def test_racing_enqueues_of_one_cause_make_one_message(engine: Engine) -> None:
    alice = customer(engine, "alice")
    results: list[messaging.Queued] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def run() -> None:
        try:
            barrier.wait()
            results.append(ask(engine, alice, "race"))
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(r.status for r in results) == ["duplicate"] * 7 + ["queued"]
    assert len({r.message_id for r in results}) == 1
    with read_only(engine) as session:
        assert session.scalar(select(func.count(Message.id))) == 1


def test_racing_causes_for_one_customer_respect_the_cap(engine: Engine) -> None:
    alice = customer(engine, "alice")
    barrier = threading.Barrier(6)
    results: list[messaging.Queued] = []

    def run(n: int) -> None:
        barrier.wait()
        results.append(ask(engine, alice, f"cause-{n}"))

    threads = [threading.Thread(target=run, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.status for r in results) == ["queued"] * 2 + ["skipped"] * 4


def test_two_concurrent_deliveries_send_each_message_once(engine: Engine, smtp_server) -> None:
    people = [customer(engine, f"p{n}") for n in range(40)]
    for cid in people:
        ask(engine, cid, f"ask:{cid}")
    smtp_server.delay = 0.005
    barrier = threading.Barrier(2)
    reports: list[messaging.DeliveryReport] = []

    def run(worker: str) -> None:
        barrier.wait()
        reports.append(messaging.deliver_due(engine, worker_id=worker, limit=10))
        reports.append(messaging.deliver_due(engine, worker_id=worker, limit=100))

    threads = [threading.Thread(target=run, args=(f"w{n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r.sent for r in reports) == 40
    assert sorted(str(m["To"]) for m in smtp_server.messages) == sorted(
        f"P{n} <p{n}@example.com>" for n in range(40)
    )
    assert messaging.status_counts(engine) == {"sent": 40}


def test_smtp_login_from_the_url(engine: Engine, monkeypatch) -> None:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult
    from smtp_sink import SmtpSink

    logins: list[tuple[bytes, bytes]] = []

    def authenticator(server, session, envelope, mechanism, auth_data):  # noqa: ANN001
        logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"s3cret:/x")

    sink = SmtpSink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port, authenticator=authenticator,
                            auth_require_tls=False, auth_required=True)  # fmt: skip
    controller.start()
    try:
        monkeypatch.setenv("ADVOCADO_SMTP_URL", f"smtp://mailer:s3cret%3A%2Fx@127.0.0.1:{port}")
        alice = customer(engine, "alice")
        ask(engine, alice, "x")
        assert messaging.deliver_due(engine).sent == 1
        assert logins == [(b"mailer", b"s3cret:/x")] and len(sink.messages) == 1
    finally:
        controller.stop()


def _notices(engine: Engine, n: int, *, start: int = 0) -> list[int]:
    """n notices for advocate "ann" (made once) about one referral; their ids."""
    from advocado.store.models import Program, Referral

    with unit_of_work(engine) as session:
        known = session.scalar(select(Referral.id))
    if known is None:
        advocate, friend = customer(engine, "ann"), customer(engine, "ben")
    with unit_of_work(engine) as session:
        referral = session.scalar(select(Referral))
        if referral is None:
            program = Program(slug="p", name="P", currency="CNY", starts_at=T0, config={},
                              created_at=T0, updated_at=T0)  # fmt: skip
            session.add(program)
            session.flush()
            referral = Referral(program_id=program.id, advocate_id=advocate, referee_id=friend,
                                source="code", status="signed_up", signed_up_at=T0,
                                findings=[], created_at=T0, updated_at=T0)  # fmt: skip
            session.add(referral)
            session.flush()
        rows = [
            ReferralNotice(referral_id=referral.id, customer_id=referral.advocate_id,
                           step=f"step-{i}", text_en=f"Notice {i}.", text_zh=f"通知{i}。",
                           created_at=T0)
            for i in range(start, start + n)
        ]  # fmt: skip
        session.add_all(rows)
        session.flush()
        return [row.id for row in rows]


def _notice_messages(engine: Engine) -> int:
    with unit_of_work(engine) as session:
        return session.scalar(
            select(func.count(Message.id)).where(Message.cause_key.like("referral_notice:%"))
        ) or 0  # fmt: skip


def _purge(engine: Engine, cause_key: str) -> None:
    """A message and its events deleted, as a retention job would."""
    with unit_of_work(engine) as session:
        found = select(Message.id).where(Message.cause_key == cause_key).scalar_subquery()
        session.execute(MessageEvent.__table__.delete().where(MessageEvent.message_id == found))
        session.execute(Message.__table__.delete().where(Message.cause_key == cause_key))


def test_a_queued_notice_is_marked_and_never_read_again(engine: Engine) -> None:
    first = _notices(engine, 3)
    assert messaging.enqueue_referral_notices(engine) == 3
    with unit_of_work(engine) as session:
        marks = session.scalars(select(ReferralNotice.queued_at)).all()
    assert len(marks) == 3 and None not in marks
    # Only what is new is read: the marked ones are not checked against the messages again
    # (their messages purged, they still are not queued twice).
    _purge(engine, f"referral_notice:{first[0]}")
    _notices(engine, 1, start=3)
    assert messaging.enqueue_referral_notices(engine) == 1
    assert messaging.enqueue_referral_notices(engine) == 0
    assert _notice_messages(engine) == 3


def test_racing_notice_runs_queue_each_notice_once(engine: Engine) -> None:
    _notices(engine, 30)
    engine.pool.dispose()
    barrier = threading.Barrier(3)
    results: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            barrier.wait()
            results.append(messaging.enqueue_referral_notices(engine, limit=12))
            results.append(messaging.enqueue_referral_notices(engine, limit=12))
        except BaseException as error:  # noqa: BLE001
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sum(results) == 30
    assert _notice_messages(engine) == 30
    with unit_of_work(engine) as session:
        left = session.scalar(
            select(func.count(ReferralNotice.id)).where(ReferralNotice.queued_at.is_(None))
        )
    assert left == 0


def test_the_migration_marks_notices_that_already_have_a_message(engine: Engine) -> None:
    """0014 on a database with notices: those already made into messages are marked queued,
    the others are left for the next run."""
    from alembic import command
    from sqlalchemy import text

    from advocado.store.db import alembic_config, upgrade

    done, waiting = _notices(engine, 2)
    messaging.enqueue_referral_notices(engine)
    with unit_of_work(engine) as session:
        session.execute(
            update(ReferralNotice).where(ReferralNotice.id == waiting).values(queued_at=None)
        )
    _purge(engine, f"referral_notice:{waiting}")
    engine.dispose()
    command.downgrade(alembic_config(engine), "0014-1")
    try:
        with engine.connect() as connection:
            columns = connection.execute(text("SELECT * FROM referral_notices")).keys()
        assert "queued_at" not in columns
    finally:
        upgrade(engine)
    with unit_of_work(engine) as session:
        marks = dict(session.execute(select(ReferralNotice.id, ReferralNotice.queued_at)).all())
    assert marks[done] is not None and marks[waiting] is None
    assert messaging.enqueue_referral_notices(engine) == 1
