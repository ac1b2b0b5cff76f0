"""kill -9 of a process in the middle of a playbook step's transaction (task + invitation):
nothing is half-written; killed after the commit, the retry finds the same task and
invitation and makes no second one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from sqlalchemy import Engine, func, select
from ugc_support import T0, seed

from advocado import clock
from advocado.services import challenges, tasks
from advocado.store.db import read_only, unit_of_work
from advocado.store.models import ChallengeInvitation, Task

STEP = """
import sys, time
from datetime import datetime
from advocado.services import challenges, tasks
from advocado.store.db import make_engine, unit_of_work

url, customer, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
engine = make_engine(url)
with unit_of_work(engine) as session:
    task = tasks.create_task(session, customer_id=customer, kind="ambassador_invite",
                             title="invite", due_at=datetime.fromisoformat(sys.argv[4]),
                             cause_key="enrolment:9:step:4")
    invitation = challenges.invite(session, challenge="story", customer_id=customer,
                                   cause_key="enrolment:9:step:3")
    session.flush()
    if mode == "before-commit":
        print("inside", flush=True)
        time.sleep(120)
print("committed", invitation.token, flush=True)
time.sleep(120)
"""


def run_until(database_url: str, customer: int, mode: str, marker: str, tmp: Path) -> str:
    """Starts the step in its own process, waits for `marker`, then kill -9s it."""
    env = {**os.environ, "ADVOCADO_NOW": T0.isoformat()}
    process = subprocess.Popen(
        [sys.executable, "-c", STEP, database_url, str(customer), mode, T0.isoformat()],
        stdout=subprocess.PIPE, stderr=(tmp / "step.err").open("wb"), text=True, env=env,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith(marker), (line, (tmp / "step.err").read_text())
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    return line


def counts(engine: Engine) -> tuple[int, int]:
    with read_only(engine) as session:
        return (
            session.scalar(select(func.count()).select_from(Task)) or 0,
            session.scalar(select(func.count()).select_from(ChallengeInvitation)) or 0,
        )


def test_kill_9_mid_step_then_after_commit(
    engine: Engine, database_url: str, tmp_path: Path
) -> None:
    clock.set_now(T0)
    [customer] = seed(engine, customers=1)
    run_until(database_url, customer, "before-commit", "inside", tmp_path)
    assert counts(engine) == (0, 0)  # killed inside the transaction: nothing half-written

    line = run_until(database_url, customer, "after-commit", "committed", tmp_path)
    token = line.split()[1]
    assert counts(engine) == (1, 1)

    with unit_of_work(engine) as session:  # the worker retries the step it never acknowledged
        task = tasks.create_task(
            session, customer_id=customer, kind="ambassador_invite", title="invite",
            due_at=T0, cause_key="enrolment:9:step:4",
        )  # fmt: skip
        invitation = challenges.invite(session, challenge="story", customer_id=customer,
                                       cause_key="enrolment:9:step:3")  # fmt: skip
    assert invitation.token == token and task.cause_key == "enrolment:9:step:4"
    assert counts(engine) == (1, 1)
