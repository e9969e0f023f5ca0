#!/usr/bin/env bash
# The SDK compatibility suite: the official openai / anthropic SDKs and the rungate 0.1.0 SDK talk
# to a real gateway in front of the mock provider (both started by sdk-tests/python/conftest.py).
#
#   bash sdk-tests/run.sh [pytest args...]     from any directory
#
# RUNGATE_BIN and MOCK_BIN name prebuilt binaries; when either is unset, both are built with cargo.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
venv="$here/.venv"

if [[ ! -x "$venv/bin/python" ]]; then
  "${PYTHON:-python3}" -m venv "$venv"
fi
# Reinstall only when the pins changed since the last install into this venv.
stamp="$venv/.installed-requirements.txt"
if ! cmp -s "$here/requirements.txt" "$stamp"; then
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
  cp "$here/requirements.txt" "$stamp"
fi

if [[ -z "${RUNGATE_BIN:-}" || -z "${MOCK_BIN:-}" ]]; then
  (cd "$root" && cargo build --quiet -p rungate -p mock-upstream)
  target="${CARGO_TARGET_DIR:-$root/target}"
  [[ "$target" == /* ]] || target="$root/$target"
  RUNGATE_BIN="${RUNGATE_BIN:-$target/debug/rungate}"
  MOCK_BIN="${MOCK_BIN:-$target/debug/mock-upstream}"
fi
# Absolute, so the paths survive the cd below.
RUNGATE_BIN="$(realpath -m "$RUNGATE_BIN")"
MOCK_BIN="$(realpath -m "$MOCK_BIN")"
export RUNGATE_BIN MOCK_BIN

cd "$root"
exec "$venv/bin/python" -m pytest sdk-tests/python -q "$@"
