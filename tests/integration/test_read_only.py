"""Reads do not queue behind writes, and cannot write."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Engine, func, insert, select, text
from sqlalchemy.exc import DBAPIError

from advocado.services.nps import nps_figures
from advocado.store.db import read_only, unit_of_work
from advocado.store.models import Setting


def test_a_read_completes_while_a_write_transaction_is_open(engine) -> None:
    writing, done_reading = threading.Event(), threading.Event()

    def long_write() -> None:
        with unit_of_work(engine) as session:
            session.execute(insert(Setting).values(key="k", value="v"))
            session.flush()
            writing.set()
            done_reading.wait(timeout=20)

    writer = threading.Thread(target=long_write)
    writer.start()
    assert writing.wait(timeout=10)
    try:
        with read_only(engine) as session:
            # The uncommitted row is invisible; the read did not wait for the writer.
            assert session.scalar(select(func.count()).select_from(Setting)) == 0
            assert nps_figures(session).responses == 0
        reader_finished_first = not done_reading.is_set()
    finally:
        done_reading.set()
        writer.join()
    assert reader_finished_first
    with read_only(engine) as session:
        assert session.scalar(select(Setting.value).where(Setting.key == "k")) == "v"


def test_a_write_inside_a_read_only_transaction_is_refused(engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no read-only transactions; read_only only avoids the write lock")
    with pytest.raises(DBAPIError, match="read-only"), read_only(engine) as session:
        session.execute(insert(Setting).values(key="k", value="v"))


def test_postgresql_sessions_never_jit_compile_even_after_a_rollback(engine: Engine) -> None:
    # JIT compilation alone costs 50-200 ms on the dashboard's queries over millions of rows
    if engine.dialect.name != "postgresql":
        pytest.skip("a PostgreSQL setting")
    with engine.connect() as connection:
        assert connection.execute(text("SHOW jit")).scalar() == "off"
        connection.rollback()
        assert connection.execute(text("SHOW jit")).scalar() == "off"
