"""Playbook activity for the dashboard benchmark (bench/dashboard.py calls `generate_activity`
after its customers): what the default seed-000 playbook would have left after a year of
NPS answers, written in bulk, so the activation, playbook steps, reviews and UGC panels have
their rows at size.

Per enrolled promoter (half of the customers, one enrolment each): route -> wait-24h ->
choose-level, then level 1 (review ask, 50 %), 2 (referral code + invitation, 20 %), 3 (UGC
challenge + invitation, 20 %) or 4 (ambassador task, 10 %); 8 % of asks skipped (consent /
cap), 20 % of sent asks clicked (review asks: two review-site links each), 10 % of level-3
invitations entered (a third featured), half of the level-4 tasks accepted, and a friend
signed up for 10 % of the level-2 advocates.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert, select, text

from advocado.services import challenges, playbooks
from advocado.store.db import unit_of_work
from advocado.store.models import (
    Challenge,
    ChallengeEntry,
    ChallengeInvitation,
    Customer,
    Enrolment,
    EnrolmentStep,
    Message,
    MessageLink,
    Playbook,
    PlaybookVersion,
    Program,
    Referral,
    ReferralCode,
    Task,
)

BATCH = 5000
SITES = ("G2", "大众点评")
SKIPS = (
    "no_consent: the customer has not consented to marketing messages / 客户未同意接收营销信息",
    "frequency_cap: already asked 2 times in the last 30 days (cap 2) / 近 30 天已邀请 2 次",
)


def _insert(engine: Engine, table: Any, rows: list[dict[str, Any]]) -> None:
    with engine.begin() as connection:
        for start in range(0, len(rows), BATCH):
            connection.execute(insert(table), rows[start : start + BATCH])


def _next_ids(engine: Engine, table: Any) -> Callable[[], int]:
    with engine.connect() as connection:
        last = connection.execute(select(table.id).order_by(table.id.desc()).limit(1)).scalar()
    counter = iter(range((last or 0) + 1, 1 << 62))
    return lambda: next(counter)


def _resync(engine: Engine, tables: Iterable[str]) -> None:
    """PostgreSQL: the id sequences after rows were written with explicit ids."""
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as connection:
        for table in tables:
            connection.execute(text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT coalesce(max(id), 1) FROM {table}))"))  # fmt: skip


def generate_activity(
    engine: Engine, customers: int, *, now: datetime, days: int = 365, seed: int = 8
) -> dict[str, int]:
    """Enrolments, their steps, messages, links, codes, invitations, entries and tasks."""
    rng = random.Random(seed)
    with unit_of_work(engine) as session:
        playbooks.install_default(session)
        challenges.apply_challenge(session, {
            "slug": "bench-story", "hashtag": "#我的故事#",
            "starts_at": (now - timedelta(days=days)).date().isoformat(),
            "ends_at": (now + timedelta(days=30)).date().isoformat(), "max_image_mb": 1,
            "texts": {locale: {"title": "Story", "prompt": "Tell it", "prize": "A kettle"}
                      for locale in ("en", "zh-CN", "zh-TW")},
        })  # fmt: skip
        playbook_id, version_id = session.execute(
            select(Playbook.id, PlaybookVersion.id)
            .join(PlaybookVersion, PlaybookVersion.playbook_id == Playbook.id)
            .where(Playbook.name == "activation-funnel")
        ).one()
        program_id = session.scalar(select(Program.id).where(Program.slug == "double-sided"))
        challenge_id = session.scalar(select(Challenge.id).where(Challenge.slug == "bench-story"))
        ids = list(session.scalars(select(Customer.id).order_by(Customer.id)))
    enrolment_id, message_id = _next_ids(engine, Enrolment), _next_ids(engine, Message)
    task_id, invitation_id = _next_ids(engine, Task), _next_ids(engine, ChallengeInvitation)
    rows: dict[Any, list[dict[str, Any]]] = {t: [] for t in (
        Enrolment, EnrolmentStep, Message, MessageLink, ReferralCode, ChallengeInvitation,
        ChallengeEntry, Task, Referral)}  # fmt: skip
    friends = iter(reversed(ids))

    def step(enrolment: int, name: str, action: str, outcome: str, at: datetime,
             effect: str | None = None, reason: str | None = None) -> None:  # fmt: skip
        rows[EnrolmentStep].append({"enrolment_id": enrolment, "step": name, "action": action,
                                    "outcome": outcome, "reason": reason or outcome,
                                    "effect": effect, "ran_at": at})  # fmt: skip

    def message(customer: int, enrolment: int, name: str, template: str, at: datetime) -> str:
        skipped = rng.random() < 0.08
        clicked = not skipped and rng.random() < 0.2
        number = message_id()
        rows[Message].append({
            "id": number, "cause_key": f"enrolment:{enrolment}:{name}", "customer_id": customer,
            "template": template, "channel": "email", "marketing": True,
            "status": "skipped" if skipped else ("clicked" if clicked else "sent"),
            "reason": rng.choice(SKIPS) if skipped else None, "context": {}, "due_at": at,
            "attempts": 0 if skipped else 1, "sent_at": None if skipped else at,
            "clicked_at": at + timedelta(hours=3) if clicked else None,
            "created_at": at, "updated_at": at})  # fmt: skip
        if not skipped:
            links = SITES if template == "review_ask" else ("share",)
            hit = rng.randrange(len(links)) if clicked else -1
            for n, label in enumerate(links):
                rows[MessageLink].append({
                    "token": f"m{number}x{n}", "message_id": number, "url": f"https://x/{n}",
                    "label": label, "clicks": int(n == hit),
                    "clicked_at": at + timedelta(hours=3) if n == hit else None,
                    "created_at": at})  # fmt: skip
        outcome = "skipped" if skipped else "queued"
        effect = None if skipped else f"message:{number}"
        step(enrolment, name, "send_message", outcome, at, effect, rows[Message][-1]["reason"])
        return outcome

    for customer in rng.sample(ids, len(ids) // 2):
        number = enrolment_id()
        start = now - timedelta(days=rng.random() * days)
        later = start + timedelta(hours=24)
        level = rng.choices(("L1", "L2", "L3", "L4"), (50, 20, 20, 10))[0]
        end = "handed_off" if level == "L4" else "exited"
        rows[Enrolment].append({
            "id": number, "playbook_id": playbook_id, "version_id": version_id,
            "customer_id": customer, "cause": f"response:{number}", "status": end,
            "step": None, "due_at": None, "attempts": 0, "context": {},
            "end_reason": end, "created_at": start, "updated_at": later})  # fmt: skip
        step(number, "route", "branch", "chose", start)
        step(number, "wait-24h", "wait", "waiting", start)
        step(number, "choose-level", "branch", "chose", later)
        if level == "L1":
            message(customer, number, "review-ask", "review_ask", later)
        elif level == "L2":
            code = f"BA{number:09d}"
            rows[ReferralCode].append({"code": code, "program_id": program_id,
                                       "customer_id": customer, "vanity": False,
                                       "created_at": later})  # fmt: skip
            step(number, "referral-code", "issue_referral_code", "issued", later, f"code:{code}")
            sent = message(customer, number, "referral-invite", "referral_invite", later)
            if sent == "queued" and rng.random() < 0.1:
                rows[Referral].append({
                    "program_id": program_id, "advocate_id": customer,
                    "referee_id": next(friends), "code_id": len(rows[ReferralCode]),
                    "source": "code", "status": "signed_up", "reason": None, "findings": [],
                    "signed_up_at": later + timedelta(days=2),
                    "created_at": later, "updated_at": later})  # fmt: skip
        elif level == "L3":
            invitation = invitation_id()
            token = f"inv{invitation}"
            rows[ChallengeInvitation].append({"id": invitation, "challenge_id": challenge_id,
                                              "customer_id": customer, "token": token,
                                              "cause_key": f"enrolment:{number}:ugc-challenge",
                                              "created_at": later})  # fmt: skip
            step(number, "ugc-challenge", "invite_challenge", "invited", later,
                 f"invitation:{token}")  # fmt: skip
            message(customer, number, "ugc-invite", "ugc_invite", later)
            if rng.random() < 0.1:
                approved = rng.random() < 0.7
                rows[ChallengeEntry].append({
                    "challenge_id": challenge_id, "invitation_id": invitation,
                    "customer_id": customer, "link": "https://weibo.example/p", "text": "故事",
                    "status": "approved" if approved else "pending",
                    "featured": approved and rng.random() < 0.4,
                    "submitted_at": later + timedelta(days=1)})  # fmt: skip
        else:
            task = task_id()
            done = rng.random() < 0.6
            rows[Task].append({
                "id": task, "cause_key": f"enrolment:{number}:ambassador-invite",
                "customer_id": customer, "kind": "ambassador_invite", "title": "Invite",
                "assignee_role": "community", "due_at": later + timedelta(hours=48),
                "script": "", "context": {}, "done": done,
                "outcome": rng.choice(("accepted", "declined")) if done else None,
                "created_at": later})  # fmt: skip
            step(number, "ambassador-invite", "create_task", "handed_off", later, f"task:{task}")
        if level != "L4":
            step(number, "done", "exit", "exited", later)
    code_ids = _next_ids(engine, ReferralCode)()  # the codes' ids follow the existing ones
    for referral in rows[Referral]:
        referral["code_id"] += code_ids - 1
    for table in (Enrolment, EnrolmentStep, Message, MessageLink, ReferralCode,
                  ChallengeInvitation, ChallengeEntry, Task, Referral):  # fmt: skip
        _insert(engine, table, rows[table])
    _resync(engine, ("enrolments", "messages", "tasks", "challenge_invitations"))
    with engine.begin() as connection:
        connection.execute(text("ANALYZE"))
    return {"enrolments": len(rows[Enrolment]), "steps": len(rows[EnrolmentStep]),
            "messages": len(rows[Message]), "entries": len(rows[ChallengeEntry])}  # fmt: skip
