#!/usr/bin/env bash
# The JavaScript SDK compatibility suite: the official `openai` and `@anthropic-ai/sdk` npm packages
# talk to a real gateway in front of the mock provider (both started by tests/gateway.mjs), with
# Node's built-in test runner (node:test), one test file at a time.
#
#   bash sdk-tests/js/run.sh [node --test options...]     from any directory
#
# The pinned SDKs are installed into sdk-tests/js/node_modules with `npm ci` (from the committed
# package-lock.json) on first use and again whenever the lockfile changes.
# RUNGATE_BIN and MOCK_BIN name prebuilt binaries; when either is unset, both are built with cargo.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "sdk-tests/js: node (>= 20) and npm are required" >&2
  exit 1
fi
node_major="$(node -p 'process.versions.node.split(".")[0]')"
if (( node_major < 20 )); then
  echo "sdk-tests/js: node >= 20 is required (found $(node --version))" >&2
  exit 1
fi

# Install only when node_modules is missing or the lockfile changed since the last install into it.
stamp="$here/node_modules/.rungate-installed-package-lock.json"
if [[ -f "$here/package-lock.json" ]]; then
  if [[ ! -d "$here/node_modules" ]] || ! cmp -s "$here/package-lock.json" "$stamp"; then
    (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
    cp "$here/package-lock.json" "$stamp"
  fi
elif [[ ! -d "$here/node_modules" ]]; then
  (cd "$here" && npm install --no-audit --no-fund --loglevel=error)
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
# Node 20 searches a directory argument for *.test.mjs; from Node 21 on the arguments are glob
# patterns and a bare directory is taken for a module, so name the files there.
if (( node_major <= 20 )); then
  tests=(sdk-tests/js/tests/)
else
  tests=(sdk-tests/js/tests/*.test.mjs)
fi
exec node --test --test-concurrency=1 "$@" "${tests[@]}"
