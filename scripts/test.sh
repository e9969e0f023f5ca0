#!/usr/bin/env bash
# The whole test suite, the one command in the README: Rust unit and integration tests
# (real SQLite, real PostgreSQL, the Rust mock provider on loopback), the integration suite a
# second time with every gateway on PostgreSQL, then the official openai / anthropic SDKs and
# the rungate SDK against a real `rungate` process (sdk-tests/run.sh installs them into a
# local venv on first use), and the dashboard in headless Chromium (sdk-tests/js, playwright-core).
# The dashboard is rebuilt first (scripts/dashboard.sh), so the binary embeds what dashboard/src
# builds to; under CI=true a committed dashboard/dist that differs from that fails the run.
#
# PostgreSQL is RUNGATE_TEST_PG_URL (default: the local server, trust auth, database `test`).
# Without one the PostgreSQL tests say they were skipped; with CI=true they never skip.
set -euo pipefail
cd "$(dirname "$0")/.."

export RUNGATE_TEST_PG_URL="${RUNGATE_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432/test}"

postgres_reachable() {
    if command -v pg_isready >/dev/null; then
        pg_isready -q -d "$RUNGATE_TEST_PG_URL" -t 5
    else
        (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null
    fi
}

# Schemas the PostgreSQL pass of the suite leaves (each test gateway gets one, `it_…`).
drop_test_schemas() {
    command -v psql >/dev/null || return 0
    export PGOPTIONS='-c client_min_messages=warning'
    psql -q "$RUNGATE_TEST_PG_URL" -At -c "SELECT 'DROP SCHEMA ' || nspname || ' CASCADE;' FROM pg_namespace WHERE nspname ~ '^(it|scale|kill|copy|contract)_[0-9a-f]{16}$'" \
        | psql -q "$RUNGATE_TEST_PG_URL" >/dev/null || true
}

if [[ "${CI:-}" == "true" ]]; then
    bash scripts/dashboard.sh --check
else
    bash scripts/dashboard.sh
fi
cargo build --workspace --bins
cargo test --workspace
if [[ "${CI:-}" == "true" ]] || postgres_reachable; then
    echo "== integration suite on PostgreSQL"
    trap drop_test_schemas EXIT
    RUNGATE_TEST_STORAGE=postgres cargo test -p rungate --test it
else
    echo "skipped: the integration suite on PostgreSQL ($RUNGATE_TEST_PG_URL is not reachable)"
fi
bash sdk-tests/run.sh
bash sdk-tests/js/run.sh
