"""The demo's activation activity: the real default playbook (seed 000's four levels) run for
the demo's recent answerers over the last days, so the dashboard's activation, playbook-step
and review panels have something to show after `advocado demo` without a worker running.

Everything goes through the services a live system uses (enrol, run the due steps, deliver,
record clicks, a friend's signup, an entry, a task outcome) with the clock moved; only the
last hop differs: messages are handed to DemoChannel, which accepts them and sends nothing
(demo addresses are made up, and a demo must never mail anyone).
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from sqlalchemy import Engine, func, select

from advocado import clock
from advocado.channels import Outcome, Outgoing
from advocado.channels.config import messaging_config
from advocado.services import challenges, messaging, playbooks, referrals, tasks
from advocado.store.db import read_only, unit_of_work
from advocado.store.models import (
    ChallengeInvitation,
    Customer,
    Message,
    MessageLink,
    Playbook,
    ReferralCode,
    Response,
    Task,
)

PLAYBOOK = "activation-funnel"
PEOPLE = 90  # answerers enrolled
DAYS = 10  # spread over the last days (the demo challenge started 14 days ago)
REVIEWER = "admin@demo.advocado.local"  # the demo's admin (services.demo.ADMIN_EMAIL)


class DemoChannel:
    """Accepts every message and sends nothing (the demo's last hop)."""

    def send(self, outgoing: Outgoing) -> Outcome:
        return Outcome(
            "sent", "demo: not sent / 演示数据：未实际发送", f"demo-{outgoing.message_id}"
        )

    def close(self) -> None:
        pass


class _DemoChannels(messaging.Channels):
    def get(self, channel: str) -> DemoChannel:  # type: ignore[override]
        return DemoChannel()


def load_activation_activity(engine: Engine, *, seed: int, today: datetime) -> int:
    """Runs the default playbook for up to PEOPLE recent answerers; returns the enrolments."""
    rng = random.Random(seed + 6)
    before = clock._pinned
    try:
        with unit_of_work(engine) as session:
            if (
                not playbooks.install_default(session)
                and session.scalar(select(Playbook.id).where(Playbook.name == PLAYBOOK)) is None
            ):  # installed once, then removed: the demo's empty database wants it
                playbooks.apply_source(session, source=playbooks.default_source(),
                                       file=playbooks.DEFAULT_FILE)  # fmt: skip
                playbooks._ensure_default_program(session)  # its level 2 needs the program
            people = list(
                session.scalars(
                    select(Customer.external_id)
                    .join(Response, Response.customer_id == Customer.id)
                    .group_by(Customer.id, Customer.external_id)
                    .order_by(func.max(Response.submitted_at).desc(), Customer.id)
                    .limit(PEOPLE)
                )
            )
        channels = _DemoChannels(engine, messaging_config())
        enrolled = 0
        for day in range(DAYS, 2, -1):
            batch = people[(DAYS - day) :: DAYS - 2]
            if not batch:
                continue
            start = (today - timedelta(days=day)).replace(hour=9, minute=0)
            clock.set_now(start)
            with unit_of_work(engine) as session:
                enrolled += playbooks.enrol_manually(
                    session, name=PLAYBOOK, customer_external_ids=batch, key=f"demo-{day}"
                )
            for later in (start, start + timedelta(hours=25), start + timedelta(hours=40)):
                clock.set_now(later)
                playbooks.run_due_steps(engine, now=later)
                messaging.deliver_due(engine, now=later, channels=channels)
        clock.set_now(today - timedelta(days=1))
        _responses(engine, rng)
        return enrolled
    finally:
        clock.set_now(before)


def _responses(engine: Engine, rng: random.Random) -> None:
    """What the asked did: clicks on a third of the links, a friend's signup for two of the
    referral codes, an entry for one challenge invitation, an accepted ambassador task."""
    with read_only(engine) as session:
        tokens = list(
            session.scalars(
                select(MessageLink.token)
                .join(Message, Message.id == MessageLink.message_id)
                .where(Message.cause_key.like("enrolment:%"))
                .order_by(MessageLink.id)
            )
        )
        codes = list(
            session.scalars(
                select(ReferralCode.code)
                .join(Message, Message.customer_id == ReferralCode.customer_id)
                .where(Message.template == "referral_invite", Message.status == "sent")
                .order_by(ReferralCode.id)
                .limit(2)
            )
        )
        # Friends from the demo's own customers (the demo has exactly the customers asked
        # for): the last ones, not enrolled here.
        friends = list(
            session.scalars(select(Customer.external_id).order_by(Customer.id.desc()).limit(2))
        )
        invitation = session.scalar(
            select(ChallengeInvitation.token)
            .where(ChallengeInvitation.cause_key.like("enrolment:%"))
            .order_by(ChallengeInvitation.id)
        )
        task_id = session.scalar(
            select(Task.id)
            .where(Task.kind == "ambassador_invite", Task.cause_key.like("enrolment:%"))
            .order_by(Task.id)
        )
    for token in tokens:
        if rng.random() < 0.35:
            messaging.record_message_click(engine, token=token)
    for n, (code, friend) in enumerate(zip(codes, friends, strict=False)):
        referrals.ingest_event(
            engine,
            referrals.EventIn(
                event_id=f"demo-activation-signup-{n}",
                type="signup",
                occurred_at=clock.now(),
                customer_external_id=friend,
                referral_code=code,
            ),
        )
    with unit_of_work(engine) as session:
        if invitation is not None:
            entry = challenges.submit_entry(
                session, token=invitation, link="https://weibo.example/demo", text="我的故事",
                image=None,
            )  # fmt: skip
            for action in ("approve", "feature"):
                challenges.review_entry(
                    session, entry_id=entry.id, action=action, reason=None, reviewer=REVIEWER
                )
        if task_id is not None:
            tasks.record_outcome(
                session, task_id=task_id, outcome="accepted", note="演示 / demo", by=REVIEWER
            )
