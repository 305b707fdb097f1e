#!/usr/bin/env bash
# Runs Tribler.ts from a fresh checkout: installs what is missing, builds, then starts the core in the foreground
# (REST API on http://127.0.0.1:8085 unless --port says otherwise). Arguments go to `tribler start`.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh
echo "== build" >&2
npm run --silent build
exec node bin/tribler.js start "$@"
