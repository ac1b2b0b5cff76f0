#!/usr/bin/env bash
# The test command: lint, the suite on SQLite, then on PostgreSQL when a server answers.
# With CI=true an unreachable PostgreSQL is a failure, not a skip.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
export ADVOCADO_TEST_POSTGRES_URL="${ADVOCADO_TEST_POSTGRES_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test}"

bash scripts/setup-browser.sh

echo "== ruff"
$BIN/ruff check src tests bench
$BIN/ruff format --check src tests bench

echo "== tests on SQLite"
ADVOCADO_TEST_DATABASE=sqlite $BIN/pytest "$@"

if $BIN/python - <<'PY'
import os, sys
import sqlalchemy
try:
    engine = sqlalchemy.create_engine(os.environ["ADVOCADO_TEST_POSTGRES_URL"], connect_args={"connect_timeout": 5})
    with engine.connect() as connection:
        connection.exec_driver_sql("SELECT 1")
except Exception as error:
    print(f"PostgreSQL unreachable: {str(error).splitlines()[0]}")
    sys.exit(1)
PY
then
  echo "== tests on PostgreSQL"
  ADVOCADO_TEST_DATABASE=postgresql $BIN/pytest "$@"
elif [[ "${CI:-}" == "true" ]]; then
  echo "FAILED: CI=true and PostgreSQL at $ADVOCADO_TEST_POSTGRES_URL cannot be reached." >&2
  exit 1
else
  echo "SKIPPED the PostgreSQL run: no server at $ADVOCADO_TEST_POSTGRES_URL (only SQLite was tested)."
fi
