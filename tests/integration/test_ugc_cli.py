"""`advocado challenge …` and `advocado task …` as a user runs them (real processes)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess

from pytest import MonkeyPatch
from sqlalchemy import Engine
from ugc_support import T0, seed

from advocado.services import tasks
from advocado.store.db import unit_of_work

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "challenges" / "story.yaml"
Run = Callable[..., CompletedProcess[str]]


def test_apply_list_invite_and_a_bad_file(
    advocado: Run, database_url: str, tmp_path: Path, engine: Engine, monkeypatch: MonkeyPatch
) -> None:
    seed(engine, customers=1)
    applied = advocado("challenge", "apply", str(EXAMPLE), cwd=tmp_path, database_url=database_url)
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.strip() == "kettlecraft-story" and "created" in applied.stderr
    listed = advocado("challenge", "list", cwd=tmp_path, database_url=database_url)
    assert "kettlecraft-story  #我和壶匠的故事#" in listed.stdout

    bad = tmp_path / "bad.yaml"
    bad.write_text(EXAMPLE.read_text(encoding="utf-8").replace(
        "ends_at: 2027-01-31", "ends_at: 2026-01-31"), encoding="utf-8")  # fmt: skip
    refused = advocado("challenge", "apply", str(bad), cwd=tmp_path, database_url=database_url)
    line = next(i for i, text in enumerate(bad.read_text().splitlines(), 1)
                if text.startswith("ends_at"))  # fmt: skip
    assert refused.returncode == 2
    assert f"ends_at: must be after starts_at ({bad}:{line})" in refused.stderr

    monkeypatch.setenv("ADVOCADO_NOW", "2026-12-05T09:00:00+00:00")
    invited = advocado("challenge", "invite", "--challenge", "kettlecraft-story",
                       "--customer", "c0", cwd=tmp_path, database_url=database_url)  # fmt: skip
    again = advocado("challenge", "invite", "--challenge", "kettlecraft-story",
                     "--customer", "c0", cwd=tmp_path, database_url=database_url)  # fmt: skip
    unknown = advocado("challenge", "invite", "--challenge", "nope", "--customer", "c0",
                       cwd=tmp_path, database_url=database_url)  # fmt: skip
    assert invited.returncode == 0 and invited.stdout.startswith("/c/")
    assert again.stdout == invited.stdout
    assert unknown.returncode == 2 and "no challenge 'nope'" in unknown.stderr


def test_task_list_and_done(
    advocado: Run, database_url: str, tmp_path: Path, engine: Engine, monkeypatch: MonkeyPatch
) -> None:
    monkeypatch.setenv("ADVOCADO_NOW", "2026-12-05T10:00:00+00:00")
    [customer] = seed(engine, customers=1)
    with unit_of_work(engine) as session:
        task = tasks.create_task(session, customer_id=customer, kind="ambassador_invite",
                                 title="邀请", due_at=T0, cause_key="cli")  # fmt: skip
    listed = advocado(
        "task", "list", "--status", "overdue", cwd=tmp_path, database_url=database_url
    )
    assert (
        f"#{task.id} due 2026-12-05 09:00 OVERDUE  ambassador_invite  张0号: 邀请" in listed.stdout
    )
    done = advocado("task", "done", str(task.id), "--outcome", "declined", "--by", "cm@x.com",
                    cwd=tmp_path, database_url=database_url)  # fmt: skip
    assert done.returncode == 0, done.stderr
    other = advocado("task", "done", str(task.id), "--outcome", "accepted", "--by", "b",
                     cwd=tmp_path, database_url=database_url)  # fmt: skip
    assert other.returncode == 2 and "already recorded: declined by cm@x.com" in other.stderr
