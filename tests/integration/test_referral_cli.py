"""`advocado referral …` and `advocado ledger balance`, run as scripts run them."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "programs" / "double-sided.yaml"


def test_referral_commands_scripts_rely_on(advocado, database_url: str, tmp_path: Path) -> None:
    applied = advocado(
        "referral", "program", "apply", str(EXAMPLE), cwd=tmp_path, database_url=database_url
    )
    assert applied.returncode == 0, applied.stderr
    assert applied.stdout.strip() == "double-sided"
    first = advocado(
        "referral",
        "code",
        "--program",
        "double-sided",
        "--customer",
        "zs-1",
        cwd=tmp_path,
        database_url=database_url,
    )
    again = advocado(
        "referral",
        "code",
        "--program",
        "double-sided",
        "--customer",
        "zs-1",
        cwd=tmp_path,
        database_url=database_url,
    )
    assert first.returncode == 0 and len(first.stdout.strip()) == 8
    assert again.stdout == first.stdout  # the same advocate keeps one code
    stats = advocado("referral", "stats", "--json", cwd=tmp_path, database_url=database_url)
    (program,) = json.loads(stats.stdout)
    assert {
        "slug",
        "clicks",
        "unique_clicks",
        "signups",
        "qualified",
        "rejected",
        "rewards_pending",
        "rewards_issued",
    } <= set(program)
    assert program["slug"] == "double-sided"
    balance = advocado(
        "ledger", "balance", "zs-1", "--json", cwd=tmp_path, database_url=database_url
    )
    assert json.loads(balance.stdout) == {"customer": "zs-1", "balances": {}}


def test_program_apply_explains_errors_and_warns_about_second_level(
    advocado, database_url: str, tmp_path: Path
) -> None:
    data = yaml.safe_load(EXAMPLE.read_text())
    broken = tmp_path / "broken.yaml"
    broken.write_text(yaml.safe_dump({**data, "currency": "yuan"}))
    failed = advocado(
        "referral", "program", "apply", str(broken), cwd=tmp_path, database_url=database_url
    )
    assert failed.returncode == 2 and "currency" in failed.stderr
    two_level = tmp_path / "two.yaml"
    two_level.write_text(
        yaml.safe_dump({**data, "second_level": {"enabled": True}}, allow_unicode=True)
    )
    warned = advocado(
        "referral", "program", "apply", str(two_level), cwd=tmp_path, database_url=database_url
    )
    assert warned.returncode == 0 and "传销" in warned.stderr
