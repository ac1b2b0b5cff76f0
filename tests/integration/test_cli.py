"""The `advocado` command as a user runs it: a real process against the test database."""

from __future__ import annotations

import json
from pathlib import Path

RESPONSES = """external_id,customer_external_id,score,comment,survey,channel,submitted_at
r1,,10,爱了爱了 yyds,onboarding,email,2026-03-01T10:00:00+08:00
r2,,9,系統穩定，出貨快,onboarding,email,2026-03-05T10:00:00+08:00
r3,,7,ok,renewal,web,2026-03-10T10:00:00Z
r4,,3,Support never answered,renewal,web,2026-04-02T10:00:00Z
r5,,eleven,?,renewal,web,2026-04-02T10:00:00Z
"""


def test_help_lists_every_command_with_its_purpose(
    advocado, tmp_path: Path, database_url: str
) -> None:
    result = advocado("--help", cwd=tmp_path, database_url=database_url)
    assert result.returncode == 0
    for command in ("import", "nps", "apikey", "user", "serve", "demo", "db"):
        assert f"│ {command} " in result.stdout


def test_import_then_nps_in_text_and_json(advocado, tmp_path: Path, database_url: str) -> None:
    (tmp_path / "responses.csv").write_text(RESPONSES, encoding="utf-8")
    result = advocado(
        "import", "responses", "responses.csv", cwd=tmp_path, database_url=database_url
    )
    assert result.returncode == 0, result.stderr
    assert "5 rows, 4 created, 0 updated, 0 unchanged, 1 rejected" in result.stdout
    assert "line 6: score: 'eleven' is not a number" in result.stderr
    assert (tmp_path / "responses.rejects.csv").exists()

    text = advocado("nps", cwd=tmp_path, database_url=database_url)
    assert "NPS 25.0" in text.stdout and "promoters          2" in text.stdout

    march = advocado("nps", "--from", "2026-03-01", "--to", "2026-03-31", "--json",
                     cwd=tmp_path, database_url=database_url)  # fmt: skip
    assert json.loads(march.stdout) == {
        "promoters": 2, "passives": 1, "detractors": 0, "responses": 3, "nps": 66.7,
    }  # fmt: skip
    renewal = advocado(
        "nps", "--survey", "renewal", "--json", cwd=tmp_path, database_url=database_url
    )
    assert json.loads(renewal.stdout)["nps"] == -50.0


def test_strict_import_fails_and_writes_nothing(
    advocado, tmp_path: Path, database_url: str
) -> None:
    (tmp_path / "responses.csv").write_text(RESPONSES, encoding="utf-8")
    result = advocado("import", "responses", "responses.csv", "--strict",
                      cwd=tmp_path, database_url=database_url)  # fmt: skip
    assert result.returncode == 1
    assert "nothing was imported" in result.stderr
    nps = advocado("nps", "--json", cwd=tmp_path, database_url=database_url)
    assert json.loads(nps.stdout)["responses"] == 0


def test_bad_arguments_say_what_is_wrong(advocado, tmp_path: Path, database_url: str) -> None:
    missing = advocado("import", "orders", "nope.csv", cwd=tmp_path, database_url=database_url)
    assert missing.returncode == 2 and "nope.csv: no such file" in missing.stderr
    (tmp_path / "r.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    bad_map = advocado("import", "responses", "r.csv", "--map", "score", cwd=tmp_path,
                       database_url=database_url)  # fmt: skip
    assert bad_map.returncode == 2 and "expected field=COLUMN" in bad_map.stderr
    bad_date = advocado("nps", "--from", "yesterday", cwd=tmp_path, database_url=database_url)
    assert bad_date.returncode == 2 and "expected a date" in bad_date.stderr


def test_a_new_database_is_migrated_by_the_first_command(advocado, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    result = advocado("nps", "--json", cwd=tmp_path, database_url=url)
    assert result.returncode == 0 and json.loads(result.stdout)["nps"] is None
    upgrade = advocado("db", "upgrade", cwd=tmp_path, database_url=url)
    assert "database at revision" in upgrade.stdout
