#!/usr/bin/env bash
# The whole test suite, the one command in the README: Rust unit and integration tests
# (real SQLite, the Rust mock provider on loopback), then the official openai / anthropic
# SDKs and the rungate SDK against a real `rungate` process (sdk-tests/run.sh installs them
# into a local venv on first use).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --workspace --bins
cargo test --workspace
bash sdk-tests/run.sh
bash sdk-tests/js/run.sh
