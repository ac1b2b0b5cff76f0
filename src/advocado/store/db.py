"""The engine, sessions, and migrating a database to the current schema."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from functools import cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Date, DateTime, Engine, bindparam, cast, create_engine, event, func
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from advocado.config import settings

MIGRATIONS = Path(__file__).parent / "migrations"
READ_ONLY = "advocado_read_only"


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def make_engine(url: str | None = None) -> Engine:
    url = url or settings().database_url
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        # SQLite takes its write lock lazily; BEGIN IMMEDIATE up front avoids deadlocked upgrades
        # of a read into a write. Reads (see read_only) begin deferred and never wait for writers.
        event.listen(engine, "begin", _sqlite_begin)
        _disable_pysqlite_begin(engine)
        return engine
    engine = create_engine(url, pool_pre_ping=True)
    event.listen(engine, "connect", _postgresql_settings)
    return engine


def _postgresql_settings(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    # JIT compiles a query whose estimated cost is high, which on tables of millions of rows
    # is most dashboard queries even when an index answers them in milliseconds: the
    # compilation alone then costs 50-200 ms. Our queries are short; it never pays here.
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET jit = off")
    dbapi_connection.commit()  # a session setting, kept when later transactions roll back


def _sqlite_begin(conn) -> None:  # type: ignore[no-untyped-def]
    read = conn.get_execution_options().get(READ_ONLY)
    conn.exec_driver_sql("BEGIN" if read else "BEGIN IMMEDIATE")


def _disable_pysqlite_begin(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision(engine: Engine) -> str | None:
    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def upgrade(engine: Engine) -> tuple[str | None, str | None]:
    """Migrate to the newest schema. Returns (revision before, revision after)."""
    before = current_revision(engine)
    command.upgrade(alembic_config(engine), "head")
    return before, current_revision(engine)


def ensure_schema(engine: Engine) -> None:
    """Every command that needs the database calls this: a new or old database is migrated."""
    if current_revision(engine) != head_revision(engine):
        upgrade(engine)


@cache
def default_engine() -> Engine:
    engine = make_engine()
    ensure_schema(engine)
    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def unit_of_work(engine: Engine) -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back if it raises."""
    with session_factory(engine).begin() as session:
        yield session


@contextmanager
def read_only(engine: Engine) -> Iterator[Session]:
    """A transaction that only reads: on SQLite it does not take the write lock, so pages and
    GETs are not queued behind an import; on PostgreSQL a write in it is an error."""
    options: dict[str, object] = {READ_ONLY: True}
    if engine.dialect.name == "postgresql":
        options["postgresql_readonly"] = True
    bound = engine.execution_options(**options)
    with Session(bound, expire_on_commit=False) as session, session.begin():
        yield session


_BUILT: dict[tuple[str, str], Any] = {}


def built(session: Session, name: str, build: Callable[[Any], Any]) -> Any:
    """The statement `name`, built once per dialect (from `build(dialect module)`) and kept:
    its values come as parameters when it runs (a list of ids as an expanding bindparam).
    On the hot write paths (an order event: bench/referrals.py) building a statement and the
    cache key of a new one cost more Python time than running it, while a kept statement's
    key is memoised, so its compiled form is found at once."""
    dialect = session.get_bind().dialect.name
    found = _BUILT.get((dialect, name))
    if found is None:
        found = _BUILT[dialect, name] = build(postgresql if dialect == "postgresql" else sqlite)
    return found


def run_for(session: Session, name: str, statement_of: Callable[[Any], Any],
            ids: list[int] | None) -> Any:  # fmt: skip
    """Execute `statement_of(ids)` and return its result: for everyone (None) built as it
    is; for a write's few customers (the list) built once per dialect (`built`) with the ids
    bound as an expanding parameter. An INSERT names the Core table: given parameters, the
    ORM would take an entity's INSERT for a bulk insert of them."""
    if ids is None:
        return session.execute(statement_of(None))
    bound = bindparam("ids", expanding=True)
    return session.execute(built(session, name, lambda _: statement_of(bound)), {"ids": ids})


def utc_day(session: Session, column: Any) -> Any:
    """SQL for the UTC calendar day of a stored time (SQLite keeps UTC text already)."""
    if session.get_bind().dialect.name == "postgresql":
        return cast(func.timezone("UTC", column), Date)
    return func.date(column)


def bucket_day(session: Session, day: Any, bucket: str) -> Any:
    """SQL for the first day of the week (Monday) or month a day column falls in: the same
    rule as domain.dashboard.bucket_start, in the query, so a chart over years reads one row
    per bucket instead of one per day (tests hold the two equal on both databases)."""
    if session.get_bind().dialect.name == "postgresql":
        # from a timestamp without time zone: the session's time zone plays no part
        unit = "month" if bucket == "month" else "week"
        return cast(func.date_trunc(unit, cast(day, DateTime(timezone=False))), Date)
    if bucket == "month":
        return func.date(day, "start of month")
    return func.date(day, "-6 days", "weekday 1")  # back 6 days, then on to the Monday


def as_date(value: Any) -> date:
    """A day read back from `utc_day`: a date on PostgreSQL, "YYYY-MM-DD" text on SQLite."""
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])
