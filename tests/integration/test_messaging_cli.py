"""`advocado messages list|retry|suppress|deliver` as a user runs them (real processes)."""

from __future__ import annotations

import json

from sqlalchemy import Engine
from test_messaging import ask, customer


def test_messages_cli(engine: Engine, database_url: str, advocado, tmp_path, smtp_server,
                      monkeypatch) -> None:  # fmt: skip
    monkeypatch.setenv("ADVOCADO_QUIET_HOURS", "off")
    a = customer(engine, "ann")
    b = customer(engine, "bob", consent=False)
    ask(engine, a, "one")
    ask(engine, b, "two")
    run = lambda *args: advocado("messages", *args, cwd=tmp_path, database_url=database_url)  # noqa: E731
    delivered = run("deliver")
    assert delivered.returncode == 0, delivered.stderr
    assert json.loads(delivered.stdout)["sent"] == 1
    assert len(smtp_server.to("ann@example.com")) == 1
    listed = run("list").stdout.splitlines()
    assert [line.split("\t")[:3] for line in listed] == [["2", "skipped", "bob"],
                                                         ["1", "sent", "ann"]]  # fmt: skip
    assert "no_consent" in listed[0]
    only = run("list", "--status", "sent", "--json").stdout.splitlines()
    assert [json.loads(line)["id"] for line in only] == [1]
    bad = run("list", "--status", "lost")
    assert bad.returncode == 2 and "status 'lost'" in bad.stderr
    refused = run("retry", "1")
    assert refused.returncode == 2 and "is sent" in refused.stderr
    assert run("suppress", "email", "Ann@Example.com", "--reason", "asked by phone").stdout == (
        "added\n"
    )
    assert run("suppress", "email", "ann@example.com").stdout == "already suppressed\n"
    assert run("suppress", "fax", "1").returncode == 2
    assert run("suppress", "--list").stdout.startswith("email\tann@example.com\t")
