#!/usr/bin/env bash
# The whole test suite, from a fresh checkout: installs what is missing, then type-checks, lints, builds and runs
# every tier. Tiers: unit (src/**/*.test.ts), integration (test/integration), interop (test/interop, real
# third-party clients), e2e (test/e2e, the web GUI in Chromium against a real core). `TEST_TIERS="unit integration"`
# runs a subset.
set -euo pipefail
cd "$(dirname "$0")/.."
export TRIBLER_NO_PUBLIC_NETWORK=1

bash scripts/setup.sh --test

echo "== typecheck"; npx --no-install tsc --noEmit && npx --no-install tsc -p src/gui
echo "== lint"; npx --no-install biome check .
echo "== build"; npm run --silent build

tiers=${TEST_TIERS:-"unit integration interop e2e"}
results=$(mktemp -d)
status=0
for tier in $tiers; do
  case $tier in
    unit) config=vitest.config.ts ;;
    *) config=vitest.$tier.config.ts ;;
  esac
  echo "== $tier tests"
  npx --no-install vitest run --config "$config" --passWithNoTests \
    --reporter=default --reporter=json --outputFile.json="$results/$tier.json" || status=1
done

# One plain closing line for the whole run.
node -e '
  const fs = require("node:fs"), path = require("node:path")
  let passed = 0, failed = 0, skipped = 0
  for (const file of fs.readdirSync(process.argv[1])) {
    const r = JSON.parse(fs.readFileSync(path.join(process.argv[1], file), "utf8"))
    passed += r.numPassedTests; failed += r.numFailedTests; skipped += r.numPendingTests + r.numTodoTests
  }
  console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`)
' "$results"
rm -rf "$results"
exit $status
