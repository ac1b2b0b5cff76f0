"""Every test that touches the database runs on the one named by ADVOCADO_TEST_DATABASE:
`sqlite` (default: a fresh file per test) or `postgresql` (a schema of its own per run on
ADVOCADO_TEST_POSTGRES_URL, emptied between tests). `make test` runs the suite on both."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from smtp_sink import SmtpSink, free_port
from sqlalchemy import Engine, create_engine, text

from advocado import clock
from advocado.store.db import default_engine, ensure_schema, make_engine
from advocado.store.models import Base
from advocado.web.app import create_app

BACKEND = os.environ.get("ADVOCADO_TEST_DATABASE", "sqlite")
POSTGRES_URL = os.environ.get(
    "ADVOCADO_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def pytest_report_header() -> str:
    return f"advocado test database: {BACKEND}"


@pytest.fixture(scope="session")
def _template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database made once per run; each test gets an empty copy of it."""
    if BACKEND == "sqlite":
        path = tmp_path_factory.mktemp("template") / "template.db"
        engine = make_engine(f"sqlite:///{path}")
        ensure_schema(engine)
        engine.dispose()
        yield str(path)
    elif BACKEND == "postgresql":
        schema = f"advocado_test_{uuid.uuid4().hex[:12]}"
        admin = create_engine(POSTGRES_URL)
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
        engine = make_engine(url)
        ensure_schema(engine)
        engine.dispose()
        yield url
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    else:
        raise pytest.UsageError(f"ADVOCADO_TEST_DATABASE={BACKEND!r}: use sqlite or postgresql")


@pytest.fixture
def database_url(_template: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The URL of an empty, migrated database; also set as ADVOCADO_DATABASE_URL."""
    if BACKEND == "sqlite":
        path = tmp_path / "advocado.db"
        shutil.copyfile(_template, path)
        url = f"sqlite:///{path}"
    else:
        url = _template
        engine = create_engine(url)
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        with engine.begin() as connection:
            connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        engine.dispose()
    monkeypatch.setenv("ADVOCADO_DATABASE_URL", url)
    default_engine.cache_clear()
    return url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def client(database_url: str) -> Iterator[TestClient]:
    """The whole app (API and console) in-process, on the test database."""
    app = create_app(database_url)
    with TestClient(app) as test_client:
        yield test_client
    app.state.engine.dispose()


def _run_advocado(*args: str, cwd: Path, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ADVOCADO_DATABASE_URL": database_url, "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "advocado.cli", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.fixture
def advocado() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Runs the `advocado` command as a user would: a real process, on the given database."""
    return _run_advocado


@pytest.fixture(autouse=True)
def _real_clock() -> Iterator[None]:
    yield
    clock.set_now(None)


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (../shared/data beside the checkout)")
    return SHARED_DATA


# --- Messaging: a real SMTP server (aiosmtpd) in a thread -----------------------------------


@pytest.fixture
def smtp_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpSink]:
    """A real SMTP server on 127.0.0.1; ADVOCADO_SMTP_URL and ADVOCADO_MAIL_FROM point at it."""
    from aiosmtpd.controller import Controller
    from smtp_sink import SmtpSink

    sink = SmtpSink()
    sink.port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=sink.port)
    controller.start()
    sink.url = f"smtp://127.0.0.1:{sink.port}"
    monkeypatch.setenv("ADVOCADO_SMTP_URL", sink.url)
    monkeypatch.setenv("ADVOCADO_MAIL_FROM", "Avocado Coffee <hello@avocado.example>")
    monkeypatch.setenv("ADVOCADO_BASE_URL", "http://testserver")
    yield sink
    controller.stop()
