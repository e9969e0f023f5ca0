#!/usr/bin/env bash
# Builds the dashboard (dashboard/: Preact + TypeScript, bundled by Vite) into dashboard/dist,
# which the rungate binary embeds. dist/ is committed so that `cargo run` on a fresh clone
# serves the dashboard without Node.js; this script rebuilds it from the pinned lockfile and,
# with --check (CI), fails when the committed dist/ is not what the sources build to.
#
#   bash scripts/dashboard.sh [--check]
set -euo pipefail
cd "$(dirname "$0")/../dashboard"

check=false
[[ "${1:-}" == "--check" ]] && check=true

if ! command -v npm >/dev/null 2>&1; then
  echo "scripts/dashboard.sh: node (>= 20) and npm are required to build the dashboard" >&2
  exit 1
fi

# Install only when node_modules is missing or the lockfile changed since the last install.
stamp=node_modules/.rungate-installed-package-lock.json
if [[ ! -d node_modules ]] || ! cmp -s package-lock.json "$stamp"; then
  npm ci --no-audit --no-fund --loglevel=error
  cp package-lock.json "$stamp"
fi

npm run --silent build

if $check; then
  changed="$(git status --porcelain -- dist)"
  if [[ -n "$changed" ]]; then
    echo "dashboard/dist is not what dashboard/src builds to; rebuild with scripts/dashboard.sh and commit dist/:" >&2
    echo "$changed" >&2
    exit 1
  fi
fi
